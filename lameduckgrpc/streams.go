package lameduckgrpc

import (
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"
)

// Streams tells a gRPC server's streams when the server drains, and ends
// those that do not end themselves. Make one with [New], install its
// interceptors when making the *grpc.Server, and run the server with
// [Streams.FromGRPC] in place of [lameduck.FromGRPC]:
//
//	streams, err := lameduckgrpc.New(lameduckgrpc.Grace(2*time.Second))
//	...
//	s := grpc.NewServer(
//		grpc.ChainStreamInterceptor(streams.StreamInterceptor),
//		grpc.ChainUnaryInterceptor(streams.UnaryInterceptor))
//	...
//	err = lameduck.Run(ctx, streams.FromGRPC(s, ln), ...)
//
// A Streams serves one *grpc.Server. Its methods are safe for concurrent use.
type Streams struct {
	grace   time.Duration
	cutting bool // Grace was given: streams are ended when it runs out
	spread  time.Duration

	marker atomic.Pointer[marker] // FromGRPC's Server, once FromGRPC is called
	unary  chan struct{}          // closed when the drain begins; unary RPCs' Draining

	mu       sync.Mutex
	linked   bool // FromGRPC has been called
	draining bool // the drain (or Close) has begun
	stopped  bool // Close has stopped the server: nothing is ended any more
	seq      uint64
	open     map[*stream]struct{}
	counts   Counts
	// closedByStop counts the Cancelled streams that Close ended (the
	// rest: their clients left), for the stop report.
	closedByStop int
}

// Counts says how the streams of a [Streams] have ended since the drain
// began (Open apart). The lameduck Runner's stop report reads them: its
// rows of kind "streams", protocol "gRPC".
type Counts struct {
	Open      int // streams whose handler is still running
	Ended     int // ended by their handler before their grace ran out
	Cut       int // ended by the interceptor when their grace ran out
	Cancelled int // ended because the client left, or once Close began to stop the server
}

// Option configures a [Streams]; see [Grace] and [Spread].
type Option interface {
	apply(*Streams) error
}

type optionFunc func(*Streams) error

func (f optionFunc) apply(s *Streams) error { return f(s) }

// Grace sets how long a stream may run on after it has been told that its
// drain began. A stream still open then is ended: its handler's context is
// cancelled and, once the handler returns, its client gets
// codes.Unavailable. Without Grace no stream is ended: gRPC's GracefulStop
// waits for them all, up to the end of the lame-duck period. Grace(0) ends
// each stream as soon as it is told.
//
// Choose Grace, plus [Spread], below the lame-duck period (less its
// pre-shutdown delays), so that the drain ends before the period does.
func Grace(d time.Duration) Option {
	return optionFunc(func(s *Streams) error {
		if d < 0 {
			return fmt.Errorf("lameduck: lameduckgrpc.Grace: negative duration %v", d)
		}
		s.grace, s.cutting = d, true
		return nil
	})
}

// Spread sets a window over which the streams open when the drain begins
// are told, one after another at even intervals, oldest first, instead of
// all at once: the k-th of n at window·k/n. Each stream's [Grace] runs from
// its own turn. The default, 0, tells every stream at once. A stream opened
// after the drain began is told at once.
func Spread(window time.Duration) Option {
	return optionFunc(func(s *Streams) error {
		if window < 0 {
			return fmt.Errorf("lameduck: lameduckgrpc.Spread: negative window %v", window)
		}
		s.spread = window
		return nil
	})
}

// New returns a Streams configured by opts. Bad input (a nil option, a
// negative duration) is reported in an error starting "lameduck: ".
func New(opts ...Option) (*Streams, error) {
	s := &Streams{unary: make(chan struct{}), open: map[*stream]struct{}{}}
	for i, o := range opts {
		if o == nil {
			return nil, fmt.Errorf("lameduck: lameduckgrpc.New: option %d is nil", i)
		}
		if err := o.apply(s); err != nil {
			return nil, err
		}
	}
	return s, nil
}

// Counts returns how the streams have ended so far; see [Counts].
func (s *Streams) Counts() Counts {
	if s == nil {
		return Counts{}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	c := s.counts
	c.Open = len(s.open)
	return c
}

var errNotNew = errors.New("lameduck: lameduckgrpc: Streams not made by New")
