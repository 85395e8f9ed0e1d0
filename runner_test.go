package lameduck

import (
	"context"
	"errors"
	"fmt"
	"os"
	"syscall"
	"testing"
	"testing/synctest"
	"time"

	"github.com/google/go-cmp/cmp"
)

var (
	errShutdown = errors.New("fake: shutdown failed")
	errClose    = errors.New("fake: close failed")
	errServe    = errors.New("fake: serve failed")
)

// result is what a test compares of Run's outcome.
type result struct {
	Elapsed  time.Duration // bubble time from the trigger to Run's return
	Error    string        // "" for nil
	LameDuck bool          // the error is a *LameDuckError
	Expired  bool          // ... with Expired set
	Deadline bool          // errors.Is(err, context.DeadlineExceeded)
	Calls    []string      // the Server methods called, in order
}

func describe(elapsed time.Duration, err error, calls []string) result {
	got := result{Elapsed: elapsed, Calls: calls}
	if err != nil {
		got.Error = err.Error()
		got.Deadline = errors.Is(err, context.DeadlineExceeded)
	}
	var lde *LameDuckError
	if errors.As(err, &lde) {
		got.LameDuck, got.Expired = true, lde.Expired
	}
	return got
}

func sendSignal(h *harness) { h.sig.send(syscall.SIGTERM) }
func cancelCtx(h *harness)  { h.cancel() }

