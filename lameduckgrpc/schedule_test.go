package lameduckgrpc

import (
	"context"
	"errors"
	"net"
	"testing"
	"testing/synctest"
	"time"

	"github.com/b583c413/lameduck"
	"github.com/google/go-cmp/cmp"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// These tests drive the interceptor with fake streams inside a synctest
// bubble, where the clock moves only when every goroutine waits, so that
// each stream's turn and end can be checked to the nanosecond.

// nopGRPC is a GRPCServer that serves nothing; FromGRPC needs one to link
// a Streams to lameduck.
type nopGRPC struct{}

func (nopGRPC) Serve(net.Listener) error { return nil }
func (nopGRPC) GracefulStop()            {}
func (nopGRPC) Stop()                    {}

// fakeStream is the part of a grpc.ServerStream the interceptor uses.
type fakeStream struct {
	grpc.ServerStream
	ctx context.Context
}

func (f *fakeStream) Context() context.Context { return f.ctx }

// fakeRPC is one stream through the interceptor: its handler either ends
// when Draining closes or waits for its context.
type fakeRPC struct {
	cancel  context.CancelFunc // the client leaves
	told    time.Duration      // when the handler saw Draining, from the drain's start
	ctxDone time.Duration      // when the handler saw its context end
	err     error              // what the interceptor returned
	done    chan struct{}
}

// start runs one stream through s's interceptor, in a synctest bubble, and
// waits until its handler waits; drainAt is the drain's start, read once the
// handler sees something.
func start(s *Streams, honours bool, drainAt *time.Time) *fakeRPC {
	ctx, cancel := context.WithCancel(context.Background())
	r := &fakeRPC{cancel: cancel, told: -1, ctxDone: -1, done: make(chan struct{})}
	handler := func(_ any, ss grpc.ServerStream) error {
		ctx := ss.Context()
		select {
		case <-lameduck.Draining(ctx):
			r.told = time.Since(*drainAt)
			if honours {
				return nil
			}
		case <-ctx.Done():
		}
		<-ctx.Done()
		r.ctxDone = time.Since(*drainAt)
		return status.FromContextError(ctx.Err()).Err()
	}
	go func() {
		defer close(r.done)
		r.err = s.StreamInterceptor(nil, &fakeStream{ctx: ctx}, &grpc.StreamServerInfo{}, handler)
	}()
	synctest.Wait() // so that streams are registered in the order started
	return r
}

func newLinked(t *testing.T, opts ...Option) *Streams {
	t.Helper()
	s, err := New(opts...)
	if err != nil {
		t.Fatal(err)
	}
	s.FromGRPC(nopGRPC{}, nopListener{})
	return s
}

type nopListener struct{ net.Listener }

func (nopListener) Close() error { return nil }

func TestSchedule(t *testing.T) {
	const never = time.Duration(-1)
	type want struct {
		told, ctxDone time.Duration // -1: never
		goingAway     bool          // the client gets Unavailable from the interceptor
	}
	for _, c := range []struct {
		name    string
		opts    []Option
		honours []bool // one stream each, opened in this order before the drain
		want    []want
		counts  Counts
	}{{
		name:    "without Grace a stream that ignores Draining is never ended",
		honours: []bool{false},
		want:    []want{{told: 0, ctxDone: never}},
		counts:  Counts{Open: 1},
	}, {
		name:    "a stream that ends on Draining ends cleanly at once",
		opts:    []Option{Grace(time.Second)},
		honours: []bool{true},
		want:    []want{{told: 0, ctxDone: never}},
		counts:  Counts{Ended: 1},
	}, {
		name:    "Grace(100ms) ends a stream that ignores Draining 100ms after it was told",
		opts:    []Option{Grace(100 * time.Millisecond)},
		honours: []bool{false, true},
		want:    []want{{told: 0, ctxDone: 100 * time.Millisecond, goingAway: true}, {told: 0, ctxDone: never}},
		counts:  Counts{Ended: 1, Cut: 1},
	}, {
		name:    "Grace(0) ends a stream as soon as it is told",
		opts:    []Option{Grace(0)},
		honours: []bool{false},
		want:    []want{{told: 0, ctxDone: 0, goingAway: true}},
		counts:  Counts{Cut: 1},
	}, {
		name:    "Spread(1s) tells 4 streams at 0, 250, 500 and 750ms, oldest first, and each Grace runs from its turn",
		opts:    []Option{Spread(time.Second), Grace(100 * time.Millisecond)},
		honours: []bool{false, true, false, true},
		want: []want{
			{told: 0, ctxDone: 100 * time.Millisecond, goingAway: true},
			{told: 250 * time.Millisecond, ctxDone: never},
			{told: 500 * time.Millisecond, ctxDone: 600 * time.Millisecond, goingAway: true},
			{told: 750 * time.Millisecond, ctxDone: never},
		},
		counts: Counts{Ended: 2, Cut: 2},
	}} {
		t.Run(c.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				s := newLinked(t, c.opts...)
				var drainAt time.Time
				var rpcs []*fakeRPC
				for _, h := range c.honours {
					rpcs = append(rpcs, start(s, h, &drainAt))
				}
				time.Sleep(time.Second) // the streams have been open a while
				drainAt = time.Now()
				s.drain()
				time.Sleep(time.Hour)
				synctest.Wait()
				if diff := cmp.Diff(c.counts, s.Counts()); diff != "" {
					t.Errorf("Counts after an hour (-want +got):\n%s", diff)
				}
				for i, r := range rpcs {
					r.cancel() // the clients leave
					<-r.done
					got := want{told: r.told, ctxDone: r.ctxDone, goingAway: status.Code(r.err) == codes.Unavailable}
					if c.want[i].ctxDone == never && r.ctxDone >= 0 && r.ctxDone < time.Hour {
						t.Errorf("stream %d: its context ended %v after the drain began; want it left alone", i, r.ctxDone)
					}
					if c.want[i].ctxDone == never {
						got.ctxDone = never
					}
					if diff := cmp.Diff(c.want[i], got, cmp.AllowUnexported(want{})); diff != "" {
						t.Errorf("stream %d (-want +got):\n%s", i, diff)
					}
				}
			})
		})
	}
}

