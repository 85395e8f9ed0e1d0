//go:build linux

package main

import (
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"go.uber.org/goleak"
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
	dir, err := os.MkdirTemp("", "upgrade-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	code := func() int {
		defer os.RemoveAll(dir)
		bin = filepath.Join(dir, "upgrade-race")
		plainBin = filepath.Join(dir, "upgrade")
		builds := [][]string{{"build", "-race", "-o", bin, "."}}
		if benchmarking() {
			builds = append(builds, []string{"build", "-o", plainBin, "."})
		}
		for _, args := range builds {
			if out, err := exec.Command("go", args...).CombinedOutput(); err != nil {
				fmt.Fprintf(os.Stderr, "go %v: %v\n%s", args, err, out)
				return 1
			}
		}
		code := m.Run()
		if code == 0 {
			// glog's flushing goroutine starts when glog loads (this test
			// binary links the program) and lives as long as the process.
			if err := goleak.Find(goleak.IgnoreTopFunction("github.com/golang/glog.(*fileSink).flushDaemon")); err != nil {
				fmt.Fprintln(os.Stderr, "upgrade tests: goroutines left behind:", err)
				return 1
			}
		}
		return code
	}()
	os.Exit(code)
}

func benchmarking() bool {
	f := flag.Lookup("test.bench")
	return f != nil && f.Value.String() != ""
}
