package lameduck

import (
	"flag"
	"fmt"
	"os"
	"testing"

	"github.com/golang/glog"
	"go.uber.org/goleak"
)

// glogDirEnv passes the glog directory to copies of the test binary.
const glogDirEnv = "LAMEDUCK_TEST_GLOG_DIR"

func TestMain(m *testing.M) {
	// Tests that run with the default logger would leave a glog file per
	// run in $TMPDIR; glog's files go to a directory removed on exit. A
	// copy of this binary run by a test (which may end by a signal) uses
	// its parent's directory, so it leaves nothing behind either.
	dir, own := os.Getenv(glogDirEnv), false
	if dir == "" {
		var err error
		if dir, err = os.MkdirTemp("", "lameduck-glog-"); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		own = true
		os.Setenv(glogDirEnv, dir)
	}
	if err := flag.Set("log_dir", dir); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	code := m.Run()
	glog.Flush()
	if own {
		os.RemoveAll(dir)
	}
	if code == 0 {
		// glog starts a flushing goroutine when the package loads; it is
		// glog's, not ours, and lives as long as the process.
		if err := goleak.Find(goleak.IgnoreTopFunction("github.com/golang/glog.(*fileSink).flushDaemon")); err != nil {
			fmt.Fprintln(os.Stderr, "goleak: goroutines left behind:", err)
			code = 1
		}
	}
	os.Exit(code)
}
