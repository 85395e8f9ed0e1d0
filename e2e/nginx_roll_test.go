package e2e

import (
	"fmt"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/b583c413/lameduck/internal/proctest"
)

// restart is what happened around one SIGTERM of a rolling restart behind
// nginx.
type restart struct {
	sigAt                  time.Time
	exit                   time.Duration // SIGTERM → the old instance has exited
	code                   int
	sent, failGET, failPOS int // requests that ended between this SIGTERM and the next
}

// backendKind starts one instance on addr and returns once it listens.
type backendKind func(t *testing.T, addr string) *proctest.Proc

// lameduckBackend runs examples/httpserver with a 300 ms drain delay, as it
// would be deployed behind a load balancer.
func lameduckBackend(t *testing.T, addr string) *proctest.Proc {
	p := proctest.Start(t, bins["httpserver"], "-addr", addr, "-period", "5s", "-drain-delay", "300ms")
	listenAddr(t, p)
	return p
}

// lameduckNoDelay runs examples/httpserver with no drain delay: nginx never
// reads /readyz, so the delay does not help it.
func lameduckNoDelay(t *testing.T, addr string) *proctest.Proc {
	p := proctest.Start(t, bins["httpserver"], "-addr", addr, "-period", "5s")
	listenAddr(t, p)
	return p
}

// plainBackend, the control, runs the same routes on a bare *http.Server
// stopped by its own Shutdown after the same 300 ms (see plainServer).
func plainBackend(t *testing.T, addr string) *proctest.Proc {
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	p := proctest.Start(t, "/usr/bin/env", plainEnv+"="+addr, plainEnv+"_DELAY=300ms", "GORACE=atexit_sleep_ms=0", self)
	listenAddr(t, p)
	return p
}

// rollBehindNginx runs three instances behind nginx, keeps clients busy
// through it (half GET, half POST, every answer checked), and restarts the
// instances in place one at a time, restarts times: SIGTERM, wait for the
// exit, start the new instance on the same address, and wait until nginx
// has sent it requests again.
func rollBehindNginx(t *testing.T, kind backendKind, clients, keepalive, restarts int) (stops []restart, sent, failed int, examples []string) {
	t.Helper()
	addrs := freeAddrs(t, 3)
	live := make([]*proctest.Proc, len(addrs))
	for i, a := range addrs {
		live[i] = kind(t, a)
	}
	front, stopNginx := startNginx(t, nginxPath(t), addrs, keepalive)
	l := startMixedLoad(front, clients)
	<-l.reachedMore(500)
	for s := range restarts {
		i := s % len(live)
		sigAt := live[i].Term()
		code, exitAt := live[i].Wait()
		stops = append(stops, restart{sigAt: sigAt, exit: exitAt.Sub(sigAt), code: code})
		if code != 0 {
			t.Errorf("restart %d: the old instance exited with code %d, want 0", s, code)
		}
		live[i] = kind(t, addrs[i])
		l.waitServedBy(t, addrs[i], time.Now(), 50)
	}
	<-l.reachedMore(200)
	l.halt()
	for i := range stops {
		var next time.Time
		if i+1 < len(stops) {
			next = stops[i+1].sigAt
		}
		stops[i].sent, stops[i].failGET, stops[i].failPOS = l.tallyByMethod(stops[i].sigAt, next)
	}
	sent, failed = l.tally(time.Time{}, time.Time{})
	for _, p := range live {
		p.Term()
		p.Wait()
	}
	stopNginx()
	return stops, sent, failed, l.examples
}

// A rolling restart behind nginx, which has no health checks and learns
// that an instance is going only when a connection to it fails, loses no
// request — GET or POST — with lameduck, while the control, the same
// routes stopped by net/http's Shutdown after the same delay, loses POSTs:
// nginx writes them on a pooled keep-alive connection that the instance is
// closing, and never resends a POST it has sent.
func TestNginxRollingRestart(t *testing.T) {
	// 12 restarts make the control lose about 8 POSTs (21 over 30 here);
	// the long mode is the acceptance run.
	restarts, clients, keepalive := 12, 64, 32
	if *long {
		restarts = 90
	}
	for _, c := range []struct {
		name    string
		kind    backendKind
		control bool
	}{
		{"lameduck loses nothing", lameduckBackend, false},
		{"lameduck without a delay loses nothing", lameduckNoDelay, false},
		{"plain Shutdown loses POSTs", plainBackend, true},
	} {
		t.Run(c.name, func(t *testing.T) {
			stops, sent, failed, examples := rollBehindNginx(t, c.kind, clients, keepalive, restarts)
			var table strings.Builder
			var exits []time.Duration
			for i, s := range stops {
				exits = append(exits, s.exit)
				fmt.Fprintf(&table, "\n  restart %2d: %5d requests, failed GET %d, POST %d; SIGTERM → exit %v",
					i, s.sent, s.failGET, s.failPOS, s.exit.Round(time.Millisecond))
			}
			slices.Sort(exits)
			t.Logf("%d restarts, %d clients, keepalive %d: %d requests, %d failed %q; exit after %s%s",
				len(stops), clients, keepalive, sent, failed, examples, summary(exits), table.String())
			switch {
			case c.control && failed == 0:
				t.Errorf("the control lost none of %d requests over %d restarts: the load does not reach the race", sent, len(stops))
			case !c.control && failed > 0:
				t.Errorf("%d of %d requests failed, e.g. %q", failed, sent, examples)
			}
		})
	}
}
