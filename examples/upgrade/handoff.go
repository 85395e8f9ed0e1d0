package main

import (
	"context"
	"net"
	"net/http"
	"sync"
	"time"
)

// handoff moves a process's clients to its successor before the drain.
//
// Behind a load balancer the balancer stops sending first, so the drain can
// close idle keep-alive connections at once. Without one, clients hold
// keep-alive connections to this very process and keep sending on them; a
// connection closed while idle races the client's next request, which then
// fails (Go's client retries only idempotent requests, and never a POST).
// So, before Shutdown, handoff:
//
//  1. stops accepting: it closes this process's descriptor of the listening
//     socket. The socket itself lives on in the successor (tableflip) or in
//     systemd (socket activation), where new connections queue;
//  2. answers every request from then on with "Connection: close", so each
//     client closes its connection after the response and reconnects, and
//     that is to the successor;
//  3. waits until every connection is gone, or max has passed.
//
// What is left for the drain are connections that sent nothing for max.
type handoff struct {
	ln *pausable

	mu    sync.Mutex
	bye   bool          // responses carry Connection: close
	open  int           // connections accepted and not yet closed
	empty chan struct{} // closed when open drops to 0 while bye is set
}

func newHandoff(ln net.Listener) *handoff {
	return &handoff{ln: &pausable{Listener: ln, paused: make(chan struct{}), closed: make(chan struct{})}}
}

// wrap returns h with the goodbye header added once the handoff begins.
func (ho *handoff) wrap(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ho.mu.Lock()
		bye := ho.bye
		ho.mu.Unlock()
		if bye {
			w.Header().Set("Connection", "close")
		}
		h.ServeHTTP(w, r)
	})
}

// connState counts open connections; install it as http.Server.ConnState.
func (ho *handoff) connState(_ net.Conn, s http.ConnState) {
	ho.mu.Lock()
	defer ho.mu.Unlock()
	switch s {
	case http.StateNew:
		ho.open++
	case http.StateClosed, http.StateHijacked:
		ho.open--
		if ho.open == 0 && ho.empty != nil {
			close(ho.empty)
			ho.empty = nil
		}
	}
}

// begin stops accepting and turns on the goodbye header. It returns a channel
// closed once no connection is open.
func (ho *handoff) begin() <-chan struct{} {
	ho.ln.pause()
	ho.mu.Lock()
	defer ho.mu.Unlock()
	ho.bye = true
	empty := make(chan struct{})
	if ho.open == 0 {
		close(empty)
	} else {
		ho.empty = empty
	}
	return empty
}

// step is the pre-shutdown step that runs the handoff, for at most max.
func (ho *handoff) step(max time.Duration) func(context.Context) error {
	return func(ctx context.Context) error {
		empty := ho.begin()
		t := time.NewTimer(max)
		defer t.Stop()
		select {
		case <-empty:
		case <-t.C:
		case <-ctx.Done():
		}
		return nil
	}
}

// pausable is a listener that can stop accepting without closing: pause
// closes the descriptor this process holds, Accept then waits for Close, as
// if nothing more ever came. Closing the descriptor rather than leaving it
// open is what lets the kernel hand every queued connection to the other
// holder of the socket instead of to this process.
type pausable struct {
	net.Listener
	pauseOnce, closeOnce sync.Once
	paused, closed       chan struct{}
	closeInner           sync.Once
	innerErr             error
}

func (p *pausable) Accept() (net.Conn, error) {
	c, err := p.Listener.Accept()
	if err == nil {
		return c, nil
	}
	select {
	case <-p.paused:
		<-p.closed
		return nil, net.ErrClosed
	case <-p.closed:
		return nil, net.ErrClosed
	default:
		return nil, err
	}
}

func (p *pausable) pause() {
	p.pauseOnce.Do(func() {
		close(p.paused)
		p.closeListener()
	})
}

func (p *pausable) Close() error {
	p.closeOnce.Do(func() { close(p.closed) })
	return p.closeListener()
}

func (p *pausable) closeListener() error {
	p.closeInner.Do(func() { p.innerErr = p.Listener.Close() })
	return p.innerErr
}
