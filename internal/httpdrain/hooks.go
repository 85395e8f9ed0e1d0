package httpdrain

import (
	"context"
	"crypto/tls"
	"log"
	"net"
	"net/http"
	"slices"
	"time"
)

// This file holds the hooks the Tracker puts on the *http.Server before the
// port opens (ConnState, the handler and the base context), through which
// net/http tells the books of conns.go what happens.

// Install puts the Tracker's hooks on srv: ConnState, the handler and the
// base context (and the connection context, with the spread), each wrapping
// the one srv had. When srv.BaseContext is nil,
// requests' contexts carry ctx's values. useTLS says whether srv will be
// served with TLS. The adapter calls it once, before the port opens, so
// that no connection is accepted without being followed.
func (t *Tracker) Install(ctx context.Context, useTLS bool) {
	t.userHook = t.srv.ConnState
	t.srv.ConnState = t.connState

	inner := t.srv.Handler
	if inner == nil {
		inner = http.DefaultServeMux
	}
	t.srv.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p := t.enter(w, r)
		defer t.leave(p)
		inner.ServeHTTP(w, r)
		if t.closing.Load() {
			// Close has begun: the handler returned because its context
			// ended, or only just finished. net/http would now complete
			// its response, a well-formed 200 with what little it wrote
			// (often nothing), which the client would take for the whole.
			// Abort it: the client sees the connection end instead.
			panic(http.ErrAbortHandler)
		}
	})

	base := t.srv.BaseContext
	t.srv.BaseContext = func(ln net.Listener) context.Context {
		bctx := ctx
		if base != nil {
			bctx = base(ln)
		}
		bctx = t.base(bctx)
		// net/http asks for the base context once its set-up has passed,
		// just before it accepts: from here on the port is served.
		t.accepting()
		return bctx
	}

	t.h2c = !useTLS && t.srv.Protocols != nil && t.srv.Protocols.UnencryptedHTTP2()
	t.installSpread()

	if useTLS {
		// A TLS connection that has not made a request yet reports no
		// state after StateNew whether it speaks HTTP/1 or HTTP/2, and its
		// negotiated protocol cannot be read without racing its handshake.
		// Its ClientHello tells: net/http prefers h2 when both sides offer it.
		cfg := t.srv.TLSConfig.Clone()
		user := cfg.GetConfigForClient
		cfg.GetConfigForClient = func(hello *tls.ClientHelloInfo) (*tls.Config, error) {
			var chosen *tls.Config
			var err error
			if user != nil {
				chosen, err = user(hello)
			}
			if c, ok := hello.Conn.(*conn); ok {
				// The config the handshake uses decides: net/http's own
				// (h2 when HTTP/2 is set up), or the one returned here.
				_, speaks := t.srv.TLSNextProto["h2"] // set up before the port opens, or by ServeTLS before it accepts
				if chosen != nil {
					speaks = slices.Contains(chosen.NextProtos, "h2")
				}
				c.offeredH2.Store(speaks && slices.Contains(hello.SupportedProtos, "h2"))
			}
			return chosen, err
		}
		t.srv.TLSConfig = cfg
	}
}

// connState follows one connection's state; net/http calls it through
// srv.ConnState, from the connection's own goroutine, one event at a time.
func (t *Tracker) connState(nc net.Conn, st http.ConnState) {
	if c := rawConn(nc); c != nil {
		c.learnTLSProto(nc, st)
		if t.follow(c, st) {
			t.sweepHTTP2()
		}
	}
	if t.userHook != nil {
		t.userHook(nc, st)
	}
}

// learnTLSProto records which protocol a TLS connection negotiated, the
// first time it reports Active or Idle: only after its handshake, so that
// reading it then does not race the handshake.
func (c *conn) learnTLSProto(nc net.Conn, st http.ConnState) {
	tc, ok := nc.(*tls.Conn)
	if !ok || (st != http.StateActive && st != http.StateIdle) || c.tlsProto.Load() != 0 {
		return
	}
	p := int32(tlsHTTP1)
	if tc.ConnectionState().NegotiatedProtocol == "h2" {
		p = tlsHTTP2
	}
	c.tlsProto.Store(p)
}

