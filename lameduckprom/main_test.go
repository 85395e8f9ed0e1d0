package lameduckprom

import (
	"testing"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	// lameduck imports glog, whose flushing goroutine starts when the
	// package loads and lives as long as the process.
	goleak.VerifyTestMain(m, goleak.IgnoreTopFunction("github.com/golang/glog.(*fileSink).flushDaemon"))
}
