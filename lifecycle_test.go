package lameduck

import (
	"context"
	"slices"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestLifecycle(t *testing.T) {
	// step is one call: "start", or a stop to a phase.
	type step struct {
		start bool
		to    phase
	}
	type seen struct {
		Stopped bool   // start's stopped
		Err     string // start's error
		Was     phase  // stop's result
		Now     phase
	}
	start, stopping, closed := step{start: true}, step{to: phaseStopping}, step{to: phaseClosed}
	cases := []struct {
		name  string
		steps []step
		want  []seen
	}{
		{"a whole life goes idle, serving, stopping, closed",
			[]step{start, stopping, closed},
			[]seen{{Now: phaseServing}, {Was: phaseServing, Now: phaseStopping}, {Was: phaseStopping, Now: phaseClosed}}},
		{"Close may come without Shutdown",
			[]step{start, closed},
			[]seen{{Now: phaseServing}, {Was: phaseServing, Now: phaseClosed}}},
		{"a stop never moves the life back",
			[]step{start, closed, stopping},
			[]seen{{Now: phaseServing}, {Was: phaseServing, Now: phaseClosed}, {Was: phaseClosed, Now: phaseClosed}}},
		{"a start after a stop is told not to serve",
			[]step{stopping, start},
			[]seen{{Was: phaseIdle, Now: phaseStopping}, {Stopped: true, Now: phaseStopping}}},
		{"a second start is an error, however the first went",
			[]step{closed, start, start},
			[]seen{{Was: phaseIdle, Now: phaseClosed}, {Stopped: true, Now: phaseClosed}, {Err: "lameduck: Thing's Serve called more than once", Now: phaseClosed}}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var l lifecycle
			var got []seen
			for _, s := range c.steps {
				var g seen
				if s.start {
					stopped, err := l.start("Thing's Serve")
					g.Stopped = stopped
					if err != nil {
						g.Err = err.Error()
					}
				} else {
					g.Was = l.stop(s.to)
				}
				g.Now = l.phase()
				got = append(got, g)
			}
			if diff := cmp.Diff(c.want, got); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
			if got, want := l.hasStarted(), slices.Contains(c.steps, start); got != want {
				t.Errorf("hasStarted = %v, want %v", got, want)
			}
		})
	}
}

// A Group refuses a second Serve, named as its caller made it. (The other
// adapters' tests check theirs: TestFromHTTPServesOnce, TestFromGRPCEdges,
// TestBadInput for the Runner's Run.)
func TestGroupServeCalledTwice(t *testing.T) {
	cases := []struct {
		name string
		svr  Server
		want string
	}{
		{"a Group", Group(ServerFuncs{ServeFunc: okServe}), "lameduck: Group's Serve called more than once"},
		{"a ParallelGroup", ParallelGroup(ServerFuncs{ServeFunc: okServe}), "lameduck: ParallelGroup's Serve called more than once"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if err := c.svr.Serve(context.Background()); err != nil {
				t.Fatalf("first Serve = %v, want nil", err)
			}
			if err := c.svr.Serve(context.Background()); err == nil || err.Error() != c.want {
				t.Errorf("second Serve = %v, want %q", err, c.want)
			}
		})
	}
}
