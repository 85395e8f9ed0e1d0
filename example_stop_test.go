package lameduck_test

import (
	"context"
	"errors"
	"fmt"

	"github.com/b583c413/lameduck"
)

// A worker that goes on past a bad job: the policy logs it (or sends it to a
// dead-letter queue) and returns nil. Without OnError the first failure
// would stop the service.
func ExampleWorker_OnError() {
	jobs := make(chan string, 3)
	jobs <- "resize photo 1"
	jobs <- "resize photo 2 (corrupt)"
	jobs <- "resize photo 3"
	close(jobs)

	errCorrupt := errors.New("corrupt image")
	process := func(ctx context.Context, job string) error {
		if job == "resize photo 2 (corrupt)" {
			return errCorrupt
		}
		fmt.Println("done:", job)
		return nil
	}
	w := lameduck.FromWorker(lameduck.ChanSource(jobs), process).OnError(func(ctx context.Context, job string, err error) error {
		fmt.Printf("skipped %q: %v\n", job, err)
		return nil
	})
	fmt.Println("Run:", lameduck.Run(context.Background(), w, lameduck.WithoutLogger()))
	// Output:
	// done: resize photo 1
	// skipped "resize photo 2 (corrupt)": corrupt image
	// done: resize photo 3
	// Run: <nil>
}

// A server that loses what it needs to serve (a lease, a connection) asks
// for a graceful stop instead of failing Serve, which would make Run close
// it at once: the pre-shutdown steps run, Shutdown drains, and Run returns
// the cause.
func ExampleStop() {
	errLease := errors.New("lost the lease")
	stopped := make(chan struct{})
	svr := lameduck.ServerFuncs{
		ServeFunc: func(ctx context.Context) error {
			lameduck.Stop(ctx, errLease)
			<-stopped
			return nil
		},
		ShutdownFunc: func(context.Context) error {
			fmt.Println("draining")
			close(stopped)
			return nil
		},
	}
	fmt.Println("Run:", lameduck.Run(context.Background(), svr, lameduck.WithoutLogger(),
		lameduck.WithPreShutdown(func(context.Context) error { fmt.Println("readiness fails"); return nil })))
	// Output:
	// readiness fails
	// draining
	// Run: lost the lease
}
