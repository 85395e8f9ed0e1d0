package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/b583c413/lameduck/internal/proctest"
)

const jobCount = 500

// spoolState lists the jobs in each of a spool's directories.
type spoolState map[string][]string

func readSpool(t *testing.T, dir string) spoolState {
	t.Helper()
	s := spoolState{}
	for _, sub := range []string{"new", "work", "done"} {
		entries, err := os.ReadDir(filepath.Join(dir, sub))
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range entries {
			if !strings.HasPrefix(e.Name(), ".") {
				s[sub] = append(s[sub], e.Name())
			}
		}
	}
	return s
}

// check fails the test unless every one of want jobs is in exactly one
// directory, and returns the counts.
func (s spoolState) check(t *testing.T, want int) (newN, workN, doneN int) {
	t.Helper()
	where := map[string]string{}
	for sub, names := range s {
		for _, n := range names {
			if other, ok := where[n]; ok {
				t.Errorf("job %s is in both %s/ and %s/", n, other, sub)
			}
			where[n] = sub
		}
	}
	if len(where) != want {
		t.Errorf("the spool holds %d distinct jobs, want %d", len(where), want)
	}
	return len(s["new"]), len(s["work"]), len(s["done"])
}

// waitDone waits until at least n jobs are in dir/done, by looking at the
// directory as it fills (the worker prints nothing per job).
func waitDone(t *testing.T, p *proctest.Proc, dir string, n int) {
	t.Helper()
	tick := time.NewTicker(2 * time.Millisecond)
	defer tick.Stop()
	deadline := time.After(bound)
	for {
		entries, err := os.ReadDir(filepath.Join(dir, "done"))
		if err != nil {
			t.Fatal(err)
		}
		if len(entries) >= n {
			return
		}
		select {
		case <-tick.C:
		case <-p.Exited():
			t.Fatalf("worker exited with %d jobs done, before %d", len(entries), n)
		case <-deadline:
			t.Fatalf("fewer than %d jobs done after %v", n, bound)
		}
	}
}

func startWorker(t *testing.T, dir string, args ...string) *proctest.Proc {
	t.Helper()
	p := proctest.Start(t, bins["worker"], append([]string{"-dir", dir, "-work", "5ms", "-concurrency", "4"}, args...)...)
	p.WaitFor(false, 1, "ready")
	return p
}

// SIGTERM mid-way: the worker stops claiming, finishes what it holds and
// exits 0 with work/ empty; a restart finishes the rest.
func TestWorkerSIGTERM(t *testing.T) {
	dir := t.TempDir()
	p := startWorker(t, dir, "-enqueue", fmt.Sprint(jobCount))
	waitDone(t, p, dir, jobCount/5)
	sigAt := p.Term()
	code, exitAt := p.Wait()
	newN, workN, doneN := readSpool(t, dir).check(t, jobCount)
	t.Logf("SIGTERM: exit %d after %v; done=%d new=%d work=%d; summary %q",
		code, exitAt.Sub(sigAt).Round(time.Millisecond), doneN, newN, workN, lastStdout(p))
	if code != 0 {
		t.Errorf("exit code %d, want 0", code)
	}
	if workN != 0 {
		t.Errorf("%d jobs left in work/ after a clean stop, want 0", workN)
	}
	if want := fmt.Sprintf("done=%d new=%d work=0", doneN, newN); lastStdout(p) != want {
		t.Errorf("summary %q, want %q", lastStdout(p), want)
	}
	if newN == 0 {
		t.Error("every job was done before SIGTERM; the scenario proved nothing")
	}

	again := startWorker(t, dir, "-exit-when-done")
	if code, _ := again.Wait(); code != 0 {
		t.Errorf("restart: exit code %d, want 0", code)
	}
	if newN, workN, doneN := readSpool(t, dir).check(t, jobCount); doneN != jobCount {
		t.Errorf("after the restart: done=%d new=%d work=%d, want every job done", doneN, newN, workN)
	}
}

// SIGKILL mid-way leaves claimed jobs in work/; the restart puts them back
// and every job ends in done/ (at-least-once).
func TestWorkerSIGKILL(t *testing.T) {
	dir := t.TempDir()
	p := startWorker(t, dir, "-enqueue", fmt.Sprint(jobCount))
	waitDone(t, p, dir, jobCount/5)
	p.Signal(syscall.SIGKILL)
	if code, _ := p.Wait(); code != -1 {
		t.Errorf("exit code %d after SIGKILL, want -1 (killed)", code)
	}
	newN, workN, doneN := readSpool(t, dir).check(t, jobCount)
	t.Logf("after SIGKILL: done=%d new=%d work=%d", doneN, newN, workN)

	again := startWorker(t, dir, "-exit-when-done")
	if code, _ := again.Wait(); code != 0 {
		t.Errorf("restart: exit code %d, want 0", code)
	}
	if workN > 0 {
		again.WaitFor(true, 1, fmt.Sprintf("put %d jobs left in work/", workN))
	}
	if newN, workN, doneN := readSpool(t, dir).check(t, jobCount); doneN != jobCount {
		t.Errorf("after the restart: done=%d new=%d work=%d, want every job done", doneN, newN, workN)
	}
}
