package httpdrain

import (
	"context"
	"net/http"
	"time"
)

// This file holds the drain's first stage, which keeps HTTP/1 keep-alive
// connections open while their clients may still send on them.
//
// Closing an idle keep-alive connection races with its client sending the
// next request on it: a request that crosses the server's FIN is lost, and
// a client or proxy that cannot tell whether it was processed (nginx, Go's
// Transport, for a POST) does not send it again. No close of an idle
// HTTP/1 connection is free of that race; a response that says
// "Connection: close" is. And net/http, once its Shutdown has begun, drops
// every request it reads, and closes a connection as soon as its response
// is out even when that response promised keep-alive (it began before).
//
// So the drain first closes the listener and leaves net/http running: each
// request that arrives on an open connection is answered, with
// "Connection: close" (see enter), and its connection then closes; a
// response that began before the drain leaves its connection open and
// read. net/http's Shutdown comes once no connection is kept (see keeps),
// or once no request has arrived for a while (see pace): by then the
// clients have moved on (a passive proxy such as nginx has found the
// listener closed and taken this instance out), and the connections still
// idle are closed.

// The first stage ends when no request has arrived for quietGaps of the
// recent gaps between requests, but never sooner than
// minQuiet nor later than maxQuiet after the last one: a proxy that sends
// this server a request every 30 ms (large bodies, a slow path) still has
// connections pooled 100 ms after its last request, where one that sends
// every millisecond has long found the listener closed. quiesceMax bounds
// how long the drain keeps accepting the connections the kernel completed
// before the listener closes (see quiesce).
const (
	quietGaps  = 10
	minQuiet   = 100 * time.Millisecond
	maxQuiet   = time.Second
	quiesceMax = 100 * time.Millisecond
)

// pace follows how fast requests arrive, cheaply enough to be told of every
// one: it reads the clock once every paceEvery requests, and keeps the last
// two readings. The caller holds t.mu.
type pace struct {
	n     int64
	marks [2]paceMark
}

type paceMark struct {
	n  int64
	at time.Time
}

const paceEvery = 64

func (p *pace) count() {
	if p.n++; p.n%paceEvery == 0 || p.n == 1 {
		p.marks = [2]paceMark{p.marks[1], {p.n, time.Now()}}
	}
}

// quiet returns how long the first stage waits without a request:
// quietGaps of the mean gap between requests over the last paceEvery of
// them, within [minQuiet, maxQuiet]; minQuiet while too few have come to
// tell.
func (p *pace) quiet() time.Duration {
	from, to := p.marks[0], p.marks[1]
	if from.at.IsZero() || to.n <= from.n {
		return minQuiet
	}
	gap := to.at.Sub(from.at) / time.Duration(to.n-from.n)
	return min(max(quietGaps*gap, minQuiet), maxQuiet)
}

// keeps reports whether the first stage waits for c, an HTTP/1 connection
// whose client may still send on it: one in the middle of a request (its
// response may not say "Connection: close"), one that has sent nothing yet
// (a client connects to send), and an idle one when this server's clients
// reuse connections (some connection has carried more than one request):
// a proxy's pool then holds idle connections that carried one request and
// takes them up at any moment. Where no client has ever reused one, an idle
// connection is not kept: the first stage does not wait for it, though it
// stays open until the stage ends (at once when nothing else is kept),
// since a proxy's pool looks the same until it reuses one (BENCHMARKS.md
// §13). The caller holds t.mu.
func (c *conn) keeps() bool {
	if c.t.idleDone || c.closed.Load() || c.hijacked || c.lingering || c.isH2() {
		return false
	}
	switch c.state {
	case http.StateActive, http.StateNew:
		return true
	case http.StateIdle:
		return c.t.reused
	}
	return false
}

// unkeep counts a connection out of t.keeping. The caller holds t.mu.
func (t *Tracker) unkeep() {
	if t.keeping--; t.keeping == 0 {
		t.endKeeping()
	}
}

// endKeeping ends the first stage's wait, if it is waiting. The caller
// holds t.mu.
func (t *Tracker) endKeeping() {
	if t.kept == nil {
		return
	}
	select {
	case <-t.kept:
	default:
		close(t.kept)
	}
}

// keptChan returns a channel that is closed once no connection is kept.
func (t *Tracker) keptChan() <-chan struct{} {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.kept = make(chan struct{})
	if t.keeping == 0 {
		close(t.kept)
	}
	return t.kept
}

// keepAlive is the drain's first stage: it returns once no connection is
// kept, or no request has arrived for a while (see pace), and from then on
// keeps none; or with ctx's error if ctx ends first.
func (t *Tracker) keepAlive(ctx context.Context) error {
	t.mu.Lock()
	quiet := t.quietFor
	if quiet == 0 {
		quiet = t.pace.quiet()
	}
	stopped := t.noKeep
	t.mu.Unlock()
	if stopped {
		return t.endFirstStage()
	}
	idle := time.NewTimer(quiet)
	defer idle.Stop()
	for done := false; !done; {
		select {
		case <-t.keptChan():
			done = true
		case <-idle.C:
			if wait := t.sinceLastRequest(); wait < quiet {
				idle.Reset(quiet - wait)
			} else {
				done = true
			}
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return t.endFirstStage()
}

// endFirstStage keeps no connection open for its client from now on.
func (t *Tracker) endFirstStage() error {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.idleDone = true
	for c := range t.conns {
		t.recount(c)
	}
	return nil
}

// BalancerStopped tells the Tracker, before Drain, that the load balancer
// has seen this server fail its readiness probe and stopped sending it
// requests (a FailUntilSeen step reached its count): the first stage,
// which keeps idle connections open for proxies that may still send on
// them, has nobody to wait for, and is skipped.
func (t *Tracker) BalancerStopped() {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.noKeep = true
}

// SetQuiet sets the first stage's quiet instead of the pace's, for tests
// outside this package.
func (t *Tracker) SetQuiet(d time.Duration) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.quietFor = d
}

func (t *Tracker) sinceLastRequest() time.Duration {
	t.mu.Lock()
	defer t.mu.Unlock()
	return time.Since(t.lastReq)
}
