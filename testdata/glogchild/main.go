// Command glogchild is run by TestDefaultLoggerChildProcess: a program with
// the default logger and no glog flags whose drain outlasts its period. It
// begins lame-duck mode by itself, through its context, so that the test
// needs no signals.
package main

import (
	"context"
	"flag"
	"os"
	"time"

	"github.com/b583c413/lameduck"
)

func main() {
	period := flag.Duration("period", 3*time.Second, "the lame-duck period")
	flag.Parse()

	stuck := make(chan struct{})
	svr := lameduck.ServerFuncs{
		ServeFunc: func(ctx context.Context) error {
			<-ctx.Done() // cancelled by Close
			return nil
		},
		// A drain that never finishes on its own, not even at its deadline.
		ShutdownFunc: func(context.Context) error { <-stuck; return nil },
		CloseFunc:    func() error { close(stuck); return nil },
	}
	r, err := lameduck.NewRunner(svr, lameduck.Period(*period))
	if err != nil {
		os.Exit(1)
	}
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		<-r.Ready()
		cancel()
	}()
	// os.Exit right after Run, as the README's programs do: whatever glog
	// buffered must already be written.
	os.Exit(lameduck.ExitCode(r.Run(ctx)))
}
