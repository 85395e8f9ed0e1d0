package lameduck

import (
	"net"
	"net/http"
	"sync"
	"sync/atomic"
)

// This file holds how HTTPServer follows its connections and handler calls,
// which is what lets Shutdown return as soon as the last response is out
// without cutting any off. Each accepted connection is wrapped in a conn,
// which carries what the server knows of it, so that a ConnState event or a
// handler call takes the server's lock once and looks nothing up. The
// hooks through which net/http reports those events are in http_hooks.go.

// listener wraps the listener Serve serves on, so that every connection
// net/http gets is a *conn.
type listener struct {
	net.Listener
	h *HTTPServer

	closing  sync.Once // net/http and Serve may both close it
	closeErr error
}

func (l *listener) Close() error {
	l.closing.Do(func() { l.closeErr = l.Listener.Close() })
	return l.closeErr
}

func (l *listener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	lc := &conn{Conn: c, h: l.h}
	l.h.mu.Lock()
	defer l.h.mu.Unlock()
	if l.h.life.phase() >= phaseClosed {
		c.Close()
		return nil, net.ErrClosed
	}
	l.h.conns[lc] = struct{}{}
	return lc, nil
}

// conn is one accepted connection. The fields after mu's comment are
// guarded by the server's mu.
type conn struct {
	net.Conn
	h *HTTPServer

	closed    atomic.Bool  // the server (net/http or the drain) has closed it
	sniffed   atomic.Bool  // its first bytes have been looked at
	preface   atomic.Bool  // it began with the HTTP/2 preface (h2c)
	offeredH2 atomic.Bool  // its TLS ClientHello offered "h2" to a server that speaks it
	tlsProto  atomic.Int32 // over TLS: 0 until known, then tlsHTTP1 or tlsHTTP2
	reading   sync.Mutex   // one reader at a time: net/http's, then the linger's

	// guarded by h.mu
	state     http.ConnState
	hijacked  bool // a handler took it over
	lingering bool // closed gently; the linger has not finished
	held      bool // counted in h.holding
	h2Served  bool // HTTP/2 serves it: it has reported a state as an HTTP/2 connection
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
		c.preface.Store(c.h.h2c && len(p[:n]) >= len(h2Preface) && string(p[:len(h2Preface)]) == h2Preface)
	}
	return n, err
}

func (c *conn) Write(p []byte) (int, error) {
	if c.closed.Load() {
		return 0, net.ErrClosed
	}
	return c.Conn.Write(p)
}

// Close is how net/http (and the drain) close a connection. While the server
// drains, it closes gently (see linger); otherwise it closes at once.
func (c *conn) Close() error {
	if !c.closed.CompareAndSwap(false, true) {
		return nil
	}
	h := c.h
	h.mu.Lock()
	gentle := h.life.phase() == phaseStopping && !c.hijacked && canCloseWrite(c.Conn)
	if gentle {
		c.lingering = true
		h.lingers.Add(1)
		h.recount(c)
	} else {
		h.forget(c)
	}
	h.mu.Unlock()
	if !gentle {
		return c.Conn.Close()
	}
	// Wake net/http's reader, which now gets net.ErrClosed, so that the
	// linger can read in its place.
	c.Conn.SetReadDeadline(aLongTimeAgo)
	go c.linger()
	return nil
}

// forget drops c from the server's books. The caller holds h.mu.
func (h *HTTPServer) forget(c *conn) {
	if c.held {
		c.held = false
		h.holding--
	}
	delete(h.conns, c)
	h.checkQuiet()
}

// holds reports whether c holds the drain up. The caller holds h.mu.
//
// A connection being closed gently does, until the client has everything. So
// does an HTTP/1 connection in the middle of a request, and an HTTP/2
// connection until it is closed: net/http has sent it a GOAWAY and closes it
// once its streams are done and the client has hung up (or a second later).
// An idle or new HTTP/1 connection does not: the drain closes it, and a new
// one's request, if any, would be dropped by net/http now.
func (c *conn) holds() bool {
	return c.lingering || c.state == http.StateActive || c.isH2()
}

// isH2 reports whether c speaks HTTP/2. The caller holds h.mu.
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
		return !c.h.newGrace && (c.preface.Load() || c.offeredH2.Load())
	}
	return c.preface.Load()
}

// recount updates c's place in h.holding. The caller holds h.mu.
func (h *HTTPServer) recount(c *conn) {
	if h.life.phase() != phaseStopping {
		return // counted by the drain when it begins (see drain)
	}
	if held := c.holds(); held != c.held {
		c.held = held
		if held {
			h.holding++
		} else {
			h.holding--
		}
	}
	h.checkQuiet()
}

// checkQuiet closes h.quiet once nothing holds the drain up. The caller
// holds h.mu.
func (h *HTTPServer) checkQuiet() {
	if h.quiet == nil || h.holding > 0 || h.handlers > 0 || len(h.tracked) > 0 {
		return
	}
	select {
	case <-h.quiet:
	default:
		close(h.quiet)
	}
}

// Track registers a connection that a handler has taken over from net/http
// (with [http.Hijacker], as WebSocket libraries do) and that outlives the
// handler's call. Until release is called, the drain waits for it as for a
// request in flight, and Close closes it. Call release once the connection is
// finished with; calling it again does nothing.
//
// net/http cannot tell a hijacked connection that the drain has begun; select
// on [Draining] of the request's context, or register a function with the
// server's RegisterOnShutdown, and have the connection's owner finish (send
// a close frame, say). A handler that keeps its hijacked connection only
// while it runs need not call Track: the drain already waits for the handler
// to return.
//
// Track after Close closes conn at once.
func (h *HTTPServer) Track(conn net.Conn) (release func()) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.life.phase() == phaseClosed {
		conn.Close()
		return func() {}
	}
	h.tracked[conn] = struct{}{}
	var once sync.Once
	return func() {
		once.Do(func() {
			h.mu.Lock()
			defer h.mu.Unlock()
			delete(h.tracked, conn)
			h.checkQuiet()
		})
	}
}

// NetConn returns the connection as it was accepted, for a ConnContext or
// ConnState hook that needs it (to set socket options, say): the one net/http
// passes them is wrapped by the HTTPServer.
func (c *conn) NetConn() net.Conn { return c.Conn }
