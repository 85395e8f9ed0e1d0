package lameduckgrpc

import (
	"context"
	"runtime"
	"slices"
	"testing"
	"time"

	"github.com/b583c413/lameduck"
	"google.golang.org/grpc"
	"google.golang.org/grpc/connectivity"
	"google.golang.org/grpc/credentials/insecure"
)

// reconnects is what one drain of instance A did to instance B.
type reconnects struct {
	drain time.Duration   // from the trigger to Run's return on A
	at    []time.Duration // when each stream reached B's handler, from the trigger, sorted
}

// peak returns the most reconnects in one bucket of width w, counted from
// the trigger.
func (r reconnects) peak(w time.Duration) int {
	buckets := map[time.Duration]int{}
	most := 0
	for _, at := range r.at {
		buckets[at/w]++
		most = max(most, buckets[at/w])
	}
	return most
}

// measureReconnects serves n stream clients from instance A, whose streams
// go through a Streams configured by opts (the handlers ignoring Draining or
// not), drains A, and records when each client, its stream on A ended,
// opens it again on instance B. Each client holds a connection of its own
// to each instance, as a client of a round_robin balancer does, so that
// what B sees follows the drain of A and not the cost of dialling. The
// streams tick once a second: a watch, not a firehose.
func measureReconnects(b testing.TB, n int, ignore bool, opts ...Option) reconnects {
	b.Helper()
	streams, err := New(opts...)
	if err != nil {
		b.Fatal(err)
	}
	lnA, lnB := listen(b), listen(b)
	trigger, result := runAsync(b, streams.FromGRPC(newServer(streams, testServer{tick: time.Second}, nil), lnA), lameduck.Period(30*time.Second))

	arrived := make(chan time.Time, n)
	plain, err := New()
	if err != nil {
		b.Fatal(err)
	}
	srvB := newServer(plain, testServer{started: arrived, tick: time.Second}, nil)
	served := make(chan error, 1)
	go func() { served <- srvB.Serve(lnB) }()
	defer func() { srvB.Stop(); <-served }()

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var ccs []*grpc.ClientConn
	defer func() {
		for _, cc := range ccs {
			cc.Close()
		}
	}()
	for range 2 * n {
		addr := lnA.Addr().String()
		if len(ccs)%2 == 1 {
			addr = lnB.Addr().String()
		}
		cc, err := grpc.NewClient("passthrough:///"+addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
		if err != nil {
			b.Fatal(err)
		}
		ccs = append(ccs, cc)
	}

	reopened := make(chan error, n)
	openErrs := make(chan error, n)
	for i := range n {
		ccA, ccB := ccs[2*i], ccs[2*i+1]
		go func() {
			if err := connect(ctx, ccB); err != nil {
				openErrs <- err
				return
			}
			out, err := startTicks(ctx, ccA, ignore)
			openErrs <- err
			if err != nil {
				return
			}
			<-out
			_, err = startTicks(ctx, ccB, false)
			reopened <- err
		}()
	}
	for range n {
		if err := <-openErrs; err != nil {
			b.Fatalf("a client could not start: %v", err)
		}
	}

	// Two thousand connections' set-up leaves garbage; collected now, it
	// does not pause the drain being measured.
	runtime.GC()
	at := trigger()
	if err := result(); err != nil {
		b.Errorf("Run = %v, want nil", err)
	}
	r := reconnects{drain: time.Since(at)}
	for range n {
		if err := <-reopened; err != nil {
			b.Fatalf("reopening a stream on B: %v", err)
		}
		r.at = append(r.at, (<-arrived).Sub(at))
	}
	slices.Sort(r.at)
	return r
}

// connect connects cc and waits until it is ready.
func connect(ctx context.Context, cc *grpc.ClientConn) error {
	cc.Connect()
	for s := cc.GetState(); s != connectivity.Ready; s = cc.GetState() {
		if !cc.WaitForStateChange(ctx, s) {
			return ctx.Err()
		}
	}
	return nil
}

// BenchmarkSpreadReconnects measures what Spread does to the instance that
// takes over: 1 000 stream clients of an instance that drains open their
// streams again on another. Reported, as medians over the iterations: the
// most streams reaching the other instance in one 10 ms bucket, the time
// from the first to the last, and the drain's time (trigger to Run's
// return).
//
//	go test -run '^$' -bench SpreadReconnects -benchtime 3x
func BenchmarkSpreadReconnects(b *testing.B) {
	const n = 1000
	for _, c := range []struct {
		name   string
		ignore bool
		opts   []Option
	}{
		{"ending on Draining", false, nil},
		{"ending on Draining, Spread 1s", false, []Option{Spread(time.Second)}},
		{"ignoring Draining, Grace 200ms", true, []Option{Grace(200 * time.Millisecond)}},
		{"ignoring Draining, Grace 200ms, Spread 1s", true, []Option{Grace(200 * time.Millisecond), Spread(time.Second)}},
	} {
		b.Run(c.name, func(b *testing.B) {
			var peaks, spans, drains []float64
			for b.Loop() {
				r := measureReconnects(b, n, c.ignore, c.opts...)
				peaks = append(peaks, float64(r.peak(10*time.Millisecond)))
				spans = append(spans, ms(r.at[n-1]-r.at[0]))
				drains = append(drains, ms(r.drain))
			}
			b.ReportMetric(median(peaks), "peak-reconnects/10ms")
			b.ReportMetric(median(spans), "reconnect-span-ms")
			b.ReportMetric(median(drains), "drain-ms")
			b.Logf("peaks %v, spans %v ms, drains %v ms", peaks, spans, drains)
		})
	}
}

func ms(d time.Duration) float64 { return float64(d.Round(time.Millisecond) / time.Millisecond) }

func median(xs []float64) float64 {
	s := slices.Clone(xs)
	slices.Sort(s)
	return s[len(s)/2]
}
