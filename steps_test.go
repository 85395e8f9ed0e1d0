package lameduck

import (
	"context"
	"errors"
	"strings"
	"sync"
	"syscall"
	"testing"
	"testing/synctest"
	"time"

	"github.com/google/go-cmp/cmp"
)

// journal records, in order, what the steps and the server did.
type journal struct {
	mu      sync.Mutex
	entries []string
}

func (j *journal) add(e string) {
	j.mu.Lock()
	defer j.mu.Unlock()
	j.entries = append(j.entries, e)
}

func (j *journal) all() []string {
	j.mu.Lock()
	defer j.mu.Unlock()
	return append([]string(nil), j.entries...)
}

// budgetStep records its name and how long its context gave it.
func (j *journal) budgetStep(name string) func(context.Context) error {
	return func(ctx context.Context) error {
		d, _ := ctx.Deadline()
		j.add(name + " " + time.Until(d).String())
		return nil
	}
}

// TestPostShutdown: the post-shutdown steps run once the server has
// stopped, however it stopped, in order, with what is left of the period
// (or a second when nothing is), and their errors only reach the log.
func TestPostShutdown(t *testing.T) {
	cases := []struct {
		name     string
		setup    func(s *fakeServer)
		act      func(h *harness)
		wantCall []string // the server's calls, then the steps'
		wantErr  string   // "" for nil
	}{{
		name:     "after a clean drain, with the rest of the period",
		setup:    func(s *fakeServer) { s.drain = 1500 * time.Millisecond },
		act:      sendSignal,
		wantCall: []string{"Serve", "Shutdown", "flush 1.5s", "close db 1.5s"},
	}, {
		name:     "after the period ran out and Close, with one second",
		setup:    func(s *fakeServer) { s.drain = time.Hour },
		act:      sendSignal,
		wantCall: []string{"Serve", "Shutdown", "Close", "flush 1s", "close db 1s"},
		wantErr:  "lameduck: lame-duck period expired; server closed",
	}, {
		name:  "after a second signal, with one second",
		setup: func(s *fakeServer) { s.drain = time.Hour },
		act: func(h *harness) {
			sendSignal(h)
			time.Sleep(time.Second)
			sendSignal(h)
		},
		wantCall: []string{"Serve", "Shutdown", "Close", "flush 1s", "close db 1s"},
		wantErr:  "lameduck: a second signal ended the lame-duck period; server closed",
	}, {
		name:     "after Serve failed and Close, with a whole period",
		setup:    func(s *fakeServer) { s.serveErr = errServe },
		act:      func(h *harness) { h.r.svr.(*fakeServer).Close() },
		wantCall: []string{"Serve", "Close", "Close", "flush 3s", "close db 3s"},
		wantErr:  errServe.Error(),
	}, {
		name:     "after Serve returned on its own, with a whole period",
		setup:    func(s *fakeServer) {},
		act:      func(h *harness) { h.r.svr.(*fakeServer).Shutdown(context.Background()) },
		wantCall: []string{"Serve", "Shutdown", "flush 3s", "close db 3s"},
	}}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				s := newFakeServer()
				c.setup(s)
				var j journal
				h := runInBubble(t, s,
					WithPostShutdown(j.budgetStep("flush")),
					WithPostShutdown(j.budgetStep("close db")))
				c.act(h)
				err := <-h.done
				got := append(s.Calls(), j.all()...)
				if diff := cmp.Diff(c.wantCall, got); diff != "" {
					t.Errorf("calls (-want +got):\n%s", diff)
				}
				if gotErr := errText(err); gotErr != c.wantErr {
					t.Errorf("Run = %q, want %q", gotErr, c.wantErr)
				}
				if n := h.sig.registered(); n != 0 {
					t.Errorf("%d signal handlers left after Run", n)
				}
			})
		})
	}
}

