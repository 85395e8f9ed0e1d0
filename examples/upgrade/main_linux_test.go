//go:build linux

package main

import (
	"flag"
	"fmt"
	"os"
	"testing"

	"github.com/b583c413/lameduck/internal/proctest"
	"golang.org/x/sys/unix"
)

// The end-to-end tests run this program as child processes, restart it
// with real signals under load, and check every response. They need Linux:
// a tableflip upgrade starts the new process as a child of the old one, so
// when the old one exits the new one would be adopted by init and its exit
// status lost to the test. PR_SET_CHILD_SUBREAPER makes the test process
// adopt it instead, so that every generation's exit status is read with
// wait4, as a parent reads its own child's.

// bin is this program built with -race, for the tests; plainBin is the same
// built without it, for the benchmark's latency figures.
var bin, plainBin string

func TestMain(m *testing.M) {
	flag.Parse()
	if err := unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0); err != nil {
		fmt.Fprintln(os.Stderr, "PR_SET_CHILD_SUBREAPER:", err)
		os.Exit(1)
	}
	// glog's flushing goroutine starts when glog loads (this test binary
	// links the program) and lives as long as the process.
	os.Exit(proctest.Main(m, "upgrade", func(dir string) error {
		var err error
		if bin, err = proctest.Build(dir, "upgrade-race", ".", "-race"); err != nil {
			return err
		}
		if benchmarking() {
			plainBin, err = proctest.Build(dir, "upgrade", ".")
		}
		return err
	}, proctest.IgnoreGlog))
}

func benchmarking() bool {
	f := flag.Lookup("test.bench")
	return f != nil && f.Value.String() != ""
}
