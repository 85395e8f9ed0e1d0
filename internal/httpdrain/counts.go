package httpdrain

import (
	"net/http"
)

// This file keeps the books a stop report reads: how many requests and
// connections are in flight, and how many ended or were cut, by protocol.
// Every figure is kept under the lock the hooks take anyway, so that the
// request path does no more than it did.

// Kinds of connection in Counts.Conns.
const (
	HTTP1 = 0 // HTTP/1 (over TLS or not); for requests too
	HTTP2 = 1 // HTTP/2 (over TLS or h2c); for requests too
	Taken = 2 // taken over by a handler (hijacked) or registered with Track
)

// Count is one line of the books. InFlight is how many are in flight now,
// Holding how many of those hold the drain up (for connections: not the
// idle ones); Done and Cut only grow: how many have ended, and how many
// Close cut.
type Count struct{ InFlight, Holding, Done, Cut int }

// Counts is a snapshot of the Tracker's books.
type Counts struct {
	Requests [2]Count // handler calls, by protocol (HTTP1, HTTP2)
	Conns    [3]Count // connections, by kind (HTTP1, HTTP2, Taken)
}

// books is the part of the Tracker that Counts reads; guarded by its mu.
type books struct {
	running  [2]int // handler calls in progress, by protocol
	answered [2]int // handler calls that returned before Close
	reqCut   [2]int // handler calls running when Close came
	connDone [3]int // connections closed before Close, or by it with no work in flight
	connCut  [3]int // connections Close closed while they held work
	cut      bool   // Close has counted what it cut: what ends later is not "done"
}

// Counts returns the Tracker's books as they stand.
func (t *Tracker) Counts() Counts {
	t.mu.Lock()
	defer t.mu.Unlock()
	var c Counts
	for p := range c.Requests {
		n := t.books.running[p]
		c.Requests[p] = Count{InFlight: n, Holding: n, Done: t.books.answered[p], Cut: t.books.reqCut[p]}
	}
	for k := range c.Conns {
		c.Conns[k] = Count{Done: t.books.connDone[k], Cut: t.books.connCut[k]}
	}
	for cn := range t.conns {
		if !cn.cutByClose {
			k := cn.kind()
			c.Conns[k].InFlight++
			if cn.holds() {
				c.Conns[k].Holding++
			}
		}
	}
	if !t.books.cut {
		c.Conns[Taken].InFlight += len(t.tracked)
		c.Conns[Taken].Holding += len(t.tracked)
	}
	return c
}

// protoOf is the index of r's protocol in the books.
func protoOf(r *http.Request) int {
	if r.ProtoMajor >= 2 {
		return HTTP2
	}
	return HTTP1
}

// kind is the index of c's kind in the books. The caller holds t.mu.
func (c *conn) kind() int {
	switch {
	case c.hijacked:
		return Taken
	case c.isH2():
		return HTTP2
	}
	return HTTP1
}

// closedOK books c, which is leaving the books, as done unless Close has
// booked it as cut. The caller holds t.mu.
func (t *Tracker) closedOK(c *conn) {
	if !c.cutByClose {
		t.books.connDone[c.kind()]++
	}
}

// cutOpen books what Close cuts: the handler calls still running, and
// the connections that hold work (a request in flight, HTTP/2 streams, a
// taken-over connection). An HTTP/1 connection with no request in flight
// is not cut, even if its client has not yet read all it was sent: closing
// it leaves what is queued to the kernel, which still delivers it (the
// delivery oracle's stalled readers get their whole responses after Run
// returns). An HTTP/2 connection that still owes its client bytes is: its
// client answers what it reads with WINDOW_UPDATE frames, which a closed
// socket answers with a reset that throws the rest away.
func (t *Tracker) cutOpen() {
	t.mu.Lock()
	if t.books.cut {
		t.mu.Unlock()
		return
	}
	var h2 []*conn
	lingering := map[*conn]bool{}
	for c := range t.conns {
		switch {
		case c.hijacked || c.state == http.StateActive:
			c.cutByClose = true
			t.books.connCut[c.kind()]++
		case c.kind() == HTTP2:
			h2 = append(h2, c)
			lingering[c] = c.lingering
		}
	}
	for p, n := range t.books.running {
		t.books.reqCut[p] += n
	}
	t.books.connCut[Taken] += len(t.tracked)
	t.books.cut = true
	t.mu.Unlock()

	var owing []*conn
	for _, c := range h2 {
		if owesBytes(c, lingering[c]) {
			owing = append(owing, c)
		}
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, c := range owing {
		if _, open := t.conns[c]; open && !c.cutByClose {
			c.cutByClose = true
			t.books.connCut[HTTP2]++
		}
	}
}

// owesBytes reports whether c has written bytes its client has not
// acknowledged (the FIN of a gentle close apart). Where the kernel cannot
// tell, a connection being closed gently is taken to owe them.
func owesBytes(c *conn, lingering bool) bool {
	n, ok := unacked(c.Conn)
	switch {
	case !ok:
		return lingering
	case lingering:
		return n > 1
	}
	return n > 0
}
