//go:build linux

package main

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"
)

const (
	clients = 16
	period  = 5 * time.Second
	// perGeneration is how many correct answers each new process must give
	// before the next restart: proof that the load really moved to it.
	perGeneration = 50
)

var serverArgs = []string{"-period", period.String(), "-handoff", "1s"}

// await waits on ch, or fails the test after bound.
func await(t testing.TB, ch <-chan struct{}, what string) {
	t.Helper()
	select {
	case <-ch:
	case <-time.After(bound):
		t.Fatalf("%s: not within %v", what, bound)
	}
}

// Twenty tableflip upgrades in a row under load lose nothing: every
// request of 16 keep-alive clients (GET and POST) is answered correctly,
// every old process exits 0, within its period of the new one's being
// ready, and systemd would hear READY with each new MAINPID and STOPPING
// only at the final SIGTERM (never at a hand-over, which is no stop).
func TestUpgradeUnderLoad(t *testing.T) {
	tl := upgradeUnderLoad(t, 20, serverArgs)
	if tl.failed > 0 {
		t.Errorf("%d of %d requests failed, e.g. %q", tl.failed, tl.sent, tl.examples)
	}
}

// The same upgrades with -handoff 0: lameduck's drain alone. It was the
// control for the hand-off until 2026-12-05, when some POSTs failed
// ("server closed idle connection"; Go's client retries only idempotent
// requests) because the drain closed idle keep-alive connections at once.
// The drain now keeps them served, each request answered with
// "Connection: close", while clients still send on them (the library's
// internal/httpdrain/idle.go), which is what the hand-off does: nothing
// may fail.
func TestUpgradeWithoutHandoff(t *testing.T) {
	tl := upgradeUnderLoad(t, 5, []string{"-period", period.String(), "-handoff", "0"})
	t.Logf("no hand-off: %d of %d requests failed, e.g. %q", tl.failed, tl.sent, tl.examples)
	if tl.failed > 0 {
		t.Errorf("%d of %d requests failed without the hand-off, e.g. %q", tl.failed, tl.sent, tl.examples)
	}
}

// upgradeUnderLoad runs the program with args, upgrades it the given number
// of times under load, checks everything but the requests' failures, and
// returns the load's tally.
func upgradeUnderLoad(t *testing.T, upgrades int, args []string) tally {
	ns := newNotifySocket(t)
	f := newFamily(t)
	cmd := exec.Command(bin, append([]string{"-addr", "127.0.0.1:0"}, args...)...)
	cmd.Env = append(os.Environ(), "NOTIFY_SOCKET="+ns.path)
	m := f.start(cmd)
	cur := f.waitListening()
	seen := []int{cur.pid}

	l := startLoad("http://"+cur.addr, clients)
	t.Cleanup(l.haltOnce)
	await(t, l.answeredBy(cur.pid, perGeneration), "first process under load")

	var slowest time.Duration
	var finishedLate int
	for i := range upgrades {
		f.signal(m, syscall.SIGHUP)
		next := f.waitListening(seen...)
		seen = append(seen, next.pid)
		code, _ := f.wait(m)
		// The old process's own clock says when it heard that the new one
		// serves, and how long its lame-duck mode took.
		_, handedAt := f.logLine(cur.pid, "the new process serves")
		drain := f.drained(cur.pid)
		late := l.answeredAfter(cur.pid, handedAt)
		t.Logf("upgrade %2d: pid %d → %d; the old one answered %d requests after the hand-over, drained in %v, exited %d",
			i+1, cur.pid, next.pid, late, drain.Round(time.Millisecond), code)
		if code != 0 {
			t.Errorf("upgrade %d: old process %d exited %d, want 0", i+1, cur.pid, code)
		}
		if drain > period {
			t.Errorf("upgrade %d: old process drained in %v, beyond the period %v", i+1, drain, period)
		}
		slowest = max(slowest, drain)
		finishedLate += late
		m = f.adopt(next.pid)
		await(t, l.answeredBy(next.pid, perGeneration), fmt.Sprintf("pid %d answering", next.pid))
		cur = next
	}
	// The load stops first: with no successor, connections made after
	// this SIGTERM are refused, as they should be.
	l.haltOnce()
	f.signal(m, syscall.SIGTERM)
	if code, _ := f.wait(m); code != 0 {
		t.Errorf("last process exited %d after SIGTERM, want 0", code)
	}

	tl := l.tally()
	t.Logf("%d upgrades: %d requests (%v), %d failed; old processes answered %d requests after the hand-over; slowest drain %v",
		upgrades, tl.sent, tl.kinds, tl.failed, finishedLate, slowest.Round(time.Millisecond))
	if finishedLate == 0 {
		t.Errorf("no old process answered a request after its hand-over: the drains were never tested")
	}

	ready := ns.waitCount(t, "READY=1", upgrades+1)
	for _, pid := range seen {
		if !slices.Contains(ready, fmt.Sprintf("READY=1\nMAINPID=%d", pid)) {
			t.Errorf("no READY=1 with MAINPID=%d among %q", pid, ready)
		}
	}
	if stopping := ns.waitCount(t, "STOPPING=1", 1); len(stopping) != 1 {
		t.Errorf("%d STOPPING=1 messages, want 1 (only the final SIGTERM is a stop): %q", len(stopping), stopping)
	}
	return tl
}

