package lameduck_test

import (
	"context"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/b583c413/lameduck"
)

// A blocking pop from a pooled client (BLMOVE through a go-redis pool, a
// JetStream Fetch) is safe to call from several goroutines, and each call
// waits a network round trip. ConcurrentNext lets each free handler slot
// wait on a call of its own: here the three slots' pops are all waiting
// before the first job arrives. Without it the slots would take turns, and
// the pops would wait one after another.
func ExampleWorker_ConcurrentNext() {
	var (
		mu      sync.Mutex
		waiting int
		most    int
		left    = 3
	)
	arrived := make(chan struct{})
	var arrive sync.Once
	pop := func(ctx context.Context) (int, error) {
		mu.Lock()
		waiting++
		most = max(most, waiting)
		if waiting == 3 {
			arrive.Do(func() { close(arrived) }) // the jobs arrive once all three pops wait
		}
		mu.Unlock()
		select {
		case <-arrived:
		case <-time.After(time.Second): // bounded, in case they do not
		}
		mu.Lock()
		defer mu.Unlock()
		waiting--
		if left == 0 {
			return 0, io.EOF
		}
		left--
		return left, nil
	}
	handle := func(context.Context, int) error { return nil }

	w := lameduck.FromWorker(pop, handle).Concurrency(3).ConcurrentNext()
	err := lameduck.Run(context.Background(), w, lameduck.WithoutLogger())
	fmt.Println("Run:", err)
	fmt.Println("pops waiting at once:", most)
	// Output:
	// Run: <nil>
	// pops waiting at once: 3
}
