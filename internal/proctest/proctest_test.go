package proctest

import (
	"fmt"
	"os"
	"os/signal"
	"runtime"
	"slices"
	"syscall"
	"testing"
)

// childEnv makes this test binary act as the child process of TestProc.
const childEnv = "PROCTEST_CHILD"

func TestMain(m *testing.M) {
	if os.Getenv(childEnv) != "" {
		os.Exit(child())
	}
	os.Exit(Main(m, "proctest", nil))
}

// child writes two lines to stderr, then "ready" to stdout once it handles
// SIGTERM; on SIGTERM it writes "terminated" to stderr and exits 3.
func child() int {
	term := make(chan os.Signal, 1)
	signal.Notify(term, syscall.SIGTERM)
	fmt.Fprintln(os.Stderr, "line 1")
	fmt.Fprintln(os.Stderr, "line 2")
	fmt.Println("ready")
	<-term
	fmt.Fprintln(os.Stderr, "terminated")
	return 3
}

func TestProc(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("Windows cannot deliver SIGTERM")
	}
	t.Setenv(childEnv, "1")
	p := Start(t, os.Args[0])
	p.WaitFor(false, 1, "ready")
	if got, want := p.WaitFor(true, 2, "line "), []string{"line 1", "line 2"}; !slices.Equal(got, want) {
		t.Errorf("WaitFor(stderr, 2, %q) = %q, want %q", "line ", got, want)
	}
	if got := p.WaitAfter(true, 1, "line "); got != "line 2" {
		t.Errorf("WaitAfter(stderr, 1, %q) = %q, want %q", "line ", got, "line 2")
	}
	sigAt := p.Term()
	code, exitAt := p.Wait()
	if code != 3 || exitAt.Before(sigAt) {
		t.Errorf("Wait() = %d at %v after SIGTERM, want 3 after it", code, exitAt.Sub(sigAt))
	}
	select {
	case <-p.Exited():
	default:
		t.Error("Exited() not closed after Wait")
	}
	if got, want := p.Lines(false), []string{"ready"}; !slices.Equal(got, want) {
		t.Errorf("Lines(stdout) = %q, want %q", got, want)
	}
	if got := p.WaitFor(true, 1, "terminated"); len(got) != 1 {
		t.Errorf("WaitFor(stderr, 1, %q) after exit = %q", "terminated", got)
	}
}
