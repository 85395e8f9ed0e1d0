package lameduck

import (
	"context"
	"errors"
	"net"
	"net/http"
	"testing"
	"testing/synctest"
	"time"

	"github.com/google/go-cmp/cmp"
)

func okServe(context.Context) error { return nil }

// TestBadInput covers rule 12's invalid arguments: each gets an error
// that starts with "lameduck: ", from NewRunner before anything runs.
func TestBadInput(t *testing.T) {
	next := func(context.Context) (int, error) { return 0, nil }
	handle := func(context.Context, int) error { return nil }
	cases := []struct {
		name string
		svr  Server
		opts []Option
		want string
	}{
		{"a nil Server", nil, nil, "lameduck: nil Server"},
		{"a typed nil Server", (*HTTPServer)(nil), nil, "lameduck: nil *lameduck.HTTPServer Server"},
		{"a zero period", ServerFuncs{ServeFunc: okServe}, []Option{Period(0)}, "lameduck: Period must be positive, got 0s"},
		{"a negative period", ServerFuncs{ServeFunc: okServe}, []Option{Period(-time.Second)}, "lameduck: Period must be positive, got -1s"},
		{"a ServerFuncs without ServeFunc", ServerFuncs{}, nil, "lameduck: ServerFuncs has a nil ServeFunc"},
		{"FromHTTP of a nil server", FromHTTP(nil), nil, "lameduck: FromHTTP: nil *http.Server"},
		{"a zero-value HTTPServer", &HTTPServer{}, nil, "lameduck: HTTPServer not made by FromHTTP"},
		{"FromHTTPListener with a nil listener", FromHTTPListener(&http.Server{}, (*net.TCPListener)(nil)), nil, "lameduck: FromHTTPListener: nil net.Listener"},
		{"a negative Spread window", FromHTTP(&http.Server{}).Spread(-time.Second), nil, "lameduck: HTTPServer.Spread: negative window -1s"},
		{"a Spread window over half the period", FromHTTP(&http.Server{}).Spread(2 * time.Second), []Option{Period(3 * time.Second)},
			"lameduck: HTTPServer.Spread: a window of 2s is more than half of the 3s the period leaves for the drain; the connections told last would have no time to close"},
		{"a Spread window over half of what the Delays leave", FromHTTP(&http.Server{}).Spread(time.Second), []Option{Period(3 * time.Second), WithPreShutdown(Delay(2 * time.Second))},
			"lameduck: HTTPServer.Spread: a window of 1s is more than half of the 1s the period leaves for the drain; the connections told last would have no time to close"},
		{"a Group member's Spread window over half the period", Group(Member("api", FromHTTP(&http.Server{}).Spread(time.Hour))), nil,
			"lameduck: Group: server 0 (api): HTTPServer.Spread: a window of 1h0m0s is more than half of the 3s the period leaves for the drain; the connections told last would have no time to close"},
		{"Spread on a nil *HTTPServer", (*HTTPServer)(nil).Spread(time.Second), nil, "lameduck: nil *lameduck.HTTPServer Server"},
		{"FromWorker with a nil next", FromWorker(nil, handle), nil, "lameduck: FromWorker: next is nil"},
		{"FromWorker with a nil handle", FromWorker(next, nil), nil, "lameduck: FromWorker: handle is nil"},
		{"FromWorker with zero concurrency", FromWorker(next, handle).Concurrency(0), nil, "lameduck: FromWorker: Concurrency: must be at least 1, got 0"},
		{"a nil *Worker", (*Worker[int])(nil).Concurrency(2), nil, "lameduck: nil *lameduck.Worker[int] Server"},
		// Zero-value helpers and empty Groups (rule 12).
		{"a zero-value Worker", &Worker[int]{}, nil, "lameduck: Worker not made by FromWorker"},
		{"a Group without members", Group(), nil, "lameduck: Group has no members"},
		{"a ParallelGroup without members", ParallelGroup(), nil, "lameduck: ParallelGroup has no members"},
		{"FromWorker with ConcurrentNext and ReleaseSource", FromWorker(next, handle).ConcurrentNext().ReleaseSource(func(context.Context) ([]int, error) { return nil, nil }), nil, "lameduck: FromWorker: ConcurrentNext and ReleaseSource cannot be combined: release must not run beside a call of next"},
		{"FromWorker with a nil OnError policy", FromWorker(next, handle).OnError(nil), nil, "lameduck: FromWorker: OnError: policy is nil"},
		{"a nil Option", ServerFuncs{ServeFunc: okServe}, []Option{nil}, "lameduck: option 0 is nil"},
		{"a nil Logger", ServerFuncs{ServeFunc: okServe}, []Option{WithLogger(nil)}, "lameduck: WithLogger(nil); use WithoutLogger to turn logging off"},
		{"a nil signal", ServerFuncs{ServeFunc: okServe}, []Option{Signals(nil)}, "lameduck: Signals: signal 0 is nil"},
		{"a nil pre-shutdown step", ServerFuncs{ServeFunc: okServe}, []Option{WithPreShutdown(okServe, nil)}, "lameduck: WithPreShutdown: step 1 is nil"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r, err := NewRunner(c.svr, c.opts...)
			if r != nil || err == nil {
				t.Fatalf("NewRunner = %v, %v; want an error", r, err)
			}
			if diff := cmp.Diff(c.want, err.Error()); diff != "" {
				t.Errorf("error (-want +got):\n%s", diff)
			}
			// Run reports the same error rather than panicking.
			if err := Run(context.Background(), c.svr, c.opts...); err == nil || err.Error() != c.want {
				t.Errorf("Run = %v, want %q", err, c.want)
			}
		})
	}
}

