package lameduck

import (
	"context"
	"errors"
	"testing"
	"testing/synctest"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestState(t *testing.T) {
	t.Run("a life that ends in a clean drain", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			s := newFakeServer()
			s.drain = time.Second
			var seen []State
			h := &harness{t: t, sig: &fakeSignals{}, done: make(chan error, 1)}
			r, err := NewRunner(s, withSignalSource(h.sig), WithoutLogger(),
				WithPreShutdown(func(context.Context) error { seen = append(seen, h.r.State()); return nil }))
			if err != nil {
				t.Fatal(err)
			}
			h.r = r
			seen = append(seen, r.State())
			go func() { h.done <- r.Run(context.Background()) }()
			<-r.Ready()
			seen = append(seen, r.State())
			select {
			case <-r.LameDuck():
				t.Fatal("LameDuck closed before any trigger")
			default:
			}
			sendSignal(h)
			<-r.LameDuck()
			if err := <-h.done; err != nil {
				t.Fatalf("Run = %v", err)
			}
			seen = append(seen, r.State())
			want := []State{StateNotStarted, StateRunning, StateLameDuck, StateStopped}
			if diff := cmp.Diff(want, seen); diff != "" {
				t.Errorf("states (-want +got):\n%s", diff)
			}
		})
	})
	t.Run("a life that ends in a failure", func(t *testing.T) {
		r, err := NewRunner(ServerFuncs{ServeFunc: func(context.Context) error { return errors.New("boom") }}, WithoutLogger(), Signals())
		if err != nil {
			t.Fatal(err)
		}
		if err := r.Run(context.Background()); err == nil {
			t.Fatal("Run = nil, want boom")
		}
		if got := r.State(); got != StateFailed {
			t.Errorf("State = %v, want %v", got, StateFailed)
		}
		select {
		case <-r.LameDuck():
			t.Error("LameDuck closed although lame-duck mode never began")
		default:
		}
	})
	t.Run("an expired period is a failure", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			s := newFakeServer()
			s.drain = time.Hour
			h := runInBubble(t, s, WithoutLogger())
			sendSignal(h)
			<-h.done
			if got := h.r.State(); got != StateFailed {
				t.Errorf("State = %v, want %v", got, StateFailed)
			}
		})
	})
	t.Run("State can be read while Run runs, from any goroutine", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			h := runInBubble(t, newFakeServer(), WithoutLogger())
			reads := make(chan State, 100)
			for range 100 {
				go func() { reads <- h.r.State() }()
			}
			sendSignal(h)
			<-h.done
			for range 100 {
				if s := <-reads; s < StateRunning || s > StateStopped {
					t.Errorf("read %v during the run", s)
				}
			}
		})
	})
	t.Run("names", func(t *testing.T) {
		got := []string{StateNotStarted.String(), StateRunning.String(), StateLameDuck.String(), StateStopped.String(), StateFailed.String(), State(9).String()}
		want := []string{"not started", "running", "lame duck", "stopped", "failed", "State(9)"}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("(-want +got):\n%s", diff)
		}
	})
}