// A stream opened after the drain began is told at once, and ended Grace
// after that; the one opened before keeps its own turn of the spread.
func TestStreamOpenedDuringTheDrain(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := newLinked(t, Grace(time.Second), Spread(10*time.Second))
		var drainAt time.Time
		first := start(s, false, &drainAt)
		second := start(s, true, &drainAt)
		synctest.Wait()
		drainAt = time.Now()
		s.drain()
		time.Sleep(3 * time.Second)
		late := start(s, false, &drainAt)
		<-late.done
		<-second.done
		<-first.done
		if late.told != 3*time.Second || late.ctxDone != 4*time.Second {
			t.Errorf("stream opened 3s into the drain: told at %v, ended at %v; want 3s and 4s", late.told, late.ctxDone)
		}
		if second.told != 5*time.Second {
			t.Errorf("second of two streams open at the drain told at %v, want 5s (its turn of a 10s spread)", second.told)
		}
		if diff := cmp.Diff(Counts{Ended: 1, Cut: 2}, s.Counts()); diff != "" {
			t.Errorf("Counts (-want +got):\n%s", diff)
		}
	})
}

// Close (gate.Stop) tells every stream not told yet and ends none: gRPC's
// Stop has already cancelled their contexts, and what was open was cut by
// Close, so it counts as Cancelled, not Cut.
func TestCloseTellsAndEndsNothing(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := newLinked(t, Grace(time.Second), Spread(10*time.Second))
		var drainAt time.Time
		a := start(s, false, &drainAt)
		b := start(s, false, &drainAt)
		synctest.Wait()
		drainAt = time.Now()
		s.drain()
		time.Sleep(2 * time.Second) // a was told and ended; b waits for its turn at 5s
		<-a.done
		s.stop()
		synctest.Wait()
		if b.told != 2*time.Second {
			t.Errorf("stream waiting for its turn told at %v, want at Close (2s)", b.told)
		}
		time.Sleep(time.Hour)
		synctest.Wait()
		if b.ctxDone >= 0 {
			t.Errorf("the interceptor ended a stream %v after the drain began, after Close", b.ctxDone)
		}
		b.cancel() // what gRPC's Stop does to the stream's context
		<-b.done
		if diff := cmp.Diff(Counts{Cut: 1, Cancelled: 1}, s.Counts()); diff != "" {
			t.Errorf("Counts (-want +got):\n%s", diff)
		}
	})
}

