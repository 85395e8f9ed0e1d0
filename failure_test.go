package lameduck

import (
	"context"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

// TestWorkerFailureDrainsTheFrontEnd is issue 10's second case on a real
// socket: a worker's handler fails while the HTTP front end that feeds it
// has a request in flight. The Group helper (CONTRACT.md) turns the failure into
// a graceful stop: the readiness probe fails, the front end keeps serving
// through the pre-shutdown step, the request in flight is answered, and Run
// returns the failure naming the worker.
func TestWorkerFailureDrainsTheFrontEnd(t *testing.T) {
	errBad := errors.New("job 7 is malformed")
	jobs := make(chan string, 10)
	worker := FromWorker(ChanSource(jobs), func(_ context.Context, job string) error {
		if job == "bad" {
			return errBad
		}
		return nil
	})
	var ready Readiness
	inFlight, answer := make(chan struct{}), make(chan struct{})
	mux := http.NewServeMux()
	mux.Handle("/readyz", &ready)
	mux.HandleFunc("/slow", func(w http.ResponseWriter, r *http.Request) {
		close(inFlight)
		<-answer
		w.Write([]byte("done"))
	})
	front := FromHTTP(&http.Server{Addr: "127.0.0.1:0", Handler: mux})
	waiting, proceed := make(chan struct{}), make(chan struct{})
	wait := func(context.Context) error { close(waiting); <-proceed; return nil } // stands in for Delay
	h := runUntilReady(t, Group(worker, front), WithPreShutdown(ready.Fail, wait))
	client := &http.Client{}
	defer client.CloseIdleConnections()
	base := "http://" + front.Addr().String()

	slow := make(chan string, 1)
	go func() {
		code, body, err := get(client, base+"/slow")
		if err != nil {
			body = err.Error()
		}
		slow <- strings.TrimSpace(http.StatusText(code) + " " + body)
	}()
	<-inFlight
	jobs <- "bad"
	select {
	case <-waiting:
	case err := <-h.done:
		close(answer)
		<-slow
		t.Fatalf("Run returned %v without a lame-duck mode", err)
	}
	if code, _, err := get(client, base+"/readyz"); err != nil || code != http.StatusServiceUnavailable {
		t.Errorf("during the pre-shutdown step /readyz = %d, %v; want 503 from a front end still serving", code, err)
	}
	close(answer)
	if got := <-slow; got != "OK done" {
		t.Errorf("the request in flight got %q, want OK done", got)
	}
	close(proceed)
	err := <-h.done
	if !errors.Is(err, errBad) || err.Error() != "lameduck: Group: server 0: job 7 is malformed" {
		t.Errorf("Run = %v, want the worker's failure, named", err)
	}
	if ExitCode(err) != 1 {
		t.Errorf("ExitCode = %d, want 1: a failure, not a forced stop", ExitCode(err))
	}
}

// TestOnError covers the per-item error policy of the FromWorker helper.
func TestOnError(t *testing.T) {
	errBad := errors.New("bad item")
	handle := func(_ context.Context, i int) error {
		if i == 2 {
			return errBad
		}
		return nil
	}
	t.Run("a policy returning nil goes on past the item", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			var deadLetters []int
			w := FromWorker(ChanSource(chanOf(1, 2, 3)), handle).OnError(func(_ context.Context, item int, err error) error {
				if errors.Is(err, errBad) {
					deadLetters = append(deadLetters, item)
				}
				return nil
			})
			if err := Run(context.Background(), w, withSignalSource(&fakeSignals{}), WithoutLogger()); err != nil {
				t.Errorf("Run = %v, want nil: the policy kept going", err)
			}
			if diff := cmp.Diff([]int{2}, deadLetters); diff != "" {
				t.Errorf("dead letters (-want +got):\n%s", diff)
			}
		})
	})
	t.Run("a policy returning an error is a failure", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			errWrapped := errors.New("giving up")
			w := FromWorker(ChanSource(chanOf(1, 2, 3)), handle).OnError(func(_ context.Context, item int, err error) error {
				return errors.Join(errWrapped, err)
			})
			err := Run(context.Background(), w, withSignalSource(&fakeSignals{}), WithoutLogger())
			if !errors.Is(err, errWrapped) || !errors.Is(err, errBad) {
				t.Errorf("Run = %v, want the policy's error", err)
			}
		})
	})
	t.Run("a panic is passed to the policy as an error", func(t *testing.T) {
		var got error
		w := FromWorker(ChanSource(chanOf(1)), func(context.Context, int) error { panic("boom") }).
			OnError(func(_ context.Context, _ int, err error) error { got = err; return nil })
		if err := w.Serve(context.Background()); err != nil {
			t.Errorf("Serve = %v", err)
		}
		if got == nil || got.Error() != "lameduck: handle panicked: boom" {
			t.Errorf("policy got %v", got)
		}
	})
}

// TestStop covers the exported request for lame-duck mode.
func TestStop(t *testing.T) {
	t.Run("Stop with no cause is a graceful stop and Run returns nil", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			s := newFakeServer()
			svr := ServerFuncs{
				ServeFunc: func(ctx context.Context) error {
					if !Stop(ctx, nil) {
						t.Error("Stop reported no Runner")
					}
					return s.Serve(ctx)
				},
				ShutdownFunc: s.Shutdown, CloseFunc: s.Close,
			}
			h := runInBubble(t, svr)
			if _, err := h.wait(); err != nil {
				t.Errorf("Run = %v, want nil", err)
			}
			// Stop comes before the fake records its Serve, so the two
			// calls may be recorded in either order.
			if diff := cmp.Diff([]string{"Serve", "Shutdown"}, s.Calls(), cmpopts.SortSlices(func(a, b string) bool { return a < b })); diff != "" {
				t.Errorf("calls (-want +got):\n%s", diff)
			}
		})
	})
	t.Run("Stop with a cause drains and Run returns the cause", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			errLost := errors.New("lost the lease")
			s := newFakeServer()
			s.drain = time.Second
			var ctxAfter context.Context
			svr := ServerFuncs{
				ServeFunc: func(ctx context.Context) error {
					ctxAfter = ctx
					time.Sleep(time.Second)
					Stop(ctx, errLost)
					return s.Serve(ctx)
				},
				ShutdownFunc: s.Shutdown, CloseFunc: s.Close,
			}
			h := runInBubble(t, svr)
			elapsed, err := h.wait()
			if err != errLost || elapsed != 2*time.Second {
				t.Errorf("Run = %v after %v, want %v after 2s (1s serving, 1s draining)", err, elapsed, errLost)
			}
			if Stop(ctxAfter, errLost) {
				t.Error("Stop after Run returned reported true")
			}
			if !containsLine(h.log.all(), "lameduck: stop requested: lost the lease") {
				t.Errorf("log lacks the cause:\n%s", joinLines(h.log.all()))
			}
		})
	})
	t.Run("Stop without a Runner reports false", func(t *testing.T) {
		if Stop(context.Background(), io.EOF) {
			t.Error("Stop(context.Background()) = true")
		}
	})
}
