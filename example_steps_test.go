package lameduck_test

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/b583c413/lameduck"
)

// failureLogger prints the log lines that report a failure, which are the
// same on every run.
type failureLogger struct{}

func (failureLogger) Infof(format string, args ...any) {
	if line := fmt.Sprintf(format, args...); strings.Contains(line, "failed") {
		fmt.Println(line)
	}
}

// A server that stops as soon as it is asked to.
func quickServer() lameduck.ServerFuncs {
	stop := make(chan struct{})
	return lameduck.ServerFuncs{
		ServeFunc:    func(context.Context) error { <-stop; return nil },
		ShutdownFunc: func(context.Context) error { close(stop); return nil },
	}
}

// Post-shutdown steps run once the server has stopped, in the order given:
// here, after the drain, the metrics are flushed and then the database
// pool that the handlers used is closed.
func ExampleWithPostShutdown() {
	ctx, cancel := context.WithCancel(context.Background())
	cancel() // stands in for SIGTERM
	err := lameduck.Run(ctx, quickServer(), lameduck.WithoutLogger(), lameduck.Signals(),
		lameduck.WithPostShutdown(
			func(context.Context) error { fmt.Println("metrics flushed"); return nil },
			func(context.Context) error { fmt.Println("database closed"); return nil },
		))
	fmt.Println("Run:", err)
	// Output:
	// metrics flushed
	// database closed
	// Run: <nil>
}

// A named step is reported by its name as well as its position.
func ExampleNamed() {
	deregister := func(context.Context) error { return errors.New("consul unreachable") }
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	lameduck.Run(ctx, quickServer(), lameduck.WithLogger(failureLogger{}), lameduck.Signals(),
		lameduck.WithPreShutdown(lameduck.Named("deregister", deregister), lameduck.Delay(0)))
	// Output:
	// lameduck: pre-shutdown step 1 of 2 (deregister) failed: consul unreachable
}
