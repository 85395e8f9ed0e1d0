package lameduck

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/b583c413/lameduck/internal/httpdrain"
)

// HTTPServer runs an [*http.Server] as a [Server]; make one with [FromHTTP]
// or [FromHTTPListener].
type HTTPServer struct {
	srv      *http.Server
	tracker  *httpdrain.Tracker // follows srv's connections and handler calls, and drains them
	given    net.Listener       // the listener to serve on; nil: bind srv.Addr
	ready    chan struct{}      // closed once net/http is about to accept on the bound listener
	readied  sync.Once          // closes ready
	bound    chan struct{}      // closed once Serve has bound, or never will
	draining chan struct{}      // closed when Shutdown or Close begins (see Draining)

	life lifecycle // stopped under mu, and the tracker told under it, so that both move in step

	mu        sync.Mutex
	addr      net.Addr
	spread    time.Duration // see Spread
	spreadErr error         // bad input to Spread, for NewRunner and Serve
	lateErr   error         // Spread called once Serve had begun, for Serve's return
}

// FromHTTP makes a [Server] of srv. Serve listens on srv.Addr itself (":http",
// or ":https" with TLS, when it is empty), so [HTTPServer.Addr] can report the
// port when srv.Addr asks for port 0. It serves TLS when srv.TLSConfig can
// supply a certificate (Certificates, GetCertificate or GetConfigForClient),
// and HTTP/2 as net/http would serve it (over TLS by default, in clear text
// when srv.Protocols enables UnencryptedHTTP2). [http.ErrServerClosed] never
// comes out of Serve.
//
// The drain's promise, for every protocol: a request that has reached its
// handler is answered, and the whole response reaches a client that keeps
// reading, within the period; no connection that may still owe its client
// bytes is closed before Close, and HTTP/2 clients get a GOAWAY. Shutdown
// returns as soon as the last connection is gone, not at net/http's next
// poll. The README's "What FromHTTP delivers" says how, per protocol.
//
// Keep-alive connections are ended without a race: when the drain begins
// the listener closes, but net/http's Shutdown waits while clients may
// still send on their open connections (one in the middle of a request, a
// new one, or any idle one where clients reuse connections), and each
// request that arrives is answered with "Connection: close" and its
// connection then closes. net/http's Shutdown (which drops any request it
// reads, and runs the RegisterOnShutdown hooks) comes once no such
// connection is left, or once no request has arrived for ten of the recent
// gaps between requests (at least 100 ms, at most 1 s). So a proxy
// without health checks (nginx) that sends a request on a pooled connection
// as the drain begins gets an answer, not a close it cannot retry; the
// README's balancer sections say what each kind of balancer needs. After a
// [Readiness.FailUntilSeen] step that reached its count, with [Seen] saying
// that its balancer is the only way requests come (Sole), no connection is
// kept for it.
//
// What it cannot promise: a connection attempt after the drain began is
// refused; fail a readiness probe and give load balancers time before the
// drain ([WithPreShutdown]). A response still being written when the period
// ends, or to a client that stopped reading, is cut by Close, and Run
// reports a [*LameDuckError]. Streaming handlers should end when [Draining]
// says the drain began. A connection taken over with [http.Hijacker] (a
// WebSocket) is work in flight until its owner closes it: it holds the
// drain, and Close closes it, so none outlives Run; its owner should close
// it when [Draining] says so. x/net's h2c.NewHandler is out of the drain's
// reach: use srv.Protocols (FromHTTP warns through srv.ErrorLog when it
// sees one).
//
// The HTTPServer takes srv over: do not call its Serve, Shutdown or Close
// yourself, or change it while it runs. It wraps srv.ConnState,
// srv.Handler and srv.BaseContext (yours are still called) and every
// accepted connection (NetConn returns the one the listener accepted). When
// srv.TLSNextProto is nil it sets net/http's HTTP/2 up itself, so that
// HTTP/2 clients get their GOAWAY as soon as the drain begins, even on a
// connection whose handshake ends just then; with HTTP/2 of your own (x/net's
// http2.ConfigureServer) the GOAWAY waits for net/http's Shutdown, and such a
// connection can miss it. A srv that was shut down or closed before cannot
// serve again: Serve fails instead of returning nil.
func FromHTTP(srv *http.Server) *HTTPServer {
	h := &HTTPServer{
		srv:      srv,
		ready:    make(chan struct{}),
		bound:    make(chan struct{}),
		draining: make(chan struct{}),
	}
	h.tracker = httpdrain.New(srv, h.withDraining, h.accepting)
	return h
}

