package lameduck

import (
	"context"
	"errors"
	"net"
	"net/http"
	"sync/atomic"
	"syscall"
	"testing"
	"testing/synctest"
	"time"
)

// neverReady is a Server whose Ready never closes: a part that has not
// finished starting. Its Serve fails with err after wait, unless Shutdown
// comes first.
type neverReady struct {
	wait    time.Duration
	err     error
	stopped chan struct{}
}

func newNeverReady(wait time.Duration, err error) *neverReady {
	return &neverReady{wait: wait, err: err, stopped: make(chan struct{})}
}

func (n *neverReady) Serve(context.Context) error {
	select {
	case <-time.After(n.wait):
		return n.err
	case <-n.stopped:
		return nil
	}
}

func (n *neverReady) Shutdown(context.Context) error { close(n.stopped); return nil }
func (n *neverReady) Close() error                   { return nil }
func (n *neverReady) Ready() <-chan struct{}         { return make(chan struct{}) }

// TestFailureBeforeReadySkipsTheSteps: a member that fails before the
// service was ever ready (a port in use) stops the rest at once; no
// readiness delay is spent on a service that never got traffic.
func TestFailureBeforeReadySkipsTheSteps(t *testing.T) {
	// start runs svr under a Runner with a fake signal source and a
	// recording logger; Run's result arrives on the channel.
	start := func(svr Server, opts ...Option) (*fakeSignals, *recLogger, chan error) {
		sig, log, done := &fakeSignals{}, &recLogger{}, make(chan error, 1)
		opts = append([]Option{withSignalSource(sig), WithLogger(log)}, opts...)
		go func() { done <- Run(context.Background(), svr, opts...) }()
		synctest.Wait()
		return sig, log, done
	}
	t.Run("a member that fails before it is ready", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			errBind := errors.New("address in use")
			begin := time.Now()
			_, log, done := start(Group(newFakeServer(), Member("api", newNeverReady(time.Second, errBind))),
				WithPreShutdown(Delay(5*time.Second)), Period(10*time.Second))
			err := <-done
			if elapsed := time.Since(begin); !errors.Is(err, errBind) || elapsed != time.Second {
				t.Errorf("Run = %v after %v, want %v after 1s (no delay)", err, elapsed, errBind)
			}
			if !containsLine(log.all(), "lameduck: the server failed before it was ready; skipping the pre-shutdown steps") {
				t.Errorf("log does not say the steps were skipped:\n%s", joinLines(log.all()))
			}
		})
	})
	t.Run("a signal before the service is ready still runs the steps", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			sig, _, done := start(Group(newFakeServer(), newNeverReady(time.Hour, nil)),
				WithPreShutdown(Delay(5*time.Second)), Period(10*time.Second))
			begin := time.Now()
			sig.send(syscall.SIGTERM)
			<-done
			if elapsed := time.Since(begin); elapsed != 5*time.Second {
				t.Errorf("Run returned after %v, want 5s: the Delay ran", elapsed)
			}
		})
	})
	t.Run("an HTTP member whose port is in use", func(t *testing.T) {
		taken, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer taken.Close()
		var stepRan atomic.Bool
		step := func(context.Context) error { stepRan.Store(true); return nil }
		api := FromHTTP(&http.Server{Addr: taken.Addr().String(), Handler: http.NotFoundHandler()})
		err = Run(context.Background(), Group(newFakeServer(), Member("api", api)), Signals(), WithoutLogger(), WithPreShutdown(step))
		if !errors.Is(err, syscall.EADDRINUSE) {
			t.Errorf("Run = %v, want EADDRINUSE", err)
		}
		if stepRan.Load() {
			t.Error("the pre-shutdown step ran for a service that never got ready")
		}
	})
}
