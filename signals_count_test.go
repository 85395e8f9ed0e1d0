package lameduck

import (
	"context"
	"errors"
	"testing"
	"testing/synctest"
	"time"
)

// TestNotifyContextSignalCountsOnce is rule 7's common case: a program
// passes Run a context from signal.NotifyContext for SIGTERM, and Run has
// its own handler for SIGTERM too, so one SIGTERM reaches Run twice, in
// either order. It must count once: the drain is never forced.
func TestNotifyContextSignalCountsOnce(t *testing.T) {
	const rounds = 1000
	forced := 0
	for round := range rounds {
		synctest.Test(t, func(t *testing.T) {
			s := newFakeServer()
			s.drain = 50 * time.Millisecond
			h := runInBubble(t, s)
			// os/signal and NotifyContext's goroutine deliver the same
			// signal independently: the context first, the channel first,
			// or both at once.
			switch round % 3 {
			case 0:
				h.cancel()
				sendSignal(h)
			case 1:
				sendSignal(h)
				h.cancel()
			default:
				go h.cancel()
				go sendSignal(h)
			}
			elapsed, err := h.wait()
			var lde *LameDuckError
			if errors.As(err, &lde) {
				forced++
				return
			}
			if err != nil || elapsed != 50*time.Millisecond {
				t.Errorf("round %d: Run = %v after %v, want nil after the 50ms drain", round, err, elapsed)
			}
		})
	}
	t.Logf("%d of %d rounds forced", forced, rounds)
	if forced > 0 {
		t.Errorf("%d of %d rounds forced a close: one SIGTERM counted as two", forced, rounds)
	}
}

// TestSignalCounting covers rule 7 around the other triggers.
func TestSignalCounting(t *testing.T) {
	cases := []struct {
		name       string
		trigger    func(h *harness)
		signals    int // sent one second apart after the trigger
		wantForced bool
		want       time.Duration
	}{
		{"after a signal trigger the next signal forces", sendSignal, 1, true, time.Second},
		{"after a context trigger one signal does not force", cancelCtx, 1, false, 10 * time.Second},
		{"after a context trigger the second signal forces", cancelCtx, 2, true, 2 * time.Second},
		{"after a Stop request one signal does not force", func(h *harness) { Stop(h.serveCtx(), nil) }, 1, false, 10 * time.Second},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				s := newFakeServer()
				s.drain = time.Minute
				h := runInBubble(t, s, Period(10*time.Second))
				begin := time.Now()
				c.trigger(h)
				for range c.signals {
					time.Sleep(time.Second)
					sendSignal(h)
				}
				err := <-h.done
				var lde *LameDuckError
				if !errors.As(err, &lde) || !lde.Expired || lde.Forced != c.wantForced {
					t.Errorf("Run = %v, want an expiry with Forced = %v", err, c.wantForced)
				}
				if elapsed := time.Since(begin); elapsed != c.want {
					t.Errorf("Run returned %v after the trigger, want %v", elapsed, c.want)
				}
			})
		})
	}
}

// serveCtx is the context the fake server's Serve got.
func (h *harness) serveCtx() context.Context {
	s := h.r.svr.(*fakeServer)
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.serveCtx
}
