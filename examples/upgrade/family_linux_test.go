//go:build linux

package main

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// bound is how long any one wait may take before the test fails; no
// passing run comes near it.
const bound = 20 * time.Second

// family is every process of the program that one test starts: those the
// test starts itself and those that tableflip upgrades start as children of
// the previous one. All of them write to the same two pipes, so a line is
// told apart by the pid in it ("listening on ... (pid N" on stdout, glog's
// header on stderr).
type family struct {
	t          testing.TB
	outW, errW *os.File
	readers    sync.WaitGroup

	mu      sync.Mutex
	lines   []line
	changed chan struct{} // closed and replaced whenever a line arrives
	members map[int]*member
}

type line struct {
	stderr bool
	pid    int
	text   string
	at     time.Time
}

// member is one process of the family.
type member struct {
	pid    int
	exited chan struct{}
	code   int // exit code, or -1 if a signal ended it
	at     time.Time
}

func newFamily(t testing.TB) *family {
	t.Helper()
	f := &family{t: t, changed: make(chan struct{}), members: map[int]*member{}}
	outR, outW, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	errR, errW, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	f.outW, f.errW = outW, errW
	f.readers.Go(func() { f.read(outR, false) })
	f.readers.Go(func() { f.read(errR, true) })
	t.Cleanup(f.end)
	return f
}

func (f *family) read(r *os.File, stderr bool) {
	defer r.Close()
	s := bufio.NewScanner(r)
	for s.Scan() {
		l := line{stderr: stderr, text: s.Text(), at: time.Now()}
		l.pid = linePID(l)
		f.mu.Lock()
		f.lines = append(f.lines, l)
		close(f.changed)
		f.changed = make(chan struct{})
		f.mu.Unlock()
	}
}

// linePID finds the pid of the process that printed l, or returns 0.
func linePID(l line) int {
	if !l.stderr {
		_, rest, ok := strings.Cut(l.text, "(pid ")
		if !ok {
			return 0
		}
		n, _ := strconv.Atoi(strings.TrimRight(strings.Fields(rest)[0], ",)"))
		return n
	}
	// glog: "I1125 16:59:50.222510   17466 file.go:25] ..."
	fields := strings.Fields(l.text)
	if len(fields) < 3 {
		return 0
	}
	n, _ := strconv.Atoi(fields[2])
	return n
}

// start starts cmd as a member of the family, with its output going to the
// family's pipes.
func (f *family) start(cmd *exec.Cmd) *member {
	f.t.Helper()
	cmd.Stdout, cmd.Stderr = f.outW, f.errW
	// The race detector's runtime sleeps a second at exit by default; that
	// second is not the program's, and would blur every exit time measured.
	cmd.Env = append(cmd.Env, "GORACE=atexit_sleep_ms=0")
	if err := cmd.Start(); err != nil {
		f.t.Fatal(err)
	}
	m := f.track(cmd.Process.Pid)
	go func() {
		_ = cmd.Wait()
		f.exit(m, cmd.ProcessState.ExitCode())
	}()
	return m
}

// adopt makes a member of pid, a process started by an upgrade, once its
// parent has exited and it has become the test's child.
func (f *family) adopt(pid int) *member {
	m := f.track(pid)
	go func() {
		var ws syscall.WaitStatus
		var err error
		for {
			if _, err = syscall.Wait4(pid, &ws, 0, nil); !errors.Is(err, syscall.EINTR) {
				break
			}
		}
		code := -1
		if err == nil && ws.Exited() {
			code = ws.ExitStatus()
		}
		f.exit(m, code)
	}()
	return m
}

func (f *family) track(pid int) *member {
	m := &member{pid: pid, exited: make(chan struct{})}
	f.mu.Lock()
	f.members[pid] = m
	f.mu.Unlock()
	return m
}

func (f *family) exit(m *member, code int) {
	f.mu.Lock()
	m.code, m.at = code, time.Now()
	f.mu.Unlock()
	close(m.exited)
}

