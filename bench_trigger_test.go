//go:build unix

package lameduck

import (
	"context"
	"os/signal"
	"syscall"
	"testing"
	"time"
)

// BenchmarkTrigger measures the time from the trigger (a real SIGUSR1 sent
// to this process, or a context cancelled) to the moment Shutdown is
// entered, for a Runner and for signal.NotifyContext with a goroutine that
// calls Shutdown when the context is done.
func BenchmarkTrigger(b *testing.B) {
	for _, trigger := range []string{"signal", "ctx"} {
		for _, impl := range []string{"lameduck", "notifycontext"} {
			b.Run("trigger="+trigger+"/impl="+impl, func(b *testing.B) {
				var lat samples
				for range b.N {
					lat = append(lat, triggerOnce(b, trigger, impl))
				}
				lat.report(b, "µs", time.Microsecond)
			})
		}
	}
}

func triggerOnce(b *testing.B, trigger, impl string) time.Duration {
	entered := make(chan time.Time, 1)
	stop := make(chan struct{})
	shutdown := func(context.Context) error {
		entered <- time.Now()
		close(stop)
		return nil
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	switch impl {
	case "lameduck":
		srv := ServerFuncs{ServeFunc: func(context.Context) error { <-stop; return nil }, ShutdownFunc: shutdown}
		r, err := NewRunner(srv, Signals(syscall.SIGUSR1), WithoutLogger())
		if err != nil {
			b.Fatal(err)
		}
		go func() { done <- r.Run(ctx) }()
		<-r.Ready()
	default:
		nctx, stopNotify := signal.NotifyContext(ctx, syscall.SIGUSR1)
		go func() {
			defer stopNotify()
			<-nctx.Done()
			done <- shutdown(context.Background())
		}()
	}

	begin := time.Now()
	if trigger == "signal" {
		if err := syscall.Kill(syscall.Getpid(), syscall.SIGUSR1); err != nil {
			b.Fatal(err)
		}
	} else {
		cancel()
	}
	at := <-entered
	if err := <-done; err != nil {
		b.Fatal(err)
	}
	return at.Sub(begin)
}
