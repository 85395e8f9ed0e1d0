package lameduckgrpc

import (
	"context"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// errGoingAway is the status a client gets for a stream ended when its
// grace ran out, and the cause of its handler's cancelled context.
// Unavailable is the code gRPC uses for a server that is going away: clients
// reconnect on it, and grpc-go's retry policies may retry it.
var errGoingAway = status.Error(codes.Unavailable, "lameduckgrpc: server going away")

// marker is what FromGRPC's Server (of the lameduck package) offers: a way
// to make [lameduck.Draining] find a channel in a context.
type marker interface {
	WithDraining(ctx context.Context, draining chan struct{}) context.Context
}

// stream is one stream RPC between its interceptor's call and return.
type stream struct {
	seq      uint64
	draining chan struct{} // closed when the stream is told
	cancel   context.CancelCauseFunc

	// Guarded by the Streams' mutex.
	told, cut, done bool
	turn, end       *time.Timer // tell at its turn of the spread; cut when its grace ends
}

// StreamInterceptor is a [grpc.StreamServerInterceptor]. It gives the
// handler a context for which [lameduck.Draining] is closed when the
// stream's drain begins, and cancels that context when the stream's
// [Grace] runs out; the client then gets codes.Unavailable whatever the
// handler returned. Put it last in the chain of stream interceptors, next
// to the handlers, so that the others see the status it returns.
func (s *Streams) StreamInterceptor(srv any, ss grpc.ServerStream, _ *grpc.StreamServerInfo, handler grpc.StreamHandler) (err error) {
	if s == nil || s.open == nil {
		return handler(srv, ss)
	}
	parent := ss.Context()
	st, ctx := s.begin(parent)
	// Deferred, so that a handler's panic, recovered by an interceptor
	// further out, does not leave the stream registered.
	defer func() {
		if s.finish(st, parent) {
			err = errGoingAway
		}
	}()
	return handler(srv, &serverStream{ServerStream: ss, ctx: ctx})
}

// UnaryInterceptor is a [grpc.UnaryServerInterceptor]. It gives the handler
// a context for which [lameduck.Draining] is closed when the drain begins,
// for a long poll to answer early. Unary RPCs are not spread, not ended and
// not counted: each is a piece of work that the drain waits for.
func (s *Streams) UnaryInterceptor(ctx context.Context, req any, _ *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
	if s != nil && s.unary != nil {
		if m := s.marker.Load(); m != nil {
			ctx = (*m).WithDraining(ctx, s.unary)
		}
	}
	return handler(ctx, req)
}

// begin registers a stream whose gRPC context is parent and returns the
// context its handler gets.
func (s *Streams) begin(parent context.Context) (*stream, context.Context) {
	ctx, cancel := context.WithCancelCause(parent)
	st := &stream{draining: make(chan struct{}), cancel: cancel}
	if m := s.marker.Load(); m != nil {
		ctx = (*m).WithDraining(ctx, st.draining)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.seq++
	st.seq = s.seq
	s.open[st] = struct{}{}
	if s.draining {
		s.tell(st)
	}
	return st, ctx
}

// finish records the end of st, whose gRPC context is parent, and reports
// whether the interceptor ended it and its client is still there to be told
// so.
func (s *Streams) finish(st *stream, parent context.Context) (goingAway bool) {
	s.mu.Lock()
	delete(s.open, st)
	st.done = true
	if st.turn != nil {
		st.turn.Stop()
	}
	if st.end != nil {
		st.end.Stop()
	}
	gone := parent.Err() != nil
	if s.draining {
		switch {
		case s.stopped:
			// Close had begun: Stop, not the grace, ended it, even when
			// the grace had cancelled its context before (found by an
			// outside review: 20 streams counted Cut on an expired run).
			s.counts.Cancelled++
			s.closedByStop++
		case st.cut:
			s.counts.Cut++
		case gone:
			s.counts.Cancelled++
		default:
			s.counts.Ended++
		}
	}
	s.mu.Unlock()
	st.cancel(context.Canceled) // the handler has returned: release the context
	return st.cut && !gone
}

// tell tells st that its drain began and, with a Grace, arms its end. The
// caller holds s.mu.
func (s *Streams) tell(st *stream) {
	if st.told || st.done {
		return
	}
	st.told = true
	close(st.draining)
	if s.cutting && !s.stopped {
		st.end = time.AfterFunc(s.grace, func() { s.end(st) })
	}
}

// end cancels st's handler's context: its grace has run out.
func (s *Streams) end(st *stream) {
	s.mu.Lock()
	if st.done || st.cut || s.stopped {
		s.mu.Unlock()
		return
	}
	st.cut = true
	s.mu.Unlock()
	st.cancel(errGoingAway)
}

// serverStream is a ServerStream whose context is the interceptor's.
type serverStream struct {
	grpc.ServerStream
	ctx context.Context
}

func (s *serverStream) Context() context.Context { return s.ctx }
