package lameduckhttp3

import (
	"context"
	"errors"
	"net"
	"net/http"
	"reflect"
	"sync"

	"github.com/b583c413/lameduck"
	"github.com/quic-go/quic-go/http3"
)

// FromHTTP3 makes a [lameduck.Server] of an HTTP/3 server srv that serves on
// the UDP socket pc. Serve serves srv on a QUIC listener of its own on pc
// (configured from srv's TLSConfig, QUICConfig and EnableDatagrams, as
// srv.Serve would, but kept open through the drain to refuse new
// connections at once); Shutdown drains srv as
// the package documentation describes, and returns nil once every request
// has ended and every connection is closed, or ctx's error if ctx ends
// first, leaving the rest to Close; Close closes every connection at once,
// cutting the requests still in flight. pc is closed once the server has
// stopped.
//
// Serve sets srv.Handler and srv.ConnContext to wrappers of their values (a
// nil Handler stays [http.DefaultServeMux]), through which the drain follows
// connections and requests; do not change them once Run has begun.
//
// Bad input — a nil srv or pc, a srv without TLSConfig — gives a Server
// whose Serve fails with an error starting "lameduck: ", so that Run returns
// it.
func FromHTTP3(srv *http3.Server, pc net.PacketConn) lameduck.Server {
	switch {
	case srv == nil:
		return failing(errors.New("lameduck: lameduckhttp3.FromHTTP3: nil *http3.Server"))
	case isNil(pc):
		return failing(errors.New("lameduck: lameduckhttp3.FromHTTP3: nil net.PacketConn"))
	case srv.TLSConfig == nil:
		return failing(errors.New("lameduck: lameduckhttp3.FromHTTP3: the *http3.Server has no TLSConfig; HTTP/3 needs certificates"))
	}
	s := &server{srv: srv, pc: pc, draining: make(chan struct{}), conns: map[*conn]struct{}{}}
	s.mark = drainingMarker()
	return s
}

// server is the lameduck.Server that FromHTTP3 returns.
type server struct {
	srv  *http3.Server
	pc   net.PacketConn
	mark func(context.Context, chan struct{}) context.Context // nil: Draining is not offered

	draining chan struct{} // closed when the drain (or Close) begins

	mu       sync.Mutex
	phase    phase
	started  bool
	ln       *listener     // the QUIC listener srv serves on; set by Serve
	graceful chan struct{} // closed when srv.Shutdown has returned; nil until it is called
	conns    map[*conn]struct{}
	settle   chan struct{} // closed once no connection or request is open; nil when none waits
	book     book
}

// phase is where the server is in its life; it only moves forward.
type phase int

const (
	idle     phase = iota // Serve has not been called, nor Shutdown or Close
	serving               // Serve has been called
	stopping              // Shutdown has been called
	closed                // Close has been called
)

// Serve serves srv on pc until Shutdown or Close. It returns nil when one
// of them stopped it, also when one came first (it then does not serve).
func (s *server) Serve(context.Context) error {
	s.mu.Lock()
	if s.started {
		s.mu.Unlock()
		return errors.New("lameduck: lameduckhttp3: Serve called more than once")
	}
	s.started = true
	if s.phase != idle {
		s.mu.Unlock()
		return nil // Shutdown or Close came first, and closed pc
	}
	ln, err := s.listen()
	if err != nil {
		s.mu.Unlock()
		return err
	}
	s.ln = ln
	s.phase = serving
	s.install()
	s.mu.Unlock()

	err = s.srv.ServeListener(ln)
	s.mu.Lock()
	stopped := s.phase >= stopping
	s.mu.Unlock()
	switch {
	case stopped:
		// quic-go's accept loop ends at once when a stop begins; the
		// drain goes on in Shutdown.
		return nil
	case errors.Is(err, http.ErrServerClosed):
		err = errors.New("lameduck: lameduckhttp3: the *http3.Server was shut down or closed before Serve; make a new one")
	}
	ln.shut()
	return err
}

