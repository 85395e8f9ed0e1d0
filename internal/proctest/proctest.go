// Package proctest is the harness the end-to-end test suites share: they
// build an example program (usually with -race), run it as a child process,
// wait for lines of its stdout or stderr, send it real signals and check
// its exit code and exit time.
//
// It is imported only by _test.go files (of this module and of the nested
// ones, which reach it through their replace directive; the internal rule
// goes by import path). That is why it may import testing and goleak: they
// never enter the library's own non-test build.
//
// What stays with each suite: which binaries it builds and with which
// flags, where a program says it listens, how long its waits may last when
// not DefaultBound, and whether it runs at all on Windows (which cannot
// deliver SIGTERM).
package proctest

import (
	"bufio"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"go.uber.org/goleak"
)

// DefaultBound is how long any one wait of a Proc may take before the test
// fails, unless its Bound is changed; no passing run comes near it.
const DefaultBound = 20 * time.Second

// IgnoreGlog is the goleak option for glog's flushing goroutine, which
// starts when glog loads and lives as long as the process.
var IgnoreGlog = goleak.IgnoreTopFunction("github.com/golang/glog.(*fileSink).flushDaemon")

// Main is the body of a TestMain. It parses the flags (if that is not done
// yet), makes a temporary directory, hands it to setup (which builds what
// the tests run, with Build, and may be nil), runs the tests and, if they
// passed, fails if goroutines are left behind other than those ignore
// names. The directory is removed at the end. It returns the exit code for
// os.Exit; name prefixes its messages and the directory's name.
func Main(m *testing.M, name string, setup func(dir string) error, ignore ...goleak.Option) int {
	if !flag.Parsed() {
		flag.Parse()
	}
	dir, err := os.MkdirTemp("", name+"-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	if setup != nil {
		if err := setup(dir); err != nil {
			fmt.Fprintf(os.Stderr, "%s tests: %v\n", name, err)
			return 1
		}
	}
	code := m.Run()
	if code == 0 {
		if err := goleak.Find(ignore...); err != nil {
			fmt.Fprintf(os.Stderr, "%s tests: goroutines left behind: %v\n", name, err)
			return 1
		}
	}
	return code
}

// Build runs `go build FLAGS -o DIR/NAME PKG` and returns the binary's path.
// The error carries the compiler's output.
func Build(dir, name, pkg string, flags ...string) (string, error) {
	bin := filepath.Join(dir, name)
	args := append(append([]string{"build"}, flags...), "-o", bin, pkg)
	if out, err := exec.Command("go", args...).CombinedOutput(); err != nil {
		return "", fmt.Errorf("go %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return bin, nil
}

// Proc is a running child process whose output a test can wait on. Its
// methods are for the test's goroutine: those that wait fail the test with
// Fatalf.
type Proc struct {
	// Name names the process in failures and logs; Start sets it to the
	// binary's base name.
	Name string
	// Bound is how long any one wait may take; Start sets it to
	// DefaultBound.
	Bound time.Duration

	t   testing.TB
	cmd *exec.Cmd

	mu      sync.Mutex
	lines   [2][]string   // stdout's lines, stderr's lines
	changed chan struct{} // closed and replaced whenever a line arrives

	exited chan struct{} // closed once it has exited and its output is read
	exitAt time.Time
	code   int // the exit code, or -1 if a signal killed it
}

// Start runs bin with args, with GORACE=atexit_sleep_ms=0 added to the
// environment, and fails the test if it cannot. At the end of the test the
// process is killed if it still runs, and its stderr is logged if the test
// failed.
func Start(t testing.TB, bin string, args ...string) *Proc {
	t.Helper()
	p := &Proc{
		Name: filepath.Base(bin), Bound: DefaultBound,
		t: t, cmd: exec.Command(bin, args...),
		changed: make(chan struct{}), exited: make(chan struct{}),
	}
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
	readers.Go(func() { p.read(stdout, 0) })
	readers.Go(func() { p.read(stderr, 1) })
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
			t.Logf("%s %v stderr:\n%s", p.Name, args, strings.Join(p.Lines(true), "\n"))
		}
	})
	return p
}

