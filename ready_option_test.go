package lameduck

import (
	"context"
	"errors"
	"net"
	"net/http"
	"testing"
	"testing/synctest"

	"github.com/google/go-cmp/cmp"
)

func TestWithReady(t *testing.T) {
	t.Run("it is called once, after Ready closes, in the order given", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			var calls []string
			var r *Runner
			note := func(name string) func() {
				return func() {
					select {
					case <-r.Ready():
					default:
						t.Errorf("%s called before Ready closed", name)
					}
					calls = append(calls, name)
				}
			}
			s := newFakeServer()
			var err error
			r, err = NewRunner(s, WithReady(note("first")), WithReady(note("second")), withSignalSource(&fakeSignals{}), WithoutLogger())
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan error, 1)
			go func() { done <- r.Run(ctx) }()
			synctest.Wait()
			cancel()
			if err := <-done; err != nil {
				t.Errorf("Run = %v, want nil", err)
			}
			if diff := cmp.Diff([]string{"first", "second"}, calls); diff != "" {
				t.Errorf("calls (-want +got):\n%s", diff)
			}
		})
	})
	t.Run("for FromHTTP the address is known", func(t *testing.T) {
		h := FromHTTP(&http.Server{Addr: "127.0.0.1:0", Handler: http.NotFoundHandler()})
		var addr net.Addr
		ctx, cancel := context.WithCancel(context.Background())
		err := Run(ctx, h, Signals(), WithoutLogger(), WithReady(func() { addr = h.Addr(); cancel() }))
		if err != nil || addr == nil {
			t.Errorf("Run = %v with the address %v seen when ready, want nil and an address", err, addr)
		}
	})
	t.Run("it is not called when Serve fails before it is ready", func(t *testing.T) {
		boom := errors.New("boom")
		called := false
		err := Run(context.Background(), neverReadyFailing{boom}, Signals(), WithoutLogger(), WithReady(func() { called = true }))
		if !errors.Is(err, boom) || called {
			t.Errorf("Run = %v, called = %v; want %v, false", err, called, boom)
		}
	})
	t.Run("a panic in it is logged and the Server keeps serving", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			h := runInBubble(t, newFakeServer(), WithReady(func() { panic("oops") }))
			h.cancel()
			if _, err := h.wait(); err != nil {
				t.Errorf("Run = %v, want nil", err)
			}
			if !containsLine(h.log.all(), "lameduck: WithReady function panicked: oops") {
				t.Errorf("log lacks the panic:\n%s", joinLines(h.log.all()))
			}
		})
	})
	t.Run("nil is bad input", func(t *testing.T) {
		if _, err := NewRunner(newFakeServer(), WithReady(nil)); err == nil || err.Error() != "lameduck: WithReady(nil)" {
			t.Errorf("NewRunner = %v, want %q", err, "lameduck: WithReady(nil)")
		}
	})
}

// neverReadyFailing is a Server with a Ready method that never closes and
// a Serve that fails at once.
type neverReadyFailing struct{ err error }

func (n neverReadyFailing) Serve(context.Context) error  { return n.err }
func (neverReadyFailing) Shutdown(context.Context) error { return nil }
func (neverReadyFailing) Close() error                   { return nil }
func (neverReadyFailing) Ready() <-chan struct{}         { return make(chan struct{}) }
