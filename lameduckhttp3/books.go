package lameduckhttp3

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/quic-go/quic-go"
	"github.com/quic-go/quic-go/http3"
)

// This file keeps the books of connections and requests that the drain
// decides by, and the stop report reads.

// conn is one QUIC connection, from quic-go's ConnContext call to its close.
// Its fields are guarded by the server's mutex.
type conn struct {
	qc     *quic.Conn
	open   map[*request]struct{} // requests whose response has not ended
	served int                   // requests that reached a handler on it

	linger  *time.Timer // runs while the drain waits for its client to close it
	turn    int         // which linger timer is the current one
	counted bool        // its end is in the books already
	closing bool        // the drain closed it
}

// request is one request, from its handler's call to the end of its
// response stream.
type request struct {
	counted bool // its end is in the books already (cut)
}

// book holds the counts. Done and cut only grow.
type book struct {
	reqs                  int // requests open now
	reqDone, reqCut       int
	connDone, connCut     int
	drainReqs, drainConns int // requests and connections the drain itself cut (see drainErr)
}

type connKey struct{}

// connContext wraps the user's ConnContext hook: it books each connection
// and marks its context for lameduck.Draining and for follow.
func (s *server) connContext(user func(context.Context, *quic.Conn) context.Context) func(context.Context, *quic.Conn) context.Context {
	return func(ctx context.Context, qc *quic.Conn) context.Context {
		if user != nil {
			if ctx = user(ctx, qc); ctx == nil {
				return nil // quic-go reports it
			}
		}
		ctx = context.WithValue(ctx, connKey{}, s.admit(qc))
		if s.mark != nil {
			ctx = s.mark(ctx, s.draining)
		}
		return ctx
	}
}

// follow wraps the handler: a request is open from the handler's call
// until its response stream has ended, which quic-go marks by cancelling
// the request's context once it has closed the stream's sending side (or
// reset it, or the connection closed) after the handler returned.
func (s *server) follow(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, _ := r.Context().Value(connKey{}).(*conn)
		if c == nil {
			h.ServeHTTP(w, r)
			return
		}
		q := s.begin(c)
		defer func() { context.AfterFunc(r.Context(), func() { s.end(c, q) }) }()
		h.ServeHTTP(w, r)
	})
}

func (s *server) admit(qc *quic.Conn) *conn {
	c := &conn{qc: qc, open: map[*request]struct{}{}}
	s.mu.Lock()
	if s.ln != nil {
		s.ln.admitted(qc)
	}
	s.conns[c] = struct{}{}
	if s.phase == stopping {
		s.arm(c)
	}
	s.mu.Unlock()
	context.AfterFunc(qc.Context(), func() { s.gone(c) })
	return c
}

func (s *server) begin(c *conn) *request {
	s.mu.Lock()
	defer s.mu.Unlock()
	q := &request{}
	c.served++
	switch {
	case s.phase == closed:
		q.counted = true
		s.book.reqCut++
	case c.closing:
		// Its first bytes came after the drain had given up waiting on
		// its connection (held up by loss or reordering): no response
		// can reach its client.
		q.counted = true
		s.book.reqCut++
		s.book.drainReqs++
	default:
		c.open[q] = struct{}{}
		s.book.reqs++
		c.turn++ // the connection is busy again: a linger running is void
		if c.linger != nil {
			c.linger.Stop()
			c.linger = nil
		}
	}
	return q
}

func (s *server) end(c *conn, q *request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if q.counted {
		return
	}
	q.counted = true
	delete(c.open, q)
	s.book.reqs--
	s.book.reqDone++
	if s.phase == stopping && len(c.open) == 0 {
		s.arm(c)
	}
	s.maybeSettled()
}

// gone books a connection that has closed, whoever closed it.
func (s *server) gone(c *conn) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.conns, c)
	c.turn++
	if c.linger != nil {
		c.linger.Stop()
		c.linger = nil
	}
	if !c.counted {
		c.counted = true
		switch {
		case c.served > 0 && s.phase == closed:
			s.book.connCut++ // admitted after Close had counted the others
		case c.served > 0 && s.phase == stopping && closedHere(c.qc):
			// quic-go closed it (srv.IdleTimeout) while its client may
			// still have been reading, as the drain's linger would have.
			s.book.connCut++
			s.book.drainConns++
		default:
			s.book.connDone++ // its client closed it, or it broke
		}
	}
	s.maybeSettled()
}

