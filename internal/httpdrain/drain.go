package httpdrain

import (
	"context"
	"errors"
	"io"
	"net"
	"os"
	"time"
)

// This file holds the drain: how the adapter's Shutdown waits, and how a
// connection is closed during it without cutting off what it owes.

// Drain stops srv and waits until every handler call has returned, every
// connection registered with Track has been released, and every connection
// has been closed without cutting off what it owed its client. It returns
// nil then, or ctx's error if ctx ends first. Call it once, after
// BeginDrain, once the listener is bound (or will never be).
func (t *Tracker) Drain(ctx context.Context) error {
	// With the spread, each connection's handlers hear of the drain at
	// their own moment from now on.
	t.startSpread(ctx)
	// From here on every ConnState event keeps t.holding up to date; count
	// the connections as they stand. And from here on, an HTTP/2
	// connection that reports its first state may have been missed by the
	// GOAWAY sweep below (see connState).
	t.mu.Lock()
	for c := range t.conns {
		t.recount(c)
	}
	t.swept = true
	t.lastReq = time.Now()
	ln := t.ln
	t.mu.Unlock()

	// The listener closes first, HTTP/2 connections get their GOAWAY, and
	// HTTP/1 keep-alive connections stay open for as long as their clients
	// may still send on them (see idle.go).
	if ln != nil {
		t.stopListening(ln)
	}
	t.sweepHTTP2()
	if err := t.keepAlive(ctx); err != nil {
		return err
	}

	// net/http's Shutdown, handed a context that is already done, turns
	// keep-alive off, starts its RegisterOnShutdown hooks (the user's, and
	// HTTP/2's GOAWAY sweep unless SetUpHTTP2 took HTTP/2 apart), waits for
	// the accept loops to end, closes the idle connections once, and
	// returns at once instead of polling. The waiting is ours.
	err := t.srv.Shutdown(doneCtx)
	if err != nil && !errors.Is(err, context.Canceled) {
		return err
	}
	grace := time.NewTimer(newConnGrace)
	defer grace.Stop()
	for {
		select {
		case <-t.quietChan():
		case <-grace.C:
			t.endNewConnGrace()
			continue
		case <-ctx.Done():
			return ctx.Err()
		}
		// Nothing holds the drain up. What is left are connections with
		// no request in flight: close them too, gently, and wait again.
		if t.closeLeftovers() == 0 {
			t.lingers.Wait()
			return nil
		}
	}
}

// doneCtx is a context that is already done. Handed to http.Server's
// Shutdown, it makes it start the stop and return instead of waiting.
var doneCtx = func() context.Context {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	return ctx
}()

// sweepHTTP2 has HTTP/2 send a GOAWAY to each connection it serves that has
// not had one yet, when SetUpHTTP2 set HTTP/2 up apart from srv: t.h2's only
// RegisterOnShutdown hook is that sweep (which starts on a goroutine of
// net/http's and returns at once), and it has neither listeners nor
// connections of its own for Shutdown to wait for.
func (t *Tracker) sweepHTTP2() {
	if t.h2 != nil {
		t.h2.Shutdown(doneCtx)
	}
}

// newConnGrace is how long the drain waits for a connection that has made
// no request but may be HTTP/2 (see conn.isH2) to be ended by net/http's
// GOAWAY before it closes the connection itself. It is net/http's own wait
// for a client to hang up after a GOAWAY (its goAwayTimeout).
const newConnGrace = time.Second

// endNewConnGrace stops the drain from waiting for connections that have
// made no request; closeLeftovers then closes them.
func (t *Tracker) endNewConnGrace() {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.newGrace = true
	for c := range t.conns {
		t.recount(c)
	}
}

// quietChan returns a channel that is closed once nothing holds the drain up.
func (t *Tracker) quietChan() <-chan struct{} {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.quiet = make(chan struct{})
	t.checkQuiet()
	return t.quiet
}

// closeLeftovers closes the connections that do not hold the drain up: idle
// HTTP/1 keep-alive connections, and new ones that have not sent a request
// (net/http would drop it now). It reports how many it closed.
func (t *Tracker) closeLeftovers() int {
	t.mu.Lock()
	var left []*conn
	for c := range t.conns {
		if !c.held {
			left = append(left, c)
		}
	}
	t.mu.Unlock()
	for _, c := range left {
		c.Close()
	}
	return len(left)
}

