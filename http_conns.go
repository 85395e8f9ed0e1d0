package lameduck

import (
	"crypto/tls"
	"net"
	"net/http"
	"sync"
	"time"
)

// This file holds how HTTPServer follows its connections and handler calls,
// which is what lets Shutdown return as soon as the last response is out.

// track follows one connection's state; net/http calls it through ConnState.
func (h *HTTPServer) track(c net.Conn, st http.ConnState) {
	// net/http reports a connection's states one at a time, from one
	// goroutine, so the entry for c cannot change between the two locks.
	h.mu.Lock()
	old := h.conns[c]
	h.mu.Unlock()
	info := connInfo{state: st, since: time.Now(), h2: old.h2, checked: old.checked}
	if !info.checked && (st == http.StateActive || st == http.StateIdle) {
		info.h2, info.checked = isHTTP2(c), true
	}
	h.update(c, info)
}

// update records c's new state and recounts what is busy.
func (h *HTTPServer) update(c net.Conn, info connInfo) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if old, known := h.conns[c]; known && old.busy() {
		h.busy--
	}
	switch info.state {
	case http.StateClosed, http.StateHijacked:
		delete(h.conns, c)
	default:
		h.conns[c] = info
		if info.busy() {
			h.busy++
		}
		if info.h2 && info.state == http.StateIdle {
			select {
			case h.h2Idle <- struct{}{}:
			default:
			}
		}
	}
	h.checkQuiet()
}

// h2Settle is how long an HTTP/2 connection must have been idle before the
// drain closes it. Its server reports it idle when its last stream closes,
// which can be a moment before that stream's final frames are flushed; the
// flush follows within microseconds, so this leaves a wide margin and still
// drains far sooner than waiting for net/http to close the connection (a
// second after its GOAWAY, unless the client closes it first).
const h2Settle = 100 * time.Millisecond

// closeSettledH2 closes the HTTP/2 connections that have been idle for
// h2Settle, and returns when the next idle one will have settled (the zero
// time if there is none).
func (h *HTTPServer) closeSettledH2() time.Time {
	h.mu.Lock()
	defer h.mu.Unlock()
	var next time.Time
	now := time.Now()
	for c, ci := range h.conns {
		if !ci.h2 || ci.state != http.StateIdle {
			continue
		}
		if settled := ci.since.Add(h2Settle); !settled.After(now) {
			c.Close() // net/http then reports it closed
		} else if next.IsZero() || settled.Before(next) {
			next = settled
		}
	}
	return next
}

// connInfo is what HTTPServer knows of one connection.
type connInfo struct {
	state   http.ConnState
	since   time.Time // when it entered state
	h2      bool      // HTTP/2 over TLS
	checked bool      // h2 has been worked out
}

// busy reports whether the connection holds the drain up.
//
// An HTTP/1 connection does while it is active: it may still be owed a
// response. A new one does not, even if its first request is on the wire:
// once Shutdown has begun, net/http drops a request whose header it finishes
// reading (it closes the connection without a response), so waiting would
// only let a client that connected and never sent anything hold the drain
// until the period ends.
//
// An HTTP/2 connection holds the drain until it is closed. Its server
// reports it idle as soon as its last stream is done, which can be before the
// stream's final frames have been flushed, so closing it then could cut a
// response short; Shutdown closes it once it has been idle for h2Settle (see
// closeSettledH2), unless net/http or the client closes it first.
func (ci connInfo) busy() bool {
	return ci.state == http.StateActive || ci.h2
}

func isHTTP2(c net.Conn) bool {
	tc, ok := c.(*tls.Conn)
	return ok && tc.ConnectionState().NegotiatedProtocol == "h2"
}

// checkQuiet closes h.quiet once nothing can need a response any more. The
// caller holds h.mu.
func (h *HTTPServer) checkQuiet() {
	if h.quiet == nil || !h.bound || h.busy > 0 || h.handlers > 0 || len(h.tracked) > 0 {
		return
	}
	select {
	case <-h.quiet:
	default:
		close(h.quiet)
	}
}

// quietChan returns a channel that is closed once no connection is busy.
func (h *HTTPServer) quietChan() <-chan struct{} {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.quiet == nil {
		h.quiet = make(chan struct{})
		h.checkQuiet()
	}
	return h.quiet
}

// closeIdle closes the connections left once the server is quiet: idle
// keep-alive connections that went idle just before Shutdown began, and new
// connections that have not sent a request (net/http would drop it now).
func (h *HTTPServer) closeIdle() {
	h.mu.Lock()
	defer h.mu.Unlock()
	for c, ci := range h.conns {
		if !ci.h2 && (ci.state == http.StateIdle || ci.state == http.StateNew) {
			c.Close()
		}
	}
}

func (h *HTTPServer) enter() {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.handlers++
}

func (h *HTTPServer) leave() {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.handlers--
	h.checkQuiet()
}

// Track registers a connection that a handler has taken over from net/http
// (with [http.Hijacker], as WebSocket libraries do) and that outlives the
// handler's call. Until release is called, the drain waits for it as for a
// request in flight, and Close closes it. Call release once the connection is
// finished with; calling it again does nothing.
//
// net/http cannot tell a hijacked connection that the drain has begun; to
// learn it, register a function with the server's RegisterOnShutdown, which
// Shutdown calls at its start, and have it ask the connection's owner to
// finish (send a close frame, say). A handler that keeps its hijacked
// connection only while it runs need not call Track: the drain already waits
// for the handler to return.
//
// Track after Close closes conn at once.
func (h *HTTPServer) Track(conn net.Conn) (release func()) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		conn.Close()
		return func() {}
	}
	h.tracked[conn] = true
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
