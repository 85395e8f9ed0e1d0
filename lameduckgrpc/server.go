package lameduckgrpc

import (
	"context"
	"errors"
	"net"
	"reflect"
	"sync"
	"sync/atomic"

	"github.com/b583c413/lameduck"
)

// FromGRPC is [lameduck.FromGRPC] for a gRPC server srv whose streams go
// through this Streams' interceptors: it makes a [lameduck.Server] of srv
// serving on ln, which drains srv as lameduck.FromGRPC does (GracefulStop,
// then Stop when the period runs out), and begins the streams' drain (see
// [Spread] and [Grace]) once GracefulStop has closed the listener.
//
// GracefulStop queues GOAWAY on every connection right after it closes the
// listener, and gRPC gives no signal once it has. So a handler that ends
// its stream the very instant it is told can reach its client a fraction of
// a millisecond before GOAWAY does; that client may open its next stream on
// the same connection, where it is told at once, and GOAWAY follows. A
// stream ended by a Grace of more than a few milliseconds reaches its client
// after GOAWAY.
//
// Close (and the end of the period) tells the streams not told yet and stops
// srv; none is ended by the interceptor after that: what is still open is
// cut by Close.
//
// Call it once per Streams. A Streams not made by New, or a second call,
// gives a Server whose Serve fails; a nil srv or ln makes lameduck.NewRunner
// fail, as with lameduck.FromGRPC.
func (s *Streams) FromGRPC(srv lameduck.GRPCServer, ln net.Listener) lameduck.Server {
	if s == nil || s.open == nil {
		return failing(errNotNew)
	}
	s.mu.Lock()
	linked := s.linked
	s.linked = true
	s.mu.Unlock()
	if linked {
		return failing(errors.New("lameduck: lameduckgrpc: Streams.FromGRPC called more than once; make one Streams per server"))
	}
	if isNil(srv) {
		return lameduck.FromGRPC(nil, ln) // NewRunner reports the nil server
	}
	svr := lameduck.FromGRPC(&gate{srv: srv, streams: s, closed: make(chan struct{})}, ln)
	if m, ok := svr.(marker); ok {
		s.marker.Store(&m)
	}
	return svr
}

// ReportWork gives the lameduck Runner's stop report the streams' books:
// streams open now, streams that ended during the drain (by their
// handler, by the interceptor once their grace ran out, or by their
// client: as for an HTTP request whose client left, Close did not cut
// them), and streams that Close ended.
func (g *gate) ReportWork(add func(kind, protocol string, inFlight, done, cut int)) {
	s := g.streams
	s.mu.Lock()
	open, cut := len(s.open), s.closedByStop
	done := s.counts.Ended + s.counts.Cut + s.counts.Cancelled - cut
	s.mu.Unlock()
	add("streams", "gRPC", open, done, cut)
}

// failing is a Server whose Serve returns err.
func failing(err error) lameduck.Server {
	return lameduck.ServerFuncs{ServeFunc: func(context.Context) error { return err }}
}

func isNil(v any) bool {
	if v == nil {
		return true
	}
	switch rv := reflect.ValueOf(v); rv.Kind() {
	case reflect.Pointer, reflect.Map, reflect.Slice, reflect.Func, reflect.Chan, reflect.Interface:
		return rv.IsNil()
	}
	return false
}

// gate stands between lameduck.FromGRPC and the gRPC server, to learn when
// GracefulStop has begun and when Stop was called.
type gate struct {
	srv     lameduck.GRPCServer
	streams *Streams

	once   sync.Once
	closed chan struct{} // closed when gRPC closes the listener: a stop has begun

	mu     sync.Mutex
	silent map[*watchedConn]struct{} // accepted connections that have sent nothing yet
}

func (g *gate) Serve(ln net.Listener) error {
	return g.srv.Serve(&watchedListener{Listener: ln, g: g})
}

// GracefulStop calls the server's GracefulStop and begins the streams'
// drain once it has closed the listener, its step before it queues GOAWAY
// on every connection (or once it returns, when there was no listener to
// close: Shutdown came before Serve). gRPC offers no later signal.
func (g *gate) GracefulStop() {
	stopped := make(chan struct{})
	go func() {
		defer close(stopped)
		g.srv.GracefulStop()
	}()
	select {
	case <-g.closed:
		g.closeSilent()
	case <-stopped:
	}
	g.streams.drain()
	<-stopped
}

// closeSilent closes the connections that have sent nothing since they were
// accepted. gRPC sends its GOAWAYs only once every connection it accepted has
// finished its handshake (or given up, after grpc.ConnectionTimeout: 120 s by
// default), so one client that connected and sent nothing would hold every
// GOAWAY back, and the streams told of the drain meanwhile would be opened
// again on the same connections, over and over (found by an outside review:
// 123 773 streams served after SIGTERM, Run expired). A connection that has
// sent nothing carries no RPC.
func (g *gate) closeSilent() {
	g.mu.Lock()
	silent := g.silent
	g.silent = nil
	g.mu.Unlock()
	for c := range silent {
		c.Conn.Close()
	}
}

// accepted records c, which has sent nothing yet; spoke forgets it.
func (g *gate) accepted(c *watchedConn) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.silent == nil {
		g.silent = map[*watchedConn]struct{}{}
	}
	g.silent[c] = struct{}{}
}

func (g *gate) spoke(c *watchedConn) {
	g.mu.Lock()
	defer g.mu.Unlock()
	delete(g.silent, c)
}

func (g *gate) Stop() {
	// First, so that every stream that ends from here on counts as cut by
	// Close: a handler can return (its send failed) before gRPC has
	// cancelled its context.
	g.streams.stop()
	g.srv.Stop()
}

func (g *gate) listenerClosed() { g.once.Do(func() { close(g.closed) }) }

// watchedListener tells its gate when gRPC closes it.
type watchedListener struct {
	net.Listener
	g *gate
}

func (l *watchedListener) Close() error {
	l.g.listenerClosed()
	return l.Listener.Close()
}

func (l *watchedListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	wc := &watchedConn{Conn: c, g: l.g}
	l.g.accepted(wc)
	return wc, nil
}

// watchedConn tells its gate when its client first sends something.
type watchedConn struct {
	net.Conn
	g     *gate
	heard atomic.Bool
}

func (c *watchedConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	if n > 0 && !c.heard.Load() {
		c.heard.Store(true)
		c.g.spoke(c)
	}
	return n, err
}

func (c *watchedConn) Close() error {
	c.g.spoke(c)
	return c.Conn.Close()
}
