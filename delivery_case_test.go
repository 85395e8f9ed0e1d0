package lameduck

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// deliveryEnv is what every case shares.
type deliveryEnv struct {
	cert tls.Certificate
	pool *x509.CertPool
}

// exchange is one request: what its handler wrote and what its client read.
// Each side sets its fields before closing the channel that ends its part.
type exchange struct {
	chunks []int // the body, as the handler writes it

	calls    atomic.Int32  // handler calls; a second one (a client's retry) is refused
	entered  chan struct{} // the handler has started
	half     chan struct{} // the handler has flushed half the body
	returned chan struct{} // the handler has returned
	wrote    int
	writeErr error

	done    chan struct{} // the client has finished
	proto   string        // of the response, "" if none came
	read    int
	readErr error
}

func newExchange(b bodyKind) *exchange {
	var chunks []int
	switch b {
	case bodySmall:
		chunks = []int{512, 512}
	case bodyLarge:
		chunks = repeat(32<<10, 16)
	case bodyStreamed:
		chunks = repeat(16<<10, 30)
	}
	return &exchange{
		chunks:   chunks,
		entered:  make(chan struct{}),
		half:     make(chan struct{}),
		returned: make(chan struct{}),
		done:     make(chan struct{}),
	}
}

func repeat(n, times int) []int {
	s := make([]int, times)
	for i := range s {
		s[i] = n
	}
	return s
}

func (x *exchange) size() int {
	n := 0
	for _, c := range x.chunks {
		n += c
	}
	return n
}

// deliveryServer serves the exchanges of one case; /main and /warm name them.
type deliveryServer struct {
	c          deliveryCase
	x          map[string]*exchange
	drainBegan chan struct{} // closed by srv.RegisterOnShutdown
	released   chan struct{} // closed once Run's result is recorded: waiting handlers go on
}

func (s *deliveryServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	x := s.x[r.URL.Path]
	if x.calls.Add(1) > 1 {
		http.Error(w, "this exchange has been served", http.StatusConflict)
		return
	}
	close(x.entered)
	defer close(x.returned)
	main := r.URL.Path == "/main"
	waitDrain := func() {
		select {
		case <-s.drainBegan:
		case <-s.released:
		}
	}
	if s.c.body != bodyStreamed {
		w.Header().Set("Content-Length", strconv.Itoa(x.size()))
	}
	if main && s.c.stop == stopBeforeWrite {
		waitDrain()
	}
	rc := http.NewResponseController(w)
	buf := make([]byte, 32<<10)
	for i, n := range x.chunks {
		if main && s.c.stop == stopMidBody && i == len(x.chunks)/2 {
			rc.Flush()
			close(x.half)
			waitDrain()
		}
		if s.c.body == bodyStreamed && i > 0 {
			time.Sleep(10 * time.Millisecond) // the stream's pace, not synchronisation
		}
		m, err := w.Write(buf[:n])
		x.wrote += m
		if err == nil && s.c.body == bodyStreamed {
			err = rc.Flush()
		}
		if err != nil {
			x.writeErr = err
			return
		}
	}
}

