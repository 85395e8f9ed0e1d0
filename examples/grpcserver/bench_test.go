package main

import (
	"context"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/b583c413/lameduck"
	"google.golang.org/grpc"
)

// announcing is the demo service with a Sleep that reports when it starts.
type announcing struct {
	demo
	started chan struct{}
}

func (a announcing) sleep(ctx context.Context, d time.Duration) error {
	a.started <- struct{}{}
	return a.demo.sleep(ctx, d)
}

// BenchmarkDrainLag measures, for a few unary RPCs in flight when the stop
// begins, the time from the last RPC's return at the client to the end of
// the stop: Run's return through FromGRPC, or GracefulStop's return with
// grpc alone. It reports the median and the worst lag of the iterations.
func BenchmarkDrainLag(b *testing.B) {
	const inFlight, sleep = 4, 20 * time.Millisecond
	for _, c := range []struct {
		name string
		// serve serves s on a new loopback listener; stop begins the stop
		// and returns a channel closed when it has ended.
		serve func(b *testing.B, s *grpc.Server) (addr string, stop func() <-chan struct{})
	}{
		{"FromGRPC", func(b *testing.B, s *grpc.Server) (string, func() <-chan struct{}) {
			ln := listen(b)
			r, err := lameduck.NewRunner(lameduck.FromGRPC(s, ln), lameduck.Signals(), lameduck.WithoutLogger())
			if err != nil {
				b.Fatal(err)
			}
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan struct{})
			go func() {
				defer close(done)
				if err := r.Run(ctx); err != nil {
					b.Error(err)
				}
			}()
			<-r.Ready()
			return ln.Addr().String(), func() <-chan struct{} { cancel(); return done }
		}},
		{"GracefulStop", func(b *testing.B, s *grpc.Server) (string, func() <-chan struct{}) {
			ln := listen(b)
			go func() { _ = s.Serve(ln) }()
			return ln.Addr().String(), func() <-chan struct{} {
				done := make(chan struct{})
				go func() { s.GracefulStop(); close(done) }()
				return done
			}
		}},
	} {
		b.Run(c.name, func(b *testing.B) {
			var lags []time.Duration
			for b.Loop() {
				a := announcing{started: make(chan struct{}, inFlight)}
				s := grpc.NewServer()
				s.RegisterService(&demoDesc, a)
				addr, stop := c.serve(b, s)
				cc := dial(b, addr)
				var mu sync.Mutex
				var last time.Time
				var wg sync.WaitGroup
				for range inFlight {
					wg.Go(func() {
						if err := callSleep(context.Background(), cc, sleep); err != nil {
							b.Error(err)
						}
						mu.Lock()
						last = time.Now()
						mu.Unlock()
					})
				}
				for range inFlight {
					<-a.started
				}
				stopped := stop()
				wg.Wait()
				<-stopped
				end := time.Now()
				lags = append(lags, end.Sub(last))
				cc.Close()
			}
			slices.Sort(lags)
			b.ReportMetric(float64(lags[len(lags)/2].Microseconds()), "median-lag-µs")
			b.ReportMetric(float64(lags[len(lags)-1].Microseconds()), "max-lag-µs")
		})
	}
}
