package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/b583c413/lameduck"
	gorilla "github.com/gorilla/websocket"
)

// serveInProcess runs the service under a Runner in this process, with
// closeWait as the bound on closing handshakes, and returns its address, a
// function that begins the drain, and Run's result.
func serveInProcess(t *testing.T, closeWait time.Duration) (addr string, stop func(), done <-chan error) {
	t.Helper()
	var ready lameduck.Readiness
	s := newService("test", io.Discard, closeWait)
	h := lameduck.FromHTTP(&http.Server{Addr: "127.0.0.1:0", Handler: s.routes(&ready)})
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	result := make(chan error, 1)
	r, err := lameduck.NewRunner(h, lameduck.Period(10*time.Second), lameduck.Signals(), lameduck.WithoutLogger())
	if err != nil {
		t.Fatal(err)
	}
	go func() { result <- r.Run(ctx) }()
	select {
	case <-r.Ready():
	case err := <-result:
		t.Fatalf("Run = %v before it was ready", err)
	}
	return h.Addr().String(), cancel, result
}

// Each recipe closes with 1001 and waits for the client's close frame, but
// not for longer than its bound: a client that never answers is cut off
// after it, and the drain still ends cleanly within the period.
func TestRecipesBoundTheClosingHandshake(t *testing.T) {
	const closeWait = time.Second
	for _, path := range []string{"/echo", "/chat"} {
		for _, answers := range []bool{true, false} {
			name := fmt.Sprintf("%s: a client that answers the close frame", path[1:])
			if !answers {
				name = fmt.Sprintf("%s: a client that never answers it", path[1:])
			}
			t.Run(name, func(t *testing.T) {
				addr, stop, done := serveInProcess(t, closeWait)
				c, _, err := gorilla.DefaultDialer.Dial("ws://"+addr+path+"?client=c", nil)
				if err != nil {
					t.Fatal(err)
				}
				defer c.Close()
				if !answers {
					c.SetCloseHandler(func(int, string) error { return nil })
				}
				// One exchange, so that the handler is surely serving.
				if err := c.WriteMessage(gorilla.TextMessage, []byte("1")); err != nil {
					t.Fatal(err)
				}
				if _, msg, err := c.ReadMessage(); err != nil || string(msg) != "ack 1" {
					t.Fatalf("got %q, %v; want ack 1", msg, err)
				}
				stop()
				c.SetReadDeadline(time.Now().Add(10 * time.Second))
				_, _, err = c.ReadMessage()
				frameAt := time.Now()
				var ce *gorilla.CloseError
				if !errors.As(err, &ce) || ce.Code != gorilla.CloseGoingAway {
					t.Fatalf("the client read %v, want a close frame with status 1001", err)
				}
				// The server closes the socket once the handshake is over,
				// or once it has waited closeWait for it.
				n, err := c.NetConn().Read(make([]byte, 1))
				waited := time.Since(frameAt)
				if n != 0 || err == nil {
					t.Fatalf("after the close frame the client read %d bytes, %v; want the end of the connection", n, err)
				}
				if err := <-done; err != nil {
					t.Errorf("Run = %v, want nil", err)
				}
				t.Logf("the server closed the socket %v after its close frame arrived", waited)
				switch {
				case answers && waited >= closeWait:
					t.Errorf("the server waited %v after the client answered, want it to close at once", waited)
				case !answers && waited < closeWait*3/4:
					t.Errorf("the server closed %v after its close frame, want it to wait about %v for the answer", waited, closeWait)
				case !answers && waited > closeWait+3*time.Second:
					t.Errorf("the server closed %v after its close frame, want it to give up after about %v", waited, closeWait)
				}
			})
		}
	}
}
