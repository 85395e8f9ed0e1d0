// Package e2e proves the example programs end to end: each is built once
// with -race, run as a child process, loaded over loopback and stopped with
// real signals.
package e2e

import (
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"testing"
	"time"

	"go.uber.org/goleak"
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
	dir, err := os.MkdirTemp("", "lameduck-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	code := func() int {
		defer os.RemoveAll(dir)
		for _, name := range []string{"httpserver", "worker"} {
			bin := filepath.Join(dir, name)
			cmd := exec.Command("go", "build", "-race", "-o", bin, "github.com/b583c413/lameduck/examples/"+name)
			if out, err := cmd.CombinedOutput(); err != nil {
				fmt.Fprintf(os.Stderr, "building %s: %v\n%s", name, err, out)
				return 1
			}
			bins[name] = bin
		}
		code := m.Run()
		if code == 0 {
			if err := goleak.Find(); err != nil {
				fmt.Fprintln(os.Stderr, "e2e: goroutines left behind:", err)
				return 1
			}
		}
		return code
	}()
	os.Exit(code)
}