// TestRunOutcomes covers rules 2 and 4 to 7: what each way a drain can
// end makes Run return, and when.
func TestRunOutcomes(t *testing.T) {
	cases := []struct {
		name    string
		setup   func(s *fakeServer)
		opts    []Option
		trigger func(h *harness)
		after   func(h *harness) // runs one second after the trigger, if set
		want    result
	}{{
		name:    "a signal starts a drain and Run returns nil as soon as Shutdown does",
		setup:   func(s *fakeServer) { s.drain = 500 * time.Millisecond },
		trigger: sendSignal,
		want:    result{Elapsed: 500 * time.Millisecond, Calls: []string{"Serve", "Shutdown"}},
	}, {
		name:    "cancelling the context starts the same drain as a signal",
		setup:   func(s *fakeServer) { s.drain = 500 * time.Millisecond },
		trigger: cancelCtx,
		want:    result{Elapsed: 500 * time.Millisecond, Calls: []string{"Serve", "Shutdown"}},
	}, {
		name: "Shutdown returning a wrapped DeadlineExceeded is an expiry, and Close is called",
		setup: func(s *fakeServer) {
			s.drain, s.shutdownErr = 100*time.Millisecond, fmt.Errorf("drain: %w", context.DeadlineExceeded)
		},
		trigger: sendSignal,
		want: result{Elapsed: 100 * time.Millisecond, Error: "lameduck: lame-duck period expired; server closed",
			LameDuck: true, Expired: true, Deadline: true, Calls: []string{"Serve", "Shutdown", "Close"}},
	}, {
		name:    "a drain longer than the period is closed when the period ends",
		setup:   func(s *fakeServer) { s.drain = time.Minute },
		trigger: sendSignal,
		want: result{Elapsed: 3 * time.Second, Error: "lameduck: lame-duck period expired; server closed",
			LameDuck: true, Expired: true, Deadline: true, Calls: []string{"Serve", "Shutdown", "Close"}},
	}, {
		// What a Shutdown still running at the period returns within the
		// grace is reported too (rule 5).
		name:    "the period is enforced even when Shutdown ignores its context",
		setup:   func(s *fakeServer) { s.drain, s.ignoreCtx = time.Hour, true },
		opts:    []Option{Period(2 * time.Second)},
		trigger: cancelCtx,
		want: result{Elapsed: 2 * time.Second, Error: "lameduck: lame-duck period expired; closing the server: fake: closed during Shutdown",
			LameDuck: true, Expired: true, Deadline: true, Calls: []string{"Serve", "Shutdown", "Close"}},
	}, {
		name:    "Close's error is the Err of an expired LameDuckError",
		setup:   func(s *fakeServer) { s.drain, s.closeErr = time.Minute, errClose },
		trigger: sendSignal,
		want: result{Elapsed: 3 * time.Second, Error: "lameduck: lame-duck period expired; closing the server: fake: close failed",
			LameDuck: true, Expired: true, Deadline: true, Calls: []string{"Serve", "Shutdown", "Close"}},
	}, {
		name:    "any other Shutdown error is not an expiry, and Close still runs",
		setup:   func(s *fakeServer) { s.drain, s.shutdownErr = 200*time.Millisecond, errShutdown },
		trigger: sendSignal,
		want: result{Elapsed: 200 * time.Millisecond, Error: "lameduck: shutdown failed: fake: shutdown failed",
			LameDuck: true, Calls: []string{"Serve", "Shutdown", "Close"}},
	}, {
		name:    "a failing Shutdown and a failing Close are both reported",
		setup:   func(s *fakeServer) { s.drain, s.shutdownErr, s.closeErr = 0, errShutdown, errClose },
		trigger: sendSignal,
		want: result{Error: "lameduck: shutdown failed: fake: shutdown failed\nfake: close failed",
			LameDuck: true, Calls: []string{"Serve", "Shutdown", "Close"}},
	}, {
		// The error says a second signal ended the period (rule 7).
		name:    "a second signal ends the period at once",
		setup:   func(s *fakeServer) { s.drain = time.Minute },
		trigger: sendSignal,
		after:   sendSignal,
		want: result{Elapsed: time.Second, Error: "lameduck: a second signal ended the lame-duck period; server closed",
			LameDuck: true, Expired: true, Deadline: true, Calls: []string{"Serve", "Shutdown", "Close"}},
	}, {
		// After a context trigger the first signal is the first, not the
		// second; the one after it ends the period (rule 7).
		name:    "after a context trigger the first signal does not end the period and the second does",
		setup:   func(s *fakeServer) { s.drain = time.Minute },
		opts:    []Option{Period(10 * time.Second)},
		trigger: cancelCtx,
		after: func(h *harness) {
			sendSignal(h)
			time.Sleep(time.Second)
			if h.returned() {
				h.t.Error("the first signal after a context trigger ended the period")
			}
			sendSignal(h)
		},
		want: result{Elapsed: 2 * time.Second, Error: "lameduck: a second signal ended the lame-duck period; server closed",
			LameDuck: true, Expired: true, Deadline: true, Calls: []string{"Serve", "Shutdown", "Close"}},
	}, {
		name:    "cancelling the context during a signal's drain does not cut it short",
		setup:   func(s *fakeServer) { s.drain = 2 * time.Second },
		trigger: sendSignal,
		after:   cancelCtx,
		want:    result{Elapsed: 2 * time.Second, Calls: []string{"Serve", "Shutdown"}},
	}, {
		name:    "an error from Serve during an otherwise clean drain is returned as it is",
		setup:   func(s *fakeServer) { s.drain, s.serveErr = 100*time.Millisecond, errServe },
		trigger: sendSignal,
		want:    result{Elapsed: 100 * time.Millisecond, Error: "fake: serve failed", Calls: []string{"Serve", "Shutdown"}},
	}}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				s := newFakeServer()
				c.setup(s)
				h := runInBubble(t, s, c.opts...)
				begin := time.Now()
				c.trigger(h)
				if c.after != nil {
					time.Sleep(time.Second)
					if h.returned() {
						t.Fatal("Run returned before the second event")
					}
					c.after(h)
				}
				err := <-h.done
				got := describe(time.Since(begin), err, s.Calls())
				if diff := cmp.Diff(c.want, got); diff != "" {
					t.Errorf("Run's outcome (-want +got):\n%s", diff)
				}
			})
		})
	}
}