// startActivated starts the program the way systemd starts a
// socket-activated service: the listening socket is file descriptor 3,
// LISTEN_FDS=1, and LISTEN_PID is the pid of the program itself. The test
// cannot know that pid before the process exists, so a shell sets it to its
// own pid ($$) and then execs the program, which keeps that pid. (The
// alternative, letting the program accept an unset LISTEN_PID, would test a
// check that systemd's protocol does not have.)
func startActivated(f *family, bin string, ln *net.TCPListener, env ...string) *member {
	f.t.Helper()
	file, err := ln.File() // a duplicate descriptor of the same socket
	if err != nil {
		f.t.Fatal(err)
	}
	defer file.Close()
	cmd := exec.Command("/bin/sh", append([]string{"-c", `LISTEN_PID=$$ exec "$0" "$@"`, bin}, serverArgs...)...)
	cmd.ExtraFiles = []*os.File{file}
	cmd.Env = append(append(os.Environ(), "LISTEN_FDS=1"), env...)
	return f.start(cmd)
}

// Twenty restarts of a socket-activated server under load lose nothing:
// the test holds the listening socket, as systemd does, so connections made
// while no process serves wait in the socket's queue. Each restart is what
// systemctl restart does: SIGTERM, wait for the exit, start anew. systemd
// would hear READY=1 from each process and STOPPING=1, with the lame-duck
// budget as EXTEND_TIMEOUT_USEC, at each stop.
func TestSocketActivationRestartsUnderLoad(t *testing.T) {
	const restarts = 20
	lnAny, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer lnAny.Close()
	ln := lnAny.(*net.TCPListener)
	ns := newNotifySocket(t)
	f := newFamily(t)
	var seen []int
	launch := func() (*member, listening) {
		m := startActivated(f, bin, ln, "NOTIFY_SOCKET="+ns.path)
		lst := f.waitListening(seen...)
		seen = append(seen, lst.pid)
		if lst.pid != m.pid || lst.addr != ln.Addr().String() {
			t.Fatalf("started pid %d on the socket %s; then pid %d said it listens on %s", m.pid, ln.Addr(), lst.pid, lst.addr)
		}
		return m, lst
	}
	m, cur := launch()
	if line := f.waitLine(func(l line) bool { return l.pid == cur.pid && strings.HasPrefix(l.text, "listening on") }); !strings.Contains(line.text, "socket from systemd") {
		t.Fatalf("the program did not take the passed socket: %q", line.text)
	}
	l := startLoad("http://"+cur.addr, clients)
	t.Cleanup(l.haltOnce)
	await(t, l.answeredBy(cur.pid, perGeneration), "first process under load")

	var longestGap time.Duration
	for i := range restarts {
		sigAt := f.signal(m, syscall.SIGTERM)
		code, exitAt := f.wait(m)
		old := cur
		m, cur = launch()
		gap := cur.at.Sub(exitAt)
		drain := f.drained(old.pid)
		t.Logf("restart %2d: pid %d drained in %v, exited %d %v after SIGTERM; pid %d ready %v later",
			i+1, old.pid, drain.Round(time.Millisecond), code, exitAt.Sub(sigAt).Round(time.Millisecond), cur.pid, gap.Round(time.Millisecond))
		if code != 0 {
			t.Errorf("restart %d: pid %d exited %d, want 0", i+1, old.pid, code)
		}
		if drain > period {
			t.Errorf("restart %d: pid %d drained in %v, beyond the period %v", i+1, old.pid, drain, period)
		}
		longestGap = max(longestGap, gap)
		await(t, l.answeredBy(cur.pid, perGeneration), fmt.Sprintf("pid %d answering", cur.pid))
	}
	l.haltOnce() // what comes after the last SIGTERM waits for a process that never comes
	f.signal(m, syscall.SIGTERM)
	if code, _ := f.wait(m); code != 0 {
		t.Errorf("last process exited %d after SIGTERM, want 0", code)
	}

	tl := l.tally()
	t.Logf("%d restarts: %d requests (%v), %d failed; longest time with no process serving %v",
		restarts, tl.sent, tl.kinds, tl.failed, longestGap.Round(time.Millisecond))
	if tl.failed > 0 {
		t.Errorf("%d of %d requests failed, e.g. %q", tl.failed, tl.sent, tl.examples)
	}

	ready := ns.waitCount(t, "READY=1", restarts+1)
	stopping := ns.waitCount(t, "STOPPING=1", restarts+1)
	want := fmt.Sprintf("STOPPING=1\nEXTEND_TIMEOUT_USEC=%d", (period + 2*time.Second).Microseconds())
	for _, s := range stopping {
		if s != want {
			t.Errorf("stop message %q, want %q", s, want)
		}
	}
	if len(ready) != restarts+1 || len(stopping) != restarts+1 {
		t.Errorf("%d READY and %d STOPPING messages for %d processes: %q", len(ready), len(stopping), restarts+1, ns.all())
	}
}