// runDeliveryCase runs one case on a server of its own and returns what
// broke the rule.
func runDeliveryCase(t *testing.T, env deliveryEnv, c deliveryCase) []deliveryFault {
	s := &deliveryServer{
		c:          c,
		x:          map[string]*exchange{"/main": newExchange(c.body), "/warm": newExchange(bodySmall)},
		drainBegan: make(chan struct{}),
		released:   make(chan struct{}),
	}
	srv := &http.Server{Addr: "127.0.0.1:0", Handler: s}
	srv.RegisterOnShutdown(sync.OnceFunc(func() { close(s.drainBegan) }))
	if c.smallSend {
		// Loopback's autotuned send buffer holds megabytes. A small one
		// makes a client that does not read hold the handler up, as on a
		// real network.
		srv.ConnContext = func(ctx context.Context, conn net.Conn) context.Context {
			if tc, ok := conn.(*tls.Conn); ok {
				conn = tc.NetConn()
			}
			if wc, ok := conn.(interface{ NetConn() net.Conn }); ok {
				conn = wc.NetConn() // FromHTTP's wrapper
			}
			conn.(*net.TCPConn).SetWriteBuffer(c.socketBuffer())
			return ctx
		}
	}
	scheme := "http"
	switch c.proto {
	case wireH2C:
		srv.Protocols = new(http.Protocols)
		srv.Protocols.SetHTTP1(true)
		srv.Protocols.SetUnencryptedHTTP2(true)
	case wireHTTP1TLS, wireH2TLS:
		srv.TLSConfig = &tls.Config{Certificates: []tls.Certificate{env.cert}}
		scheme = "https"
	}
	svr, addr := serverUnderTest(t, srv)
	r, err := NewRunner(svr, Period(deliveryPeriod), Signals(), WithoutLogger())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var runErr error
	runReturned := make(chan struct{})
	go func() { runErr = r.Run(ctx); close(runReturned) }()
	select {
	case <-r.Ready():
	case <-runReturned:
		t.Fatalf("Run = %v before the server was ready", runErr)
	}

	cl := newDeliveryClient(env, c)
	defer cl.transport.CloseIdleConnections()
	defer cl.unstall() // runs first
	url := scheme + "://" + addr().String()
	main, warm := s.x["/main"], s.x["/warm"]
	used := []*exchange{main}

	if c.stop == stopIdle {
		used = []*exchange{warm, main}
		cl.fetch(url+"/warm", warm, false)
		if warm.readErr != nil {
			t.Fatalf("the warm-up request before the stop: %v", warm.readErr)
		}
		cl.stall()
		cancel()
		if c.late {
			select {
			case <-s.drainBegan:
			case <-runReturned:
			}
		}
		go cl.fetch(url+"/main", main, true)
	} else {
		go cl.fetch(url+"/main", main, true)
		reached := map[stopMoment]chan struct{}{stopBeforeWrite: main.entered, stopMidBody: main.half, stopAfterReturn: main.returned}[c.stop]
		// A fast client may read the whole body before the handler's
		// return is recorded; only one that failed ends the wait.
		clientDone, bound := main.done, time.After(20*time.Second)
		for !closed(reached) {
			select {
			case <-reached:
			case <-clientDone:
				if main.readErr != nil {
					t.Fatalf("the request failed before the stop moment: read %d bytes, %v", main.read, main.readErr)
				}
				clientDone = nil
			case <-runReturned:
				t.Fatalf("Run = %v before the stop moment", runErr)
			case <-bound:
				t.Fatalf("the stop moment was not reached in 20s")
			}
		}
		cl.stall()
		cancel()
	}

	select {
	case <-runReturned:
	case <-time.After(deliveryPeriod + 10*time.Second):
		t.Fatalf("Run has not returned %v after the trigger", deliveryPeriod+10*time.Second)
	}
	runningAtRun := map[*exchange]bool{}
	for _, x := range used {
		runningAtRun[x] = closed(x.entered) && !closed(x.returned)
	}
	close(s.released)
	cl.unstall()
	for _, x := range used {
		if msg := waitFor(x); msg != "" {
			t.Fatalf("after Run returned, %s", msg)
		}
	}
	return append(judge(c, runErr, used, runningAtRun), judgeReport(c, runErr, used, r.Report())...)
}

// waitFor waits for x's client to finish and, if its handler was entered,
// for the handler to return. Both follow Run's return at once (Close ends
// every connection); the bound only turns a hang into a failure.
func waitFor(x *exchange) string {
	bound := time.After(20 * time.Second)
	select {
	case <-x.done:
	case <-bound:
		return "the client still reads"
	}
	if closed(x.entered) {
		select {
		case <-x.returned:
		case <-bound:
			return "the handler still runs"
		}
	}
	return ""
}

// judge applies the rule to what the exchanges of one case recorded.
func judge(c deliveryCase, runErr error, xs []*exchange, runningAtRun map[*exchange]bool) []deliveryFault {
	var faults []deliveryFault
	add := func(kind, format string, args ...any) {
		faults = append(faults, deliveryFault{kind, fmt.Sprintf(format, args...)})
	}
	var lde *LameDuckError
	if runErr != nil && !errors.As(runErr, &lde) {
		add("bad-error", "Run = %v, want nil or a *LameDuckError", runErr)
	}
	stalled := false
	for _, x := range xs {
		if !closed(x.entered) {
			continue // never reached a handler: it does not count
		}
		name := "main"
		if x != xs[len(xs)-1] {
			name = "warm-up"
		}
		wantProto := "HTTP/1.1"
		if c.proto == wireH2TLS || c.proto == wireH2C {
			wantProto = "HTTP/2.0"
		}
		if x.calls.Load() > 1 {
			add("harness", "the %s request reached the handler %d times", name, x.calls.Load())
		}
		if x.proto != "" && x.proto != wantProto {
			add("harness", "%s response came over %s, want %s", name, x.proto, wantProto)
		}
		whole := x.read == x.size() && x.readErr == nil
		if name == "main" && c.reader == readStall && c.body != bodySmall && c.stop != stopAfterReturn {
			stalled = true // the handler cannot finish: what it has to write does not fit in the buffers
		}
		if runErr != nil {
			continue // Close was called: a cut is allowed
		}
		switch {
		case runningAtRun[x]:
			add("running-at-nil", "Run = nil while the %s handler was still running (wrote %d of %d bytes)", name, x.wrote, x.size())
		case !whole:
			add("truncated", "Run = nil, but the %s client got %d of %d bytes (%v); the handler wrote %d (%v)",
				name, x.read, x.size(), x.readErr, x.wrote, x.writeErr)
		}
	}
	switch {
	case c.reader != readStall && runErr != nil:
		add(faultSlow, "Run = %v, want nil: this client reads everything within the period", runErr)
	case stalled && (lde == nil || !lde.Expired):
		add("not-expired", "Run = %v, want Expired: the client stalled past the period with the response unread", runErr)
	}
	return faults
}

// closed reports whether c is closed, without waiting.
func closed(c <-chan struct{}) bool {
	select {
	case <-c:
		return true
	default:
		return false
	}
}