// FromHTTPListener is like [FromHTTP] but serves on ln, a listener that is
// already bound (handed over by systemd socket activation, by
// github.com/cloudflare/tableflip, or made by a test), instead of binding
// srv.Addr. The HTTPServer owns ln from then on: Shutdown and Close close it,
// and so does a Serve that is never reached or that fails before it serves
// (net/http rejecting srv.TLSConfig, say), as [http.Server.Serve] always
// closes its listener: nothing else would, and an open listener that nobody
// accepts on leaves its clients waiting. Addr reports ln's address, and TLS
// is used as with FromHTTP.
func FromHTTPListener(srv *http.Server, ln net.Listener) *HTTPServer {
	h := FromHTTP(srv)
	h.given = ln
	return h
}

func (h *HTTPServer) validate() error {
	switch {
	case h.ready == nil:
		return errors.New("lameduck: HTTPServer not made by FromHTTP")
	case h.srv == nil:
		return errors.New("lameduck: FromHTTP: nil *http.Server")
	case h.given != nil && isNil(h.given):
		return errors.New("lameduck: FromHTTPListener: nil net.Listener")
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.spreadErr
}

// Addr returns the address the server listens on, or nil until it is bound.
func (h *HTTPServer) Addr() net.Addr {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.addr
}

// Ready returns a channel that is closed once the listener is bound and
// net/http, having accepted srv's set-up, is about to accept connections on
// it: the port is open and served. It is never closed when Serve fails before
// that (net/http rejecting srv.TLSConfig, say), or when Shutdown or Close
// comes first. A [Runner] waits for it before closing its own Ready channel.
func (h *HTTPServer) Ready() <-chan struct{} { return h.ready }

func (h *HTTPServer) useTLS() bool {
	c := h.srv.TLSConfig
	return c != nil && (len(c.Certificates) > 0 || c.GetCertificate != nil || c.GetConfigForClient != nil)
}

// Serve binds the listener (or takes the one it was given) and serves on it
// until Shutdown or Close. It returns nil if Shutdown or Close is called
// before or while it binds.
func (h *HTTPServer) Serve(ctx context.Context) (err error) {
	if err := h.validate(); err != nil {
		return err
	}
	h.mu.Lock()
	stopped, err := h.life.start("HTTPServer's Serve")
	spread := h.spread
	h.mu.Unlock()
	switch {
	case err != nil:
		return err
	case stopped:
		return nil // Shutdown or Close came first, and closed the bound channel
	}
	defer func() { err = errors.Join(err, h.late()) }()
	tls := h.useTLS()
	h.tracker.Spread(spread, withConnDraining)
	// Everything is wrapped before the port opens, so that no connection
	// can be accepted without being followed.
	h.tracker.Install(ctx, tls)
	if err := h.tracker.SetUpHTTP2(tls); err != nil {
		// Nothing will be served: the port is not opened, and a listener
		// that was handed over is closed, as net/http's Serve closes its.
		h.settle(nil)
		if h.given != nil {
			h.given.Close()
		}
		return err
	}

	ln, err := h.listen(tls)
	if err != nil {
		h.settle(nil)
		return err
	}
	if !h.settle(ln) {
		ln.Close()
		return nil
	}

	// Ready closes from srv.BaseContext (see accepting), once net/http has
	// accepted the set-up and is about to accept connections.
	if tls {
		err = h.srv.ServeTLS(ln, "", "")
	} else {
		err = h.srv.Serve(ln)
	}
	// Serve closes ln whatever ends it, but ServeTLS leaves it open when it
	// fails before it gets that far; the port must not stay bound.
	ln.Close()
	if errors.Is(err, net.ErrClosed) && h.stopped() {
		return nil // the drain closed the listener before net/http's Shutdown (see internal/httpdrain)
	}
	if errors.Is(err, http.ErrServerClosed) {
		if !h.stopped() {
			return errors.New("lameduck: FromHTTP: the *http.Server was shut down or closed before Serve; make a new one")
		}
		return nil
	}
	return err
}

// listen returns the listener to serve on, wrapped so that connections are
// followed from the moment they are accepted.
func (h *HTTPServer) listen(tls bool) (net.Listener, error) {
	ln := h.given
	if ln == nil {
		addr := h.srv.Addr
		if addr == "" {
			addr = ":http"
			if tls {
				addr = ":https"
			}
		}
		var err error
		if ln, err = net.Listen("tcp", addr); err != nil {
			return nil, err
		}
	}
	return h.tracker.Listener(ln, h.given == nil), nil
}

// settle records that Serve is past binding: ln is the listener it will
// serve on, or nil if it will not serve. It reports false when Shutdown or
// Close came first, and Serve must not serve.
func (h *HTTPServer) settle(ln net.Listener) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	defer close(h.bound)
	if ln == nil || h.life.phase() != phaseServing {
		return false
	}
	h.addr = ln.Addr()
	return true
}

