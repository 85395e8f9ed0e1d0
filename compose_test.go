package lameduck

import (
	"context"
	"errors"
	"testing"
	"testing/synctest"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

// step is a named step type, as a user's package might declare one.
type step func(context.Context) error

func TestChain(t *testing.T) {
	errA := errors.New("deregister failed")
	errB := errors.New("flush failed")

	// rec returns a step that records its name when run, and returns err.
	type recorder struct{ ran []string }
	rec := func(r *recorder, name string, err error) step {
		return func(context.Context) error {
			r.ran = append(r.ran, name)
			return err
		}
	}
	cancelling := func(r *recorder, name string, cancel context.CancelFunc) step {
		return func(context.Context) error {
			r.ran = append(r.ran, name)
			cancel()
			return nil
		}
	}

	cases := []struct {
		name     string
		steps    func(r *recorder, cancel context.CancelFunc) []step
		wantRan  []string
		wantErrs []error // each must be found with errors.Is in the result
		wantNil  bool
	}{{
		name:    "no steps succeed at once",
		steps:   func(*recorder, context.CancelFunc) []step { return nil },
		wantNil: true,
	}, {
		name: "steps run in the order given",
		steps: func(r *recorder, _ context.CancelFunc) []step {
			return []step{rec(r, "a", nil), rec(r, "b", nil), rec(r, "c", nil)}
		},
		wantRan: []string{"a", "b", "c"},
		wantNil: true,
	}, {
		name: "a failing step does not stop the rest, and every error is kept",
		steps: func(r *recorder, _ context.CancelFunc) []step {
			return []step{rec(r, "a", errA), rec(r, "b", nil), rec(r, "c", errB)}
		},
		wantRan:  []string{"a", "b", "c"},
		wantErrs: []error{errA, errB},
	}, {
		name: "once ctx is done no further step runs, and ctx's error is returned",
		steps: func(r *recorder, cancel context.CancelFunc) []step {
			return []step{rec(r, "a", errA), cancelling(r, "b", cancel), rec(r, "c", nil)}
		},
		wantRan:  []string{"a", "b"},
		wantErrs: []error{errA, context.Canceled},
	}, {
		name: "a nil step is an error, not a panic, and the others still run",
		steps: func(r *recorder, _ context.CancelFunc) []step {
			return []step{rec(r, "a", nil), nil, rec(r, "c", nil)}
		},
		wantRan: []string{"a", "c"},
	}, {
		name: "a panicking step is a failing step: the others still run",
		steps: func(r *recorder, _ context.CancelFunc) []step {
			return []step{func(context.Context) error { r.ran = append(r.ran, "a"); panic(errA) }, rec(r, "b", nil)}
		},
		wantRan:  []string{"a", "b"},
		wantErrs: []error{errA},
	}}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := &recorder{}
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			err := Chain(c.steps(r, cancel)...)(ctx)
			if diff := cmp.Diff(c.wantRan, r.ran, cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("steps run (-want +got):\n%s", diff)
			}
			if c.wantNil != (err == nil) {
				t.Fatalf("got error %v, want nil: %v", err, c.wantNil)
			}
			for _, want := range c.wantErrs {
				if !errors.Is(err, want) {
					t.Errorf("got error %v, want one that wraps %v", err, want)
				}
			}
		})
	}
}

func TestChainDetails(t *testing.T) {
	t.Run("the result has the caller's named type", func(t *testing.T) {
		var s step = Chain[step]() // compiles only if Chain returns F itself
		if err := s(context.Background()); err != nil {
			t.Errorf("got %v, want nil", err)
		}
	})
	t.Run("a nil step is named in the error", func(t *testing.T) {
		err := Chain(step(nil))(context.Background())
		if err == nil || err.Error() != "lameduck: Chain: step 0 is nil" {
			t.Errorf("got %v, want %q", err, "lameduck: Chain: step 0 is nil")
		}
	})
	t.Run("a panic is named in the error by the step's position", func(t *testing.T) {
		err := Chain(func(context.Context) error { return nil }, func(context.Context) error { panic("boom") })(context.Background())
		want := "lameduck: Chain: step 1 panicked: boom"
		if err == nil || err.Error() != want {
			t.Errorf("got %v, want %q", err, want)
		}
	})
	t.Run("under a Runner, a panicking named step does not skip the wait after it", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			s := newFakeServer()
			deregister := Named("deregister", func(context.Context) error { panic("registry gone") })
			h := runInBubble(t, s, WithPreShutdown(Chain(deregister, Delay(time.Second))))
			h.cancel()
			elapsed, err := h.wait()
			if err != nil || elapsed != time.Second {
				t.Errorf("Run = %v after %v, want nil after 1s (the Delay ran)", err, elapsed)
			}
			if !containsLine(h.log.all(), "lameduck: pre-shutdown step 1 of 1 (deregister) failed: Chain: step 0 panicked: registry gone") {
				t.Errorf("log lacks the panic:\n%s", joinLines(h.log.all()))
			}
		})
	})
	t.Run("changing the caller's slice afterwards does not change the chain", func(t *testing.T) {
		var ran []string
		steps := []step{func(context.Context) error { ran = append(ran, "original"); return nil }}
		chained := Chain(steps...)
		steps[0] = func(context.Context) error { ran = append(ran, "replacement"); return nil }
		if err := chained(context.Background()); err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff([]string{"original"}, ran); diff != "" {
			t.Errorf("steps run (-want +got):\n%s", diff)
		}
	})
	t.Run("a ctx done before the first step runs nothing", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		called := false
		err := Chain(func(context.Context) error { called = true; return nil })(ctx)
		if called || !errors.Is(err, context.Canceled) {
			t.Errorf("got called=%v, err=%v; want false, context.Canceled", called, err)
		}
	})
}
