package lameduck

import (
	"context"
	"errors"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"testing/synctest"
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

// A handler that panics is a panic, even when what it panics with is its
// context's error after Close: only a handler that returns that error was
// cut short by Close.
func TestWorkerPanicWithContextErrorIsAPanic(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var settled error
		w := FromWorker(ChanSource(chanOf(1)),
			func(ctx context.Context, _ int) error { <-ctx.Done(); panic(ctx.Err()) }).
			Settle(func(_ context.Context, _ int, err error) { settled = err })
		done := make(chan error)
		go func() { done <- w.Serve(context.Background()) }()
		synctest.Wait()
		_ = w.Close()
		err := <-done
		if want := "lameduck: handle panicked: context canceled"; err == nil || err.Error() != want {
			t.Errorf("Serve = %v, want %q", err, want)
		}
		// Settled as failed (a panic), not as cut short by Close.
		if settled == nil || errors.Is(settled, ErrClosed) || !strings.Contains(settled.Error(), "handle panicked") {
			t.Errorf("settled with %v, want the panic", settled)
		}
	})
}
