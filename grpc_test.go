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

// fakeGRPC behaves as *grpc.Server does where FromGRPC depends on it: Serve
// blocks until GracefulStop or Stop and then returns nil (or an error at
// once if the server was stopped before); GracefulStop waits while streams
// are open; Stop ends the streams, and so a GracefulStop in progress.
type fakeGRPC struct {
	mu       sync.Mutex
	calls    []string
	streams  int
	halted   bool          // Stop or GracefulStop has been called
	stopping chan struct{} // closed by the first GracefulStop or Stop
	changed  chan struct{} // closed and replaced when streams or Stop change
}

func newFakeGRPC() *fakeGRPC {
	return &fakeGRPC{stopping: make(chan struct{}), changed: make(chan struct{})}
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
	f.mu.Lock()
	halted := f.halted
	f.mu.Unlock()
	if halted {
		return errFakeStopped
	}
	<-f.stopping
	return nil
}

// halt closes stopping once; the caller holds f.mu.
func (f *fakeGRPC) halt() {
	if !f.halted {
		f.halted = true
		close(f.stopping)
	}
}

func (f *fakeGRPC) broadcast() {
	close(f.changed)
	f.changed = make(chan struct{})
}

// openStream starts an RPC that lasts until the returned func is called or
// the server is stopped.
func (f *fakeGRPC) openStream() (end func()) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.streams++
	var once sync.Once
	return func() {
		once.Do(func() {
			f.mu.Lock()
			defer f.mu.Unlock()
			if f.streams > 0 {
				f.streams--
				f.broadcast()
			}
		})
	}
}

func (f *fakeGRPC) GracefulStop() {
	f.record("GracefulStop")
	f.mu.Lock()
	f.halt()
	for f.streams > 0 {
		changed := f.changed
		f.mu.Unlock()
		<-changed
		f.mu.Lock()
	}
	f.mu.Unlock()
}

func (f *fakeGRPC) Stop() {
	f.record("Stop")
	f.mu.Lock()
	defer f.mu.Unlock()
	f.halt()
	f.streams = 0
	f.broadcast()
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

func TestFromGRPC(t *testing.T) {
	cases := []struct {
		name        string
		streamFor   time.Duration // 0: no stream; -1: a stream that never ends
		period      time.Duration
		wantErr     error
		wantElapsed time.Duration
		wantCalls   []string
	}{{
		name:      "GracefulStop that finishes in time: Run returns nil when the last RPC ends",
		streamFor: 2 * time.Second, period: 10 * time.Second,
		wantElapsed: 2 * time.Second, wantCalls: []string{"Serve", "GracefulStop"},
	}, {
		name:      "RPCs that outlast the period: Stop at the deadline, and the period expired",
		streamFor: -1, period: 3 * time.Second,
		wantErr: &LameDuckError{Expired: true}, wantElapsed: 3 * time.Second,
		// Shutdown calls Stop at its deadline; the Runner's Close calls it again.
		wantCalls: []string{"Serve", "GracefulStop", "Stop", "Stop"},
	}, {
		name:        "no RPC in flight: GracefulStop returns at once",
		period:      10 * time.Second,
		wantElapsed: 0, wantCalls: []string{"Serve", "GracefulStop"},
	}}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				f := newFakeGRPC()
				h := start(t, FromGRPC(f, &fakeListener{}), Period(c.period), WithoutLogger())
				switch {
				case c.streamFor > 0:
					end := f.openStream()
					time.AfterFunc(c.streamFor, end)
				case c.streamFor < 0:
					f.openStream()
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
				if diff := cmp.Diff(c.wantCalls, f.Calls()); diff != "" {
					t.Errorf("calls (-want +got):\n%s", diff)
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
	t.Run("a Serve failure that is not a stop is returned as it is", func(t *testing.T) {
		errAccept := errors.New("accept: too many open files")
		f := &failingGRPC{err: errAccept}
		if err := Run(context.Background(), FromGRPC(f, &fakeListener{}), WithoutLogger(), Signals()); err != errAccept {
			t.Errorf("Run = %v, want %v", err, errAccept)
		}
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

type failingGRPC struct{ err error }

func (f *failingGRPC) Serve(net.Listener) error { return f.err }
func (f *failingGRPC) GracefulStop()            {}
func (f *failingGRPC) Stop()                    {}
