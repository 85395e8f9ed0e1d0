package lameduck

import (
	"context"
	"errors"
	"strings"
	"syscall"
	"testing"
	"testing/synctest"
	"time"

	"github.com/google/go-cmp/cmp"
)

type ctxKey struct{}

// TestDrainContext covers rule 3: the drain context keeps Run's values,
// not its cancellation, and ends at trigger time + period.
func TestDrainContext(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var (
			value    any
			deadline time.Time
			errAtEnd error
		)
		stop := make(chan struct{})
		svr := ServerFuncs{
			ServeFunc: func(context.Context) error { <-stop; return nil },
			ShutdownFunc: func(ctx context.Context) error {
				defer close(stop)
				value = ctx.Value(ctxKey{})
				deadline, _ = ctx.Deadline()
				time.Sleep(time.Second) // Run's ctx is cancelled by now; the drain's must not be
				errAtEnd = ctx.Err()
				return nil
			},
		}
		sig := &fakeSignals{}
		r, err := NewRunner(svr, withSignalSource(sig), WithoutLogger(), Period(5*time.Second))
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.WithValue(context.Background(), ctxKey{}, "v"))
		done := make(chan error, 1)
		go func() { done <- r.Run(ctx) }()
		<-r.Ready()
		trigger := time.Now()
		cancel()
		if err := <-done; err != nil {
			t.Fatalf("Run: %v", err)
		}
		if value != "v" {
			t.Errorf("drain context's value = %v, want %q from Run's context", value, "v")
		}
		if want := trigger.Add(5 * time.Second); !deadline.Equal(want) {
			t.Errorf("drain deadline = trigger + %v, want trigger + 5s", deadline.Sub(trigger))
		}
		if errAtEnd != nil {
			t.Errorf("drain context ended with Run's context: %v", errAtEnd)
		}
	})
}

// TestPreShutdownSteps covers rule 3's steps: they run in order before
// Shutdown, a failure does not stop the drain, and they share its budget.
func TestPreShutdownSteps(t *testing.T) {
	t.Run("steps run in order before Shutdown and a failing step does not stop the drain", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			var order []string
			step := func(name string, err error) func(context.Context) error {
				return func(context.Context) error { order = append(order, name); return err }
			}
			s := newFakeServer()
			h := runInBubble(t, s,
				WithPreShutdown(step("fail readiness", nil), step("deregister", errors.New("registry down"))),
				WithPreShutdown(step("panics", nil), func(context.Context) error { panic("step bug") }),
				WithPreShutdown(step("wait for the load balancer", nil)))
			sendSignal(h)
			if _, err := h.wait(); err != nil {
				t.Fatalf("Run: %v", err)
			}
			want := []string{"fail readiness", "deregister", "panics", "wait for the load balancer"}
			if diff := cmp.Diff(want, order); diff != "" {
				t.Errorf("steps run (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff([]string{"Serve", "Shutdown"}, s.Calls()); diff != "" {
				t.Errorf("Server calls (-want +got):\n%s", diff)
			}
			logs := h.log.all()
			for _, want := range []string{
				"lameduck: pre-shutdown step 2 of 5 failed: registry down",
				"lameduck: pre-shutdown step 4 of 5 failed: pre-shutdown step 4 of 5 panicked: step bug",
			} {
				if !containsLine(logs, want) {
					t.Errorf("log lacks %q; got:\n%s", want, joinLines(logs))
				}
			}
		})
	})
	t.Run("steps and Shutdown share one deadline", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			s := newFakeServer()
			s.drain = time.Hour
			slow := func(context.Context) error { time.Sleep(2 * time.Second); return nil }
			h := runInBubble(t, s, WithPreShutdown(slow), Period(3*time.Second))
			begin := time.Now()
			sendSignal(h)
			elapsed, err := h.wait()
			if !errors.Is(err, context.DeadlineExceeded) {
				t.Errorf("Run = %v, want an expiry", err)
			}
			if elapsed != 3*time.Second {
				t.Errorf("Run returned %v after the trigger, want 3s: the step's 2s come out of the period", elapsed)
			}
			if d, _ := s.drainCtx.Deadline(); !d.Equal(begin.Add(3 * time.Second)) {
				t.Errorf("Shutdown's deadline is trigger + %v, want trigger + 3s", d.Sub(begin))
			}
		})
	})
	t.Run("a step that uses the whole period means Close without Shutdown", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			s := newFakeServer()
			stuck := func(ctx context.Context) error { <-ctx.Done(); return ctx.Err() }
			h := runInBubble(t, s, WithPreShutdown(stuck))
			sendSignal(h)
			elapsed, err := h.wait()
			if !errors.Is(err, context.DeadlineExceeded) || elapsed != 3*time.Second {
				t.Errorf("Run = %v after %v, want an expiry after 3s", err, elapsed)
			}
			if diff := cmp.Diff([]string{"Serve", "Close"}, s.Calls()); diff != "" {
				t.Errorf("calls (-want +got):\n%s", diff)
			}
		})
	})
	t.Run("a second signal during the steps ends the period", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			s := newFakeServer()
			h := runInBubble(t, s, WithPreShutdown(func(ctx context.Context) error {
				select {
				case <-time.After(time.Minute):
				case <-ctx.Done():
				}
				return nil
			}), Period(time.Hour))
			begin := time.Now()
			sendSignal(h)
			time.Sleep(time.Second)
			sendSignal(h)
			err := <-h.done
			elapsed := time.Since(begin)
			if !errors.Is(err, context.DeadlineExceeded) || elapsed != time.Second {
				t.Errorf("Run = %v after %v, want an expiry after 1s", err, elapsed)
			}
		})
	})
}

// TestServeContext covers rule 10.
func TestServeContext(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		for _, expire := range []bool{false, true} {
			s := newFakeServer()
			s.drain = time.Second
			if expire {
				s.drain = time.Minute
			}
			var errDuringDrain error
			var closeSawCancel bool
			svr := ServerFuncs{
				ServeFunc: s.Serve,
				ShutdownFunc: func(ctx context.Context) error {
					time.Sleep(500 * time.Millisecond)
					errDuringDrain = s.serveCtx.Err()
					return s.Shutdown(ctx)
				},
				CloseFunc: func() error { closeSawCancel = s.serveCtx.Err() != nil; return s.Close() },
			}
			sig := &fakeSignals{}
			r, _ := NewRunner(svr, withSignalSource(sig), WithoutLogger())
			ctx := context.WithValue(context.Background(), ctxKey{}, "v")
			done := make(chan error, 1)
			go func() { done <- r.Run(ctx) }()
			<-r.Ready()
			synctest.Wait()
			if got := s.serveCtx.Value(ctxKey{}); got != "v" {
				t.Errorf("Serve's context value = %v, want %q", got, "v")
			}
			sig.send(syscall.SIGTERM)
			<-done
			if errDuringDrain != nil {
				t.Errorf("expire=%v: Serve's context was cancelled during the drain: %v", expire, errDuringDrain)
			}
			if expire && !closeSawCancel {
				t.Errorf("Serve's context was not cancelled by the time Close was called")
			}
			if s.serveCtx.Err() == nil {
				t.Errorf("expire=%v: Serve's context still live after Run returned", expire)
			}
		}
	})
}

func containsLine(lines []string, want string) bool {
	for _, l := range lines {
		if l == want {
			return true
		}
	}
	return false
}

func joinLines(lines []string) string { return strings.Join(lines, "\n") }
