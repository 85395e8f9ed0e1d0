package lameduck

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

// dialHijack opens a connection to path and returns it after the server's
// "hello" line, which the handler writes once it has hijacked it.
func dialHijack(t *testing.T, addr, path string) (net.Conn, *bufio.Reader) {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	io.WriteString(c, "GET "+path+" HTTP/1.1\r\nHost: x\r\n\r\n")
	r := bufio.NewReader(c)
	if line, err := r.ReadString('\n'); err != nil || line != "hello\n" {
		t.Fatalf("first line %q, %v; want hello", line, err)
	}
	return c, r
}

func hijack(t *testing.T, w http.ResponseWriter) net.Conn {
	conn, _, err := http.NewResponseController(w).Hijack()
	if err != nil {
		t.Error(err)
		return nil
	}
	io.WriteString(conn, "hello\n")
	return conn
}

func TestFromHTTPHijacked(t *testing.T) {
	t.Run("a handler that keeps its hijacked connection holds the drain until it returns", func(t *testing.T) {
		srv := &http.Server{Addr: "127.0.0.1:0"}
		finish := make(chan struct{})
		srv.RegisterOnShutdown(func() { close(finish) })
		handlerDone := make(chan struct{})
		srv.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			defer close(handlerDone)
			conn := hijack(t, w)
			defer conn.Close()
			<-finish // told by RegisterOnShutdown that the drain began
			io.WriteString(conn, "bye\n")
		})
		hs := FromHTTP(srv)
		h := runUntilReady(t, hs, Period(time.Hour))
		_, r := dialHijack(t, hs.Addr().String(), "/ws")
		sendSignal(h)
		if line, _ := r.ReadString('\n'); line != "bye\n" {
			t.Errorf("got %q, want the goodbye", line)
		}
		if err := <-h.done; err != nil {
			t.Errorf("Run = %v", err)
		}
		select {
		case <-handlerDone:
		default:
			t.Error("Run returned while the hijacking handler was still running")
		}
	})
	t.Run("a tracked connection that outlives its handler holds the drain until released", func(t *testing.T) {
		srv := &http.Server{Addr: "127.0.0.1:0"}
		finish := make(chan struct{})
		srv.RegisterOnShutdown(func() { close(finish) })
		released := make(chan struct{})
		var hs *HTTPServer
		srv.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			conn := hijack(t, w)
			release := hs.Track(conn)
			go func() { // the connection lives on after the handler returns
				defer release()
				defer close(released) // before release, so the test sees it first
				defer conn.Close()
				<-finish
				// Finishing takes a while; the drain must wait for it.
				time.Sleep(100 * time.Millisecond)
				io.WriteString(conn, "bye\n")
			}()
		})
		hs = FromHTTP(srv)
		h := runUntilReady(t, hs, Period(time.Hour))
		_, r := dialHijack(t, hs.Addr().String(), "/ws")
		sendSignal(h)
		if err := <-h.done; err != nil {
			t.Errorf("Run = %v", err)
		}
		select {
		case <-released:
		default:
			t.Error("Run returned before the tracked connection was released")
		}
		if line, _ := r.ReadString('\n'); line != "bye\n" {
			t.Errorf("got %q, want the goodbye", line)
		}
	})
	t.Run("when the period expires, Close closes tracked connections", func(t *testing.T) {
		srv := &http.Server{Addr: "127.0.0.1:0"}
		ownerDone := make(chan error, 1)
		var hs *HTTPServer
		srv.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			conn := hijack(t, w)
			release := hs.Track(conn)
			go func() { // an owner that ignores the drain and just reads
				defer release()
				_, err := conn.Read(make([]byte, 1))
				ownerDone <- err
			}()
		})
		hs = FromHTTP(srv)
		h := runUntilReady(t, hs, Period(50*time.Millisecond))
		dialHijack(t, hs.Addr().String(), "/ws")
		sendSignal(h)
		err := <-h.done
		if lde, ok := err.(*LameDuckError); !ok || !lde.Expired {
			t.Errorf("Run = %v, want an expired LameDuckError", err)
		}
		if err := <-ownerDone; err == nil || !strings.Contains(err.Error(), "closed") {
			t.Errorf("the owner's Read returned %v, want a closed-connection error", err)
		}
	})
	t.Run("Track after Close closes the connection at once", func(t *testing.T) {
		hs := FromHTTP(&http.Server{Addr: "127.0.0.1:0"})
		if err := hs.Close(); err != nil {
			t.Fatal(err)
		}
		a, b := net.Pipe()
		defer b.Close()
		release := hs.Track(a)
		release()
		if _, err := a.Write([]byte("x")); err == nil {
			t.Error("the connection is still open")
		}
	})
}
