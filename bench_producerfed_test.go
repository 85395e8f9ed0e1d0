package lameduck

import (
	"context"
	"fmt"
	"io"
	"sync"
	"sync/atomic"
	"testing"
)

// The per-item cost of FromWorker on the shape of issue 21: a producer
// goroutine sends b.N ints into a buffered channel of 1 024 and closes it,
// and the consumer selects on the channel and its context. The hand loop
// is
//
//	for { select { case v, ok := <-items: …; case <-ctx.Done(): … }; handle(v) }
//
// run by n goroutines over the one channel; lameduck runs
// FromWorker(next, handle), next being the same select (io.EOF once the
// channel is closed), through Run with no signals and no logger. With
// settle=true the Worker has a Settle hook and the hand loop calls the same
// function itself after handle. At n > 1, impl=lameduck says ConcurrentNext
// (a channel receive is safe for concurrent use, and the hand loop's
// goroutines do receive at once) and impl=lameduck-turns leaves the
// default, in which the slots take turns calling next. sec/op is per item.
func BenchmarkWorkerProducerFed(b *testing.B) {
	for _, settle := range []bool{false, true} {
		for _, n := range []int{1, 4} {
			impls := []string{"lameduck", "handloop"}
			if n > 1 {
				impls = []string{"lameduck", "lameduck-turns", "handloop"}
			}
			for _, impl := range impls {
				b.Run(fmt.Sprintf("settle=%t/n=%d/impl=%s", settle, n, impl), func(b *testing.B) {
					benchProducerFed(b, settle, n, impl)
				})
			}
		}
	}
}

// produce starts the producer: items ints into a channel of 1 024, closed
// at the end.
func produce(items int) <-chan int {
	c := make(chan int, 1024)
	go func() {
		for i := range items {
			c <- i
		}
		close(c)
	}()
	return c
}

func benchProducerFed(b *testing.B, settle bool, n int, impl string) {
	b.ReportAllocs()
	var handled, settled atomic.Int64
	handle := func(context.Context, int) error { handled.Add(1); return nil }
	settleFn := func(context.Context, int, error) { settled.Add(1) }
	b.ResetTimer()
	items := produce(b.N)
	if impl == "handloop" {
		producerHandLoop(b, items, n, handle, settleFn, settle)
	} else {
		next := func(ctx context.Context) (int, error) {
			select {
			case v, ok := <-items:
				if !ok {
					return 0, io.EOF
				}
				return v, nil
			case <-ctx.Done():
				return 0, ctx.Err()
			}
		}
		w := FromWorker(next, handle)
		if n > 1 {
			w.Concurrency(n)
			if impl == "lameduck" {
				w.ConcurrentNext()
			}
		}
		if settle {
			w.Settle(settleFn)
		}
		if err := Run(context.Background(), w, Signals(), WithoutLogger()); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	if got := handled.Load(); got != int64(b.N) {
		b.Fatalf("handled %d items, want %d", got, b.N)
	}
	if want := int64(0); settle {
		want = int64(b.N)
		if got := settled.Load(); got != want {
			b.Fatalf("settled %d items, want %d", got, want)
		}
	}
}

// producerHandLoop is the loop a user would write: n goroutines, each
// selecting on the channel and a cancellable context, handling each item
// and, with settle, settling it with a context of its own that outlives
// handle's, as the Worker's Settle does.
func producerHandLoop(b *testing.B, items <-chan int, n int, handle func(context.Context, int) error, settleFn func(context.Context, int, error), settle bool) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	settleCtx := context.WithoutCancel(ctx)
	var wg sync.WaitGroup
	for range n {
		wg.Go(func() {
			for {
				var v int
				select {
				case item, ok := <-items:
					if !ok {
						return
					}
					v = item
				case <-ctx.Done():
					return
				}
				err := handle(ctx, v)
				if err != nil {
					b.Error(err)
					return
				}
				if settle {
					settleFn(settleCtx, v, err)
				}
			}
		})
	}
	wg.Wait()
}