func errText(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

func TestPostShutdownFailureIsLogged(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := newFakeServer()
		h := runInBubble(t, s, WithPostShutdown(
			Named("flush metrics", func(context.Context) error { return errors.New("collector unreachable") }),
			func(context.Context) error { panic("bug") }))
		sendSignal(h)
		if err := <-h.done; err != nil {
			t.Errorf("Run = %v, want nil: a post-shutdown step's failure is only logged", err)
		}
		for _, want := range []string{
			"lameduck: post-shutdown step 1 of 2 (flush metrics) failed: collector unreachable",
			"lameduck: post-shutdown step 2 of 2 failed: post-shutdown step 2 of 2 panicked: bug",
		} {
			if !containsLine(h.log.all(), want) {
				t.Errorf("log lacks %q:\n%s", want, joinLines(h.log.all()))
			}
		}
	})
}

// TestPostShutdownStuck: a post-shutdown step that ignores its context is
// named in Run's error one grace after its deadline, and an expired
// LameDuckError stays one.
func TestPostShutdownStuck(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		release := make(chan struct{})
		defer close(release)
		s := newFakeServer()
		s.drain = time.Hour
		h := runInBubble(t, s, WithPostShutdown(Named("close db", func(context.Context) error { <-release; return nil })))
		begin := time.Now()
		sendSignal(h)
		err := <-h.done
		// 3s period, 1s for the steps after the expiry, 1s of grace.
		if took := time.Since(begin); took != 5*time.Second {
			t.Errorf("Run returned %v after the signal, want 5s", took)
		}
		lde, ok := err.(*LameDuckError)
		if !ok || !lde.Expired {
			t.Fatalf("Run = %#v, want an expired *LameDuckError", err)
		}
		want := "lameduck: post-shutdown step 1 of 1 (close db) did not return within 1s of its context ending"
		if lde.Err == nil || lde.Err.Error() != want {
			t.Errorf("Err = %v, want %s", lde.Err, want)
		}
		if !containsLine(h.log.all(), want) {
			t.Errorf("log lacks %q:\n%s", want, joinLines(h.log.all()))
		}
	})
}

// TestPostShutdownSignal: a signal while the post-shutdown steps run ends
// their context at once; the steps after the one running are skipped.
func TestPostShutdownSignal(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := newFakeServer()
		var j journal
		h := runInBubble(t, s, WithPostShutdown(
			func(ctx context.Context) error { <-ctx.Done(); j.add("waited"); return ctx.Err() },
			func(context.Context) error { j.add("skipped step ran"); return nil }))
		sendSignal(h)
		time.Sleep(time.Second)
		h.sig.send(syscall.SIGTERM)
		begin := time.Now()
		if err := <-h.done; err != nil {
			t.Errorf("Run = %v, want nil", err)
		}
		if took := time.Since(begin); took != 0 {
			t.Errorf("Run returned %v after the signal, want at once", took)
		}
		if diff := cmp.Diff([]string{"waited"}, j.all()); diff != "" {
			t.Errorf("steps (-want +got):\n%s", diff)
		}
		for _, want := range []string{
			`lameduck: received signal "terminated" during post-shutdown step 1 of 2; ending the post-shutdown steps now`,
			"lameduck: post-shutdown steps cut short at post-shutdown step 1 of 2: context canceled",
		} {
			if !containsLine(h.log.all(), want) {
				t.Errorf("log lacks %q:\n%s", want, joinLines(h.log.all()))
			}
		}
	})
}

