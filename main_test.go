package lameduck

import (
	"testing"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	// glog starts a flushing goroutine when the package loads; it is glog's,
	// not ours, and lives as long as the process.
	goleak.VerifyTestMain(m, goleak.IgnoreTopFunction("github.com/golang/glog.(*fileSink).flushDaemon"))
}
