package lameduck

import (
	"context"
	"errors"
	"net"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/google/go-cmp/cmp"
)

var errFakeStopped = errors.New("fakegrpc: the server has been stopped")

// fakeGRPC behaves as *grpc.Server (v1.85) does where FromGRPC depends on
// it. Serve blocks until a stop has begun and then until the first stop has
// returned, and returns nil (or an error at once if the server was stopped
// before, or serveErr, as a broken listener would make it). GracefulStop
// waits until every RPC's stream has closed and every handler has returned.
// Stop closes every stream, which cancels the handlers' contexts, and
// returns without waiting for the handlers: one that ignores its context
// keeps running.
type fakeGRPC struct {
	serveErr error

	mu      sync.Mutex
	calls   []string
	rpcs    map[*fakeRPC]bool
	stopped bool          // Stop has closed every connection
	quit    chan struct{} // closed when the first GracefulStop or Stop begins
	done    chan struct{} // closed when the first GracefulStop or Stop returns
	changed chan struct{} // closed and replaced whenever an RPC changes
}

type fakeRPC struct {
	ignoresCtx bool
	streamOpen bool // the client can still get an answer
	running    bool // the handler has not returned
}

func newFakeGRPC() *fakeGRPC {
	return &fakeGRPC{
		rpcs: map[*fakeRPC]bool{},
		quit: make(chan struct{}), done: make(chan struct{}), changed: make(chan struct{}),
	}
}

func (f *fakeGRPC) record(call string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, call)
}

func (f *fakeGRPC) Calls() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.calls...)
}

func (f *fakeGRPC) Serve(net.Listener) error {
	f.record("Serve")
	if f.serveErr != nil {
		return f.serveErr
	}
	select {
	case <-f.quit:
		return errFakeStopped
	default:
	}
	<-f.quit
	<-f.done
	return nil
}

// begin and end bracket a stop; the caller holds f.mu.
func (f *fakeGRPC) begin() {
	select {
	case <-f.quit:
	default:
		close(f.quit)
	}
}

func (f *fakeGRPC) end() {
	select {
	case <-f.done:
	default:
		close(f.done)
	}
}

func (f *fakeGRPC) broadcast() {
	close(f.changed)
	f.changed = make(chan struct{})
}

// openRPC starts an RPC whose handler runs until the returned func is
// called, or until Stop if it heeds its context.
func (f *fakeGRPC) openRPC(ignoresCtx bool) (finish func()) {
	f.mu.Lock()
	defer f.mu.Unlock()
	rpc := &fakeRPC{ignoresCtx: ignoresCtx, streamOpen: true, running: true}
	f.rpcs[rpc] = true
	var once sync.Once
	return func() {
		once.Do(func() {
			f.mu.Lock()
			defer f.mu.Unlock()
			rpc.streamOpen, rpc.running = false, false
			delete(f.rpcs, rpc)
			f.broadcast()
		})
	}
}

// acceptsRPCs reports whether a client on an existing connection would
// still be served.
func (f *fakeGRPC) acceptsRPCs() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return !f.stopped
}

func (f *fakeGRPC) GracefulStop() {
	f.record("GracefulStop")
	f.mu.Lock()
	defer f.mu.Unlock()
	f.begin()
	for len(f.rpcs) > 0 {
		changed := f.changed
		f.mu.Unlock()
		<-changed
		f.mu.Lock()
	}
	f.end()
}

func (f *fakeGRPC) Stop() {
	f.record("Stop")
	f.mu.Lock()
	defer f.mu.Unlock()
	f.begin()
	f.stopped = true
	for rpc := range f.rpcs {
		rpc.streamOpen = false
		if !rpc.ignoresCtx {
			rpc.running = false
			delete(f.rpcs, rpc)
		}
	}
	f.broadcast()
	f.end()
}

// fakeListener is a net.Listener that only records Close.
type fakeListener struct {
	net.Listener
	mu     sync.Mutex
	closed bool
}

func (l *fakeListener) Close() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.closed = true
	return nil
}

func (l *fakeListener) isClosed() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.closed
}

// rpcKind names how the one RPC of a TestFromGRPC case behaves.
type rpcKind int

const (
	noRPC         rpcKind = iota
	rpcFinishes           // returns after the case's rpcFor
	rpcHeedsCtx           // runs until Stop cancels its context
	rpcIgnoresCtx         // runs on after Stop, until the test ends it
)

