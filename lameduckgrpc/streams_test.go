package lameduckgrpc

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/b583c413/lameduck"
	"github.com/google/go-cmp/cmp"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/emptypb"
)

// These tests run a real *grpc.Server through Streams.FromGRPC under a
// Runner triggered by its context, with real grpc-go clients over loopback;
// each client's connection goes through a frame tap, so that the order in
// which GOAWAY and the streams' ends reach it can be checked.

const perKind = 10 // server streams, and as many bidi streams, per test

// openAll opens perKind Ticks and perKind Echo streams on cc, each ignoring
// Draining or not, and returns their outcomes.
func openAll(t *testing.T, ctx context.Context, cc grpc.ClientConnInterface, ignore bool) []<-chan ended {
	var outs []<-chan ended
	for range perKind {
		outs = append(outs, openTicks(t, ctx, cc, ignore), openEcho(t, ctx, cc, ignore))
	}
	return outs
}

// Every stream ends within the period; what ends it, and what Run returns,
// depend on the handlers and the Grace. Streams that the interceptor ends
// reach their clients after GOAWAY.
func TestStreamsDrain(t *testing.T) {
	for _, c := range []struct {
		name   string
		opts   []Option
		ignore bool          // the handlers ignore Draining
		period time.Duration // the lame-duck period
		// What must come of it.
		wantCode    codes.Code // how every stream ends on its client
		wantExpired bool       // Run returns an expired LameDuckError
		endsAfter   time.Duration
		endsBefore  time.Duration // after the trigger
		counts      Counts
		// No stream's status reaches the client before GOAWAY. Not
		// promised for streams that end the instant they are told: gRPC
		// gives no signal once its GOAWAYs are queued (see FromGRPC), so
		// for those the order is only logged.
		goAwayFirst bool
	}{{
		name:       "handlers that end on Draining: every stream ends cleanly at once and Run returns nil",
		opts:       []Option{Grace(5 * time.Second)},
		period:     10 * time.Second,
		wantCode:   codes.OK,
		endsBefore: 2 * time.Second,
		counts:     Counts{Ended: 2 * perKind},
	}, {
		name:        "handlers that ignore Draining are ended after the 300ms grace with Unavailable, and Run returns nil",
		opts:        []Option{Grace(300 * time.Millisecond)},
		ignore:      true,
		period:      10 * time.Second,
		wantCode:    codes.Unavailable,
		endsAfter:   300 * time.Millisecond,
		endsBefore:  5 * time.Second,
		counts:      Counts{Cut: 2 * perKind},
		goAwayFirst: true,
	}, {
		name:        "without Grace, handlers that ignore Draining hold the drain until the period (700ms) ends",
		ignore:      true,
		period:      700 * time.Millisecond,
		wantCode:    codes.Unavailable,
		wantExpired: true,
		endsAfter:   700 * time.Millisecond,
		endsBefore:  5 * time.Second,
		counts:      Counts{Cancelled: 2 * perKind},
	}} {
		t.Run(c.name, func(t *testing.T) {
			streams, err := New(c.opts...)
			if err != nil {
				t.Fatal(err)
			}
			finished := make(chan struct{}, 2*perKind)
			ln := listen(t)
			trigger, result := runAsync(t, streams.FromGRPC(newServer(streams, testServer{}, finished), ln), lameduck.Period(c.period))
			var tap frameTap
			cc := dial(t, ln.Addr().String(), tap.dialOption())
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			outs := openAll(t, ctx, cc, c.ignore)

			at := trigger()
			err = result()
			took := time.Since(at)
			var lde *lameduck.LameDuckError
			if expired := errors.As(err, &lde) && lde.Expired; expired != c.wantExpired || (!c.wantExpired && err != nil) {
				t.Errorf("Run = %v; want expired %v", err, c.wantExpired)
			}
			var last time.Duration
			for i, out := range outs {
				e := <-out
				after := e.at.Sub(at)
				last = max(last, after)
				if status.Code(e.err) != c.wantCode {
					t.Errorf("stream %d ended with %v after %d messages, want %v", i, e.err, e.msgs, c.wantCode)
				}
				if c.wantCode == codes.Unavailable && !c.wantExpired && !strings.Contains(status.Convert(e.err).Message(), "server going away") {
					t.Errorf("stream %d ended with %v, want the interceptor's \"server going away\"", i, e.err)
				}
				if after < c.endsAfter || after > c.endsBefore {
					t.Errorf("stream %d ended %v after the trigger, want between %v and %v", i, after, c.endsAfter, c.endsBefore)
				}
			}
			// Close does not wait for the handlers; the counts are final
			// once each stream has gone through the interceptor.
			for range 2 * perKind {
				<-finished
			}
			if diff := cmp.Diff(c.counts, streams.Counts()); diff != "" {
				t.Errorf("Counts (-want +got):\n%s", diff)
			}
			cc.Close()
			for conn, frames := range tap.wait() {
				goAway, end := firstGoAwayAndEnd(frames)
				switch {
				case goAway == nil:
					t.Errorf("connection %d: no GOAWAY read", conn)
				case end == nil:
					t.Logf("connection %d: GOAWAY, and no stream ended with a status (the connection was closed)", conn)
				case goAway.at.After(end.at) && c.goAwayFirst:
					t.Errorf("connection %d: stream %d ended (%v) %v before GOAWAY", conn, end.stream, end.typ, goAway.at.Sub(end.at))
				default:
					t.Logf("connection %d: GOAWAY read %v before the first stream's end", conn, end.at.Sub(goAway.at))
				}
			}
			t.Logf("Run returned %v after the trigger (%v); the last stream ended after %v", took.Round(time.Millisecond), err, last.Round(time.Millisecond))
		})
	}
}

