package httpdrain

import (
	"io"
	"net"
	"os"
	"slices"
	"testing"
	"testing/synctest"
	"time"
)

// pollConn is a connection whose kernel cannot say what is unacknowledged
// (it is no syscall.Conn), for lingerClose's fallback. Its Read answers at
// once, from script: "data", "eof", or a timeout when the script has run
// out. In a synctest bubble no time passes, so the read deadlines it is
// given are exactly the waits lingerClose asks for.
type pollConn struct {
	net.Conn // nil: lingerClose must use no other method
	t        *testing.T
	script   []string
	reads    int
	waits    []time.Duration // the wait each SetReadDeadline asked for
	events   []string        // "CloseWrite", "Close"
}

func (c *pollConn) CloseWrite() error { c.events = append(c.events, "CloseWrite"); return nil }
func (c *pollConn) Close() error      { c.events = append(c.events, "Close"); return nil }

func (c *pollConn) SetReadDeadline(d time.Time) error {
	c.waits = append(c.waits, time.Until(d))
	return nil
}

func (c *pollConn) Read(p []byte) (int, error) {
	c.reads++
	if c.reads > 1000 {
		// lingerClose runs on the test's goroutine: end it.
		c.t.Fatalf("lingerClose read %d times and goes on, want it to end", c.reads)
	}
	if c.reads <= len(c.script) {
		switch c.script[c.reads-1] {
		case "data":
			return copy(p, "x"), nil
		case "eof":
			return 0, io.EOF
		}
	}
	return 0, os.ErrDeadlineExceeded
}

// Where the kernel cannot tell what the client has acknowledged, a gentle
// close reads (and discards) what the client sends, polling at 250 µs,
// doubling to 20 ms, for at most 500 ms (net/http's own wait) or until the
// client hangs up; then it closes. Kills the mutants of lingerClose's
// CloseWrite check, its back-off and its fallback bound, and of the
// constants lingerPollMin, lingerPollMax and lingerFallback.
func TestLingerCloseWithoutKernelCounts(t *testing.T) {
	const (
		firstPoll = 250 * time.Microsecond
		maxPoll   = 20 * time.Millisecond
		fallback  = 500 * time.Millisecond
	)
	// backOff is the documented schedule: polls of firstPoll, doubling up
	// to maxPoll, until they add up to the fallback.
	backOff := func() []time.Duration {
		var ws []time.Duration
		var sum time.Duration
		for w := firstPoll; sum < fallback; w = min(2*w, maxPoll) {
			ws = append(ws, w)
			sum += w
		}
		return ws
	}()
	for _, tc := range []struct {
		name      string
		script    []string
		wantWaits []time.Duration
	}{
		{
			name:      "a client that never answers gets the whole fallback, then the close",
			wantWaits: backOff,
		},
		{
			name:      "a client that hangs up ends the linger at once",
			script:    []string{"timeout", "timeout", "eof"},
			wantWaits: []time.Duration{firstPoll, 2 * firstPoll, 4 * firstPoll},
		},
		{
			name:   "what the client sends is read and does not count as waiting",
			script: []string{"data", "data", "timeout", "data", "eof"},
			// A read that got data is tried again with the same wait.
			wantWaits: []time.Duration{firstPoll, firstPoll, firstPoll, 2 * firstPoll, 2 * firstPoll},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				c := &pollConn{t: t, script: tc.script}
				lingerClose(c)
				if !slices.Equal(c.waits, tc.wantWaits) {
					t.Errorf("lingerClose polled with waits %v, want %v", c.waits, tc.wantWaits)
				}
				if want := []string{"CloseWrite", "Close"}; !slices.Equal(c.events, want) {
					t.Errorf("lingerClose did %v, want %v", c.events, want)
				}
			})
		})
	}
}
