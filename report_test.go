package lameduck

import (
	"context"
	"errors"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// heldServer is an HTTP server whose handlers block until released (or
// until their request is cancelled by Close), with a channel that says when
// each has begun.
type heldServer struct {
	entered chan struct{}
	release chan struct{}
}

func newHeldServer() *heldServer {
	return &heldServer{entered: make(chan struct{}, 16), release: make(chan struct{})}
}

func (h *heldServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h.entered <- struct{}{}
	select {
	case <-h.release:
		io.WriteString(w, "done")
	case <-r.Context().Done():
	}
}

// startReportRun runs svr under a Runner with period and no signals, and
// returns the Runner, a function that triggers lame-duck mode and a
// channel that yields Run's error.
func startReportRun(t *testing.T, svr Server, period time.Duration, opts ...Option) (*Runner, context.CancelFunc, <-chan error) {
	t.Helper()
	r, err := NewRunner(svr, append([]Option{Period(period), Signals(), WithoutLogger()}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	select {
	case <-r.Ready():
	case err := <-done:
		t.Fatalf("Run = %v before ready", err)
	}
	return r, cancel, done
}

// clientFor returns a client that speaks HTTP/1, or h2c with prior
// knowledge, and never reuses another client's connection.
func clientFor(h2c bool) *http.Client {
	tr := &http.Transport{MaxConnsPerHost: 1} // HTTP/2: one connection, not a dial race's two
	if h2c {
		tr.Protocols = new(http.Protocols)
		tr.Protocols.SetUnencryptedHTTP2(true)
	}
	return &http.Client{Transport: tr}
}

func row(rep Report, server, kind, proto string) (found bool, w struct {
	Server, Kind, Protocol string
	InFlight, AtLameDuck   int
	Finished, Cut, Held    int
}) {
	for _, w := range rep.Work {
		if w.Server == server && w.Kind == kind && w.Protocol == proto {
			return true, w
		}
	}
	return false, w
}

// TestExpiryNamesWhatHeldTheDrain is the stop an operator could not read
// before: an HTTP server with 3 requests held past a 300 ms period. Run's
// error now says what held the drain, and the Report counts it.
func TestExpiryNamesWhatHeldTheDrain(t *testing.T) {
	for _, tc := range []struct {
		name   string
		h2c    bool
		conns  []int // requests per client connection
		want   string
		proto  string
		nConns int
	}{
		{"HTTP/1", false, []int{1, 1, 1}, `"api" still had 3 requests on 3 connections`, "HTTP/1", 3},
		{"h2c", true, []int{2, 1}, `"api" still had 3 requests on 2 connections`, "HTTP/2", 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHeldServer()
			srv := &http.Server{Addr: "127.0.0.1:0", Handler: h}
			if tc.h2c {
				srv.Protocols = new(http.Protocols)
				srv.Protocols.SetHTTP1(true)
				srv.Protocols.SetUnencryptedHTTP2(true)
			}
			hs := FromHTTP(srv)
			r, trigger, done := startReportRun(t, Member("api", hs), 300*time.Millisecond)
			url := "http://" + hs.Addr().String() + "/"
			var clients sync.WaitGroup
			for _, n := range tc.conns {
				c := clientFor(tc.h2c)
				for range n {
					clients.Go(func() {
						if resp, err := c.Get(url); err == nil {
							io.Copy(io.Discard, resp.Body)
							resp.Body.Close()
						}
					})
				}
			}
			for range 3 {
				<-h.entered
			}
			if rep := r.Report(); rep.State != StateRunning {
				t.Errorf("State before the trigger = %v", rep.State)
			} else if _, w := row(rep, "api", "requests", tc.proto); w.InFlight != 3 {
				t.Errorf("requests in flight before the trigger = %d, want 3 (report %+v)", w.InFlight, rep.Work)
			}
			trigger()
			err := <-done
			clients.Wait()
			wantErr := "lameduck: lame-duck period expired during Shutdown: " + tc.want + "; server closed"
			if err == nil || err.Error() != wantErr {
				t.Errorf("Run = %v\nwant %s", err, wantErr)
			}
			rep := r.Report()
			if rep.Outcome != "expired" || rep.Trigger != "context" {
				t.Errorf("Outcome, Trigger = %q, %q; want expired, context", rep.Outcome, rep.Trigger)
			}
			_, reqs := row(rep, "api", "requests", tc.proto)
			_, conns := row(rep, "api", "connections", tc.proto)
			gotReqs := [5]int{reqs.InFlight, reqs.AtLameDuck, reqs.Finished, reqs.Cut, reqs.Held}
			if want := [5]int{0, 3, 0, 3, 3}; gotReqs != want {
				t.Errorf("requests InFlight, AtLameDuck, Finished, Cut, Held = %v, want %v", gotReqs, want)
			}
			if conns.AtLameDuck != tc.nConns || conns.Held != tc.nConns || conns.Cut != tc.nConns {
				t.Errorf("connections = %+v, want %d at lame-duck, held and cut", conns, tc.nConns)
			}
			if s := rep.String(); !strings.Contains(s, `"api": 3 requests in flight at lame-duck, 0 finished, 3 cut`) {
				t.Errorf("String() = %s", s)
			}
		})
	}
}

// TestReportCleanDrain: requests in flight at the trigger that finish
// during the drain are counted Finished, none Cut, and the phases are
// there.
func TestReportCleanDrain(t *testing.T) {
	h := newHeldServer()
	srv := &http.Server{Addr: "127.0.0.1:0", Handler: h}
	hs := FromHTTP(srv)
	r, trigger, done := startReportRun(t, hs, 10*time.Second)
	url := "http://" + hs.Addr().String() + "/"
	var clients sync.WaitGroup
	got := make(chan string, 2)
	for range 2 {
		c := clientFor(false)
		clients.Go(func() {
			resp, err := c.Get(url)
			if err != nil {
				got <- err.Error()
				return
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			got <- string(b)
		})
	}
	<-h.entered
	<-h.entered
	trigger()
	<-hs.draining // Shutdown has begun
	close(h.release)
	if err := <-done; err != nil {
		t.Fatalf("Run = %v", err)
	}
	clients.Wait()
	for range 2 {
		if b := <-got; b != "done" {
			t.Errorf("a client got %q", b)
		}
	}
	rep := r.Report()
	if rep.Outcome != "clean" || rep.State != StateStopped {
		t.Errorf("Outcome, State = %q, %v", rep.Outcome, rep.State)
	}
	var names []string
	for _, p := range rep.Phases {
		names = append(names, p.Name)
		if p.Running || p.Err != nil {
			t.Errorf("phase %+v", p)
		}
	}
	if diff := cmp.Diff([]string{"Shutdown"}, names); diff != "" {
		t.Errorf("phases (-want +got):\n%s", diff)
	}
	_, reqs := row(rep, "", "requests", "HTTP/1")
	if gotReqs, want := [5]int{reqs.InFlight, reqs.AtLameDuck, reqs.Finished, reqs.Cut, reqs.Held}, [5]int{0, 2, 2, 0, 0}; gotReqs != want {
		t.Errorf("requests InFlight, AtLameDuck, Finished, Cut, Held = %v, want %v", gotReqs, want)
	}
	if _, conns := row(rep, "", "connections", "HTTP/1"); conns.Cut != 0 || conns.InFlight != 0 || conns.AtLameDuck != 2 {
		t.Errorf("connections = %+v", conns)
	}
}

// TestReportWorkerAndGroup: a Group's members are named in the rows (by
// Member, or by position as in errors), a Worker's items in handle are
// counted, and an expiry names both servers that held it.
func TestReportWorkerAndGroup(t *testing.T) {
	h := newHeldServer()
	hs := FromHTTP(&http.Server{Addr: "127.0.0.1:0", Handler: h})
	items := make(chan int, 8)
	inHandle := make(chan struct{}, 8)
	w := FromWorker(ChanSource(items), func(ctx context.Context, _ int) error {
		inHandle <- struct{}{}
		<-ctx.Done()
		return ctx.Err()
	}).Concurrency(2)
	r, trigger, done := startReportRun(t, Group(Member("api", hs), w), 300*time.Millisecond)
	items <- 1
	items <- 2
	<-inHandle
	<-inHandle
	c := clientFor(false)
	go func() {
		if resp, err := c.Get("http://" + hs.Addr().String() + "/"); err == nil {
			resp.Body.Close()
		}
	}()
	<-h.entered
	trigger()
	err := <-done
	want := `lameduck: lame-duck period expired during Shutdown: "api" still had 1 request on 1 connection; server 1 still had 2 items in handle; server closed`
	if err == nil || err.Error() != want {
		t.Errorf("Run = %v\nwant %s", err, want)
	}
	rep := r.Report()
	if ok, it := row(rep, "server 1", "items", ""); !ok || it.AtLameDuck != 2 || it.Cut != 2 || it.Finished != 0 || it.InFlight != 0 {
		t.Errorf("items row = %+v (found %v); want 2 at lame-duck, 2 cut", it, ok)
	}
	var lde *LameDuckError
	if !errors.As(err, &lde) || !lde.Expired {
		t.Errorf("Run = %#v, want an expired LameDuckError", err)
	}
}

// TestReportBeforeRun: a Runner not yet run reports its state and empty
// books, and a nil one an empty Report; neither panics.
func TestReportBeforeRun(t *testing.T) {
	r, err := NewRunner(FromHTTP(&http.Server{}))
	if err != nil {
		t.Fatal(err)
	}
	rep := r.Report()
	if rep.State != StateNotStarted || rep.Trigger != "" || len(rep.Work) != 5 {
		t.Errorf("Report = %+v", rep)
	}
	var nr *Runner
	if rep := nr.Report(); rep.State != StateNotStarted {
		t.Errorf("nil Runner's Report = %+v", rep)
	}
}

// TestReportInPostShutdownStep: a post-shutdown step that pushes the
// Report (to a metrics gateway, say) sees the outcome and the phases so
// far.
func TestReportInPostShutdownStep(t *testing.T) {
	stop := make(chan struct{})
	var r *Runner
	seen := make(chan Report, 1)
	r, err := NewRunner(ServerFuncs{
		ServeFunc:    func(context.Context) error { <-stop; return nil },
		ShutdownFunc: func(context.Context) error { close(stop); return nil },
	}, Signals(), WithoutLogger(), WithPostShutdown(func(context.Context) error {
		seen <- r.Report()
		return nil
	}))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := r.Run(ctx); err != nil {
		t.Fatalf("Run = %v", err)
	}
	rep := <-seen
	if rep.Outcome != "clean" || rep.State != StateLameDuck || len(rep.Phases) != 2 || rep.Phases[0].Name != "Shutdown" || !rep.Phases[1].Running {
		t.Errorf("Report in the post-shutdown step = %+v", rep)
	}
	if final := r.Report(); final.State != StateStopped || final.Phases[1].Running {
		t.Errorf("final Report = %+v", final)
	}
}