// closedHere reports whether this end closed qc without an error, as
// quic-go does when srv.IdleTimeout runs out.
func closedHere(qc *quic.Conn) bool {
	var aerr *quic.ApplicationError
	return errors.As(context.Cause(qc.Context()), &aerr) && !aerr.Remote && aerr.ErrorCode == quic.ApplicationErrorCode(http3.ErrCodeNoError)
}

// drainBooks begins the drain's wait on every connection that has no
// request open. Call it with s.mu held.
func (s *server) drainBooks() {
	for c := range s.conns {
		if len(c.open) == 0 {
			s.arm(c)
		}
	}
}

// closeBooks counts what Close cuts: every request still open, and every
// connection still open that carried a response, which its client may not
// have read whole. Call it with s.mu held.
func (s *server) closeBooks() {
	for c := range s.conns {
		c.turn++
		if c.linger != nil {
			c.linger.Stop()
			c.linger = nil
		}
		for q := range c.open {
			q.counted = true
			s.book.reqCut++
			s.book.reqs--
		}
		clear(c.open)
		if !c.counted {
			c.counted = true
			if c.served > 0 {
				s.book.connCut++
			} else {
				s.book.connDone++
			}
		}
	}
	s.maybeSettled()
}

// arm starts the drain's wait for c's client to close c, now that c has no
// request open. Call it with s.mu held.
func (s *server) arm(c *conn) {
	if c.counted || c.linger != nil {
		return
	}
	c.turn++
	turn := c.turn
	c.linger = time.AfterFunc(linger(c.qc.ConnectionStats(), c.served > 0), func() { s.lingerOut(c, turn) })
}

// lingerOut closes c, whose client has not closed it within its linger,
// with H3_NO_ERROR, the code RFC 9114 (section 5.2) asks for at the end of
// a graceful shutdown. The drain cannot tell whether that client had read
// what it was sent (quic-go's client drops what it has not read when its
// connection closes), so a connection that carried a response counts as
// cut.
func (s *server) lingerOut(c *conn, turn int) {
	s.mu.Lock()
	if turn != c.turn || s.phase != stopping || c.counted || len(c.open) > 0 || c.qc.Context().Err() != nil {
		s.mu.Unlock()
		return
	}
	c.linger = nil
	c.counted, c.closing = true, true
	if c.served > 0 {
		s.book.connCut++
		s.book.drainConns++
	} else {
		s.book.connDone++
	}
	s.mu.Unlock()
	c.qc.CloseWithError(quic.ApplicationErrorCode(http3.ErrCodeNoError), "")
}

// abort closes c at Close: with H3_REQUEST_CANCELLED when it had requests
// open, which Close cuts, else with H3_NO_ERROR.
func (c *conn) abort(cut bool) {
	code := http3.ErrCodeNoError
	if cut {
		code = http3.ErrCodeRequestCanceled
	}
	c.qc.CloseWithError(quic.ApplicationErrorCode(code), "")
}

// settled returns a channel that is closed once no connection and no
// request is open.
func (s *server) settled() <-chan struct{} {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.settle == nil {
		s.settle = make(chan struct{})
	}
	ch := s.settle
	s.maybeSettled()
	return ch
}

// maybeSettled closes the settle channel if nothing is open. Call it with
// s.mu held.
func (s *server) maybeSettled() {
	if s.settle != nil && len(s.conns) == 0 && s.book.reqs == 0 {
		close(s.settle)
		s.settle = nil
	}
}

// drainErr says what the drain cut without Close, if anything.
func (s *server) drainErr() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	var errs []error
	if n := s.book.drainConns; n > 0 {
		errs = append(errs, fmt.Errorf("lameduck: lameduckhttp3: %d connections that carried responses were closed by the server before their clients closed them, which may have cut what those clients had not read yet", n))
	}
	if n := s.book.drainReqs; n > 0 {
		errs = append(errs, fmt.Errorf("lameduck: lameduckhttp3: %d requests reached their handlers after the drain had closed their connections", n))
	}
	return errors.Join(errs...)
}
