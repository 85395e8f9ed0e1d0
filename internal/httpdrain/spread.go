package httpdrain

import (
	"context"
	"math/rand/v2"
	"net"
	"time"
)

// This file holds the spread. When the adapter asks for it, every
// connection carries a channel of its own in its context, which its
// handlers watch (lameduck.Draining) to end long-lived work: a WebSocket, a
// stream of events. The drain closes each channel at a moment of its own,
// drawn uniformly from a window that opens when the drain begins, so that
// the clients of those connections do not all come back to the other
// instances in the same instant. Without the spread nothing here runs, and
// a request's context is made as net/http makes it.

// Spread asks that every connection be told of the drain at its own moment
// within window; a window of zero asks for no spread. tell returns a
// context that carries a connection's channel, where the adapter's handlers
// look for it. Call it before Install.
func (t *Tracker) Spread(window time.Duration, tell func(context.Context, <-chan struct{}) context.Context) {
	t.spread, t.tell = window, tell
}

// installSpread puts the spread's hook on srv.ConnContext, wrapping the one
// srv had.
func (t *Tracker) installSpread() {
	if t.spread <= 0 {
		return
	}
	user := t.srv.ConnContext
	t.srv.ConnContext = func(ctx context.Context, nc net.Conn) context.Context {
		if user != nil {
			ctx = user(ctx, nc)
		}
		c, ok := nc.(*conn) // net/http hands it the accepted connection, before any TLS
		if !ok {
			return ctx
		}
		ch := make(chan struct{})
		t.mu.Lock()
		c.told = ch
		switch {
		case t.stage == closed:
			t.tellNow(c)
		case !t.spreadFrom.IsZero():
			t.schedule(c)
		}
		t.mu.Unlock()
		return t.tell(ctx, ch)
	}
}

// startSpread opens the window; Drain calls it as it begins. The window
// ends no later than halfway to ctx's deadline, so that the connections
// told last still have time to finish.
func (t *Tracker) startSpread(ctx context.Context) {
	if t.spread <= 0 {
		return
	}
	now := time.Now()
	window := t.spread
	if deadline, ok := ctx.Deadline(); ok {
		window = max(0, min(window, deadline.Sub(now)/2))
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if !t.spreadFrom.IsZero() {
		return
	}
	t.spreadFrom, t.window = now, window
	for c := range t.conns {
		t.schedule(c)
	}
}

// schedule sets the moment c is told of the drain. The caller holds t.mu.
func (t *Tracker) schedule(c *conn) {
	if c.told == nil || c.tellTimer != nil || c.wasTold {
		return
	}
	var offset time.Duration
	if t.window > 0 {
		offset = rand.N(t.window)
	}
	wait := time.Until(t.spreadFrom.Add(offset))
	if wait <= 0 {
		t.tellNow(c)
		return
	}
	c.tellTimer = time.AfterFunc(wait, func() {
		t.mu.Lock()
		defer t.mu.Unlock()
		t.tellNow(c)
	})
}

// tellNow tells c of the drain, if it has not been told. The caller holds
// t.mu.
func (t *Tracker) tellNow(c *conn) {
	if c.tellTimer != nil {
		c.tellTimer.Stop()
	}
	if c.told != nil && !c.wasTold {
		c.wasTold = true
		close(c.told)
	}
}

// tellAll tells every connection at once, as Close begins. The caller
// holds t.mu.
func (t *Tracker) tellAll() {
	for c := range t.conns {
		t.tellNow(c)
	}
}
