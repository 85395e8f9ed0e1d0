package e2e

import (
	"flag"
	"fmt"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/b583c413/lameduck/internal/proctest"
)

// stopModes are the ways examples/httpserver can be told to stop: the
// flags for each.
var stopModes = map[string][]string{
	// A fixed delay of three check intervals: long enough for HAProxy's
	// next check, almost always.
	"fixed": {"-drain-delay", "300ms"},
	// Readiness.FailUntilSeen: until the first 503 has gone to HAProxy's
	// check, plus 50 ms; 1 s at most.
	"adaptive": {"-drain-delay", "1s", "-seen-margin", "50ms", "-seen-sole"},
	// The control: the drain begins at once.
	"none": {"-drain-delay", "0s"},
}

// stopped is what happened around one SIGTERM of a rolling restart.
type stopped struct {
	mode         string
	sigAt        time.Time
	down         time.Duration // SIGTERM → HAProxy logs the server DOWN
	steps        time.Duration // the pre-shutdown steps, as the instance logs them
	exit         time.Duration // SIGTERM → the process has exited
	code         int
	sent, failed int // requests that ended between this SIGTERM and the next
}

// rollBehindHAProxy runs three examples/httpserver instances behind
// HAProxy, keeps 16 clients busy through it (half GET, half POST, every
// answer checked), and replaces the instances one at a time, sigterms times
// in all: start the new instance on a free server slot, wait until HAProxy
// has marked it UP, SIGTERM the old one, wait until HAProxy has marked it
// DOWN and it has exited. The instances started take their stop mode from
// modes in turn; bin is the httpserver binary. It returns what happened at
// each SIGTERM, and the requests sent and failed over the whole run.
func rollBehindHAProxy(t *testing.T, path, bin string, modes []string, sigterms int) (stops []stopped, sent, failed int, examples []string) {
	t.Helper()
	type instance struct {
		p    *proctest.Proc
		slot int
		mode string
	}
	slots := freeAddrs(t, 6)
	started := 0
	launch := func(slot int) instance {
		mode := modes[started%len(modes)]
		started++
		p := proctest.Start(t, bin, append([]string{"-addr", slots[slot], "-period", "5s"}, stopModes[mode]...)...)
		listenAddr(t, p) // listening, and SIGTERM is handled
		return instance{p, slot, mode}
	}
	var live []instance
	for k := range 3 {
		live = append(live, launch(k))
	}
	free := []int{3, 4, 5}
	lb := startHAProxy(t, path, slots, map[int]bool{0: true, 1: true, 2: true})

	l := startMixedLoad(lb.front, 16)
	<-l.reachedMore(200)
	for s := range sigterms {
		i := s % len(live)
		old := live[i]
		mark := lb.mark()
		fresh := launch(free[0])
		free = free[1:]
		lb.waitUp(fresh.slot, mark)

		mark = lb.mark()
		sigAt := old.p.Term()
		downAt := lb.waitDown(old.slot, mark)
		code, exitAt := old.p.Wait()
		if code != 0 {
			t.Errorf("SIGTERM %d (%s): exit code %d, want 0", s, old.mode, code)
		}
		stops = append(stops, stopped{mode: old.mode, sigAt: sigAt, down: downAt.Sub(sigAt), steps: stepsTook(old.p),
			exit: exitAt.Sub(sigAt), code: code})
		live[i] = fresh
		free = append(free, old.slot)
	}
	<-l.reachedMore(200) // the new instances carry the load
	l.halt()

	for i := range stops {
		var next time.Time
		if i+1 < len(stops) {
			next = stops[i+1].sigAt
		}
		stops[i].sent, stops[i].failed = l.tally(stops[i].sigAt, next)
		if stops[i].failed > 0 {
			t.Logf("SIGTERM %d (%s): %d of %d requests failed before the next; DOWN after %v, exit after %v",
				i, stops[i].mode, stops[i].failed, stops[i].sent, stops[i].down.Round(time.Millisecond), stops[i].exit.Round(time.Millisecond))
		}
	}
	sent, failed = l.tally(time.Time{}, time.Time{})
	for _, in := range live {
		in.p.Term()
		in.p.Wait()
	}
	lb.stop()
	return stops, sent, failed, l.examples
}

// A rolling restart behind a real HAProxy that checks /readyz every 100 ms
// loses no request when the old instance keeps serving until HAProxy has
// taken it out, with a fixed delay or with Readiness.FailUntilSeen. The
// control, no delay, loses requests: HAProxy sends to an instance that no
// longer listens (503, "no server available" after the connection is
// refused) or that has just closed the idle connection HAProxy reuses (502).
func TestHAProxyRollingRestart(t *testing.T) {
	path := haproxyPath(t)
	sigterms := 3
	if *long {
		sigterms = 102
	}
	for _, c := range []struct {
		name, mode string
		control    bool
	}{
		{"a fixed drain delay loses nothing", "fixed", false},
		{"the adaptive step loses nothing", "adaptive", false},
		{"without a delay requests are lost", "none", true},
	} {
		t.Run(c.name, func(t *testing.T) {
			stops, sent, failed, examples := rollBehindHAProxy(t, path, bins["httpserver"], []string{c.mode}, sigterms)
			exits, downs, steps := durations(stops, c.mode)
			t.Logf("%s: %d SIGTERMs, %d requests, %d failed %q; HAProxy marked DOWN after %s; steps took %s; exit after %s",
				c.mode, len(stops), sent, failed, examples, summary(downs), summary(steps), summary(exits))
			switch {
			case c.control && failed == 0:
				t.Errorf("the control lost none of %d requests over %d SIGTERMs: it does not show what the delay prevents", sent, len(stops))
			case !c.control && failed > 0:
				t.Errorf("%d of %d requests failed, e.g. %q", failed, sent, examples)
			}
		})
	}
}

