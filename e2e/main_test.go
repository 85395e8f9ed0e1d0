// Package e2e proves the example programs end to end: each is built once
// with -race, run as a child process, loaded over loopback and stopped with
// real signals.
package e2e

import (
	"flag"
	"fmt"
	"os"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/b583c413/lameduck/internal/proctest"
)

var long = flag.Bool("long", false, "repeat the load scenarios many more times")

// bins maps an example's name to the path of its race-enabled binary.
var bins = map[string]string{}

func TestMain(m *testing.M) {
	if addr := os.Getenv(plainEnv); addr != "" {
		delay, _ := time.ParseDuration(os.Getenv(plainEnv + "_DELAY"))
		os.Exit(plainServer(addr, delay))
	}
	flag.Parse()
	if runtime.GOOS == "windows" {
		// The scenarios send SIGTERM, which Windows cannot deliver.
		fmt.Println("e2e: skipped on windows")
		os.Exit(0)
	}
	os.Exit(proctest.Main(m, "lameduck", func(dir string) error {
		for _, name := range []string{"httpserver", "worker"} {
			bin, err := proctest.Build(dir, name, "github.com/b583c413/lameduck/examples/"+name, "-race")
			if err != nil {
				return err
			}
			bins[name] = bin
		}
		return nil
	}))
}

// bound is how long any one wait in these tests may take before the test
// fails; no passing run comes near it.
const bound = proctest.DefaultBound

// listenAddr waits for httpserver's "listening on HOST:PORT" line.
func listenAddr(t *testing.T, p *proctest.Proc) string {
	t.Helper()
	return strings.TrimPrefix(p.WaitFor(false, 1, "listening on ")[0], "listening on ")
}

// lastStdout returns the last line the process printed on stdout.
func lastStdout(p *proctest.Proc) string {
	lines := p.Lines(false)
	if len(lines) == 0 {
		return ""
	}
	return lines[len(lines)-1]
}
