package main

import (
	"bufio"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"go.uber.org/goleak"
)

// bin is the path of this program built with -race, for the end-to-end
// tests, which run it as a child process and stop it with real signals.
var bin string

func TestMain(m *testing.M) {
	flag.Parse()
	dir, err := os.MkdirTemp("", "http3server-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	code := func() int {
		defer os.RemoveAll(dir)
		if runtime.GOOS != "windows" { // SIGTERM cannot be sent there
			bin = filepath.Join(dir, "http3server")
			cmd := exec.Command("go", "build", "-race", "-o", bin, ".")
			if out, err := cmd.CombinedOutput(); err != nil {
				fmt.Fprintf(os.Stderr, "building http3server: %v\n%s", err, out)
				return 1
			}
		}
		code := m.Run()
		if code == 0 {
			// glog's flushing goroutine starts when glog loads and lives as
			// long as the process.
			if err := goleak.Find(goleak.IgnoreTopFunction("github.com/golang/glog.(*fileSink).flushDaemon")); err != nil {
				fmt.Fprintln(os.Stderr, "http3server tests: goroutines left behind:", err)
				return 1
			}
		}
		return code
	}()
	os.Exit(code)
}

// proc is a running http3server whose output the test can wait on.
type proc struct {
	t   *testing.T
	cmd *exec.Cmd

	mu      sync.Mutex
	stderr  []string
	stdout  []string
	changed chan struct{} // closed and replaced whenever a line arrives

	exited chan struct{} // closed once the process has exited
	exitAt time.Time
	code   int // the exit code, or -1 if a signal killed it
}

// bound is how long any one wait may take before the test fails; no
// passing run comes near it.
const bound = 20 * time.Second

// start runs http3server on a free loopback port with args (and -v=1, so
// that it logs each slow request it begins) and waits until it says it
// listens. The process is killed at the end of the test if it is still
// running; its stderr is logged when the test fails.
func start(t *testing.T, args ...string) (p *proc, addr string) {
	t.Helper()
	if bin == "" {
		t.Skip("end-to-end tests send SIGTERM, which this system cannot")
	}
	args = append([]string{"-addr", "127.0.0.1:0", "-v", "1"}, args...)
	p = &proc{t: t, cmd: exec.Command(bin, args...), changed: make(chan struct{}), exited: make(chan struct{})}
	// The race detector's runtime sleeps a second at exit by default.
	p.cmd.Env = append(os.Environ(), "GORACE=atexit_sleep_ms=0")
	stdout, err := p.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	stderr, err := p.cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var readers sync.WaitGroup
	readers.Go(func() { p.read(stdout, &p.stdout) })
	readers.Go(func() { p.read(stderr, &p.stderr) })
	go func() {
		readers.Wait() // cmd.Wait must come after the pipes are drained
		_ = p.cmd.Wait()
		p.mu.Lock()
		p.exitAt = time.Now()
		p.code = p.cmd.ProcessState.ExitCode()
		p.mu.Unlock()
		close(p.exited)
	}()
	t.Cleanup(func() {
		select {
		case <-p.exited:
		default:
			_ = p.cmd.Process.Kill()
			<-p.exited
		}
		if t.Failed() {
			t.Logf("http3server %v stderr:\n%s", args, strings.Join(p.lines(true), "\n"))
		}
	})
	return p, strings.TrimPrefix(p.waitFor(false, 1, "listening on ")[0], "listening on ")
}

func (p *proc) read(r io.Reader, lines *[]string) {
	s := bufio.NewScanner(r)
	for s.Scan() {
		p.mu.Lock()
		*lines = append(*lines, s.Text())
		close(p.changed)
		p.changed = make(chan struct{})
		p.mu.Unlock()
	}
}

func (p *proc) lines(stderr bool) []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	if stderr {
		return append([]string(nil), p.stderr...)
	}
	return append([]string(nil), p.stdout...)
}

// waitFor waits until n lines of stderr (or stdout) contain substr, and
// returns them.
func (p *proc) waitFor(stderr bool, n int, substr string) []string {
	p.t.Helper()
	deadline := time.After(bound)
	for {
		p.mu.Lock()
		changed := p.changed
		p.mu.Unlock()
		var found []string
		for _, l := range p.lines(stderr) {
			if strings.Contains(l, substr) {
				found = append(found, l)
			}
		}
		if len(found) >= n {
			return found
		}
		select {
		case <-changed:
		case <-p.exited:
			if len(found) < n {
				p.t.Fatalf("process exited (code %d) before %d lines with %q", p.code, n, substr)
			}
		case <-deadline:
			p.t.Fatalf("fewer than %d lines with %q within %v", n, substr, bound)
		}
	}
}

// term sends SIGTERM.
func (p *proc) term() {
	p.t.Helper()
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		p.t.Fatalf("sending SIGTERM: %v", err)
	}
}

// wait waits for the process to exit and returns its exit code.
func (p *proc) wait() int {
	p.t.Helper()
	select {
	case <-p.exited:
	case <-time.After(bound):
		p.t.Fatalf("process still running after %v", bound)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.code
}
