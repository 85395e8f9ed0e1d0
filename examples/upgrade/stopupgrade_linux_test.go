//go:build linux

package main

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// A SIGTERM to a process 0–50 ms after it took a SIGHUP, mostly while its
// upgrade is under way (the new -race process takes 15–60 ms to serve under
// this load), loses nothing: the new process takes over and serves, the old
// one drains and exits 0, and systemd hears no STOPPING=1, since the
// service never stops. A SIGTERM that comes after the hand-over began, or
// after the old process exited, changes nothing.
// Each of 40 upgrades is one such stop, under 16 keep-alive clients (GET
// and POST); each new process is the next one's old process.
//
// When an upgrade does end without a new process, the test says so, starts
// a new first process on the same port, and goes on, so that a broken
// program shows in how many of the 40 upgrades requests failed.
func TestStopDuringUpgrade(t *testing.T) {
	const upgrades = 40
	ms := time.Millisecond
	offsets := []time.Duration{0, 5 * ms, 10 * ms, 15 * ms, 20 * ms, 30 * ms, 40 * ms, 50 * ms}
	ns := newNotifySocket(t)
	f := newFamily(t)
	// tableflip writes each process's pid here once it is ready (before it
	// tells its parent), so once an old process has exited the file names
	// its successor, if it has one.
	pidFile := filepath.Join(t.TempDir(), "pid")
	var seen []int
	launch := func(addr string) (*member, listening) {
		// A port just let go of may still be held for a moment by a process
		// being killed; a bounded number of tries, each a whole start.
		for range 20 {
			cmd := exec.Command(bin, append([]string{"-addr", addr, "-pid-file", pidFile}, serverArgs...)...)
			cmd.Env = append(os.Environ(), "NOTIFY_SOCKET="+ns.path)
			m := f.start(cmd)
			if lst, ok := f.waitListeningBy(m.pid, m.exited); ok {
				seen = append(seen, lst.pid)
				return m, lst
			}
		}
		t.Fatalf("cannot start a process on %s", addr)
		return nil, listening{}
	}
	m, cur := launch("127.0.0.1:0")
	l := startLoad("http://"+cur.addr, clients)
	t.Cleanup(l.haltOnce)
	await(t, l.answeredBy(cur.pid, perGeneration), "first process under load")

	var roundsFailed, roundsReset, failedTotal, inWindow, lost int
	start := time.Now()
	for i := range upgrades {
		offset := offsets[i%len(offsets)]
		mark := l.mark()
		hupAt := f.signal(m, syscall.SIGHUP)
		f.logLine(cur.pid, "SIGHUP: starting a new process")
		time.Sleep(time.Until(hupAt.Add(offset))) // places the SIGTERM; nothing is asserted on it
		termAt, termed := time.Now(), false
		select {
		case <-m.exited: // it handed over and drained already
		default:
			// The process is the test's child until the test reaps it, so
			// its pid cannot have been reused; ESRCH only means it exited.
			err := syscall.Kill(m.pid, syscall.SIGTERM)
			if err != nil && !errors.Is(err, syscall.ESRCH) {
				t.Fatalf("SIGTERM to %d: %v", m.pid, err)
			}
			termed = err == nil
		}
		code, _ := f.wait(m)
		old := cur
		m, cur = nil, listening{}
		if pid := pidIn(t, pidFile); pid != old.pid && !slices.Contains(seen, pid) {
			next := f.adopt(pid)
			answered := l.answeredBy(pid, perGeneration)
			if lst, ok := f.waitListeningBy(pid, next.exited); ok && answers(t, answered, next) {
				m, cur = next, lst
				seen = append(seen, pid)
			}
		}
		if m == nil {
			lost++
			t.Errorf("upgrade %d: old process %d exited %d and no new process serves; starting one anew", i+1, old.pid, code)
			m, cur = launch(old.addr)
			await(t, l.answeredBy(cur.pid, perGeneration), fmt.Sprintf("pid %d answering", cur.pid))
		}

		failed, reset, examples := l.failedSince(mark)
		when := "not sent: the old process had exited"
		if termed {
			when = fmt.Sprintf("%2dms after SIGHUP", termAt.Sub(hupAt).Milliseconds())
		}
		if code == 0 {
			// The drain's line comes after the stop's, on the same pipe.
			if drain := f.drained(old.pid); drain > period {
				t.Errorf("upgrade %d: old process drained in %v, beyond the period %v", i+1, drain, period)
			}
			if f.logged(old.pid, "stop during an upgrade") {
				when += ", during the upgrade"
				inWindow++
			}
		}
		t.Logf("upgrade %2d: pid %d → %d, SIGTERM %s; old exited %d; %d requests failed %q",
			i+1, old.pid, cur.pid, when, code, failed, examples)
		if failed > 0 {
			roundsFailed++
			failedTotal += failed
		}
		if reset > 0 {
			roundsReset++
		}
		switch {
		case code != 0:
			t.Errorf("upgrade %d: old process %d exited %d, want 0", i+1, old.pid, code)
		case failed > 0:
			t.Errorf("upgrade %d: old process %d exited 0 though %d requests failed", i+1, old.pid, failed)
		}
	}
	l.haltOnce()
	f.signal(m, syscall.SIGTERM)
	if code, _ := f.wait(m); code != 0 {
		t.Errorf("last process exited %d after SIGTERM, want 0", code)
	}

	tl := l.tally()
	t.Logf("%d upgrades stopped by SIGTERM in %v: %d had failed requests (%d with connections reset; %d of %d requests: %v), %d left no new process; %d SIGTERMs came during the upgrade",
		upgrades, time.Since(start).Round(time.Millisecond), roundsFailed, roundsReset, failedTotal, tl.sent, tl.kinds, lost, inWindow)
	// A new -race process takes 15 ms or more to serve under this load,
	// and a quarter of the SIGTERMs come within 10 ms of the SIGHUP: if
	// fewer than that many land before the new process serves, the test
	// no longer tests the window.
	if inWindow < upgrades/4 {
		t.Errorf("only %d of %d SIGTERMs came during the upgrade", inWindow, upgrades)
	}
	// Datagrams arrive in order: once every READY has, so has every
	// STOPPING sent before the last one.
	ns.waitCount(t, "READY=1", len(seen))
	if stopping := ns.waitCount(t, "STOPPING=1", 1); len(stopping) != 1 {
		t.Errorf("%d STOPPING=1 messages, want 1 (a stop that hands over is no stop of the service)", len(stopping))
	}
}

// answers reports whether answered closes (the load has moved to m) before
// m exits.
func answers(t *testing.T, answered <-chan struct{}, m *member) bool {
	t.Helper()
	select {
	case <-answered:
		return true
	case <-m.exited:
		return false
	case <-time.After(bound):
		t.Fatalf("pid %d running, not answering, after %v", m.pid, bound)
		return false
	}
}

// pidIn reads the pid tableflip wrote to path.
func pidIn(t *testing.T, path string) int {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return pid
}