// install puts the drain's hooks into srv, wrapping what the user set.
func (s *server) install() {
	h := s.srv.Handler
	if h == nil {
		h = http.DefaultServeMux
	}
	s.srv.Handler = s.follow(h)
	s.srv.ConnContext = s.connContext(s.srv.ConnContext)
}

// Shutdown begins the drain: quic-go's Shutdown sends GOAWAY on every
// connection, the server's listener refuses new ones, and each connection
// is closed once its client is done with it (see the package
// documentation). It returns nil
// once every request has ended and every connection is closed, an error if
// the drain had to close a connection its client might still have been
// reading, or ctx's error if ctx ends first.
func (s *server) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	switch was := s.stop(stopping); was {
	case idle:
		s.mu.Unlock()
		s.pc.Close()
		return nil
	case closed:
		s.mu.Unlock()
		return nil // Close has ended everything
	}
	if s.graceful == nil {
		s.graceful = make(chan struct{})
		go s.ln.refuseQueued()
		go func() {
			// It returns once every connection has ended and each one's
			// handlers have returned, which may be after Shutdown returns
			// (ctx ended): then once Close has closed them.
			defer close(s.graceful)
			s.srv.Shutdown(context.Background())
		}()
	}
	graceful := s.graceful
	s.mu.Unlock()

	select {
	case <-graceful:
	case <-ctx.Done():
		return ctx.Err()
	}
	// The last connection's books are written by callbacks that may run
	// just after quic-go has let it go.
	select {
	case <-s.settled():
	case <-ctx.Done():
		return ctx.Err()
	}
	s.ln.shut()
	s.pc.Close()
	return s.drainErr()
}

// Close closes every connection, cutting the requests still in flight,
// and pc. It does not wait for handlers: one that ignores its request's
// context goes on running, and so does quic-go's Close, which Close starts
// and which waits for every handler.
func (s *server) Close() error {
	type victim struct {
		c   *conn
		cut bool
	}
	s.mu.Lock()
	var open []victim
	for c := range s.conns {
		open = append(open, victim{c, len(c.open) > 0})
	}
	was := s.stop(closed)
	s.mu.Unlock()
	if was == idle {
		s.pc.Close()
		return nil
	}
	// The connections are closed first, so that each one's client gets
	// the code that says whether its requests were cut; quic-go's Close
	// would close them all with H3_NO_ERROR.
	var wg sync.WaitGroup
	for _, v := range open {
		wg.Go(func() { v.c.abort(v.cut) })
	}
	wg.Wait()
	if was < closed {
		go s.srv.Close()
	}
	s.ln.shut()
	if err := s.pc.Close(); err != nil && !errors.Is(err, net.ErrClosed) {
		return err
	}
	return nil
}

// stop moves the server on to p, tells the handlers (Draining) and the
// books, and returns the phase it was in. Call it with s.mu held.
func (s *server) stop(p phase) (was phase) {
	was = s.phase
	if was >= p {
		return was
	}
	s.phase = p
	if was < stopping {
		close(s.draining)
	}
	if p == closed {
		s.closeBooks()
	} else {
		s.drainBooks()
	}
	return was
}

// failing is a Server whose Serve returns err.
func failing(err error) lameduck.Server {
	return lameduck.ServerFuncs{ServeFunc: func(context.Context) error { return err }}
}

// drainingMarker returns the library's way to make [lameduck.Draining] find
// a channel in a context. The library offers it on the Server FromGRPC
// returns (lameduckgrpc's interceptors use it, since gRPC, like quic-go,
// makes its handlers' contexts itself); the method needs nothing of that
// Server.
func drainingMarker() func(context.Context, chan struct{}) context.Context {
	m, ok := lameduck.FromGRPC(nil, nil).(interface {
		WithDraining(ctx context.Context, draining chan struct{}) context.Context
	})
	if !ok {
		return nil
	}
	return m.WithDraining
}

// isNil reports whether c is nil or holds a nil pointer.
func isNil(c net.PacketConn) bool {
	if c == nil {
		return true
	}
	v := reflect.ValueOf(c)
	return v.Kind() == reflect.Pointer && v.IsNil()
}
