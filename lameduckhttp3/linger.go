package lameduckhttp3

import (
	"time"

	"github.com/quic-go/quic-go"
)

// linger is how long the drain waits for a client to close a connection
// that has no request open. A client that honours GOAWAY closes it once
// it has read its last response (quic-go's client does at once), which
// takes it one round trip, three probe timeouts (RFC 9002) allowing for
// two lost packets on the way. When the connection carried responses, the
// wait is at least servedLinger, for a client still reading what it was
// sent: closing the connection then would cut it, and the drain would
// report a cut.
func linger(st quic.ConnectionStats, served bool) time.Duration {
	rtt := st.SmoothedRTT
	if rtt == 0 {
		rtt = initialRTT // no sample yet
	}
	pto := rtt + max(4*st.MeanDeviation, timerGranularity) + maxAckDelay
	d := 3 * pto
	if served {
		d = max(d, servedLinger)
	}
	return d
}

// The constants of RFC 9000 and RFC 9002 that a probe timeout is made of,
// at their defaults (quic-go's too).
const (
	initialRTT       = 333 * time.Millisecond
	timerGranularity = time.Millisecond
	maxAckDelay      = 25 * time.Millisecond
)

// servedLinger is the least time the drain waits for the client of a
// connection that carried responses. It is what net/http waits after an
// HTTP/2 GOAWAY before it closes a connection.
const servedLinger = time.Second
