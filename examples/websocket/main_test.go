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

// bin is this program built with -race, for the end-to-end tests, which run
// it as a child process and stop it with real signals.
var bin string

func TestMain(m *testing.M) {
	flag.Parse()
	dir, err := os.MkdirTemp("", "websocket-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	// In-process tests log through glog; its files go here, not to $TMPDIR.
	_ = flag.Set("log_dir", dir)
	code := func() int {
		defer os.RemoveAll(dir)
		if runtime.GOOS != "windows" { // SIGTERM cannot be sent there
			bin = filepath.Join(dir, "websocket")
			if err := build(bin, "-race"); err != nil {
				fmt.Fprintln(os.Stderr, err)
				return 1
			}
			if *benchSpread {
				benchBin = filepath.Join(dir, "websocket-norace")
				if err := build(benchBin); err != nil {
					fmt.Fprintln(os.Stderr, err)
					return 1
				}
			}
		}
		code := m.Run()
		if code == 0 {
			// glog's flushing goroutine starts when glog loads and lives as
			// long as the process.
			if err := goleak.Find(goleak.IgnoreTopFunction("github.com/golang/glog.(*fileSink).flushDaemon")); err != nil {
				fmt.Fprintln(os.Stderr, "websocket tests: goroutines left behind:", err)
				return 1
			}
		}
		return code
	}()
	os.Exit(code)
}

func build(out string, flags ...string) error {
	args := append(append([]string{"build"}, flags...), "-o", out, ".")
	if b, err := exec.Command("go", args...).CombinedOutput(); err != nil {
		return fmt.Errorf("building the example: %v\n%s", err, b)
	}
	return nil
}

// proc is a running child process whose output the test can wait on.
type proc struct {
	t    *testing.T
	cmd  *exec.Cmd
	name string
	addr string // where a server listens, from its "listening on" line

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

// startServer runs the example (bin) as instance name on addr with args,
// and waits until it says where it listens. It is killed at the end of the test
// if it still runs; its stderr is logged when the test fails.
func startServer(t *testing.T, bin, name, addr string, args ...string) *proc {
	t.Helper()
	if bin == "" {
		t.Skip("end-to-end tests send SIGTERM, which this system cannot")
	}
	p := startProc(t, bin, append([]string{"-addr", addr, "-name", name}, args...)...)
	p.name = name
	p.addr = strings.TrimPrefix(p.waitLine(false, "listening on "), "listening on ")
	return p
}

// startProc runs path with args.
func startProc(t *testing.T, path string, args ...string) *proc {
	t.Helper()
	p := &proc{t: t, cmd: exec.Command(path, args...), name: filepath.Base(path), changed: make(chan struct{}), exited: make(chan struct{})}
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
			t.Logf("%s %v stderr:\n%s", p.name, args, strings.Join(p.stderr, "\n"))
			p.mu.Unlock()
		}
	})
	return p
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

// waitLine waits for a line of stdout (or of stderr) that contains substr,
// and returns it.
func (p *proc) waitLine(stderr bool, substr string) string {
	p.t.Helper()
	return p.waitLineAfter(stderr, 0, substr)
}

// waitLineAfter waits for a line that contains substr, after the first
// skip lines, and returns it.
func (p *proc) waitLineAfter(stderr bool, skip int, substr string) string {
	p.t.Helper()
	deadline := time.After(bound)
	find := func() (string, chan struct{}, bool) {
		p.mu.Lock()
		defer p.mu.Unlock()
		lines := p.stdout
		if stderr {
			lines = p.stderr
		}
		for _, l := range lines[min(skip, len(lines)):] {
			if strings.Contains(l, substr) {
				return l, nil, true
			}
		}
		return "", p.changed, false
	}
	for {
		l, changed, ok := find()
		if ok {
			return l
		}
		select {
		case <-changed:
		case <-p.exited:
			if l, _, ok := find(); ok {
				return l
			}
			p.t.Fatalf("%s exited (code %d) without printing %q", p.name, p.code, substr)
		case <-deadline:
			p.t.Fatalf("%s: no line with %q within %v", p.name, substr, bound)
		}
	}
}

// lines returns a copy of the lines of stdout, or of stderr.
func (p *proc) lines(stderr bool) []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	if stderr {
		return append([]string(nil), p.stderr...)
	}
	return append([]string(nil), p.stdout...)
}

// term sends SIGTERM and returns when it was sent.
func (p *proc) term() time.Time {
	p.t.Helper()
	at := time.Now()
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		p.t.Fatalf("sending SIGTERM to %s: %v", p.name, err)
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
		p.t.Fatalf("%s still running after %v", p.name, bound)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.code, p.exitAt
}
