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
	dir, err := os.MkdirTemp("", "grpcserver-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	// In-process tests log through glog; its files go here, not to $TMPDIR.
	_ = flag.Set("log_dir", dir)
	code := func() int {
		defer os.RemoveAll(dir)
		if runtime.GOOS != "windows" { // SIGTERM cannot be sent there
			bin = filepath.Join(dir, "grpcserver")
			cmd := exec.Command("go", "build", "-race", "-o", bin, ".")
			if out, err := cmd.CombinedOutput(); err != nil {
				fmt.Fprintf(os.Stderr, "building grpcserver: %v\n%s", err, out)
				return 1
			}
		}
		code := m.Run()
		if code == 0 {
			// glog's flushing goroutine starts when glog loads and lives as
			// long as the process.
			if err := goleak.Find(goleak.IgnoreTopFunction("github.com/golang/glog.(*fileSink).flushDaemon")); err != nil {
				fmt.Fprintln(os.Stderr, "grpcserver tests: goroutines left behind:", err)
				return 1
			}
		}
		return code
	}()
	os.Exit(code)
}

// proc is a running grpcserver whose output the test can wait on.
type proc struct {
	t   *testing.T
	cmd *exec.Cmd

	mu      sync.Mutex
	stdout  []string
	stderr  []string
	changed chan struct{} // closed and replaced whenever a line arrives

	exited chan struct{} // closed once the process has exited
	exitAt time.Time
	code   int // the exit code, or -1 if a signal killed it
}

// bound is how long any one wait may take before the test fails; no
// passing run comes near it.
const bound = 20 * time.Second

// startServer runs grpcserver on a free loopback port with args (and -v=1,
// so that it logs each RPC it starts) and waits until it says it listens.
// The process is killed at the end of the test if it is still running; its
// stderr is logged when the test fails.
func startServer(t *testing.T, args ...string) (p *proc, addr string) {
	t.Helper()
	if bin == "" {
		t.Skip("end-to-end tests send SIGTERM, which this system cannot")
	}
	args = append([]string{"-addr", "127.0.0.1:0", "-v", "1"}, args...)
	p = &proc{t: t, cmd: exec.Command(bin, args...), changed: make(chan struct{}), exited: make(chan struct{})}
	// The race detector's runtime sleeps a second at exit by default, which
	// would blur every exit time measured.
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
			p.mu.Lock()
			t.Logf("grpcserver %v stderr:\n%s", args, strings.Join(p.stderr, "\n"))
			p.mu.Unlock()
		}
	})
	return p, strings.TrimPrefix(p.waitLine(false, "listening on "), "listening on ")
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

// count returns how many lines of stderr contain substr.
func (p *proc) count(substr string) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	n := 0
	for _, l := range p.stderr {
		if strings.Contains(l, substr) {
			n++
		}
	}
	return n
}

// waitLines waits until n lines of stderr contain substr.
func (p *proc) waitLines(n int, substr string) {
	p.t.Helper()
	deadline := time.After(bound)
	for {
		p.mu.Lock()
		changed := p.changed
		p.mu.Unlock()
		if p.count(substr) >= n {
			return
		}
		select {
		case <-changed:
		case <-p.exited:
			if p.count(substr) >= n {
				return
			}
			p.t.Fatalf("process exited (code %d) before %d lines with %q", p.code, n, substr)
		case <-deadline:
			p.t.Fatalf("fewer than %d lines with %q within %v", n, substr, bound)
		}
	}
}

// waitLine waits for a line of stdout (or of stderr) that contains substr,
// and returns it.
func (p *proc) waitLine(stderr bool, substr string) string {
	p.t.Helper()
	deadline := time.After(bound)
	find := func() (string, bool) {
		p.mu.Lock()
		defer p.mu.Unlock()
		lines := p.stdout
		if stderr {
			lines = p.stderr
		}
		for _, l := range lines {
			if strings.Contains(l, substr) {
				return l, true
			}
		}
		return "", false
	}
	for {
		p.mu.Lock()
		changed := p.changed
		p.mu.Unlock()
		if l, ok := find(); ok {
			return l
		}
		select {
		case <-changed:
		case <-p.exited:
			if l, ok := find(); ok {
				return l
			}
			p.t.Fatalf("process exited (code %d) without printing %q", p.code, substr)
		case <-deadline:
			p.t.Fatalf("no line with %q within %v", substr, bound)
		}
	}
}

// term sends SIGTERM and returns when it was sent.
func (p *proc) term() time.Time {
	p.t.Helper()
	at := time.Now()
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		p.t.Fatalf("sending SIGTERM: %v", err)
	}
	return at
}

// wait waits for the process to exit and returns its exit code and when it
// exited.
func (p *proc) wait() (code int, at time.Time) {
	p.t.Helper()
	select {
	case <-p.exited:
	case <-time.After(bound):
		p.t.Fatalf("process still running after %v", bound)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.code, p.exitAt
}
