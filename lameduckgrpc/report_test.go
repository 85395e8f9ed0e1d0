package lameduckgrpc

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/b583c413/lameduck"
)

// TestStopReportCountsStreams: the lameduck Runner's stop report has a row
// for the streams (its kind "streams", protocol "gRPC"), and an expired
// drain's error names them as what held it.
func TestStopReportCountsStreams(t *testing.T) {
	streams, err := New()
	if err != nil {
		t.Fatal(err)
	}
	finished := make(chan struct{}, 2*perKind)
	ln := listen(t)
	r, err := lameduck.NewRunner(lameduck.Member("feed", streams.FromGRPC(newServer(streams, testServer{}, finished), ln)),
		lameduck.Signals(), lameduck.WithoutLogger(), lameduck.Period(500*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	ctx, trigger := context.WithCancel(context.Background())
	defer trigger()
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	<-r.Ready()
	cc := dial(t, ln.Addr().String())
	sctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	outs := openAll(t, sctx, cc, true) // the handlers ignore Draining
	if got := streams.Counts().Open; got != 2*perKind {
		t.Fatalf("%d streams open before the trigger, want %d", got, 2*perKind)
	}
	trigger()
	err = <-done
	for _, out := range outs {
		<-out
	}
	for range 2 * perKind {
		<-finished
	}
	// FromGRPC's Shutdown leaves the streams to Close, which the Runner
	// calls once it has counted them (before, Shutdown stopped the server
	// at the deadline itself, and the count raced it: 0 to 20 were seen).
	want := fmt.Sprintf(`"feed" still had %d streams`, 2*perKind)
	if err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("Run = %v, want an error that says %s", err, want)
	}
	rep := r.Report()
	var found bool
	for _, w := range rep.Work {
		if w.Server == "feed" && w.Kind == "streams" && w.Protocol == "gRPC" {
			found = true
			if w.AtLameDuck != 2*perKind || w.Held != 2*perKind || w.Cut != 2*perKind || w.Finished != 0 || w.InFlight != 0 {
				t.Errorf("streams row = %+v; want %d at lame-duck, held and cut", w, 2*perKind)
			}
		}
	}
	if !found {
		t.Errorf("no streams row in the report: %+v", rep.Work)
	}
}