// linger finishes a gentle close of c (see conn.Close).
func (c *conn) linger() {
	t := c.t
	defer t.lingers.Done()
	// Read in net/http's place, once its reader (woken by Close) has given
	// up; a read of net/http's that comes later waits, then finds c closed.
	c.reading.Lock()
	lingerClose(c.Conn)
	c.reading.Unlock()
	t.mu.Lock()
	c.lingering = false
	t.forget(c)
	t.mu.Unlock()
}

type closeWriter interface{ CloseWrite() error }

func canCloseWrite(c net.Conn) bool {
	_, ok := c.(closeWriter)
	return ok
}

// aLongTimeAgo is a deadline in the past, which wakes a blocked Read.
var aLongTimeAgo = time.Unix(1, 0)

// Polls of a lingering connection start at lingerPollMin and back off to
// lingerPollMax. A client that hangs up ends the linger at once, without a
// poll; one that does not is usually found to have acknowledged everything
// at the first poll.
const (
	lingerPollMin = 250 * time.Microsecond
	lingerPollMax = 20 * time.Millisecond
)

// lingerClose closes c the way RFC 9112 section 9.6 asks of a server: it
// sends a FIN after everything queued, then keeps reading (and discarding)
// until the client has closed its side, or until every byte of data sent has
// been acknowledged by the client's kernel, and only then closes the socket.
// Closing at once would make the kernel answer anything the client still
// sends (an HTTP/2 WINDOW_UPDATE while it reads a large response, the next
// request on a keep-alive connection) with a reset, and a reset makes many
// TCP stacks throw away what the client has received but not yet read.
//
// Where the kernel cannot say what is unacknowledged (see unacked), the
// linger lasts at most lingerFallback, as net/http's own does.
func lingerClose(c net.Conn) {
	defer c.Close()
	if c.(closeWriter).CloseWrite() != nil {
		return
	}
	// Often the client has everything already: on a fast network its
	// kernel acknowledges data as it arrives. Look once before the first
	// poll, which Go's timers make last a millisecond or more, not
	// lingerPollMin, when the process is otherwise idle. Only a connection
	// with nothing unread is closed here: closing one with unread bytes
	// would send a reset; the loop reads them.
	if settled(c) {
		return
	}
	buf := make([]byte, 512)
	wait, waited := lingerPollMin, time.Duration(0)
	for {
		c.SetReadDeadline(time.Now().Add(wait))
		_, err := c.Read(buf)
		switch {
		case err == nil:
			continue
		case err == io.EOF:
			return // the client hung up
		case !errors.Is(err, os.ErrDeadlineExceeded) && !isTimeout(err):
			// (The usual two cases are told apart before isTimeout, whose
			// errors.As was 10–14 % of the CPU of a drain closing 10 000
			// connections: BENCHMARKS.md §13.)
			return // Close closed c, or the connection failed
		}
		waited += wait
		// The FIN counts as one byte until it is acknowledged, and a client
		// that does not answer it delays its ACK (by up to 40 ms on Linux):
		// one byte outstanding means every byte of data has arrived.
		if n, ok := unacked(c); (ok && n <= 1) || (!ok && waited >= lingerFallback) {
			return
		}
		wait = min(2*wait, lingerPollMax)
	}
}

// lingerFallback bounds a linger where unacked cannot tell; it is net/http's
// own guess for the same wait (its rstAvoidanceDelay).
const lingerFallback = 500 * time.Millisecond

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// stopListening closes ln, the listener Serve accepts on, and returns once
// net/http's accept loop has seen the close, so that every connection it
// accepted is counted and the drain's first stage can tell whether any is
// left to keep. A listener the adapter bound itself first lets net/http
// accept what waits in the kernel's accept queue (see quiesce).
func (t *Tracker) stopListening(ln *listener) {
	if ln.own {
		quiesce(ln.Listener, t.quiesceFor)
	}
	ln.Close()
	bound := time.NewTimer(t.quiesceFor)
	defer bound.Stop()
	select {
	case <-ln.ended:
	case <-bound.C: // net/http was not accepting (Serve has returned)
	}
}
