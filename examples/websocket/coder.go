package main

import (
	"context"
	"net/http"
	"sync"
	"time"

	"github.com/b583c413/lameduck"
	"github.com/coder/websocket"
	"github.com/golang/glog"
)

// echo serves /echo with github.com/coder/websocket: it records and
// acknowledges each message until the client leaves or the drain reaches
// the connection.
func (s *service) echo(w http.ResponseWriter, r *http.Request) {
	c, err := websocket.Accept(w, r, nil)
	if err != nil {
		return // Accept has answered the request
	}
	defer c.CloseNow()
	client := r.URL.Query().Get("client")

	// Every read and write uses ctx, so that goAwayOnDrain can cut a
	// closing handshake short by cancelling it.
	ctx, cancel := context.WithCancel(r.Context())
	var closing sync.WaitGroup
	defer closing.Wait()
	defer cancel()
	closing.Go(func() { goAwayOnDrain(ctx, cancel, r, c, s.closeWait) })

	for {
		_, msg, err := c.Read(ctx)
		if err != nil {
			glog.V(1).Infof("echo %s: %v", client, err)
			return
		}
		ack, err := s.ledger.take(client, msg)
		if err != nil {
			c.Close(websocket.StatusInternalError, "cannot record")
			return
		}
		if err := c.Write(ctx, websocket.MessageText, ack); err != nil {
			return
		}
	}
}

// goAwayOnDrain waits until the drain reaches the connection of r (see
// lameduck.Draining), then closes c with status 1001, "going away", and
// waits for the client's close frame, for at most wait. It returns early
// when ctx ends first (the client left).
//
// c.Close does the closing handshake itself, even while another goroutine
// is blocked in c.Read (that Read returns the client's close frame as an
// error). coder/websocket waits up to five seconds for the client; to keep
// the wait within the lame-duck period, cancel (the CancelFunc of ctx, the
// context of the handler's reads) runs after wait, and coder/websocket
// closes a connection when the context of a read in progress ends.
func goAwayOnDrain(ctx context.Context, cancel context.CancelFunc, r *http.Request, c *websocket.Conn, wait time.Duration) {
	select {
	case <-lameduck.Draining(r.Context()):
	case <-ctx.Done():
		return
	}
	cut := time.AfterFunc(wait, cancel)
	defer cut.Stop()
	c.Close(websocket.StatusGoingAway, "server going away")
}
