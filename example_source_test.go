package lameduck_test

import (
	"context"
	"fmt"

	"github.com/b583c413/lameduck"
)

// A source with a life: StartSource recovers what a killed predecessor left
// behind, and ReleaseSource hands back what a prefetching client had
// buffered when lame-duck mode began, so that it is handled rather than
// lost. Here the client has buffered "b" and "c" while next waits on the
// network for more, and the first job's handler begins lame-duck mode.
func ExampleWorker_ReleaseSource() {
	ctx, stop := context.WithCancel(context.Background())
	buffered := []string{"b", "c"}
	first := true
	next := func(ctx context.Context) (string, error) {
		if first {
			first = false
			return "a", nil
		}
		<-ctx.Done() // waiting for the broker; lame-duck mode ends the wait
		return "", ctx.Err()
	}
	handle := func(_ context.Context, job string) error {
		fmt.Println("handled", job)
		if job == "a" {
			stop() // as SIGTERM would
		}
		return nil
	}
	w := lameduck.FromWorker(next, handle).
		StartSource(func(context.Context) error {
			fmt.Println("recovered 0 jobs")
			return nil
		}).
		ReleaseSource(func(context.Context) ([]string, error) {
			fmt.Println("released", buffered)
			return buffered, nil
		})
	fmt.Println("Run:", lameduck.Run(ctx, w, lameduck.WithoutLogger()))
	// Output:
	// recovered 0 jobs
	// handled a
	// released [b c]
	// handled b
	// handled c
	// Run: <nil>
}
