package lameduck

import (
	"context"
	"errors"
	"net"
	"net/http"
	"sync"
	"time"
)

// HTTPServer runs an [*http.Server] as a [Server]; make one with [FromHTTP].
type HTTPServer struct {
	srv   *http.Server
	ready chan struct{}

	mu       sync.Mutex
	started  bool                  // Serve has been called
	stopping bool                  // Shutdown or Close has been called
	bound    bool                  // Serve is past binding: the accept loop runs or never will
	addr     net.Addr              // the bound address
	conns    map[net.Conn]connInfo // every connection net/http has told us of
	busy     int                   // connections that hold the drain up (connInfo.busy)
	handlers int                   // calls of the handler in progress
	tracked  map[net.Conn]bool     // connections registered with Track
	closed   bool                  // Close has been called
	quiet    chan struct{}         // made by Shutdown; closed once bound and nothing is busy
	h2Idle   chan struct{}         // a token whenever an HTTP/2 connection goes idle
}

// FromHTTP makes a [Server] of srv. Serve listens on srv.Addr itself (":http",
// or ":https" with TLS, when it is empty), so [HTTPServer.Addr] can report the
// port when srv.Addr asks for port 0. It serves TLS when srv.TLSConfig holds
// certificates (Certificates, GetCertificate or GetConfigForClient), and plain
// HTTP otherwise. [http.ErrServerClosed] never comes out of Serve.
//
// Shutdown returns as soon as the last request in flight has been answered.
// net/http's own Shutdown notices that only at its next poll, and its polls
// back off to one every 500 ms; FromHTTP instead follows every connection's
// state, which it learns by wrapping srv.ConnState (a hook you set is still
// called). Connections that are idle, or that were opened but have sent
// nothing, do not hold the drain up; an idle HTTP/2 connection is closed
// once it has been idle for a tenth of a second, since its last frames may
// still be on their way out when net/http reports it idle. The drain also
// waits for calls of the handler in progress, so a handler that hijacks its
// connection holds it up while it runs; see [HTTPServer.Track] for one that
// hands the connection on.
//
// Like net/http's Shutdown, the drain finishes requests that have reached
// their handler; a request that reaches the server after the drain began is
// refused or dropped. Fail a readiness probe and give load balancers time to
// stop sending before the drain ([WithPreShutdown]).
//
// FromHTTP does not set a ReadHeaderTimeout for you. A connection that has
// sent nothing does not need one, since it does not hold the drain up; one
// that sends a request header slowly does (net/http counts it active), until
// the period ends. Set srv.ReadHeaderTimeout, as any server facing the
// internet should, to bound that too.
//
// The HTTPServer takes srv over: do not call its Serve, Shutdown or Close
// methods yourself, or change it while it runs. When srv.BaseContext is nil,
// requests' contexts carry the values of the context given to Serve.
func FromHTTP(srv *http.Server) *HTTPServer {
	return &HTTPServer{
		srv:     srv,
		ready:   make(chan struct{}),
		conns:   map[net.Conn]connInfo{},
		tracked: map[net.Conn]bool{},
		h2Idle:  make(chan struct{}, 1),
	}
}

func (h *HTTPServer) validate() error {
	if h.srv == nil {
		return errors.New("lameduck: FromHTTP: nil *http.Server")
	}
	return nil
}

// Addr returns the address the server listens on, or nil until it is bound.
func (h *HTTPServer) Addr() net.Addr {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.addr
}

// Ready returns a channel that is closed once the listener is bound and
// connections to Addr will be accepted. A [Runner] waits for it before
// closing its own Ready channel.
func (h *HTTPServer) Ready() <-chan struct{} { return h.ready }

func (h *HTTPServer) useTLS() bool {
	c := h.srv.TLSConfig
	return c != nil && (len(c.Certificates) > 0 || c.GetCertificate != nil || c.GetConfigForClient != nil)
}

