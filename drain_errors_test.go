package lameduck

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"testing/synctest"
	"time"
)

// TestEveryErrorReachesTheCaller covers rules 5 and 6 as CONTRACT.md states
// them: on expiry and on a Shutdown failure, Run's error holds every error
// seen during the stop, errors.Is finds each, and the log has them too.
func TestEveryErrorReachesTheCaller(t *testing.T) {
	errFlush := errors.New("worker: flush failed")
	errJob := errors.New("job 3 failed")
	cases := []struct {
		name        string
		svr         func() Server
		wantErrs    []error
		wantText    string // Run's error message
		wantExpired bool
		wantLog     string // a line the log must have
	}{{
		name: "a member's Shutdown error while another member runs past the period",
		svr: func() Server {
			a := ServerFuncs{ServeFunc: blockUntilDone, ShutdownFunc: func(context.Context) error { return errFlush }}
			b := newFakeServer()
			b.drain = time.Minute
			return Group(a, b) // Shutdown runs b, then a
		},
		wantErrs:    []error{errFlush, context.DeadlineExceeded},
		wantText:    "lameduck: lame-duck period expired; closing the server: Group: server 0: worker: flush failed",
		wantExpired: true,
		wantLog:     "lameduck: Shutdown failed: Group: server 0: worker: flush failed",
	}, {
		name: "a worker's handler failing during a drain that expires",
		svr: func() Server {
			items := make(chan int, 2)
			items <- 1 // runs until Close
			items <- 3 // fails a second into the drain
			return FromWorker(ChanSource(items), func(ctx context.Context, i int) error {
				if i == 3 {
					time.Sleep(time.Second)
					return errJob
				}
				<-ctx.Done()
				return nil
			}).Concurrency(2)
		},
		wantErrs:    []error{errJob, context.DeadlineExceeded},
		wantText:    "lameduck: lame-duck period expired during Shutdown: the server still had 1 item in handle; closing the server: job 3 failed",
		wantExpired: true,
		wantLog:     "lameduck: stop requested: job 3 failed",
	}, {
		name: "Serve failing during a drain whose Shutdown then fails",
		svr: func() Server {
			s := newFakeServer()
			s.drain, s.serveErr, s.shutdownErr = time.Second, errServe, errShutdown
			return s
		},
		wantErrs: []error{errShutdown, errServe},
		wantText: "lameduck: shutdown failed: fake: shutdown failed\nfake: serve failed",
	}}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				h := runInBubble(t, c.svr())
				sendSignal(h)
				err := <-h.done
				for _, want := range c.wantErrs {
					if !errors.Is(err, want) {
						t.Errorf("errors.Is(Run's error, %v) = false", want)
					}
				}
				var lde *LameDuckError
				if !errors.As(err, &lde) || lde.Expired != c.wantExpired {
					t.Errorf("Run = %#v, want a LameDuckError with Expired = %v", err, c.wantExpired)
				}
				if err == nil || err.Error() != c.wantText {
					t.Errorf("Run = %q\nwant %q", err, c.wantText)
				}
				if c.wantLog != "" && !containsLine(h.log.all(), c.wantLog) {
					t.Errorf("log lacks %q:\n%s", c.wantLog, joinLines(h.log.all()))
				}
			})
		})
	}
}

// TestStuckNamesWhatIsStuck covers the end of rule 5: a pre-shutdown step
// that never returns is named by its position, and Shutdown, never called,
// is not blamed.
func TestStuckNamesWhatIsStuck(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		release := make(chan struct{})
		defer close(release)
		s := newFakeServer()
		ok := func(context.Context) error { return nil }
		deaf := func(context.Context) error { <-release; return nil } // ignores its context
		h := runInBubble(t, s, WithPreShutdown(ok, deaf, ok), Period(2*time.Second))
		begin := time.Now()
		sendSignal(h)
		err := <-h.done
		want := "lameduck: lame-duck period expired; closing the server: pre-shutdown step 2 of 3 did not return within 1s of Close being called"
		if err == nil || err.Error() != want {
			t.Errorf("Run = %v\nwant %s", err, want)
		}
		if elapsed := time.Since(begin); elapsed != 2*time.Second+closeGrace {
			t.Errorf("Run returned %v after the trigger, want period + grace", elapsed)
		}
		for _, call := range s.Calls() {
			if call == "Shutdown" {
				t.Errorf("Shutdown was called: %v", s.Calls())
			}
		}
		if !containsLine(h.log.all(), "lameduck: pre-shutdown step 2 of 3 did not return within 1s of Close being called") {
			t.Errorf("log lacks the stuck step:\n%s", joinLines(h.log.all()))
		}
	})
}

func blockUntilDone(ctx context.Context) error { <-ctx.Done(); return nil }

// TestExpiryNamesWhatRanOut checks the two expiries that are not Shutdown
// running out of time: Serve outliving a Shutdown that had returned, and a
// Shutdown that reported the deadline before the period ended.
func TestExpiryNamesWhatRanOut(t *testing.T) {
	cases := []struct {
		name     string
		svr      func() Server
		wantLog  string
		wantTime time.Duration
	}{{
		name: "Serve still running when the period ends, after Shutdown returned nil",
		svr: func() Server {
			return ServerFuncs{ServeFunc: blockUntilDone, ShutdownFunc: func(context.Context) error { return nil }}
		},
		wantLog:  "lameduck: lame-duck period of 1s expired during Serve (Shutdown had returned)",
		wantTime: time.Second,
	}, {
		name: "Shutdown reports the deadline early",
		svr: func() Server {
			return ServerFuncs{ServeFunc: blockUntilDone, ShutdownFunc: func(context.Context) error {
				time.Sleep(100 * time.Millisecond)
				return fmt.Errorf("draining: %w", context.DeadlineExceeded)
			}}
		},
		wantLog:  "lameduck: Shutdown gave up before the period ended: draining: context deadline exceeded",
		wantTime: 100 * time.Millisecond,
	}}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				h := runInBubble(t, c.svr(), Period(time.Second))
				h.cancel()
				elapsed, err := h.wait()
				var lde *LameDuckError
				if !errors.As(err, &lde) || !lde.Expired || lde.Err != nil {
					t.Errorf("Run = %#v, want an expired *LameDuckError with no Err", err)
				}
				if elapsed != c.wantTime {
					t.Errorf("Run returned after %v, want %v", elapsed, c.wantTime)
				}
				if !containsLine(h.log.all(), c.wantLog) {
					t.Errorf("log lacks %q:\n%s", c.wantLog, joinLines(h.log.all()))
				}
			})
		})
	}
}