// A unary handler that waits on Draining (a long poll) answers when the
// drain begins, and the drain is clean.
func TestUnaryDraining(t *testing.T) {
	streams, err := New()
	if err != nil {
		t.Fatal(err)
	}
	started := make(chan time.Time, 1)
	ln := listen(t)
	trigger, result := runAsync(t, streams.FromGRPC(newServer(streams, testServer{started: started}, nil), ln), lameduck.Period(10*time.Second))
	cc := dial(t, ln.Addr().String())
	callErr := make(chan error, 1)
	go func() { callErr <- cc.Invoke(context.Background(), waitMethod, new(emptypb.Empty), new(emptypb.Empty)) }()
	<-started
	at := trigger()
	if err := <-callErr; err != nil {
		t.Errorf("long poll in flight at the drain: %v, want a clean answer", err)
	}
	if err := result(); err != nil {
		t.Errorf("Run = %v, want nil", err)
	}
	if took := time.Since(at); took > 5*time.Second {
		t.Errorf("Run returned %v after the trigger; the long poll should have answered at once", took)
	}
}

// With Spread, the streams' ends follow their turns: the k-th of n to end
// ends no sooner than window·k/n after the trigger. A stream ends only once
// told, so lateness of the machine can delay the ends but not bring them
// forward.
func TestSpreadOverRealStreams(t *testing.T) {
	const window = 400 * time.Millisecond
	streams, err := New(Spread(window), Grace(5*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	ln := listen(t)
	trigger, result := runAsync(t, streams.FromGRPC(newServer(streams, testServer{}, nil), ln), lameduck.Period(10*time.Second))
	cc := dial(t, ln.Addr().String())
	outs := openAll(t, context.Background(), cc, false)
	at := trigger()
	var ends []time.Duration
	for _, out := range outs {
		e := <-out
		if e.err != nil {
			t.Errorf("stream ended with %v, want a clean end", e.err)
		}
		ends = append(ends, e.at.Sub(at))
	}
	if err := result(); err != nil {
		t.Errorf("Run = %v, want nil", err)
	}
	slices.Sort(ends)
	n := len(ends)
	for k, end := range ends {
		if turn := window * time.Duration(k) / time.Duration(n); end < turn {
			t.Errorf("stream %d of %d to end ended %v after the trigger, before its turn at %v", k, n, end, turn)
		}
	}
	t.Logf("%d streams ended from %v to %v after the trigger (window %v)", n, ends[0].Round(time.Millisecond), ends[n-1].Round(time.Millisecond), window)
}
