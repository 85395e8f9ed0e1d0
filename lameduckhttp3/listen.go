package lameduckhttp3

import (
	"context"
	"errors"
	"sync"

	"github.com/quic-go/quic-go"
	"github.com/quic-go/quic-go/http3"
)

// This file holds the server's own QUIC listener. quic-go's Shutdown closes
// a listener it made itself, and from then on its transport drops the first
// packets of a new connection without an answer: the client waits for its
// handshake to time out (5 s for quic-go's, whose next request after a
// GOAWAY goes out on a new connection). A listener of the adapter's own
// stays open through the drain and refuses new connections at once, with
// QUIC's CONNECTION_REFUSED, as a closed TCP listener does with a reset.

// errDraining refuses a connection attempt during the drain.
var errDraining = errors.New("lameduck: lameduckhttp3: draining")

// listen makes the QUIC listener srv serves on, on pc, configured as
// quic-go's own Serve would configure it, but refusing new connections once
// the drain has begun.
func (s *server) listen() (*listener, error) {
	conf := &quic.Config{Allow0RTT: true}
	if s.srv.QUICConfig != nil {
		conf = s.srv.QUICConfig.Clone()
	}
	if s.srv.EnableDatagrams {
		conf.EnableDatagrams = true
	}
	user := conf.GetConfigForClient
	base := conf.Clone()
	conf.GetConfigForClient = func(info *quic.ClientInfo) (*quic.Config, error) {
		if s.isDraining() {
			return nil, errDraining
		}
		if user != nil {
			return user(info)
		}
		return base, nil
	}
	tr := &quic.Transport{Conn: s.pc}
	ln, err := tr.ListenEarly(http3.ConfigureTLSConfig(s.srv.TLSConfig), conf)
	if err != nil {
		tr.Close()
		return nil, err
	}
	return &listener{EarlyListener: ln, tr: tr, s: s}, nil
}

func (s *server) isDraining() bool {
	select {
	case <-s.draining:
		return true
	default:
		return false
	}
}

// listener is the QUIC listener srv serves on.
type listener struct {
	*quic.EarlyListener
	tr *quic.Transport
	s  *server

	mu     sync.Mutex
	handed map[*quic.Conn]struct{} // handed to quic-go, which has not booked it yet (see admitted)
	closed bool
}

// Accept hands quic-go the next connection. One whose handshake ended just
// as the drain began is closed instead: quic-go's accept loop, which stops
// at its Shutdown, would drop it unserved and leave its client waiting.
func (l *listener) Accept(ctx context.Context) (*quic.Conn, error) {
	for {
		c, err := l.EarlyListener.Accept(ctx)
		if err != nil {
			return nil, err
		}
		if l.s.isDraining() {
			refuse(c)
			continue
		}
		l.mu.Lock()
		if l.handed == nil {
			l.handed = map[*quic.Conn]struct{}{}
		}
		l.handed[c] = struct{}{}
		l.mu.Unlock()
		return c, nil
	}
}

// admitted says that quic-go has begun to serve c (its ConnContext hook
// ran), so that c is followed by the drain's books.
func (l *listener) admitted(c *quic.Conn) {
	l.mu.Lock()
	delete(l.handed, c)
	l.mu.Unlock()
}

// refuseQueued closes, through the drain, the connections that finish
// their handshake after quic-go has stopped accepting, until the listener
// is closed. Run it on a goroutine of its own once the drain has begun.
func (l *listener) refuseQueued() {
	for {
		c, err := l.EarlyListener.Accept(context.Background())
		if err != nil {
			return
		}
		refuse(c)
	}
}

// shut closes the listener and its transport, after closing each
// connection quic-go took but never served: it drops one it accepts just
// as its Shutdown begins. Call it once quic-go's Shutdown or Close has
// returned, or to give up.
func (l *listener) shut() {
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return
	}
	l.closed = true
	dropped := l.handed
	l.handed = nil
	l.mu.Unlock()
	for c := range dropped {
		refuse(c)
	}
	l.EarlyListener.Close()
	l.tr.Close()
}

// refuse closes c, which carried no request: H3_NO_ERROR tells its client
// nothing was processed on it.
func refuse(c *quic.Conn) {
	c.CloseWithError(quic.ApplicationErrorCode(http3.ErrCodeNoError), "")
}
