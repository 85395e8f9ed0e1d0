package main

import (
	"flag"
	"os"
	"runtime"
	"strings"
	"testing"

	"github.com/b583c413/lameduck/internal/proctest"
)

// bin is this program built with -race, for the end-to-end tests, which run
// it as a child process and stop it with real signals.
var bin string

// bound is how long any one wait may take before the test fails; no
// passing run comes near it.
const bound = proctest.DefaultBound

func TestMain(m *testing.M) {
	os.Exit(proctest.Main(m, "websocket", func(dir string) error {
		// In-process tests log through glog; its files go here, not to $TMPDIR.
		_ = flag.Set("log_dir", dir)
		if runtime.GOOS == "windows" { // SIGTERM cannot be sent there
			return nil
		}
		var err error
		if bin, err = proctest.Build(dir, "websocket", ".", "-race"); err != nil {
			return err
		}
		if *benchSpread {
			benchBin, err = proctest.Build(dir, "websocket-norace", ".")
		}
		return err
	}, proctest.IgnoreGlog))
}

// server is a running instance of the example.
type server struct {
	*proctest.Proc
	addr string // where it listens, from its "listening on" line
}

// startServer runs the example (bin) as instance name on addr with args,
// and waits until it says where it listens. It is killed at the end of the test
// if it still runs; its stderr is logged when the test fails.
func startServer(t *testing.T, bin, name, addr string, args ...string) *server {
	t.Helper()
	if bin == "" {
		t.Skip("end-to-end tests send SIGTERM, which this system cannot")
	}
	p := proctest.Start(t, bin, append([]string{"-addr", addr, "-name", name}, args...)...)
	p.Name = name
	return &server{p, strings.TrimPrefix(p.WaitFor(false, 1, "listening on ")[0], "listening on ")}
}