// TestBadRunCalls covers the misuses of a Runner that NewRunner cannot see.
func TestBadRunCalls(t *testing.T) {
	t.Run("a nil context", func(t *testing.T) {
		r, _ := NewRunner(ServerFuncs{ServeFunc: okServe})
		//lint:ignore SA1012 a nil context is the bad input under test
		if err := r.Run(nil); err == nil || err.Error() != "lameduck: Run called with a nil Context" {
			t.Errorf("Run(nil) = %v", err)
		}
	})
	t.Run("a second Run", func(t *testing.T) {
		r, _ := NewRunner(ServerFuncs{ServeFunc: okServe}, Signals())
		if err := r.Run(context.Background()); err != nil {
			t.Fatalf("first Run: %v", err)
		}
		if err := r.Run(context.Background()); err == nil || err.Error() != "lameduck: Runner's Run called more than once" {
			t.Errorf("second Run = %v", err)
		}
	})
	t.Run("a Runner not made by NewRunner", func(t *testing.T) {
		var zero Runner
		if err := zero.Run(context.Background()); err == nil || err.Error() != "lameduck: Runner not made by NewRunner" {
			t.Errorf("Run = %v", err)
		}
		var nilRunner *Runner
		if err := nilRunner.Run(context.Background()); err == nil {
			t.Errorf("Run on a nil *Runner returned nil")
		}
	})
	t.Run("helpers called directly with bad input return errors", func(t *testing.T) {
		ctx := context.Background()
		for name, err := range map[string]error{
			"ServerFuncs.Serve":    ServerFuncs{}.Serve(ctx),
			"ServerFuncs.Shutdown": ServerFuncs{}.Shutdown(ctx),
			"HTTPServer.Serve":     FromHTTP(nil).Serve(ctx),
			"HTTPServer.Shutdown":  FromHTTP(nil).Shutdown(ctx),
			"HTTPServer.Close":     FromHTTP(nil).Close(),
			"Worker.Serve":         FromWorker[int](nil, nil).Serve(ctx),
			"zero Worker.Serve":    (&Worker[int]{}).Serve(ctx),
			"zero Worker.Shutdown": (&Worker[int]{}).Shutdown(ctx),
			"zero Worker.Close":    (&Worker[int]{}).Close(),
			"empty Group's Serve":  Group().Serve(ctx),
		} {
			if name == "ServerFuncs.Shutdown" {
				if err != nil {
					t.Errorf("%s with nil ShutdownFunc = %v, want nil", name, err)
				}
				continue
			}
			if err == nil {
				t.Errorf("%s returned nil, want an error", name)
			}
		}
	})
}