func TestFromGRPC(t *testing.T) {
	cases := []struct {
		name        string
		rpc         rpcKind
		rpcFor      time.Duration
		period      time.Duration
		wantErr     error
		wantElapsed time.Duration
		wantCalls   []string
	}{{
		name: "GracefulStop that finishes in time: Run returns nil when the last RPC ends",
		rpc:  rpcFinishes, rpcFor: 2 * time.Second, period: 10 * time.Second,
		wantElapsed: 2 * time.Second, wantCalls: []string{"Serve", "GracefulStop"},
	}, {
		name: "an RPC that outlasts the period: Stop by Close at the deadline, and the period expired",
		rpc:  rpcHeedsCtx, period: 3 * time.Second,
		wantErr: &LameDuckError{Expired: true}, wantElapsed: 3 * time.Second,
		// Shutdown returns at its deadline; the Runner's Close calls Stop.
		wantCalls: []string{"Serve", "GracefulStop", "Stop"},
	}, {
		name: "a handler that ignores its context: Run still returns at the period, not a grace later",
		rpc:  rpcIgnoresCtx, period: 3 * time.Second,
		wantErr: &LameDuckError{Expired: true}, wantElapsed: 3 * time.Second,
		wantCalls: []string{"Serve", "GracefulStop", "Stop"},
	}, {
		name:        "no RPC in flight: GracefulStop returns at once",
		period:      10 * time.Second,
		wantElapsed: 0, wantCalls: []string{"Serve", "GracefulStop"},
	}}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				f := newFakeGRPC()
				h := runInBubble(t, FromGRPC(f, &fakeListener{}), Period(c.period), WithoutLogger())
				var finish func()
				switch c.rpc {
				case rpcFinishes:
					time.AfterFunc(c.rpcFor, f.openRPC(false))
				case rpcHeedsCtx:
					f.openRPC(false)
				case rpcIgnoresCtx:
					finish = f.openRPC(true)
				}
				begin := time.Now()
				sendSignal(h)
				err := <-h.done
				if c.wantErr == nil && err != nil || c.wantErr != nil && (err == nil || err.Error() != c.wantErr.Error()) {
					t.Errorf("Run = %v, want %v", err, c.wantErr)
				}
				if got := time.Since(begin); got != c.wantElapsed {
					t.Errorf("Run took %v after the signal, want %v", got, c.wantElapsed)
				}
				if f.acceptsRPCs() != (c.wantErr == nil) {
					t.Errorf("after Run, the server accepts RPCs: %v, want %v", f.acceptsRPCs(), c.wantErr == nil)
				}
				if diff := cmp.Diff(c.wantCalls, f.Calls()); diff != "" {
					t.Errorf("calls (-want +got):\n%s", diff)
				}
				if finish != nil {
					// The handler outlived Run, as under gRPC alone; ending
					// it lets Shutdown's GracefulStop return.
					finish()
				}
			})
		})
	}
}

func TestFromGRPCEdges(t *testing.T) {
	t.Run("Shutdown before Serve: the listener is closed and Serve does not serve", func(t *testing.T) {
		f, ln := newFakeGRPC(), &fakeListener{}
		g := FromGRPC(f, ln)
		if err := g.Shutdown(context.Background()); err != nil {
			t.Fatalf("Shutdown = %v", err)
		}
		if err := g.Serve(context.Background()); err != nil {
			t.Errorf("Serve = %v, want nil", err)
		}
		if !ln.isClosed() {
			t.Error("the listener is still open")
		}
		if diff := cmp.Diff([]string{"GracefulStop"}, f.Calls()); diff != "" {
			t.Errorf("calls (-want +got):\n%s", diff)
		}
	})
	t.Run("Close stops the server and Serve returns nil", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			f := newFakeGRPC()
			g := FromGRPC(f, &fakeListener{})
			done := make(chan error, 1)
			go func() { done <- g.Serve(context.Background()) }()
			synctest.Wait()
			if err := g.Close(); err != nil {
				t.Fatalf("Close = %v", err)
			}
			if err := <-done; err != nil {
				t.Errorf("Serve = %v, want nil", err)
			}
		})
	})
	t.Run("a Serve failure stops the server and is returned as it is", func(t *testing.T) {
		errAccept := errors.New("accept: too many open files")
		f := newFakeGRPC()
		f.serveErr = errAccept
		if err := Run(context.Background(), FromGRPC(f, &fakeListener{}), WithoutLogger(), Signals()); err != errAccept {
			t.Errorf("Run = %v, want %v", err, errAccept)
		}
		if f.acceptsRPCs() {
			t.Error("after Run returned, connections accepted before the failure still serve RPCs")
		}
	})
	t.Run("a Serve after Close does not serve and returns nil", func(t *testing.T) {
		f, ln := newFakeGRPC(), &fakeListener{}
		g := FromGRPC(f, ln)
		if err := g.Close(); err != nil {
			t.Fatalf("Close = %v", err)
		}
		if err := g.Serve(context.Background()); err != nil {
			t.Errorf("Serve = %v, want nil", err)
		}
		if !ln.isClosed() {
			t.Error("the listener is still open")
		}
	})
	t.Run("Serve called twice is an error", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			f := newFakeGRPC()
			g := FromGRPC(f, &fakeListener{})
			done := make(chan error, 1)
			go func() { done <- g.Serve(context.Background()) }()
			synctest.Wait()
			want := "lameduck: FromGRPC's Serve called more than once"
			if err := g.Serve(context.Background()); err == nil || err.Error() != want {
				t.Errorf("second Serve = %v, want %q", err, want)
			}
			g.Close()
			if err := <-done; err != nil {
				t.Errorf("first Serve = %v, want nil", err)
			}
		})
	})
	t.Run("nil arguments are errors", func(t *testing.T) {
		var nilGRPC *fakeGRPC
		for _, c := range []struct {
			s    GRPCServer
			ln   net.Listener
			want string
		}{
			{nil, &fakeListener{}, "lameduck: FromGRPC: nil GRPCServer"},
			{nilGRPC, &fakeListener{}, "lameduck: FromGRPC: nil GRPCServer"},
			{newFakeGRPC(), nil, "lameduck: FromGRPC: nil net.Listener"},
		} {
			if _, err := NewRunner(FromGRPC(c.s, c.ln)); err == nil || err.Error() != c.want {
				t.Errorf("NewRunner = %v, want %q", err, c.want)
			}
		}
	})
}
