package lameduckgrpc

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/b583c413/lameduck"
)

// BenchmarkGoAwayOrder measures, on the client's connection, the order of
// GOAWAY and the first stream's end when a drain begins with 2×perKind
// streams open (server streams and bidi) on one connection: the share of
// drains where GOAWAY came first, and the median time from GOAWAY to the
// first end (negative when the end came first).
//
//	go test -run '^$' -bench GoAwayOrder -benchtime 50x
func BenchmarkGoAwayOrder(b *testing.B) {
	for _, c := range []struct {
		name   string
		ignore bool
		opts   []Option
	}{
		{"ending on Draining", false, nil},
		{"ignoring Draining, Grace 0", true, []Option{Grace(0)}},
		{"ignoring Draining, Grace 20ms", true, []Option{Grace(20 * time.Millisecond)}},
	} {
		b.Run(c.name, func(b *testing.B) {
			var leads []time.Duration
			first := 0
			for b.Loop() {
				lead := goAwayLead(b, c.ignore, c.opts...)
				leads = append(leads, lead)
				if lead > 0 {
					first++
				}
			}
			slices.Sort(leads)
			b.ReportMetric(100*float64(first)/float64(len(leads)), "goaway-first-%")
			b.ReportMetric(float64(leads[len(leads)/2].Microseconds()), "median-lead-µs")
			b.Logf("%d of %d drains GOAWAY first; leads from %v to %v", first, len(leads), leads[0], leads[len(leads)-1])
		})
	}
}

// goAwayLead drains a server with streams open on one client connection and
// returns how long before the first stream's end GOAWAY reached the client.
func goAwayLead(b *testing.B, ignore bool, opts ...Option) time.Duration {
	streams, err := New(opts...)
	if err != nil {
		b.Fatal(err)
	}
	ln := listen(b)
	trigger, result := runAsync(b, streams.FromGRPC(newServer(streams, testServer{tick: time.Second}, nil), ln), lameduck.Period(10*time.Second))
	var tap frameTap
	cc := dial(b, ln.Addr().String(), tap.dialOption())
	var outs []<-chan ended
	for range 2 * perKind {
		outs = append(outs, openTicks(b, context.Background(), cc, ignore))
	}
	trigger()
	if err := result(); err != nil {
		b.Errorf("Run = %v, want nil", err)
	}
	for _, out := range outs {
		<-out
	}
	cc.Close()
	frames := tap.wait()
	goAway, end := firstGoAwayAndEnd(frames[0])
	if goAway == nil || end == nil {
		b.Fatalf("GOAWAY %v, first end %v: want both", goAway, end)
	}
	return end.at.Sub(goAway.at)
}