// follow records that c is now in state st and updates the Tracker's books.
// It reports whether connState must repeat HTTP/2's GOAWAY sweep, which may
// have missed c, once the lock is released. An HTTP/1 connection that goes
// idle during the drain is not closed here: until net/http's Shutdown has
// begun, net/http reads its next request, which is answered (see idle.go),
// and after, net/http closes it.
func (t *Tracker) follow(c *conn, st http.ConnState) (resweep bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	c.state = st
	switch st {
	case http.StateHijacked:
		// net/http forgets the connection; the Tracker does not. Its owner
		// closes it through c (Hijack hands out c, or a *tls.Conn around
		// it), which takes it off the books; until then it holds the
		// drain, and Close closes it.
		c.hijacked = true
		t.recount(c)
	case http.StateClosed:
		if !c.lingering {
			t.forget(c)
		}
	default:
		if st == http.StateActive {
			if c.requests++; c.requests > 1 {
				t.reused = true
			}
			t.pace.count()
			if t.stage == draining {
				t.lastReq = time.Now()
			}
		}
		t.recount(c)
		if st != http.StateNew && !c.h2Served && c.isH2() {
			// HTTP/2 reports a connection's first state after it has put
			// it on the list its GOAWAY sweep goes through. If the drain's
			// sweep may have gone through the list before, it may have
			// missed this one.
			c.h2Served = true
			resweep = t.swept
		}
	}
	return resweep
}

// rawConn returns the *conn under nc, which net/http hands to ConnState
// either as it was accepted or inside a *tls.Conn.
func rawConn(nc net.Conn) *conn {
	if tc, ok := nc.(*tls.Conn); ok {
		nc = tc.NetConn()
	}
	c, _ := nc.(*conn)
	return c
}

// enter counts a handler call in and returns the index of its protocol
// in the books, for leave. During the drain an HTTP/1 response says
// "Connection: close", so that its client does not send the next request on
// a connection that closes once the response is out (see idle.go).
func (t *Tracker) enter(w http.ResponseWriter, r *http.Request) int {
	p := protoOf(r)
	t.mu.Lock()
	t.handlers++
	t.books.running[p]++
	if t.stage != serving && r.ProtoMajor == 1 {
		w.Header().Set("Connection", "close")
	}
	warn := !t.warned && isH2Preface(r)
	if warn {
		t.warned = true
	}
	t.mu.Unlock()
	if warn {
		t.warnH2C()
	}
	return p
}

func (t *Tracker) warnH2C() {
	logf := log.Printf
	if t.srv.ErrorLog != nil {
		logf = t.srv.ErrorLog.Printf
	}
	logf("lameduck: a handler got an HTTP/2 preface (\"PRI *\"): if it serves h2c " +
		"(x/net's h2c.NewHandler), the drain cannot send that connection a GOAWAY and waits " +
		"for its client to hang up; enable srv.Protocols.SetUnencryptedHTTP2(true) instead, or " +
		"call http2.ConfigureServer(srv, h2s) with the h2s given to h2c.NewHandler")
}

// isH2Preface reports whether r is an HTTP/2 client's preface handed to the
// handler as a "PRI *" request, which net/http does when it does not serve
// h2c itself, so that a handler such as x/net's h2c.NewHandler can.
func isH2Preface(r *http.Request) bool {
	return r.Method == "PRI" && r.RequestURI == "*" && r.ProtoMajor == 2
}

func (t *Tracker) leave(p int) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.handlers--
	t.books.running[p]--
	if !t.books.cut {
		t.books.answered[p]++
	}
	t.checkQuiet()
}
