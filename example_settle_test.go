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
// "broker" is a slice of lines). A poison job is dead-lettered rather than
// stopping the service, because OnError goes on past it.
func ExampleSettle() {
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
	settle := func(ctx context.Context, job string, out lameduck.Outcome) {
		// ctx is live even after Close, for the close grace.
		switch out.Kind {
		case lameduck.ItemDone:
			fmt.Printf("ack %q\n", job)
		case lameduck.ItemFailed, lameduck.ItemPanicked:
			fmt.Printf("dead-letter %q: %v\n", job, out.Err)
		case lameduck.ItemCancelled:
			fmt.Printf("hand back %q\n", job)
		}
	}
	w := lameduck.FromWorker(lameduck.ChanSource(jobs), handle,
		lameduck.OnError(func(context.Context, string, error) error { return nil }),
		lameduck.Settle(settle))
	err := lameduck.Run(context.Background(), w, lameduck.WithoutLogger(), lameduck.CloseGrace(2*time.Second))
	fmt.Println("Run:", err)
	// Output:
	// ack "resize photo"
	// dead-letter "poison": cannot parse
	// ack "send mail"
	// Run: <nil>
}