// A client that leaves during its stream's grace gets its handler's own
// error, not the interceptor's, and the stream counts as Cancelled.
func TestClientLeavesDuringTheGrace(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := newLinked(t, Grace(time.Second))
		var drainAt time.Time
		r := start(s, false, &drainAt)
		synctest.Wait()
		drainAt = time.Now()
		s.drain()
		time.Sleep(500 * time.Millisecond)
		r.cancel()
		<-r.done
		if code := status.Code(r.err); code != codes.Canceled {
			t.Errorf("interceptor returned %v, want the handler's Canceled", r.err)
		}
		if diff := cmp.Diff(Counts{Cancelled: 1}, s.Counts()); diff != "" {
			t.Errorf("Counts (-want +got):\n%s", diff)
		}
	})
}

// The handler's context, once ended by the interceptor, says why.
func TestEndedContextCause(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := newLinked(t, Grace(0))
		cause := make(chan error, 1)
		go s.StreamInterceptor(nil, &fakeStream{ctx: context.Background()}, nil, func(_ any, ss grpc.ServerStream) error {
			<-ss.Context().Done()
			cause <- context.Cause(ss.Context())
			return nil
		})
		synctest.Wait()
		s.drain()
		if err := <-cause; !errors.Is(err, errGoingAway) {
			t.Errorf("cause of the ended context: %v, want %v", err, errGoingAway)
		}
	})
}

// A handler that panics leaves no stream behind when an interceptor further
// out recovers the panic.
func TestPanickingHandlerIsNotLeftOpen(t *testing.T) {
	s := newLinked(t, Grace(time.Second))
	func() {
		defer func() { _ = recover() }()
		_ = s.StreamInterceptor(nil, &fakeStream{ctx: context.Background()}, nil, func(any, grpc.ServerStream) error { panic("handler") })
	}()
	if got := s.Counts().Open; got != 0 {
		t.Errorf("Counts().Open = %d after the handler panicked, want 0", got)
	}
}

// A stream that ends once Close has begun counts as Cancelled even when
// its handler returned before gRPC cancelled its context (its send failed
// on the closed connection, say).
func TestEndAfterCloseIsCancelled(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := newLinked(t, Grace(time.Second))
		var drainAt time.Time
		r := start(s, true, &drainAt) // returns as soon as it is told
		s.stop()
		<-r.done
		if diff := cmp.Diff(Counts{Cancelled: 1}, s.Counts()); diff != "" {
			t.Errorf("Counts (-want +got):\n%s", diff)
		}
	})
}

// A handler that ignores its context outlives its grace's cut; when Close's
// Stop is what finally ends it, it counts as Cancelled, not as Cut by the
// grace (an outside review saw Cut:20 on a run whose period expired; the
// case failed before: Cut 1).
func TestGraceCutThenStopIsCancelled(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := newLinked(t, Grace(100*time.Millisecond))
		release, done := make(chan struct{}), make(chan struct{})
		handler := func(any, grpc.ServerStream) error {
			<-release // ignores its context
			return status.Error(codes.Unavailable, "transport closed")
		}
		go func() {
			defer close(done)
			s.StreamInterceptor(nil, &fakeStream{ctx: context.Background()}, &grpc.StreamServerInfo{}, handler)
		}()
		synctest.Wait()
		s.drain()
		time.Sleep(time.Second) // the grace has cut it; the handler goes on
		s.stop()
		close(release)
		<-done
		if diff := cmp.Diff(Counts{Cancelled: 1}, s.Counts()); diff != "" {
			t.Errorf("Counts (-want +got):\n%s", diff)
		}
	})
}