// TestPostShutdownFirstSignal: when no signal began lame-duck mode, the
// first signal during the post-shutdown steps is a first signal (rule 7):
// it ends nothing, and the one after it ends the steps.
func TestPostShutdownFirstSignal(t *testing.T) {
	triggers := []struct {
		name  string
		start func(t *testing.T, h *harness)
		svr   func() Server
	}{
		{"the context", func(t *testing.T, h *harness) { h.cancel() }, func() Server { return newFakeServer() }},
		{"Stop", func(*testing.T, *harness) {}, func() Server {
			return ServerFuncs{ServeFunc: func(ctx context.Context) error { Stop(ctx, nil); return nil }}
		}},
		{"Serve's own return", func(*testing.T, *harness) {}, func() Server {
			return ServerFuncs{ServeFunc: func(ctx context.Context) error { return nil }}
		}},
	}
	for _, tr := range triggers {
		t.Run("after "+tr.name+" began the stop", func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				var j journal
				h := runInBubble(t, tr.svr(), Period(10*time.Second), WithPostShutdown(
					func(ctx context.Context) error { <-ctx.Done(); j.add("waited"); return ctx.Err() },
					func(context.Context) error { j.add("skipped step ran"); return nil }))
				tr.start(t, h)
				time.Sleep(time.Second)
				h.sig.send(syscall.SIGTERM)
				if h.returned() {
					t.Fatal("the first signal ended the post-shutdown steps")
				}
				time.Sleep(time.Second)
				h.sig.send(syscall.SIGTERM)
				if elapsed, err := h.wait(); err != nil || elapsed != 0 {
					t.Errorf("Run = %v %v after the second signal, want nil at once", err, elapsed)
				}
				if diff := cmp.Diff([]string{"waited"}, j.all()); diff != "" {
					t.Errorf("steps (-want +got):\n%s", diff)
				}
				for _, want := range []string{
					`lameduck: received signal "terminated" during post-shutdown step 1 of 2; another one ends the post-shutdown steps now`,
					`lameduck: received signal "terminated" during post-shutdown step 1 of 2; ending the post-shutdown steps now`,
				} {
					if !containsLine(h.log.all(), want) {
						t.Errorf("log lacks %q:\n%s", want, joinLines(h.log.all()))
					}
				}
			})
		})
	}
}

func TestStepOptionsRejectNil(t *testing.T) {
	var nilStep func(context.Context) error
	cases := []struct {
		name string
		opt  Option
		want string
	}{
		{"a nil post-shutdown step", WithPostShutdown(nilStep), "lameduck: WithPostShutdown: step 0 is nil"},
		{"Named around nil", WithPostShutdown(Named("x", nilStep)), "lameduck: WithPostShutdown: step 0 is nil"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := NewRunner(newFakeServer(), c.opt)
			if got := errText(err); got != c.want {
				t.Errorf("NewRunner = %q, want %q", got, c.want)
			}
		})
	}
}

// TestNamed: the name reaches the log and the errors wherever a step is
// named, inside a Chain too, and Named changes nothing outside a Runner.
func TestNamed(t *testing.T) {
	errDereg := errors.New("consul unreachable")
	t.Run("outside a Runner it is the step", func(t *testing.T) {
		if err := Named("dereg", func(context.Context) error { return errDereg })(context.Background()); err != errDereg {
			t.Errorf("got %v, want %v", err, errDereg)
		}
	})
	t.Run("a stuck named step is named", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			release := make(chan struct{})
			defer close(release)
			h := runInBubble(t, newFakeServer(), Period(2*time.Second),
				WithPreShutdown(Named("deregister", func(context.Context) error { <-release; return nil })))
			sendSignal(h)
			err := <-h.done
			want := "pre-shutdown step 1 of 1 (deregister) did not return within 1s of Close being called"
			if err == nil || !strings.HasSuffix(err.Error(), want) {
				t.Errorf("Run = %v, want one ending %q", err, want)
			}
			if !containsLine(h.log.all(), "lameduck: lame-duck period of 2s expired during pre-shutdown step 1 of 1 (deregister)") {
				t.Errorf("log does not name the step the period ran out in:\n%s", joinLines(h.log.all()))
			}
		})
	})
	t.Run("inside a Chain the failed one keeps its name", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			ok := func(context.Context) error { return nil }
			h := runInBubble(t, newFakeServer(), WithPreShutdown(Chain(
				Named("deregister", func(context.Context) error { return errDereg }),
				Named("announce", ok))))
			sendSignal(h)
			<-h.done
			want := "lameduck: pre-shutdown step 1 of 1 (deregister) failed: consul unreachable"
			if !containsLine(h.log.all(), want) {
				t.Errorf("log lacks %q:\n%s", want, joinLines(h.log.all()))
			}
		})
	})
}
