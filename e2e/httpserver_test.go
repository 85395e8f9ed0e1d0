package e2e

import (
	"context"
	"net/http"
	"syscall"
	"testing"
	"time"

	"github.com/b583c413/lameduck/internal/proctest"
)

func startHTTPServer(t *testing.T, args ...string) (*proctest.Proc, string) {
	t.Helper()
	p := proctest.Start(t, bins["httpserver"], append([]string{"-addr", "127.0.0.1:0", "-v", "1"}, args...)...)
	return p, "http://" + listenAddr(t, p)
}

// Under load, SIGTERM loses nothing: clients stop sending when /readyz
// turns 503, every request sent is answered with 200, slow requests in
// flight at the signal finish, and the process exits 0 promptly.
func TestHTTPServerDrainsUnderLoad(t *testing.T) {
	const (
		clients, slowClients = 16, 4
		slow                 = 300 * time.Millisecond
		drainDelay           = 200 * time.Millisecond
		readyInterval        = 10 * time.Millisecond
	)
	reps := 10
	if *long {
		reps = 100
	}
	var totalSent, totalInFlight int
	var slowest time.Duration
	for rep := range reps {
		p, base := startHTTPServer(t, "-drain-delay", drainDelay.String(), "-period", "5s")
		l := startLoad(func() string { return base }, clients, slowClients, slow)
		stopWatch := watchReadiness(base, readyInterval, l)
		<-l.reached(200) // the load is well under way
		sigAt := p.Term()
		code, exitAt := p.Wait()
		stopWatch()
		l.halt()

		sent, failed, inFlight, examples := l.tally(sigAt)
		exitAfter := exitAt.Sub(sigAt)
		t.Logf("rep %d: %d requests, %d failed, %d slow in flight at SIGTERM, exit %d after %v",
			rep, sent, failed, inFlight, code, exitAfter.Round(time.Millisecond))
		if failed > 0 {
			t.Errorf("rep %d: %d of %d requests failed, e.g. %q", rep, failed, sent, examples)
		}
		if inFlight == 0 {
			t.Errorf("rep %d: no slow request was in flight at SIGTERM; the scenario proved nothing", rep)
		}
		if code != 0 {
			t.Errorf("rep %d: exit code %d, want 0", rep, code)
		}
		if limit := drainDelay + slow + time.Second; exitAfter > limit {
			t.Errorf("rep %d: exited %v after SIGTERM, want at most %v", rep, exitAfter, limit)
		}
		totalSent += sent
		totalInFlight += inFlight
		slowest = max(slowest, exitAfter)
	}
	t.Logf("%d reps: %d requests, 0 failed allowed; %d slow requests in flight at the signals; slowest exit %v",
		reps, totalSent, totalInFlight, slowest.Round(time.Millisecond))
}

// slowRequest sends GET /slow?d=30s and waits until the server has started
// handling it. The returned channel yields the request's error once it ends.
func slowRequest(t *testing.T, p *proctest.Proc, base string) <-chan error {
	t.Helper()
	client := &http.Client{Transport: &http.Transport{}}
	done := make(chan error, 1)
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		defer client.CloseIdleConnections()
		req, _ := http.NewRequestWithContext(ctx, "GET", base+"/slow?d=30s", nil)
		resp, err := client.Do(req)
		if err == nil {
			resp.Body.Close()
		}
		done <- err
	}()
	t.Cleanup(func() { cancel(); <-done })
	p.WaitFor(true, 1, "slow request: sleeping 30s")
	return done
}

// A request longer than the period is cut off when it ends: exit code 2,
// within the period plus a second.
func TestHTTPServerPeriodExpires(t *testing.T) {
	const period = 300 * time.Millisecond
	p, base := startHTTPServer(t, "-period", period.String())
	slowRequest(t, p, base)
	sigAt := p.Term()
	code, exitAt := p.Wait()
	t.Logf("exit %d %v after SIGTERM", code, exitAt.Sub(sigAt).Round(time.Millisecond))
	if code != 2 {
		t.Errorf("exit code %d, want 2", code)
	}
	if d := exitAt.Sub(sigAt); d > period+time.Second {
		t.Errorf("exited %v after SIGTERM, want at most %v", d, period+time.Second)
	}
}

// SIGTERM the moment the server says it is listening: the handler is
// already installed, so the process drains and exits 0 rather than being
// killed by the signal's default action.
func TestHTTPServerSignalRightAfterListening(t *testing.T) {
	for rep := range 5 {
		p, _ := startHTTPServer(t)
		sigAt := p.Term()
		code, exitAt := p.Wait()
		t.Logf("rep %d: exit %d %v after SIGTERM", rep, code, exitAt.Sub(sigAt).Round(time.Millisecond))
		if code != 0 {
			t.Errorf("rep %d: exit code %d, want 0 (-1 means killed by the signal)", rep, code)
		}
	}
}

// A second SIGTERM during the drain forces the stop at once: exit code 2.
func TestHTTPServerSecondSignal(t *testing.T) {
	p, base := startHTTPServer(t, "-period", "30s")
	slowRequest(t, p, base)
	p.Term()
	p.WaitFor(true, 1, "entering lame-duck mode")
	sigAt := p.Signal(syscall.SIGTERM)
	code, exitAt := p.Wait()
	t.Logf("exit %d %v after the second SIGTERM", code, exitAt.Sub(sigAt).Round(time.Millisecond))
	if code != 2 {
		t.Errorf("exit code %d, want 2", code)
	}
	if d := exitAt.Sub(sigAt); d > time.Second {
		t.Errorf("exited %v after the second SIGTERM, want at most 1s", d)
	}
}
