package httpdrain

import (
	"bufio"
	"context"
	"io"
	"net"
	"net/http"
	"syscall"
	"testing"
	"time"
)

// gatedListener accepts nothing until open is closed, so that connections
// wait in the kernel's accept queue.
type gatedListener struct {
	*net.TCPListener
	open chan struct{}
}

func (l *gatedListener) Accept() (net.Conn, error) {
	<-l.open
	return l.TCPListener.Accept()
}

func (l *gatedListener) SyscallConn() (syscall.RawConn, error) { return l.TCPListener.SyscallConn() }

// Connections the kernel completed but net/http had not accepted yet when
// the drain began are accepted and answered, not reset by the listener's
// close: their clients (nginx, for one) may have sent a request already.
// Before, the drain closed the listener at once and every one of them read
// a reset.
func TestDrainAcceptsWhatTheKernelCompleted(t *testing.T) {
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "hello")
	})}
	tr := New(srv, func(ctx context.Context) context.Context { return ctx }, func() {})
	tr.quiesceFor = time.Hour // the test, not a timer, decides when the queue empties
	tr.Install(context.Background(), false)
	ln, err := net.ListenTCP("tcp", &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	gl := &gatedListener{TCPListener: ln, open: make(chan struct{})}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(tr.Listener(gl, true)) }()
	defer func() {
		srv.Close()
		tr.Close()
		<-served
	}()

	const clients = 3
	var conns []net.Conn
	for range clients {
		c, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(20 * time.Second)) // a bound, not a wait
		if _, err := io.WriteString(c, "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n"); err != nil {
			t.Fatal(err)
		}
		conns = append(conns, c)
	}

	tr.BeginDrain()
	drained := make(chan error, 1)
	go func() { drained <- tr.Drain(context.Background()) }()
	close(gl.open)

	for i, c := range conns {
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil {
			t.Errorf("client %d, queued before the drain: %v, want an answer", i, err)
			continue
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK || !resp.Close {
			t.Errorf("client %d: %d, Connection: close %v; want 200 with Connection: close", i, resp.StatusCode, resp.Close)
		}
	}
	if err := <-drained; err != nil {
		t.Errorf("Drain = %v, want nil", err)
	}
}