// wait waits for m to exit and returns its exit code and when it exited.
func (f *family) wait(m *member) (code int, at time.Time) {
	f.t.Helper()
	select {
	case <-m.exited:
	case <-time.After(bound):
		f.t.Fatalf("pid %d still running after %v", m.pid, bound)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	return m.code, m.at
}

func (f *family) signal(m *member, sig syscall.Signal) time.Time {
	f.t.Helper()
	at := time.Now()
	if err := syscall.Kill(m.pid, sig); err != nil {
		f.t.Fatalf("sending %v to %d: %v", sig, m.pid, err)
	}
	return at
}

// listening is a "listening on" line.
type listening struct {
	addr string
	pid  int
	at   time.Time
}

// waitListening waits for a process other than those in not to print its
// "listening on" line.
func (f *family) waitListening(not ...int) listening {
	f.t.Helper()
	l := f.waitLine(func(l line) bool {
		if l.stderr || !strings.HasPrefix(l.text, "listening on ") {
			return false
		}
		for _, pid := range not {
			if l.pid == pid {
				return false
			}
		}
		return true
	})
	return parseListening(l)
}

// waitListeningBy waits for pid's "listening on" line; ok is false if
// exited closes first.
func (f *family) waitListeningBy(pid int, exited <-chan struct{}) (lst listening, ok bool) {
	f.t.Helper()
	l, ok := f.waitLineOr(func(l line) bool {
		return !l.stderr && l.pid == pid && strings.HasPrefix(l.text, "listening on ")
	}, exited)
	if !ok {
		return listening{}, false
	}
	return parseListening(l), true
}

func parseListening(l line) listening {
	addr, _, _ := strings.Cut(strings.TrimPrefix(l.text, "listening on "), " ")
	return listening{addr: addr, pid: l.pid, at: l.at}
}

func (f *family) waitLine(match func(line) bool) line {
	f.t.Helper()
	l, _ := f.waitLineOr(match, nil)
	return l
}

// waitLineOr waits for a line that matches, or for stop to close (ok is
// then false), for at most bound.
func (f *family) waitLineOr(match func(line) bool, stop <-chan struct{}) (l line, ok bool) {
	f.t.Helper()
	deadline := time.After(bound)
	for {
		f.mu.Lock()
		for _, l := range f.lines {
			if match(l) {
				f.mu.Unlock()
				return l, true
			}
		}
		changed := f.changed
		f.mu.Unlock()
		select {
		case <-changed:
		case <-stop:
			return line{}, false
		case <-deadline:
			f.t.Fatalf("no such line within %v", bound)
		}
	}
}

// end kills what is still running, waits for it, and, if the test failed,
// logs everything the family printed.
func (f *family) end() {
	f.mu.Lock()
	var running []*member
	for _, m := range f.members {
		running = append(running, m)
	}
	f.mu.Unlock()
	for _, m := range running {
		select {
		case <-m.exited:
		default:
			_ = syscall.Kill(m.pid, syscall.SIGKILL)
			<-m.exited
		}
	}
	// A process an upgrade started that the test never adopted (it failed
	// first) is the test's child now that its parent is gone.
	f.mu.Lock()
	var strays []int
	for _, l := range f.lines {
		if _, ok := f.members[l.pid]; !ok && l.pid > 0 && !slices.Contains(strays, l.pid) {
			strays = append(strays, l.pid)
		}
	}
	f.mu.Unlock()
	for _, pid := range strays {
		if syscall.Kill(pid, syscall.SIGKILL) == nil {
			var ws syscall.WaitStatus
			_, _ = syscall.Wait4(pid, &ws, 0, nil)
		}
	}
	f.outW.Close()
	f.errW.Close()
	f.readers.Wait()
	if f.t.Failed() {
		var b strings.Builder
		for _, l := range f.lines {
			fmt.Fprintln(&b, l.text)
		}
		f.t.Logf("output of every process:\n%s", b.String())
	}
}

// logLine waits for the first glog line of pid that contains substr, and
// returns its message and the time in its header (the process's own clock,
// not when the test read it, which can be much later on a busy machine).
// The line may be read after the process has been seen to exit: the pipe
// and wait4 are not ordered.
func (f *family) logLine(pid int, substr string) (msg string, at time.Time) {
	f.t.Helper()
	l := f.waitLine(func(l line) bool { return l.stderr && l.pid == pid && strings.Contains(l.text, substr) })
	// "I1125 16:59:50.222510   17466 file.go:25] msg"
	fields := strings.Fields(l.text)
	at, err := time.ParseInLocation("0102 15:04:05.000000", fields[0][1:]+" "+fields[1], time.Local)
	if err != nil {
		f.t.Fatalf("no time in %q: %v", l.text, err)
	}
	_, msg, _ = strings.Cut(l.text, "] ")
	return msg, at.AddDate(l.at.Year(), 0, 0)
}

// logged reports whether pid has logged a line containing substr so far.
func (f *family) logged(pid int, substr string) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.ContainsFunc(f.lines, func(l line) bool {
		return l.stderr && l.pid == pid && strings.Contains(l.text, substr)
	})
}

// drained returns how long pid's Runner took to drain, as it logged it.
func (f *family) drained(pid int) time.Duration {
	f.t.Helper()
	msg, _ := f.logLine(pid, "lameduck: drained in ")
	s := strings.TrimPrefix(msg, "lameduck: drained in ")
	d, err := time.ParseDuration(strings.Fields(s)[0])
	if err != nil {
		f.t.Errorf("pid %d: %q: %v", pid, msg, err)
	}
	return d
}
