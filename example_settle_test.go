package lameduck_test

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/b583c413/lameduck"
)

// A consumer that acks, dead-letters and hands back in one place. handle
// only does the work; Settle tells the broker how each job ended (here the
// "broker" prints a line). A poison job is dead-lettered rather than
// stopping the service, because OnError goes on past it.
func ExampleWorker_Settle() {
	jobs := make(chan string, 3)
	jobs <- "resize photo"
	jobs <- "poison"
	jobs <- "send mail"
	close(jobs)

	handle := func(ctx context.Context, job string) error {
		if job == "poison" {
			return errors.New("cannot parse")
		}
		return nil
	}
	settle := func(ctx context.Context, job string, err error) {
		// ctx is live even after Close, for the close grace.
		switch {
		case err == nil:
			fmt.Printf("ack %q\n", job)
		case errors.Is(err, lameduck.ErrClosed):
			fmt.Printf("hand back %q\n", job) // cut short: not processed
		default:
			fmt.Printf("dead-letter %q: %v\n", job, err) // failed or panicked
		}
	}
	w := lameduck.FromWorker(lameduck.ChanSource(jobs), handle).
		OnError(func(context.Context, string, error) error { return nil }).
		Settle(settle)
	err := lameduck.Run(context.Background(), w, lameduck.WithoutLogger(), lameduck.CloseGrace(2*time.Second))
	fmt.Println("Run:", err)
	// Output:
	// ack "resize photo"
	// dead-letter "poison": cannot parse
	// ack "send mail"
	// Run: <nil>
}
