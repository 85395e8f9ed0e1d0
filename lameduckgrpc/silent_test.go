package lameduckgrpc

import (
	"context"
	"errors"
	"io"
	"net"
	"os"
	"testing"
	"time"

	"github.com/b583c413/lameduck"
)

// A client that connected and sent nothing (a port check, a stalled
// dialer) does not hold the drain: gRPC sends its GOAWAYs only once every
// connection it accepted has finished its handshake, so before, the streams
// told of the drain were opened again on their connections until the period
// ran out, and Run returned expired (an outside review: 123 773 streams
// served after SIGTERM). The silent connection is closed when the drain
// begins, and the stream that ends on Draining lets Run return nil.
func TestSilentConnectionDoesNotHoldGoAway(t *testing.T) {
	streams, err := New(Grace(5 * time.Second))
	if err != nil {
		t.Fatal(err)
	}
	finished := make(chan struct{}, 2*perKind)
	ln := listen(t)
	trigger, result := runAsync(t, streams.FromGRPC(newServer(streams, testServer{}, finished), ln), lameduck.Period(3*time.Second))
	silent, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer silent.Close()
	cc := dial(t, ln.Addr().String())
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	out := openTicks(t, ctx, cc, false)

	trigger()
	if err := result(); err != nil {
		t.Errorf("Run = %v, want nil: the silent connection held the GOAWAYs back", err)
	}
	if e := <-out; e.err != nil {
		t.Errorf("the stream ended with %v, want a clean end", e.err)
	}
	// gRPC may have written its SETTINGS on it; what matters is the end.
	silent.SetReadDeadline(time.Now().Add(10 * time.Second)) // a bound, not a wait
	if _, err := io.Copy(io.Discard, silent); err != nil && errors.Is(err, os.ErrDeadlineExceeded) {
		t.Errorf("the silent connection stays open (%v), want it closed", err)
	}
	cc.Close()
}
