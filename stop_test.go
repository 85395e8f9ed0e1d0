package lameduck

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
)

// TestStopAcceptedIsReported checks the promise behind Stop's result: a
// cause that Stop accepted (it returned true) is in what Run returns. The
// cases race a Stop against Serve's return, where Run settles its result,
// so each runs many rounds; a single lost cause fails the test.
func TestStopAcceptedIsReported(t *testing.T) {
	const rounds = 5000
	t.Run("a Stop made as Serve returns nil is reported", func(t *testing.T) {
		errFlush := errors.New("flush failed")
		for round := range rounds {
			accepted := make(chan bool, 1)
			svr := ServerFuncs{ServeFunc: func(ctx context.Context) error {
				go func() { accepted <- Stop(ctx, errFlush) }()
				return nil
			}}
			err := Run(context.Background(), svr, Signals(), WithoutLogger())
			if <-accepted && !errors.Is(err, errFlush) {
				t.Fatalf("round %d: Stop returned true, then Run = %v, want an error containing %v", round, err, errFlush)
			}
		}
	})
	t.Run("every cause a busy reporter got accepted is reported", func(t *testing.T) {
		for round := range rounds {
			var (
				mu   sync.Mutex
				took []error
				wg   sync.WaitGroup
			)
			svr := ServerFuncs{ServeFunc: func(ctx context.Context) error {
				wg.Go(func() {
					for i := 0; ; i++ {
						cause := fmt.Errorf("report %d", i)
						if !Stop(ctx, cause) {
							return
						}
						mu.Lock()
						took = append(took, cause)
						mu.Unlock()
					}
				})
				return nil
			}}
			err := Run(context.Background(), svr, Signals(), WithoutLogger())
			wg.Wait()
			for _, cause := range took {
				if !errors.Is(err, cause) {
					t.Fatalf("round %d: Stop accepted %q, but Run = %v", round, cause, err)
				}
			}
		}
	})
}