func (p *Proc) read(r io.Reader, stream int) {
	s := bufio.NewScanner(r)
	s.Buffer(nil, 1<<20) // a stop report is one long line
	for s.Scan() {
		p.mu.Lock()
		p.lines[stream] = append(p.lines[stream], s.Text())
		close(p.changed)
		p.changed = make(chan struct{})
		p.mu.Unlock()
	}
}

func streamOf(stderr bool) int {
	if stderr {
		return 1
	}
	return 0
}

// Lines returns a copy of the lines read so far of stdout, or of stderr.
func (p *Proc) Lines(stderr bool) []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]string(nil), p.lines[streamOf(stderr)]...)
}

// WaitFor waits until n lines of stdout (or of stderr) contain substr, and
// returns every such line read by then.
func (p *Proc) WaitFor(stderr bool, n int, substr string) []string {
	p.t.Helper()
	return p.wait(stderr, 0, n, substr)
}

// WaitAfter waits for a line of stdout (or of stderr) that contains substr
// and comes after the first skip lines (a count taken earlier from Lines),
// and returns the first such line.
func (p *Proc) WaitAfter(stderr bool, skip int, substr string) string {
	p.t.Helper()
	return p.wait(stderr, skip, 1, substr)[0]
}

func (p *Proc) wait(stderr bool, skip, n int, substr string) []string {
	p.t.Helper()
	what := "stdout"
	if stderr {
		what = "stderr"
	}
	deadline := time.After(p.Bound)
	for {
		found, changed := p.find(stderr, skip, substr)
		if len(found) >= n {
			return found
		}
		select {
		case <-changed:
		case <-p.exited:
			// Every line is read by now; one may have come since find.
			if found, _ := p.find(stderr, skip, substr); len(found) >= n {
				return found
			}
			p.t.Fatalf("%s exited (code %d) before %d lines of %s with %q", p.Name, p.code, n, what, substr)
		case <-deadline:
			p.t.Fatalf("%s: fewer than %d lines of %s with %q within %v", p.Name, n, what, substr, p.Bound)
		}
	}
}

// find returns the lines after skip that contain substr, and the channel
// that is closed when the next line arrives.
func (p *Proc) find(stderr bool, skip int, substr string) ([]string, <-chan struct{}) {
	p.mu.Lock()
	defer p.mu.Unlock()
	lines := p.lines[streamOf(stderr)]
	var found []string
	for _, l := range lines[min(skip, len(lines)):] {
		if strings.Contains(l, substr) {
			found = append(found, l)
		}
	}
	return found, p.changed
}

// Signal sends sig and returns when it was sent.
func (p *Proc) Signal(sig os.Signal) time.Time {
	p.t.Helper()
	at := time.Now()
	if err := p.cmd.Process.Signal(sig); err != nil {
		p.t.Fatalf("sending %v to %s: %v", sig, p.Name, err)
	}
	return at
}

// Term sends SIGTERM and returns when it was sent.
func (p *Proc) Term() time.Time {
	p.t.Helper()
	return p.Signal(syscall.SIGTERM)
}

// Exited returns a channel that is closed once the process has exited and
// all its output has been read; Wait then returns at once.
func (p *Proc) Exited() <-chan struct{} { return p.exited }

// Wait waits for the process to exit and returns its exit code (-1 if a
// signal killed it) and when the test saw it exit.
func (p *Proc) Wait() (code int, at time.Time) {
	p.t.Helper()
	select {
	case <-p.exited:
	case <-time.After(p.Bound):
		p.t.Fatalf("%s still running after %v", p.Name, p.Bound)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.code, p.exitAt
}