func (h *HTTPServer) stopped() bool { return h.life.phase() >= phaseStopping }

// stop moves the server to p (stopping or closed), tells the tracker, and
// reports the phase it was in. The first call also tells streaming handlers
// (Draining).
func (h *HTTPServer) stop(p phase) (was phase) {
	h.mu.Lock()
	defer h.mu.Unlock()
	was = h.life.stop(p)
	switch {
	case was >= p:
	case p == phaseClosed:
		h.tracker.BeginClose()
	default:
		h.tracker.BeginDrain()
	}
	if was < phaseStopping {
		close(h.draining)
		if was == phaseIdle {
			// Serve, if it ever comes, will not serve: nothing to wait for.
			close(h.bound)
			if h.given != nil {
				h.given.Close()
			}
		}
	}
	return was
}

// Shutdown stops accepting connections and drains the ones open: it waits
// until every handler has returned and every connection has been closed
// without cutting off what it owed its client (see [FromHTTP]). It returns
// nil then, or ctx's error if ctx ends first, leaving the rest to Close.
func (h *HTTPServer) Shutdown(ctx context.Context) error {
	if err := h.validate(); err != nil {
		return err
	}
	if h.stop(phaseStopping) == phaseIdle {
		return nil
	}
	select {
	case <-h.bound:
	case <-ctx.Done():
		return ctx.Err()
	}
	if balancerStopped(ctx) {
		h.tracker.BalancerStopped()
	}
	return h.tracker.Drain(ctx)
}

// Close closes the listener and every connection at once, like
// [http.Server.Close], including connections the drain is closing gently,
// those that handlers hijacked and those registered with Track. It waits
// for nothing but those closes.
func (h *HTTPServer) Close() error {
	if err := h.validate(); err != nil {
		return err
	}
	if h.stop(phaseClosed) == phaseIdle {
		return nil
	}
	<-h.bound // binding cannot block: it is one listen call
	err := h.srv.Close()
	h.tracker.Close()
	return err
}

// Track puts a connection that did not come from this server under its
// drain: until release is called the drain waits for it as for a request in
// flight, and Close closes it. A connection a handler hijacked from this
// server needs no Track, since the server follows it already; Track is for
// one the handler got elsewhere and whose life belongs to the request, such
// as the connection a WebSocket proxy opens to its backend. Call release
// once the connection is finished with; calling it again does nothing.
//
// Track after Close closes conn at once; Track(nil) does nothing. A
// connection tracked after a drain that ended without Close (Run returned
// nil) is left to its owner.
func (h *HTTPServer) Track(conn net.Conn) (release func()) { return h.tracker.Track(conn) }

