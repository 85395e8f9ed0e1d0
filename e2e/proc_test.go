package e2e

import (
	"bufio"
	"io"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// proc is a child process whose output the test can wait on.
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

// start runs bin with args and fails the test if it cannot. The process is
// killed at the end of the test if it is still running; its stderr is logged
// when the test fails.
func start(t *testing.T, bin string, args ...string) *proc {
	t.Helper()
	p := &proc{t: t, cmd: exec.Command(bin, args...), changed: make(chan struct{}), exited: make(chan struct{})}
	// The race detector's runtime sleeps a second at exit by default; that
	// second is not the program's, and would blur every exit time measured.
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
		readers.Wait() // Wait may be called only once the pipes are drained
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
			t.Logf("%s stderr:\n%s", bin, strings.Join(p.stderr, "\n"))
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

// bound is how long any one wait in these tests may take before the test
// fails; no passing run comes near it.
const bound = 20 * time.Second

// waitLine waits for a line of stdout (or of stderr) that contains substr,
// and returns it.
func (p *proc) waitLine(stderr bool, substr string) string {
	p.t.Helper()
	deadline := time.After(bound)
	for {
		p.mu.Lock()
		lines := p.stdout
		if stderr {
			lines = p.stderr
		}
		for _, l := range lines {
			if strings.Contains(l, substr) {
				p.mu.Unlock()
				return l
			}
		}
		changed := p.changed
		p.mu.Unlock()
		select {
		case <-changed:
		case <-p.exited:
			p.mu.Lock()
			lines := append(p.stdout, p.stderr...)
			p.mu.Unlock()
			for _, l := range lines {
				if strings.Contains(l, substr) {
					return l
				}
			}
			p.t.Fatalf("process exited (code %d) without printing %q", p.code, substr)
		case <-deadline:
			p.t.Fatalf("no line with %q within %v", substr, bound)
		}
	}
}

// addr waits for httpserver's "listening on HOST:PORT" line.
func (p *proc) addr() string {
	p.t.Helper()
	return strings.TrimPrefix(p.waitLine(false, "listening on "), "listening on ")
}

// signal sends sig and returns when it was sent.
func (p *proc) signal(sig os.Signal) time.Time {
	p.t.Helper()
	at := time.Now()
	if err := p.cmd.Process.Signal(sig); err != nil {
		p.t.Fatalf("sending %v: %v", sig, err)
	}
	return at
}

func (p *proc) term() time.Time { return p.signal(syscall.SIGTERM) }

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

// lastStdout returns the last line the process printed on stdout.
func (p *proc) lastStdout() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.stdout) == 0 {
		return ""
	}
	return p.stdout[len(p.stdout)-1]
}
