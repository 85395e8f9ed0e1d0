package lameduckhttp3

import (
	"context"
	"crypto/tls"
	"errors"
	"net/http"
	"testing"
	"time"

	"github.com/b583c413/lameduck"
	"github.com/quic-go/quic-go"
	"github.com/quic-go/quic-go/http3"
)

// A client that connects once the drain has begun is refused at once with
// QUIC's CONNECTION_REFUSED, as a closed TCP listener answers with a reset.
// (quic-go's own Shutdown closes its listener, after which new connections
// get no answer and their clients wait for the handshake to time out; and
// quic-go's client opens a new connection for its next request after a
// GOAWAY.)
func TestNewConnectionsAreRefusedDuringTheDrain(t *testing.T) {
	entered, draining, release := make(chan struct{}), make(chan struct{}), make(chan struct{})
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		close(entered)
		<-lameduck.Draining(r.Context())
		close(draining)
		<-release
	})
	run := serve(t, h, time.Minute)
	done := make(chan error, 1)
	go func() {
		resp, err := client(t).Get("https://" + run.addr + "/")
		if err == nil {
			resp.Body.Close()
		}
		done <- err
	}()
	// The request holds the drain open; wait until it has begun.
	<-entered
	run.trigger()
	<-draining

	_, pool := certs()
	// The bound only keeps a broken build from hanging; quic-go's
	// handshake timeout, which an unanswered client hits, is 10 s.
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := quic.DialAddr(ctx, run.addr, &tls.Config{RootCAs: pool, NextProtos: []string{http3.NextProtoH3}}, nil)
	if err == nil {
		conn.CloseWithError(0, "")
		t.Fatal("a new connection was accepted during the drain")
	}
	var terr *quic.TransportError
	if !errors.As(err, &terr) || terr.ErrorCode != quic.ConnectionRefused {
		t.Errorf("a new connection during the drain failed with %v, want CONNECTION_REFUSED", err)
	}

	close(release)
	if err := <-done; err != nil {
		t.Errorf("the request in flight: %v", err)
	}
	if err := run.wait(); err != nil {
		t.Errorf("Run = %v, want nil", err)
	}
}