// TestPanics covers rule 12's panics: each becomes an error.
func TestPanics(t *testing.T) {
	boom := errors.New("boom")
	cases := []struct {
		name string
		svr  func(s *fakeServer) Server
		want result
		boom bool // the panic value was boom, and errors.Is must still find it
	}{{
		name: "a panic in Serve is Run's error",
		svr: func(s *fakeServer) Server {
			return ServerFuncs{ServeFunc: func(context.Context) error { panic(boom) }}
		},
		want: result{Error: "lameduck: Serve panicked: boom"},
		boom: true,
	}, {
		name: "a panic in Shutdown is a Shutdown failure",
		svr: func(s *fakeServer) Server {
			return ServerFuncs{ServeFunc: s.Serve, ShutdownFunc: func(context.Context) error { panic("oops") }, CloseFunc: s.Close}
		},
		want: result{Error: "lameduck: shutdown failed: Shutdown panicked: oops", LameDuck: true, Calls: []string{"Serve", "Close"}},
	}, {
		name: "a panic in Close is Close's error",
		svr: func(s *fakeServer) Server {
			return ServerFuncs{ServeFunc: s.Serve, ShutdownFunc: func(context.Context) error { return context.DeadlineExceeded },
				CloseFunc: func() error { s.Close(); panic(boom) }}
		},
		want: result{Error: "lameduck: lame-duck period expired; closing the server: Close panicked: boom",
			LameDuck: true, Expired: true, Deadline: true, Calls: []string{"Serve", "Close"}},
		boom: true,
	}}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				s := newFakeServer()
				h := runInBubble(t, c.svr(s))
				sendSignal(h)
				err := <-h.done
				got := describe(0, err, s.Calls())
				if diff := cmp.Diff(c.want, got); diff != "" {
					t.Errorf("outcome (-want +got):\n%s", diff)
				}
				if c.boom && !errors.Is(err, boom) {
					t.Errorf("errors.Is(%v, boom) = false; a panic's error value should stay reachable", err)
				}
			})
		})
	}
}

// TestStuckServer covers the end of rule 5: methods that never return
// cannot hold Run past the period and the close grace.
func TestStuckServer(t *testing.T) {
	cases := []struct {
		name  string
		stuck string // which method blocks until the test ends
		want  string
	}{
		{"Close never returns", "Close", "lameduck: lame-duck period expired; closing the server: Close, Shutdown and Serve did not return within 1s of Close being called"},
		{"Serve ignores Close", "Serve", "lameduck: lame-duck period expired; closing the server: Serve did not return within 1s of Close being called"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				release := make(chan struct{})
				defer close(release)
				svr := ServerFuncs{
					ServeFunc: func(context.Context) error { <-release; return nil },
					ShutdownFunc: func(ctx context.Context) error {
						if c.stuck == "Close" {
							<-release
						}
						return ctx.Err()
					},
					CloseFunc: func() error {
						if c.stuck == "Close" {
							<-release
						}
						return nil
					},
				}
				h := runInBubble(t, svr, Period(2*time.Second))
				begin := time.Now()
				sendSignal(h)
				err := <-h.done
				if elapsed := time.Since(begin); elapsed != 2*time.Second+closeGrace {
					t.Errorf("Run returned %v after the trigger, want period + grace = %v", elapsed, 2*time.Second+closeGrace)
				}
				if err == nil || err.Error() != c.want || !errors.Is(err, context.DeadlineExceeded) {
					t.Errorf("Run = %v\nwant %s", err, c.want)
				}
			})
		})
	}
}
