package httpdrain

import (
	"errors"
	"net"
	"net/http"
)

// SetUpHTTP2 has net/http set up HTTP/2 for srv as ServeTLS (or Serve, for
// h2c) would, but on a server of the Tracker's own, t.h2, which lends srv
// the result (srv.TLSNextProto). HTTP/2 then registers its GOAWAY sweep, the
// RegisterOnShutdown hook that tells every HTTP/2 connection to finish, with
// t.h2 instead of srv, and t.h2.Shutdown runs that sweep alone, as often as
// the drain needs it: net/http's sweep runs once, and a connection that
// HTTP/2 starts serving just after it (its TLS handshake or its h2c preface
// came in as the drain began) would get no GOAWAY and hold the drain until
// the period ends. srv.Shutdown still runs the user's own hooks, once.
//
// The error is the one net/http's set-up would return from ServeTLS or
// Serve (it refuses a TLS 1.2 cipher list that lacks the suite HTTP/2
// requires), so a server that fails it fails before its port opens. When
// srv.TLSNextProto is set already (x/net's http2.ConfigureServer, or HTTP/2
// turned off), net/http leaves HTTP/2 to it, and so does SetUpHTTP2. Call it
// after Install, with the same useTLS.
func (t *Tracker) SetUpHTTP2(useTLS bool) error {
	srv := t.srv
	if srv.TLSNextProto != nil || !(useTLS || t.h2c) {
		return nil
	}
	h2 := &http.Server{
		// Shared, not cloned: net/http's set-up adds "h2" and "http/1.1"
		// to srv's own NextProtos, as ServeTLS would, and a
		// GetConfigForClient that starts from srv.TLSConfig relies on it.
		TLSConfig: srv.TLSConfig,
		Protocols: srv.Protocols,
		// What HTTP/2 may read of its server when it is set up.
		IdleTimeout: srv.IdleTimeout,
		ReadTimeout: srv.ReadTimeout,
		HTTP2:       srv.HTTP2,
		ErrorLog:    srv.ErrorLog,
	}
	// Serving on a listener that fails its first Accept runs the set-up
	// and nothing else.
	var err error
	if useTLS {
		err = h2.ServeTLS(setUpOnly{}, "", "")
	} else {
		err = h2.Serve(setUpOnly{})
	}
	switch {
	case !errors.Is(err, errSetUpOnly):
		return err
	case h2.TLSNextProto == nil:
		return nil // HTTP/2 is turned off (srv.Protocols, GODEBUG)
	}
	srv.TLSNextProto = h2.TLSNextProto
	t.h2 = h2
	return nil
}

// errSetUpOnly is setUpOnly's Accept error.
var errSetUpOnly = errors.New("lameduck: HTTP/2 set-up only")

// setUpOnly is a listener whose Accept fails at once, for SetUpHTTP2.
type setUpOnly struct{}

func (setUpOnly) Accept() (net.Conn, error) { return nil, errSetUpOnly }
func (setUpOnly) Close() error              { return nil }
func (setUpOnly) Addr() net.Addr            { return &net.TCPAddr{} }
