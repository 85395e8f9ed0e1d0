package main

import (
	"os"
	"runtime"
	"strings"
	"testing"

	"github.com/b583c413/lameduck/internal/proctest"
)

// bin is the path of this program built with -race, for the end-to-end
// tests, which run it as a child process and stop it with real signals.
var bin string

// bound is how long any one wait may take before the test fails; no
// passing run comes near it.
const bound = proctest.DefaultBound

func TestMain(m *testing.M) {
	os.Exit(proctest.Main(m, "http3server", func(dir string) error {
		if runtime.GOOS == "windows" { // SIGTERM cannot be sent there
			return nil
		}
		var err error
		bin, err = proctest.Build(dir, "http3server", ".", "-race")
		return err
	}, proctest.IgnoreGlog))
}

// start runs http3server on a free loopback port with args (and -v=1, so
// that it logs each slow request it begins) and waits until it says it
// listens. The process is killed at the end of the test if it is still
// running; its stderr is logged when the test fails.
func start(t *testing.T, args ...string) (p *proctest.Proc, addr string) {
	t.Helper()
	if bin == "" {
		t.Skip("end-to-end tests send SIGTERM, which this system cannot")
	}
	p = proctest.Start(t, bin, append([]string{"-addr", "127.0.0.1:0", "-v", "1"}, args...)...)
	return p, strings.TrimPrefix(p.WaitFor(false, 1, "listening on ")[0], "listening on ")
}
