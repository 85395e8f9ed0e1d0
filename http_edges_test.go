package lameduck

import (
	"context"
	"crypto/tls"
	"net"
	"net/http"
	"testing"
	"time"

	"go.uber.org/goleak"
)

// Edges of net/http that FromHTTP must get right.
func TestFromHTTPEdges(t *testing.T) {
	t.Run("an HTTP/2 stream in flight at the signal finishes with 200", func(t *testing.T) {
		cert, pool := selfSigned(t)
		entered, release := make(chan struct{}), make(chan struct{})
		hs := FromHTTP(&http.Server{
			Addr: "127.0.0.1:0",
			Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				close(entered)
				<-release
				w.Write([]byte(r.Proto))
			}),
			TLSConfig: &tls.Config{Certificates: []tls.Certificate{cert}},
		})
		h := launch(t, hs, Period(time.Hour))
		client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}, ForceAttemptHTTP2: true}}
		defer client.CloseIdleConnections()
		type reply struct {
			code int
			body string
			err  error
		}
		replies := make(chan reply, 1)
		go func() {
			code, body, err := get(client, "https://"+hs.Addr().String())
			replies <- reply{code, body, err}
		}()
		<-entered
		sendSignal(h)
		close(release)
		if r := <-replies; r.err != nil || r.code != 200 || r.body != "HTTP/2.0" {
			t.Errorf("in-flight HTTP/2 request: %d %q %v; want 200 over HTTP/2.0", r.code, r.body, r.err)
		}
		if err := <-h.done; err != nil {
			t.Errorf("Run = %v", err)
		}
	})

	t.Run("a TLS handshake in progress at the stop leaves no goroutine behind", func(t *testing.T) {
		cert, _ := selfSigned(t)
		hs := FromHTTP(&http.Server{
			Addr:      "127.0.0.1:0",
			Handler:   http.NotFoundHandler(),
			TLSConfig: &tls.Config{Certificates: []tls.Certificate{cert}},
		})
		h := launch(t, hs, Period(time.Hour))
		c, err := net.Dial("tcp", hs.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		// The start of a TLS record header and no more: the server's
		// handshake waits for the rest.
		if _, err := c.Write([]byte{0x16, 0x03, 0x01}); err != nil {
			t.Fatal(err)
		}
		sendSignal(h)
		if err := <-h.done; err != nil {
			t.Errorf("Run = %v", err)
		}
		if _, err := c.Read(make([]byte, 1)); err == nil {
			t.Error("the half-open TLS connection is still open")
		}
		goleak.VerifyNone(t, goleak.IgnoreTopFunction("github.com/golang/glog.(*fileSink).flushDaemon"), goleak.IgnoreCurrent())
	})

	t.Run("Shutdown racing Serve's bind: Serve returns nil and nothing stays listening", func(t *testing.T) {
		for range 200 {
			hs := FromHTTP(&http.Server{Addr: "127.0.0.1:0"})
			served := make(chan error, 1)
			go func() { served <- hs.Serve(context.Background()) }()
			if err := hs.Shutdown(context.Background()); err != nil {
				t.Fatalf("Shutdown = %v", err)
			}
			if err := <-served; err != nil {
				t.Fatalf("Serve = %v, want nil", err)
			}
			if addr := hs.Addr(); addr != nil {
				if c, err := net.Dial("tcp", addr.String()); err == nil {
					c.Close()
					t.Fatalf("%v still accepts connections after Shutdown", addr)
				}
			}
		}
	})

	t.Run("Close racing Serve's bind: Serve returns nil", func(t *testing.T) {
		for range 200 {
			hs := FromHTTP(&http.Server{Addr: "127.0.0.1:0"})
			served := make(chan error, 1)
			go func() { served <- hs.Serve(context.Background()) }()
			if err := hs.Close(); err != nil {
				t.Fatalf("Close = %v", err)
			}
			if err := hs.Close(); err != nil {
				t.Fatalf("second Close = %v", err)
			}
			if err := <-served; err != nil {
				t.Fatalf("Serve = %v, want nil", err)
			}
		}
	})
}