// The control for both tests above: the same program, restarted the same
// way (SIGTERM, wait for the exit, start anew), but binding the port
// itself, as a server with neither tableflip nor systemd's socket does.
// Between the old process closing the socket and the new one binding it,
// connections are refused, and connections queued on the old socket are
// reset; the clients see failures.
func TestStopThenStartControl(t *testing.T) {
	const restarts = 5
	f := newFamily(t)
	launch := func(addr string, seen []int) (*member, listening) {
		m := f.start(exec.Command(bin, append([]string{"-addr", addr}, serverArgs...)...))
		return m, f.waitListening(seen...)
	}
	m, cur := launch("127.0.0.1:0", nil)
	seen := []int{cur.pid}
	l := startLoad("http://"+cur.addr, clients)
	t.Cleanup(l.haltOnce)
	await(t, l.answeredBy(cur.pid, perGeneration), "first process under load")

	failedBefore := 0
	for i := range restarts {
		sigAt := f.signal(m, syscall.SIGTERM)
		code, _ := f.wait(m)
		m, cur = launch(cur.addr, seen)
		seen = append(seen, cur.pid)
		await(t, l.answeredBy(cur.pid, perGeneration), fmt.Sprintf("pid %d answering", cur.pid))
		failed := l.tally().failed
		t.Logf("restart %d: old exited %d; new ready %v after SIGTERM; %d requests failed", i+1, code, cur.at.Sub(sigAt).Round(time.Millisecond), failed-failedBefore)
		failedBefore = failed
	}
	l.haltOnce()
	f.signal(m, syscall.SIGTERM)
	f.wait(m)

	tl := l.tally()
	t.Logf("control, %d stop-then-start restarts binding the port: %d requests (%v), %d failed, e.g. %q",
		restarts, tl.sent, tl.kinds, tl.failed, tl.examples)
	if tl.failed == 0 {
		t.Errorf("no request failed in the control: it no longer shows what the hand-over prevents")
	}
}
