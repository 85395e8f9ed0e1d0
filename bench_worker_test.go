package lameduck

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// The per-item cost of FromWorker against the loop a user would write by
// hand, for two sources: ChanSource over a filled channel (an in-process
// queue) and a bare atomic counter (to show the overhead in nanoseconds).
// The handler does nothing, so the difference is all framework. Both
// sources are safe for concurrent calls, and the Worker is told so with
// ConcurrentNext, as the hand loop's goroutines call next at once:
// BenchmarkWorkerTurns measures the turns a Worker takes otherwise.
func BenchmarkWorkerOverhead(b *testing.B) {
	for _, source := range []string{"chan", "counter"} {
		for _, n := range []int{1, 2, 4, 8} {
			for _, impl := range []string{"lameduck", "handloop"} {
				b.Run(fmt.Sprintf("source=%s/n=%d/impl=%s", source, n, impl), func(b *testing.B) {
					b.ReportAllocs()
					next := benchSource(b, source, b.N)
					var handled atomic.Int64
					handle := func(context.Context, int) error { handled.Add(1); return nil }
					b.ResetTimer()
					runWorker(b, impl, n, next, handle)
					b.StopTimer()
					if got := handled.Load(); got != int64(b.N) {
						b.Fatalf("handled %d items, want %d", got, b.N)
					}
				})
			}
		}
	}
}

// Throughput with a handler that waits 1ms, as one doing I/O would: it
// should grow nearly linearly with the concurrency.
func BenchmarkWorkerIO(b *testing.B) {
	for _, n := range []int{1, 2, 4, 8} {
		for _, impl := range []string{"lameduck", "handloop"} {
			b.Run(fmt.Sprintf("n=%d/impl=%s", n, impl), func(b *testing.B) {
				next := benchSource(b, "counter", b.N)
				handle := func(context.Context, int) error { time.Sleep(time.Millisecond); return nil }
				begin := time.Now()
				runWorker(b, impl, n, next, handle)
				b.ReportMetric(float64(b.N)/time.Since(begin).Seconds(), "items/s")
			})
		}
	}
}

func benchSource(b *testing.B, kind string, items int) func(context.Context) (int, error) {
	switch kind {
	case "chan":
		c := make(chan int, items)
		for i := range items {
			c <- i
		}
		close(c)
		return ChanSource(c)
	default:
		var i atomic.Int64
		return func(context.Context) (int, error) {
			if v := i.Add(1); v <= int64(items) {
				return int(v), nil
			}
			return 0, io.EOF
		}
	}
}

// runWorker runs a Worker, or the hand loop, over next with n slots; setup
// configures the Worker further.
func runWorker(b *testing.B, impl string, n int, next func(context.Context) (int, error), handle func(context.Context, int) error, setup ...func(*Worker[int])) {
	ctx := context.Background()
	switch impl {
	case "lameduck", "lameduck-turns":
		w := FromWorker(next, handle).Concurrency(n)
		if impl == "lameduck" {
			w.ConcurrentNext()
		}
		for _, f := range setup {
			f(w)
		}
		if err := w.Serve(ctx); err != nil {
			b.Fatal(err)
		}
		return
	case "handloop-turns":
		// A source that is not safe for concurrent use: the hand loop
		// takes turns with a mutex, the cheapest lock there is.
		var mu sync.Mutex
		unsafeNext := next
		next = func(ctx context.Context) (int, error) {
			mu.Lock()
			defer mu.Unlock()
			return unsafeNext(ctx)
		}
	}
	// The hand-written loop: n goroutines pulling from the same source, with
	// a context that can be cancelled, as any loop that must stop on SIGTERM
	// has (a select on a cancellable context costs more than on Background's
	// nil Done channel, so this is what a fair hand loop pays too).
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	for range n {
		wg.Go(func() {
			for {
				item, err := next(ctx)
				if errors.Is(err, io.EOF) {
					return
				}
				if err != nil {
					b.Error(err)
					return
				}
				if err := handle(ctx, item); err != nil {
					b.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
}

// The cost of taking turns: several handler slots and a source that is not
// declared safe for concurrent calls, so that the Worker lets one call of
// next run at a time, against a hand loop that takes turns with a mutex.
// The handler does nothing, so the slots do little but wait for a turn:
// the worst case.
func BenchmarkWorkerTurns(b *testing.B) {
	for _, n := range []int{2, 4, 8} {
		for _, impl := range []string{"lameduck-turns", "handloop-turns"} {
			b.Run(fmt.Sprintf("n=%d/impl=%s", n, impl), func(b *testing.B) {
				next := benchSource(b, "counter", b.N)
				var handled atomic.Int64
				handle := func(context.Context, int) error { handled.Add(1); return nil }
				runWorker(b, impl, n, next, handle)
				if got := handled.Load(); got != int64(b.N) {
					b.Fatalf("handled %d items, want %d", got, b.N)
				}
			})
		}
	}
}

// Why ConcurrentNext exists: a source whose every call waits 1ms on the
// network (a blocking pop from a pooled client), a handler that takes 1ms,
// eight slots. Taking turns, the Worker cannot pull faster than one call at
// a time; told that next is safe, each free slot waits on a call of its own.
func BenchmarkWorkerSlowSource(b *testing.B) {
	for _, impl := range []string{"lameduck-turns", "lameduck"} {
		b.Run("impl="+impl, func(b *testing.B) {
			counter := benchSource(b, "counter", b.N)
			next := func(ctx context.Context) (int, error) {
				time.Sleep(time.Millisecond)
				return counter(ctx)
			}
			handle := func(context.Context, int) error { time.Sleep(time.Millisecond); return nil }
			begin := time.Now()
			runWorker(b, impl, 8, next, handle)
			b.ReportMetric(float64(b.N)/time.Since(begin).Seconds(), "items/s")
		})
	}
}

// The per-item cost of the Settle hook: FromWorker with Settle against the
// hand-written loop that settles each item itself (an empty ack in both),
// for both sources of BenchmarkWorkerOverhead.
func BenchmarkWorkerSettle(b *testing.B) {
	for _, src := range []string{"chan", "counter"} {
		for _, n := range []int{1, 4} {
			for _, impl := range []string{"lameduck", "handloop"} {
				benchWorkerSettle(b, src, n, impl)
			}
		}
	}
}

func benchWorkerSettle(b *testing.B, src string, n int, impl string) {
	b.Run(fmt.Sprintf("source=%s/n=%d/impl=%s", src, n, impl), func(b *testing.B) {
		b.ReportAllocs()
		next := benchSource(b, src, b.N)
		var settled atomic.Int64
		settle := func(context.Context, int, error) { settled.Add(1) }
		b.ResetTimer()
		if impl == "lameduck" {
			runWorker(b, impl, n, next, func(context.Context, int) error { return nil }, func(w *Worker[int]) { w.Settle(settle) })
		} else {
			// The hand loop needs its own settle context that
			// outlives handle's, as Settle's does.
			settleCtx := context.WithoutCancel(context.Background())
			handle := func(ctx context.Context, item int) error {
				settle(settleCtx, item, nil)
				return nil
			}
			runWorker(b, impl, n, next, handle)
		}
		b.StopTimer()
		if got := settled.Load(); got != int64(b.N) {
			b.Fatalf("settled %d items, want %d", got, b.N)
		}
	})
}