var (
	stopTimes = flag.Int("haproxy.sigterms", 0, "TestHAProxyStopTimes: SIGTERMs per stop mode and per load (0: skip the test)")
	hogs      = flag.Int("haproxy.hogs", 2, "TestHAProxyStopTimes: busy processes beside the run with a CPU hog")
)

// The figures of BENCHMARKS.md: SIGTERM → exit behind HAProxy, the fixed
// delay and the adaptive step taking turns in the same rolling restart,
// first alone on the machine, then beside CPU hogs. It logs a table and
// fails only if a request fails; the times are measured, not asserted. The
// instances are built without -race, as they would be deployed.
//
//	go test ./e2e -run HAProxyStopTimes -haproxy.sigterms 100 -v
func TestHAProxyStopTimes(t *testing.T) {
	if *stopTimes <= 0 {
		t.Skip("set -haproxy.sigterms to measure")
	}
	path := haproxyPath(t)
	bin := filepath.Join(t.TempDir(), "httpserver")
	if out, err := exec.Command("go", "build", "-o", bin, "github.com/b583c413/lameduck/examples/httpserver").CombinedOutput(); err != nil {
		t.Fatalf("building httpserver: %v\n%s", err, out)
	}
	modes := []string{"fixed", "adaptive"}
	var table []string
	for _, hog := range []bool{false, true} {
		load, stopHogs := "alone", func() {}
		if hog {
			load = fmt.Sprintf("%d CPU hogs", *hogs)
			stopHogs = startHogs(t, *hogs)
			defer stopHogs()
		}
		stops, sent, failed, examples := rollBehindHAProxy(t, path, bin, modes, len(modes)**stopTimes)
		if failed > 0 {
			t.Errorf("%s: %d of %d requests failed, e.g. %q", load, failed, sent, examples)
		}
		for _, mode := range modes {
			exits, downs, steps := durations(stops, mode)
			var modeSent, modeFailed int
			for _, s := range stops {
				if s.mode == mode {
					modeSent += s.sent
					modeFailed += s.failed
				}
			}
			table = append(table, fmt.Sprintf("| %s | %s | %d | %s | %s | %s | %d | %d |",
				load, mode, len(exits), pct(exits, 50), pct(exits, 99), pct(exits, 100), modeSent, modeFailed),
			)
			t.Logf("%s, %s: HAProxy marked DOWN after %s; steps took %s", load, mode, summary(downs), summary(steps))
		}
		stopHogs()
	}
	t.Logf("SIGTERM → exit behind HAProxy (inter 100ms fall 1 rise 1), fixed -drain-delay 300ms vs -seen-margin 50ms:\n"+
		"| load | stop | SIGTERMs | p50 | p99 | max | requests | failed |\n|---|---|---|---|---|---|---|---|\n%s",
		strings.Join(table, "\n"))
}

// startHogs starts n processes that spin, and returns a function that
// kills them (it may be called more than once).
func startHogs(t *testing.T, n int) (stop func()) {
	t.Helper()
	var cmds []*exec.Cmd
	for range n {
		cmd := exec.Command("sh", "-c", "while :; do :; done")
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		cmds = append(cmds, cmd)
	}
	return func() {
		for _, cmd := range cmds {
			if cmd.ProcessState == nil {
				_ = cmd.Process.Kill()
				_ = cmd.Wait()
			}
		}
	}
}

// stepsTook returns how long an instance's pre-shutdown steps took, from
// its "drained in … (pre-shutdown steps D, Shutdown …)" line, or 0.
func stepsTook(p *proctest.Proc) time.Duration {
	for _, l := range p.Lines(true) {
		if _, rest, ok := strings.Cut(l, "pre-shutdown steps "); ok {
			d, _ := time.ParseDuration(strings.TrimSpace(strings.Split(rest, ",")[0]))
			return d
		}
	}
	return 0
}

// durations returns the exit, DOWN and steps times of the stops in mode,
// each sorted.
func durations(stops []stopped, mode string) (exits, downs, steps []time.Duration) {
	for _, s := range stops {
		if s.mode == mode {
			exits = append(exits, s.exit)
			downs = append(downs, s.down)
			steps = append(steps, s.steps)
		}
	}
	slices.Sort(exits)
	slices.Sort(downs)
	slices.Sort(steps)
	return exits, downs, steps
}

// pct returns the p-th percentile (nearest rank) of sorted ds.
func pct(ds []time.Duration, p int) string {
	if len(ds) == 0 {
		return "-"
	}
	i := max((p*len(ds)+99)/100-1, 0)
	return ds[i].Round(time.Millisecond).String()
}

func summary(ds []time.Duration) string {
	return fmt.Sprintf("p50 %s, p99 %s, max %s", pct(ds, 50), pct(ds, 99), pct(ds, 100))
}
