package httpdrain

import (
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

// This file holds how the Tracker follows connections and handler calls,
// which is what lets a drain end as soon as the last response is out
// without cutting any off. Each accepted connection is wrapped in a conn,
// which carries what the Tracker knows of it, so that a ConnState event or
// a handler call takes the Tracker's lock once and looks nothing up. The
// hooks through which net/http reports those events are in hooks.go.

// Listener wraps ln, the listener the adapter serves on, so that every
// connection net/http accepts is followed from the moment it is accepted.
// own says the adapter bound ln itself, so no other process shares its
// socket, and the drain may stop it taking connections before it closes it
// (see quiesce).
func (t *Tracker) Listener(ln net.Listener, own bool) net.Listener {
	l := &listener{Listener: ln, t: t, own: own, ended: make(chan struct{})}
	t.mu.Lock()
	t.ln = l
	t.mu.Unlock()
	return l
}

// listener makes every connection net/http gets a *conn.
type listener struct {
	net.Listener
	t   *Tracker
	own bool // the adapter bound it (see Tracker.Listener)

	closing  sync.Once // net/http and Serve may both close it
	closeErr error
	ended    chan struct{} // closed once Accept has failed during the drain
	ending   sync.Once
}

func (l *listener) Close() error {
	l.closing.Do(func() { l.closeErr = l.Listener.Close() })
	return l.closeErr
}

func (l *listener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		l.t.mu.Lock()
		stopping := l.t.stage != serving
		l.t.mu.Unlock()
		if stopping {
			// The drain shut the socket down (accept fails with EINVAL)
			// or closed it. Every connection accepted before is in the
			// books: the drain may count them (see Drain).
			l.ending.Do(func() { close(l.ended) })
			err = net.ErrClosed
		}
		return nil, err
	}
	lc := &conn{Conn: c, t: l.t}
	l.t.mu.Lock()
	defer l.t.mu.Unlock()
	if l.t.stage == closed {
		c.Close()
		return nil, net.ErrClosed
	}
	l.t.conns[lc] = struct{}{}
	l.t.recount(lc) // during the drain: a new connection is kept (see keeps)
	return lc, nil
}

// conn is one accepted connection. The fields after the comment that says
// so are guarded by the Tracker's mu.
type conn struct {
	net.Conn
	t *Tracker

	closed    atomic.Bool  // the server (net/http or the drain) has closed it
	sniffed   atomic.Bool  // its first bytes have been looked at
	preface   atomic.Bool  // it began with the HTTP/2 preface (h2c)
	offeredH2 atomic.Bool  // its TLS ClientHello offered "h2" to a server that speaks it
	tlsProto  atomic.Int32 // over TLS: 0 until known, then tlsHTTP1 or tlsHTTP2
	reading   sync.Mutex   // one reader at a time: net/http's, then the linger's

	// guarded by t.mu
	state      http.ConnState
	hijacked   bool          // a handler took it over
	lingering  bool          // closed gently; the linger has not finished
	held       bool          // counted in t.holding
	kept       bool          // counted in t.keeping (see idle.go)
	requests   int           // requests it has begun
	h2Served   bool          // HTTP/2 serves it: it has reported a state as an HTTP/2 connection
	told       chan struct{} // with the spread: closed when its handlers are told of the drain (see spread.go)
	tellTimer  *time.Timer   // with the spread: closes told at the connection's moment
	wasTold    bool          // told is closed
	cutByClose bool          // Close booked it as cut (see counts.go)
}

const (
	tlsHTTP1 = 1
	tlsHTTP2 = 2
)

// h2Preface is how every HTTP/2 connection in clear text begins; net/http
// reads exactly this much first when it decides between HTTP/1 and h2c.
const h2Preface = "PRI * HTTP/2.0"

func (c *conn) Read(p []byte) (int, error) {
	c.reading.Lock()
	defer c.reading.Unlock()
	if c.closed.Load() {
		return 0, net.ErrClosed
	}
	n, err := c.Conn.Read(p)
	if err != nil && c.closed.Load() {
		err = net.ErrClosed // woken by Close's deadline, not timed out
	}
	if n > 0 && !c.sniffed.Load() {
		// net/http's first read, on a server that serves h2c, asks for
		// exactly len(h2Preface) bytes. A client that trickles them is
		// taken for HTTP/1, which is only ever closed sooner.
		c.sniffed.Store(true)
		c.preface.Store(c.t.h2c && len(p[:n]) >= len(h2Preface) && string(p[:len(h2Preface)]) == h2Preface)
	}
	return n, err
}