// Spread has the drain tell each connection at a moment of its own, drawn
// uniformly from a window that opens when Shutdown is called, instead of
// telling every connection at once: [Draining] closes at that moment for the
// connection's requests. Long-lived connections that end on Draining
// (WebSockets, server-sent events) then end spread over the window, and
// their clients reach the other instances a few at a time. Spread returns h,
// so that it can follow [FromHTTP]. The default, zero, tells every
// connection when Shutdown is called.
//
// The window comes out of the period. NewRunner fails when it is negative,
// or more than half of what the period leaves for Shutdown after the
// pre-shutdown Delays; at the drain it shrinks to half of what Shutdown's
// context has left, so that the connections told last have time to close.
// Close closes every connection at once, told or not. Call Spread before
// Serve: a later call changes nothing, and Serve reports it in its error;
// so does a bad window, even when a later call gives a good one.
func (h *HTTPServer) Spread(window time.Duration) *HTTPServer {
	if h == nil {
		return nil // NewRunner reports the nil Server
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	switch {
	case window < 0:
		h.spreadErr = fmt.Errorf("lameduck: HTTPServer.Spread: negative window %v", window)
	case h.life.hasStarted():
		h.lateErr = errors.New("lameduck: HTTPServer.Spread called after Serve began; it changed nothing")
	default:
		h.spread = window
	}
	return h
}

// late returns the error of a Spread called after Serve began, if any.
func (h *HTTPServer) late() error {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.lateErr
}

// fitDrain reports a Spread window that does not fit in d, the time the
// period leaves for Shutdown; NewRunner asks (see drainFitter).
func (h *HTTPServer) fitDrain(d time.Duration) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.spread > d/2 {
		return fmt.Errorf("lameduck: HTTPServer.Spread: a window of %v is more than half of the %v the period leaves for the drain; the connections told last would have no time to close", h.spread, d)
	}
	return nil
}

// withDraining is the tracker's base-context hook: it lets handlers find the
// draining channel through Draining.
func (h *HTTPServer) withDraining(ctx context.Context) context.Context {
	return markDraining(ctx, h.draining)
}

// accepting is the tracker's hook for the moment net/http, having accepted
// srv's set-up, is about to accept: from then on the port is served.
func (h *HTTPServer) accepting() { h.readied.Do(func() { close(h.ready) }) }

// drainingKey is the context key under which a request's context carries
// the channel Draining returns: the HTTPServer's, from Serve's base context,
// or under Spread its connection's, from the connection's context.
type drainingKey struct{}

// withConnDraining is the tracker's connection-context hook under Spread:
// the connection's own channel, found first, stands in for the server's.
func withConnDraining(ctx context.Context, ch <-chan struct{}) context.Context {
	return markDraining(ctx, ch)
}

// markDraining returns a copy of ctx for which Draining returns ch. Every
// adapter marks contexts through it, so that the value's type is written in
// one place.
func markDraining(ctx context.Context, ch <-chan struct{}) context.Context {
	return context.WithValue(ctx, drainingKey{}, ch)
}

// Draining returns a channel that is closed when the drain of the
// [HTTPServer] serving the request whose context is ctx begins: when its
// Shutdown (or Close) is called, after the pre-shutdown steps, or, with
// [HTTPServer.Spread], at the moment drawn for the request's connection. A
// handler that streams — server-sent events, a long poll, a chunked download
// that can stop at a boundary — or owns a WebSocket selects on it to finish
// its work early and let the drain end, instead of running into the period:
//
//	select {
//	case ev := <-events:
//		// write ev, flush
//	case <-lameduck.Draining(r.Context()):
//		return // the response ends cleanly; the client reconnects elsewhere
//	}
//
// For a context that does not come from such a server it returns nil, a
// channel that is never closed.
func Draining(ctx context.Context) <-chan struct{} {
	c, _ := ctx.Value(drainingKey{}).(<-chan struct{})
	return c
}