// Serve binds the listener and serves on it until Shutdown or Close. It
// returns nil if Shutdown or Close is called before or while it binds.
func (h *HTTPServer) Serve(ctx context.Context) error {
	if err := h.validate(); err != nil {
		return err
	}
	h.mu.Lock()
	if h.started {
		h.mu.Unlock()
		return errors.New("lameduck: HTTPServer.Serve called more than once")
	}
	h.started = true
	stopping := h.stopping
	h.mu.Unlock()
	if stopping {
		h.markBound(nil)
		return nil
	}

	// The hooks go in before the port is bound, so no connection can be
	// accepted without being tracked.
	userHook := h.srv.ConnState
	h.srv.ConnState = func(c net.Conn, st http.ConnState) {
		h.track(c, st)
		if userHook != nil {
			userHook(c, st)
		}
	}
	// Counting handler calls covers a connection the handler has hijacked:
	// net/http forgets it (StateHijacked), but the drain still waits for the
	// handler to return, or to hand the connection to Track.
	inner := h.srv.Handler
	h.srv.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h.enter()
		defer h.leave()
		if inner == nil {
			http.DefaultServeMux.ServeHTTP(w, r)
		} else {
			inner.ServeHTTP(w, r)
		}
	})
	if h.srv.BaseContext == nil {
		h.srv.BaseContext = func(net.Listener) context.Context { return ctx }
	}

	addr := h.srv.Addr
	if addr == "" {
		addr = ":http"
		if h.useTLS() {
			addr = ":https"
		}
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		h.markBound(nil)
		return err
	}
	if !h.markBound(ln) {
		ln.Close()
		return nil
	}
	close(h.ready)

	if h.useTLS() {
		err = h.srv.ServeTLS(ln, "", "")
	} else {
		err = h.srv.Serve(ln)
	}
	if errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	return err
}

// markBound records that Serve has bound ln (nil: it will not serve at all).
// It reports false when Shutdown or Close came first, and Serve must not serve.
func (h *HTTPServer) markBound(ln net.Listener) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.bound = true
	if ln != nil && !h.stopping {
		h.addr = ln.Addr()
		return true
	}
	h.checkQuiet()
	return false
}

// Shutdown stops accepting connections, closes idle ones, and waits until
// every request in flight has been answered; then it closes the connections
// that are left (all idle) and returns nil. If ctx ends first it returns
// ctx's error and leaves the rest to Close.
func (h *HTTPServer) Shutdown(ctx context.Context) error {
	if err := h.validate(); err != nil {
		return err
	}
	h.beginStopping()

	// Hand net/http a context that is already done: its Shutdown then closes
	// the listeners, starts the RegisterOnShutdown hooks, waits for the accept
	// loops to exit, sweeps idle connections once, and returns at once instead
	// of polling. From then on no connection can be accepted, so the set we
	// track is complete, and the waiting is ours: the ConnState hook of the
	// last connection to finish closes the quiet channel.
	kick, cancel := context.WithCancel(ctx)
	cancel()
	if err := h.srv.Shutdown(kick); err != nil && !errors.Is(err, context.Canceled) {
		return err
	}
	quiet := h.quietChan()
	settle := time.NewTimer(0)
	defer settle.Stop()
	for {
		// HTTP/2 connections are closed once they have been idle a moment
		// (see h2Settle); the loop wakes when one goes idle or settles.
		settle.Stop()
		if at := h.closeSettledH2(); !at.IsZero() {
			settle.Reset(time.Until(at))
		}
		select {
		case <-quiet:
			h.closeIdle()
			return nil
		case <-settle.C:
		case <-h.h2Idle:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// beginStopping marks the server as stopping, so that a Serve that has not
// bound yet will not serve.
func (h *HTTPServer) beginStopping() {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.stopping = true
	if !h.started {
		h.bound = true // Serve, if it ever comes, will not serve
	}
}

// Close closes the listener and every connection at once, like
// [http.Server.Close], and also the connections registered with Track.
func (h *HTTPServer) Close() error {
	if err := h.validate(); err != nil {
		return err
	}
	h.beginStopping()
	err := h.srv.Close()
	h.mu.Lock()
	h.closed = true
	for c := range h.tracked {
		c.Close()
	}
	h.mu.Unlock()
	return err
}
