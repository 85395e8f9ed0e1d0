package lameduck

import (
	"context"
	"syscall"
	"testing"
	"testing/synctest"
	"time"
)

// The Runner hands its close grace to the Worker before Serve, through a
// Group and a Member too: settle's context is still live two seconds after
// Close when CloseGrace says three, where the default grace would have
// ended it after one.
func TestWorkerGetsTheRunnersCloseGrace(t *testing.T) {
	wrap := map[string]func(Server) Server{
		"a Worker run alone":       func(s Server) Server { return s },
		"a Worker in a Group":      func(s Server) Server { return Group(s) },
		"a Worker named by Member": func(s Server) Server { return Member("jobs", s) },
		"a named Worker in nested Groups": func(s Server) Server {
			return Group(ParallelGroup(Member("jobs", s)))
		},
	}
	for name, wrap := range wrap {
		t.Run(name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				var settleErr error
				w := FromWorker(ChanSource(chanOf(1)),
					func(ctx context.Context, _ int) error { <-ctx.Done(); return ctx.Err() }).
					Settle(func(ctx context.Context, _ int, _ error) {
						time.Sleep(2 * time.Second)
						settleErr = ctx.Err()
					})
				h := runInBubble(t, wrap(w), Period(time.Second), CloseGrace(3*time.Second))
				h.sig.send(syscall.SIGTERM)
				h.wait()
				if settleErr != nil {
					t.Errorf("settle's ctx.Err() two seconds after Close = %v, want nil: the grace is three seconds", settleErr)
				}
			})
		})
	}
}
