// Package httpdrain is the machinery behind lameduck's HTTP adapter: it
// follows an *http.Server's connections and handler calls so that a drain
// can end as soon as the last response has reached its client, and closes
// connections during the drain without cutting off what they still owe.
//
// The adapter (lameduck.HTTPServer) owns the server's life: it decides when
// to serve, drain and close, and tells the Tracker through BeginDrain and
// BeginClose. The Tracker owns the books: which connections are open, which
// of them hold the drain up, and how many handler calls are running.
package httpdrain

import (
	"context"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

// stage is how far the adapter's stop has gone, as the books need it. It
// only moves forward.
type stage int

const (
	serving  stage = iota // no stop asked for yet
	draining              // BeginDrain: connections close gently
	closed                // BeginClose: connections close at once; none is accepted
)

// Tracker follows one *http.Server's connections and handler calls, and
// drains them. Make one with New.
type Tracker struct {
	srv       *http.Server
	h2        *http.Server // holds net/http's HTTP/2 for srv (see SetUpHTTP2); nil if srv holds its own
	base      func(context.Context) context.Context
	accepting func()

	mu         sync.Mutex
	stage      stage
	newGrace   bool                  // the drain has stopped waiting for new connections that may be HTTP/2
	idleDone   bool                  // the drain keeps no connection open for its client any more (see idle.go)
	quietFor   time.Duration         // if set (by tests), the first stage's quiet instead of quietFrom's
	noKeep     bool                  // the balancer has stopped sending: no first stage (see BalancerStopped)
	pace       pace                  // how fast requests have been coming (see idle.go)
	quiesceFor time.Duration         // quiesceMax, but tests may change it
	lastReq    time.Time             // during the drain: when a request last arrived (see idle.go)
	swept      bool                  // the drain has started (or is about to start) HTTP/2's GOAWAY sweep
	conns      map[*conn]struct{}    // accepted and not yet fully closed, hijacked ones included
	holding    int                   // conns whose holds() is true, kept while draining
	handlers   int                   // calls of the handler in progress
	reused     bool                  // some connection has carried more than one request (see keeps)
	keeping    int                   // conns counted by keeps (see idle.go)
	kept       chan struct{}         // made by the drain's first stage; closed when keeping falls to 0
	ln         *listener             // the listener Serve accepts on, once it has one
	tracked    map[net.Conn]struct{} // connections registered with Track
	quiet      chan struct{}         // made by Drain; closed when nothing holds the drain
	lingers    sync.WaitGroup        // lingering closes in progress
	warned     bool                  // the x/net h2c warning has been logged
	h2c        bool                  // net/http serves HTTP/2 in clear text (srv.Protocols); set by Install before the port opens
	userHook   func(net.Conn, http.ConnState)
	books      books       // for the stop report (see counts.go)
	closing    atomic.Bool // BeginClose has been called: responses are aborted (see Install)

	// The spread (see spread.go): set by Spread before Install, then
	// guarded by mu.
	spread     time.Duration                                          // the window asked for; 0: no spread
	tell       func(context.Context, <-chan struct{}) context.Context // puts a connection's channel in its context
	spreadFrom time.Time                                              // when the window opened; zero until the drain begins
	window     time.Duration                                          // the window, shortened to fit the drain
}

// New returns a Tracker for srv, which it changes only in Install and
// SetUpHTTP2. base adds to every base context net/http asks for what the
// adapter's handlers expect to find there; accepting is called when net/http
// has accepted srv's set-up and is about to accept connections (once per
// call of srv's Serve).
func New(srv *http.Server, base func(context.Context) context.Context, accepting func()) *Tracker {
	return &Tracker{
		srv:        srv,
		base:       base,
		accepting:  accepting,
		quiesceFor: quiesceMax,
		conns:      map[*conn]struct{}{},
		tracked:    map[net.Conn]struct{}{},
	}
}

// BeginDrain records that the adapter's graceful stop has begun: from now on
// a connection closes gently, and Drain may be called.
func (t *Tracker) BeginDrain() {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.stage != serving {
		return
	}
	t.stage = draining
}

// BeginClose records that the adapter's Close has begun: from now on no
// connection is accepted, and every close is immediate. Connections that
// the spread has not told of the drain yet are told now, and the books
// count what Close is about to cut.
func (t *Tracker) BeginClose() {
	t.mu.Lock()
	if t.stage == closed {
		t.mu.Unlock()
		return
	}
	t.stage = closed
	t.closing.Store(true)
	t.tellAll()
	t.mu.Unlock()
	// The books say what Close cuts as it stands now, before net/http's
	// Close ends the handlers and connections.
	t.cutOpen()
}

// Close closes every connection the Tracker follows at once, including those
// being closed gently, those a handler hijacked and those registered with
// Track, and waits for the lingering closes to end. Call it after BeginClose
// and after srv.Close.
func (t *Tracker) Close() {
	t.mu.Lock()
	var open []net.Conn
	for c := range t.conns {
		open = append(open, c.Conn) // the raw socket: a lingering close ends here
	}
	for c := range t.tracked {
		open = append(open, c) // may be a *conn, whose Close takes t.mu
	}
	t.mu.Unlock()
	for _, c := range open {
		c.Close()
	}
	t.lingers.Wait()
}

// Track registers a connection that the Tracker does not follow by itself
// (one that did not come from srv's listener): the drain waits for it until
// release is called, and Close closes it. After BeginClose it closes nc at
// once. Calling release more than once does nothing.
func (t *Tracker) Track(nc net.Conn) (release func()) {
	if nc == nil {
		return func() {} // nothing to wait for or close
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.stage == closed {
		nc.Close()
		return func() {}
	}
	t.tracked[nc] = struct{}{}
	var once sync.Once
	return func() {
		once.Do(func() {
			t.mu.Lock()
			defer t.mu.Unlock()
			delete(t.tracked, nc)
			if !t.books.cut {
				t.books.connDone[Taken]++
			}
			t.checkQuiet()
		})
	}
}