func (c *conn) Write(p []byte) (int, error) {
	if c.closed.Load() {
		return 0, net.ErrClosed
	}
	return c.Conn.Write(p)
}

// Close is how net/http (and the drain) close a connection. While the
// Tracker drains, it closes gently (see linger); otherwise it closes at once.
func (c *conn) Close() error {
	t := c.t
	t.mu.Lock()
	if c.closed.Load() {
		t.mu.Unlock()
		return nil
	}
	c.closed.Store(true)
	gentle := t.stage == draining && !c.hijacked && canCloseWrite(c.Conn)
	if gentle {
		c.lingering = true
		t.lingers.Add(1)
		t.recount(c)
	} else {
		t.forget(c)
	}
	t.mu.Unlock()
	if !gentle {
		return c.Conn.Close()
	}
	// Wake net/http's reader, which now gets net.ErrClosed, so that the
	// linger can read in its place.
	c.Conn.SetReadDeadline(aLongTimeAgo)
	go c.linger()
	return nil
}

// forget drops c from the Tracker's books. The caller holds t.mu.
func (t *Tracker) forget(c *conn) {
	if c.tellTimer != nil {
		c.tellTimer.Stop()
	}
	if c.held {
		c.held = false
		t.holding--
	}
	if _, ok := t.conns[c]; ok {
		t.closedOK(c)
	}
	delete(t.conns, c)
	if c.kept {
		c.kept = false
		t.unkeep()
	}
	t.checkQuiet()
}

// holds reports whether c holds the drain up. The caller holds t.mu.
//
// A connection being closed gently does, until the client has everything. So
// does a hijacked connection (a WebSocket, say), until its owner closes it:
// it is work in flight that net/http no longer sees. So does an HTTP/1
// connection in the middle of a request, and an HTTP/2
// connection until it is closed: net/http has sent it a GOAWAY and closes it
// once its streams are done and the client has hung up (or a second later).
// An idle or new HTTP/1 connection does not: the drain's first stage may
// keep it open while its client may send on it (see keeps), and then closes
// it.
func (c *conn) holds() bool {
	return c.lingering || c.hijacked || c.state == http.StateActive || c.isH2()
}

// isH2 reports whether c speaks HTTP/2. The caller holds t.mu.
//
// A connection that has made no request (StateNew) may be an HTTP/2 one that
// has opened no stream yet, which net/http's GOAWAY ends (its client hangs
// up) — or an HTTP/1 one, a handshake that stalled, a preface that never
// came. The drain waits for it as for HTTP/2 only for newConnGrace, then
// closes it with the other connections that owe nothing.
func (c *conn) isH2() bool {
	switch {
	case c.tlsProto.Load() == tlsHTTP2:
		return true
	case c.state == http.StateNew:
		return !c.t.newGrace && (c.preface.Load() || c.offeredH2.Load())
	}
	return c.preface.Load()
}

// recount updates c's place in t.holding. The caller holds t.mu.
func (t *Tracker) recount(c *conn) {
	if t.stage != draining {
		return // counted by the drain when it begins (see Drain)
	}
	if held := c.holds(); held != c.held {
		c.held = held
		if held {
			t.holding++
		} else {
			t.holding--
		}
	}
	if kept := c.keeps(); kept != c.kept {
		c.kept = kept
		if kept {
			t.keeping++
		} else {
			t.unkeep()
		}
	}
	t.checkQuiet()
}

// checkQuiet closes t.quiet once nothing holds the drain up. The caller
// holds t.mu.
func (t *Tracker) checkQuiet() {
	if t.quiet == nil || t.holding > 0 || t.handlers > 0 || len(t.tracked) > 0 {
		return
	}
	select {
	case <-t.quiet:
	default:
		close(t.quiet)
	}
}

// NetConn returns the connection as it was accepted, for a ConnContext or
// ConnState hook that needs it (to set socket options, say): the one net/http
// passes them is wrapped by the Tracker.
func (c *conn) NetConn() net.Conn { return c.Conn }
