package lameduck

import (
	"context"
	"os/signal"
	"runtime"
	"syscall"
	"testing"
)

// BenchmarkRunnerCost measures one whole life of a Runner (NewRunner, Run,
// a trigger, the drain) in bytes and allocations, and how many goroutines
// it adds while serving, beside signal.NotifyContext with Serve in a
// goroutine. The Server itself does nothing.
func BenchmarkRunnerCost(b *testing.B) {
	for _, impl := range []string{"lameduck", "notifycontext"} {
		b.Run("impl="+impl, func(b *testing.B) {
			b.ReportAllocs()
			most := 0
			for range b.N {
				most = max(most, runnerOnce(b, impl))
			}
			b.ReportMetric(float64(most), "goroutines")
		})
	}
}

func runnerOnce(b *testing.B, impl string) (goroutines int) {
	stop := make(chan struct{})
	serve := func(context.Context) error { <-stop; return nil }
	shutdown := func(context.Context) error { close(stop); return nil }
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	before := runtime.NumGoroutine()
	switch impl {
	case "lameduck":
		r, err := NewRunner(ServerFuncs{ServeFunc: serve, ShutdownFunc: shutdown}, WithoutLogger())
		if err != nil {
			b.Fatal(err)
		}
		go func() { done <- r.Run(ctx) }()
		<-r.Ready()
	default:
		ready := make(chan struct{})
		go func() {
			nctx, stopNotify := signal.NotifyContext(ctx, syscall.SIGINT, syscall.SIGTERM)
			defer stopNotify()
			errc := make(chan error, 1)
			go func() { errc <- serve(context.WithoutCancel(nctx)) }()
			close(ready)
			select {
			case err := <-errc:
				done <- err
				return
			case <-nctx.Done():
			}
			_ = shutdown(context.Background())
			done <- <-errc
		}()
		<-ready
	}
	// Not counting the goroutine that called Run: the caller's own.
	goroutines = runtime.NumGoroutine() - before - 1
	cancel()
	if err := <-done; err != nil {
		b.Fatal(err)
	}
	return goroutines
}