// TestServeEndsBeforeTrigger covers rules 8 and 9: a Serve that returns
// before any trigger ends Run at once, with no drain. A failed Serve still
// gets Close (rule 8), and Run returns its error unwrapped unless
// Close fails too.
func TestServeEndsBeforeTrigger(t *testing.T) {
	for _, c := range []struct {
		name      string
		err       error
		closeErr  error
		wantCalls []string
		want      func(error) bool
	}{
		{"Serve returning nil ends Run with nil", nil, nil, []string{"Serve"},
			func(err error) bool { return err == nil }},
		{"Serve failing ends Run with that error, unwrapped, after Close", errServe, nil, []string{"Serve", "Close"},
			func(err error) bool { return err == errServe }},
		{"Serve failing with a DeadlineExceeded is still Serve's error, not an expiry", context.DeadlineExceeded, nil, []string{"Serve", "Close"},
			func(err error) bool { return err == context.DeadlineExceeded }},
		{"Serve failing and Close failing are joined", errServe, errClose, []string{"Serve", "Close"},
			func(err error) bool {
				return errors.Is(err, errServe) && errors.Is(err, errClose) && err.Error() == "fake: serve failed\nfake: close failed"
			}},
	} {
		t.Run(c.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				var calls []string
				svr := ServerFuncs{
					ServeFunc: func(context.Context) error {
						time.Sleep(time.Second)
						calls = append(calls, "Serve")
						return c.err
					},
					ShutdownFunc: func(context.Context) error { calls = append(calls, "Shutdown"); return nil },
					CloseFunc:    func() error { calls = append(calls, "Close"); return c.closeErr },
				}
				h := runInBubble(t, svr)
				elapsed, err := h.wait()
				if !c.want(err) {
					t.Errorf("Run returned %v", err)
				}
				var lde *LameDuckError
				if errors.As(err, &lde) {
					t.Errorf("Run returned a LameDuckError %v; no lame-duck should follow a Serve failure", err)
				}
				if diff := cmp.Diff(c.wantCalls, calls); diff != "" {
					t.Errorf("calls (-want +got):\n%s", diff)
				}
				if elapsed != time.Second {
					t.Errorf("Run returned %v after Serve started, want 1s (the moment Serve returned)", elapsed)
				}
			})
		})
	}
	t.Run("a Close that never returns after a Serve failure holds Run for the grace only", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			release := make(chan struct{})
			defer close(release)
			svr := ServerFuncs{
				ServeFunc: func(context.Context) error { return errServe },
				CloseFunc: func() error { <-release; return nil },
			}
			h := runInBubble(t, svr)
			elapsed, err := h.wait()
			want := "fake: serve failed\nlameduck: Close did not return within 1s of Close being called"
			if !errors.Is(err, errServe) || err.Error() != want {
				t.Errorf("Run = %q, want %q", err, want)
			}
			if elapsed != closeGrace {
				t.Errorf("Run returned %v after Serve failed, want the grace, %v", elapsed, closeGrace)
			}
		})
	})
}

// TestSignalHandlers covers rules 1, 11 and 12: the handlers are in
// place before Ready closes, they are removed before Run returns, and an
// empty Signals() installs none.
func TestSignalHandlers(t *testing.T) {
	t.Run("installed before Ready closes and removed before Run returns", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			h := runInBubble(t, newFakeServer())
			if got := h.sig.registered(); got != 1 {
				t.Fatalf("when Ready closed, %d signal channels were registered, want 1", got)
			}
			if diff := cmp.Diff([][]string{{"interrupt", "terminated"}}, names(h.sig.notified)); diff != "" {
				t.Errorf("Notify's signals (-want +got):\n%s", diff)
			}
			sendSignal(h)
			if _, err := h.wait(); err != nil {
				t.Fatalf("Run: %v", err)
			}
			if h.sig.registered() != 0 || h.sig.stops != 1 {
				t.Errorf("after Run: %d channels registered and %d Stop calls, want 0 and 1", h.sig.registered(), h.sig.stops)
			}
		})
	})
	t.Run("Signals replaces the default list", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			h := runInBubble(t, newFakeServer(), Signals(syscall.SIGHUP))
			if diff := cmp.Diff([][]string{{"hangup"}}, names(h.sig.notified)); diff != "" {
				t.Errorf("Notify's signals (-want +got):\n%s", diff)
			}
			h.cancel()
			h.wait()
		})
	})
	t.Run("Signals with none never calls Notify and only the context triggers", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			h := runInBubble(t, newFakeServer(), Signals())
			if len(h.sig.notified) != 0 || h.sig.stops != 0 {
				t.Fatalf("Notify called %d times and Stop %d times, want neither (an empty Notify relays every signal)", len(h.sig.notified), h.sig.stops)
			}
			h.sig.send(syscall.SIGTERM)
			if h.returned() {
				t.Fatal("Run returned on a signal it was told not to watch")
			}
			h.cancel()
			if _, err := h.wait(); err != nil {
				t.Errorf("Run: %v", err)
			}
		})
	})
}

func names(calls [][]os.Signal) [][]string {
	var out [][]string
	for _, sigs := range calls {
		var n []string
		for _, s := range sigs {
			n = append(n, s.String())
		}
		out = append(out, n)
	}
	return out
}
