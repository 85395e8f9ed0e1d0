package httpdrain

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"testing"
	"time"
)

// closeNotingListener closes closed when it is closed.
type closeNotingListener struct {
	net.Listener
	closed chan struct{}
}

func (l *closeNotingListener) Close() error {
	select {
	case <-l.closed:
	default:
		close(l.closed)
	}
	return l.Listener.Close()
}

// tracked serves a "hello" handler on loopback through a Tracker whose first
// stage waits quiet without requests before it ends. It returns the
// Tracker, the address, a channel closed once the listener has been closed,
// and one that receives what Serve returned.
func tracked(t *testing.T, quiet time.Duration) (*Tracker, string, <-chan struct{}, <-chan error) {
	t.Helper()
	return trackedWith(t, quiet, nil)
}

// trackedWith is tracked with a ConnState hook of the test's.
func trackedWith(t *testing.T, quiet time.Duration, hook func(net.Conn, http.ConnState)) (*Tracker, string, <-chan struct{}, <-chan error) {
	t.Helper()
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "hello")
	}), ConnState: hook}
	tr := New(srv, func(ctx context.Context) context.Context { return ctx }, func() {})
	tr.quietFor = quiet
	tr.Install(context.Background(), false)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	cl := &closeNotingListener{Listener: ln, closed: make(chan struct{})}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(tr.Listener(cl, false)) }()
	t.Cleanup(func() {
		srv.Close()
		tr.Close()
		<-served
	})
	return tr, ln.Addr().String(), cl.closed, served
}

// get sends GET / on c and reads the response.
func get(t *testing.T, c net.Conn, br *bufio.Reader) (*http.Response, error) {
	t.Helper()
	if _, err := io.WriteString(c, "GET / HTTP/1.1\r\nHost: x\r\n\r\n"); err != nil {
		return nil, err
	}
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		return nil, err
	}
	_, err = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp, err
}

// A client that has reused its keep-alive connection may send its next
// request at any moment; one that reaches the server after the drain began
// (here: after the listener closed) is answered, with "Connection: close",
// instead of meeting a close it cannot tell from a lost request. Before,
// net/http's Shutdown had begun by then and dropped the request: the client
// read EOF.
func TestDrainAnswersARequestOnAReusedIdleConnection(t *testing.T) {
	tr, addr, lnClosed, _ := tracked(t, time.Hour)
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(20 * time.Second)) // a bound, not a wait
	br := bufio.NewReader(c)
	for range 2 {
		if _, err := get(t, c, br); err != nil {
			t.Fatal(err)
		}
	}

	tr.BeginDrain()
	drained := make(chan error, 1)
	go func() { drained <- tr.Drain(context.Background()) }()
	<-lnClosed

	resp, err := get(t, c, br)
	if err != nil {
		t.Fatalf("the request sent on the idle connection after the drain began: %v, want an answer", err)
	}
	if resp.StatusCode != http.StatusOK || !resp.Close {
		t.Errorf("got %d, Connection: close %v; want 200 with Connection: close", resp.StatusCode, resp.Close)
	}
	if n, err := br.Read(make([]byte, 1)); n != 0 || !errors.Is(err, io.EOF) {
		t.Errorf("after the answer the client read %d bytes, %v; want EOF: the server closes the connection", n, err)
	}
	if err := <-drained; err != nil {
		t.Errorf("Drain = %v, want nil", err)
	}
}

// The drain does not wait for an idle connection that has carried a single
// request: nothing says its client reuses connections. Here the first stage
// would otherwise last an hour.
func TestDrainDoesNotKeepASingleUseIdleConnection(t *testing.T) {
	tr, addr, _, _ := tracked(t, time.Hour)
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(20 * time.Second))
	if _, err := get(t, c, bufio.NewReader(c)); err != nil {
		t.Fatal(err)
	}
	tr.BeginDrain()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second) // a bound, not a wait
	defer cancel()
	if err := tr.Drain(ctx); err != nil {
		t.Errorf("Drain = %v, want nil without waiting for the idle connection", err)
	}
}

// Where clients reuse connections (here one client did, and left), a
// proxy's pool may hold connections that carried one request, or none yet,
// and take them up at any moment: a request on either after the drain
// began is answered. Before, the drain kept only connections that had
// themselves carried more than one request, closed these at once, and
// both requests met EOF.
func TestDrainKeepsEveryConnectionWhereClientsReuse(t *testing.T) {
	accepted := make(chan struct{}, 3)
	tr, addr, lnClosed, _ := trackedWith(t, time.Hour, func(_ net.Conn, st http.ConnState) {
		if st == http.StateNew {
			accepted <- struct{}{}
		}
	})
	dial := func() (net.Conn, *bufio.Reader) {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		c.SetDeadline(time.Now().Add(20 * time.Second)) // a bound, not a wait
		return c, bufio.NewReader(c)
	}
	reuser, rbr := dial()
	for range 2 {
		if _, err := get(t, reuser, rbr); err != nil {
			t.Fatal(err)
		}
	}
	reuser.Close()
	once, obr := dial()
	if _, err := get(t, once, obr); err != nil {
		t.Fatal(err)
	}
	fresh, fbr := dial()
	for range 3 {
		<-accepted // fresh too: net/http has it, and waits for its request
	}

	tr.BeginDrain()
	drained := make(chan error, 1)
	go func() { drained <- tr.Drain(context.Background()) }()
	<-lnClosed
	for _, c := range []struct {
		name string
		conn net.Conn
		br   *bufio.Reader
	}{{"idle after one request", once, obr}, {"new, no request yet", fresh, fbr}} {
		resp, err := get(t, c.conn, c.br)
		if err != nil {
			t.Errorf("%s: %v, want an answer", c.name, err)
			continue
		}
		if resp.StatusCode != http.StatusOK || !resp.Close {
			t.Errorf("%s: %d, Connection: close %v; want 200 with Connection: close", c.name, resp.StatusCode, resp.Close)
		}
	}
	if err := <-drained; err != nil {
		t.Errorf("Drain = %v, want nil", err)
	}
}
