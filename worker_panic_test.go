package lameduck

import (
	"context"
	"runtime"
	"sync/atomic"
	"testing"
)

// A panic in next stops the pulling before another slot gets its turn to
// call next: no call after the panicking one has a live context.
func TestWorkerStopsPullingAtPanicInNext(t *testing.T) {
	const runs = 500
	for range runs {
		var calls, live atomic.Int32
		next := func(ctx context.Context) (int, error) {
			n := calls.Add(1)
			switch {
			case n == 5:
				panic("queue client bug")
			case n > 5 && ctx.Err() == nil:
				live.Add(1)
			}
			return int(n), nil
		}
		w := FromWorker(next, func(context.Context, int) error { runtime.Gosched(); return nil }).Concurrency(8)
		if err := w.Serve(context.Background()); err == nil || err.Error() != "lameduck: next panicked: queue client bug" {
			t.Fatalf("Serve = %v, want the panic", err)
		}
		if n := live.Load(); n > 0 {
			t.Fatalf("next was called %d times with a live context after it panicked, want 0", n)
		}
	}
}
