package lameduck

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"strings"
	"syscall"
	"testing"
	"time"
)

// When net/http closes a connection during the drain, its response may not
// have left the server yet: here the client reads nothing until the server
// has closed, through a receive buffer far smaller than the response, and
// has sent its next request already (pipelined), which net/http, its
// keep-alive off once its Shutdown has begun, does not read. A plain close with unread bytes makes the kernel send a reset and
// throw away the unsent rest of the response; the gentle close (rule 15)
// delivers all of it, and Run returns nil only once it has. Kills the mutant
// that closes gently outside the drain instead of during it (the stage check
// in httpdrain's conn.Close). Linux only: it sizes the client's receive
// buffer before the connection opens.
func TestFromHTTPGentleCloseDeliversAPipelinedClientsResponse(t *testing.T) {
	const size = 128 << 10
	entered, closed, shut := make(chan struct{}), make(chan struct{}), make(chan struct{})
	srv := &http.Server{
		Addr: "127.0.0.1:0",
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path != "/big" {
				t.Errorf("the handler got %s, want only /big: net/http reads no request during the drain", r.URL.Path)
				return
			}
			close(entered)
			// Once net/http's Shutdown has begun (after the drain has
			// waited for handlers that began before it), keep-alive is
			// off and net/http does not read the next request.
			<-shut
			w.Header().Set("Content-Length", "131072")
			io.WriteString(w, strings.Repeat("x", size))
		}),
		ConnState: func(nc net.Conn, st http.ConnState) {
			switch st {
			case http.StateNew:
				// Room for the whole response on the server's side, so
				// that the handler's writes complete while the client
				// reads nothing.
				nc.(interface{ NetConn() net.Conn }).NetConn().(*net.TCPConn).SetWriteBuffer(1 << 20)
			case http.StateClosed:
				close(closed)
			}
		},
	}
	srv.RegisterOnShutdown(func() { close(shut) })
	hs := FromHTTP(srv)
	h := runUntilReady(t, hs, Period(time.Hour))
	c := dialSmallReceiveBuffer(t, hs.Addr().String())
	defer c.Close()
	c.SetDeadline(time.Now().Add(20 * time.Second)) // a bound, not a wait
	if _, err := io.WriteString(c, "GET /big HTTP/1.1\r\nHost: x\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	<-entered
	if _, err := io.WriteString(c, "GET /next HTTP/1.1\r\nHost: x\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	sendSignal(h)
	<-closed
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatalf("reading the response: %v", err)
	}
	n, err := io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if n != size || err != nil {
		t.Errorf("the client got %d bytes of the body (%v), want all %d", n, err, size)
	}
	if err := <-h.done; err != nil {
		t.Errorf("Run = %v, want nil", err)
	}
}

// dialSmallReceiveBuffer connects to addr with a receive buffer of a few
// KiB, set before the connection opens so that the window it advertises is
// small from the start.
func dialSmallReceiveBuffer(t *testing.T, addr string) net.Conn {
	t.Helper()
	d := net.Dialer{Control: func(_, _ string, rc syscall.RawConn) error {
		var serr error
		if err := rc.Control(func(fd uintptr) {
			serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 4096)
		}); err != nil {
			return err
		}
		return serr
	}}
	c, err := d.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	return c
}
