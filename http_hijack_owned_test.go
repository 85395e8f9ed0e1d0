package lameduck

import (
	"bufio"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// hijackedServer serves every request by hijacking its connection, writing
// "hello", and handing the connection to own on a goroutine of its own, as
// gorilla/websocket's read and write pumps do: the handler returns at once,
// and net/http no longer sees the connection. owners ends when every own
// call has returned. With cfg, it serves TLS.
func hijackedServer(t *testing.T, cfg *tls.Config, own func(conn net.Conn, r *http.Request)) (hs *HTTPServer, owners *sync.WaitGroup) {
	t.Helper()
	owners = &sync.WaitGroup{}
	srv := &http.Server{Addr: "127.0.0.1:0", TLSConfig: cfg}
	srv.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		conn, _, err := http.NewResponseController(w).Hijack()
		if err != nil {
			t.Error(err)
			return
		}
		io.WriteString(conn, "hello\n")
		owners.Go(func() { own(conn, r) })
	})
	t.Cleanup(owners.Wait)
	return FromHTTP(srv), owners
}

// dialHijacked opens a connection to hs (over TLS when pool is not nil)
// and returns it once the server's "hello" has arrived.
func dialHijacked(t *testing.T, hs *HTTPServer, pool *tls.Config) (net.Conn, *bufio.Reader) {
	t.Helper()
	var c net.Conn
	var err error
	if pool != nil {
		c, err = tls.Dial("tcp", hs.Addr().String(), pool)
	} else {
		c, err = net.Dial("tcp", hs.Addr().String())
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	io.WriteString(c, "GET /ws HTTP/1.1\r\nHost: x\r\n\r\n")
	r := bufio.NewReader(c)
	if line, err := r.ReadString('\n'); err != nil || line != "hello\n" {
		t.Fatalf("first line %q, %v; want hello", line, err)
	}
	return c, r
}

// echo is an owner that ignores the drain: it sends back every line until
// its connection fails.
func echo(conn net.Conn, _ *http.Request) {
	defer conn.Close()
	r := bufio.NewReader(conn)
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			return
		}
		if _, err := io.WriteString(conn, line); err != nil {
			return
		}
	}
}

// checkClosedByServer fails the test unless the server has closed c: a
// line sent on it comes back as EOF or a reset, not as an echo, and not as
// silence.
func checkClosedByServer(t *testing.T, c net.Conn, r *bufio.Reader) {
	t.Helper()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	io.WriteString(c, "ping\n") // may fail already: what the read says decides
	line, err := r.ReadString('\n')
	switch {
	case err == nil:
		t.Errorf("after Run returned, the connection still answers: got %q, want EOF or a reset", line)
	case isTimeoutErr(err):
		t.Errorf("after Run returned, the connection is still open (the read timed out); want EOF or a reset")
	case !errors.Is(err, io.EOF) && !errors.Is(err, syscall.ECONNRESET):
		t.Errorf("the read got %v, want EOF or a reset", err)
	}
}

// waitOwners waits for the owners of hijacked connections to return, for
// at most ten seconds.
func waitOwners(t *testing.T, owners *sync.WaitGroup) {
	t.Helper()
	done := make(chan struct{})
	go func() { owners.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Error("an owner is still using its hijacked connection after Run returned")
	}
}

func isTimeoutErr(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// A hijacked connection is work in flight, which net/http no longer sees:
// the drain waits for it, Close ends it, and none is open after Run.
func TestFromHTTPHijackedOutlivingItsHandler(t *testing.T) {
	t.Run("one whose owner ignores the drain holds it until the period ends, and Close closes it", func(t *testing.T) {
		hs, owners := hijackedServer(t, nil, echo)
		h := runUntilReady(t, hs, Period(300*time.Millisecond))
		c, r := dialHijacked(t, hs, nil)
		fmt.Fprint(c, "one\n")
		if line, err := r.ReadString('\n'); line != "one\n" {
			t.Fatalf("echo = %q, %v; want one", line, err)
		}
		sendSignal(h)
		var lde *LameDuckError
		if err := <-h.done; !errors.As(err, &lde) || !lde.Expired {
			t.Errorf("Run = %v, want an expired LameDuckError: the open connection was work cut by Close", err)
		}
		checkClosedByServer(t, c, r)
		waitOwners(t, owners) // their reads failed when Close closed the connection
	})
	t.Run("a second signal closes it at once", func(t *testing.T) {
		hs, owners := hijackedServer(t, nil, echo)
		h := runUntilReady(t, hs, Period(time.Hour))
		c, r := dialHijacked(t, hs, nil)
		sendSignal(h)
		<-hs.draining
		h.sig.send(syscall.SIGTERM)
		var lde *LameDuckError
		if err := <-h.done; !errors.As(err, &lde) || !lde.Forced {
			t.Errorf("Run = %v, want a LameDuckError forced by the second signal", err)
		}
		checkClosedByServer(t, c, r)
		waitOwners(t, owners)
	})
	for _, useTLS := range []bool{false, true} {
		name := "one whose owner closes it when the drain begins lets Run return nil, once it is closed"
		var cfg, clientCfg *tls.Config
		if useTLS {
			name += ", through a *tls.Conn"
			cert, pool := selfSigned(t)
			cfg = &tls.Config{Certificates: []tls.Certificate{cert}}
			clientCfg = &tls.Config{RootCAs: pool}
		}
		t.Run(name, func(t *testing.T) {
			var closed atomic.Bool // the owner is closing its connection
			hs, _ := hijackedServer(t, cfg, func(conn net.Conn, r *http.Request) {
				<-Draining(r.Context())
				// The goodbye waits for the client's answer, so the drain
				// has to wait for this connection to see it closed.
				io.WriteString(conn, "bye\n")
				bufio.NewReader(conn).ReadString('\n')
				closed.Store(true)
				conn.Close()
			})
			// A period long enough that only a missed close could end in
			// an expiry: TLS's Close must reach the server's books.
			h := runUntilReady(t, hs, Period(20*time.Second))
			c, r := dialHijacked(t, hs, clientCfg)
			sendSignal(h)
			if line, err := r.ReadString('\n'); line != "bye\n" {
				t.Fatalf("got %q, %v; want the goodbye", line, err)
			}
			io.WriteString(c, "ok\n")
			if err := <-h.done; err != nil {
				t.Errorf("Run = %v, want nil", err)
			}
			if !closed.Load() {
				t.Error("Run returned before the owner closed its hijacked connection")
			}
		})
	}
}

// Track(nil) does nothing; before, the drain waited for the nil
// connection until the period ended, and Close dereferenced it and
// panicked (an outside review).
func TestTrackNil(t *testing.T) {
	hs := FromHTTP(&http.Server{Addr: "127.0.0.1:0"})
	h := runUntilReady(t, hs, Period(300*time.Millisecond))
	hs.Track(nil)()
	hs.Track(nil)
	sendSignal(h)
	if err := <-h.done; err != nil {
		t.Errorf("Run = %v, want nil", err)
	}
}
