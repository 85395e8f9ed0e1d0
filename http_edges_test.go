package lameduck

import (
	"context"
	"crypto/tls"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
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
		h := runUntilReady(t, hs, Period(time.Hour))
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
		h := runUntilReady(t, hs, Period(time.Hour))
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

// An *http.Server that was shut down before cannot serve again: Run says so
// instead of returning nil having served nothing (rule 12).
func TestFromHTTPServerAlreadyStopped(t *testing.T) {
	for name, stop := range map[string]func(*http.Server){
		"shut down": func(s *http.Server) { s.Shutdown(context.Background()) },
		"closed":    func(s *http.Server) { s.Close() },
	} {
		t.Run(name, func(t *testing.T) {
			srv := &http.Server{Addr: "127.0.0.1:0"}
			stop(srv)
			err := Run(context.Background(), FromHTTP(srv), WithoutLogger(), Signals())
			want := "lameduck: FromHTTP: the *http.Server was shut down or closed before Serve; make a new one"
			if err == nil || err.Error() != want {
				t.Errorf("Run = %v, want %q", err, want)
			}
		})
	}
}

// A listener handed to FromHTTPListener is served on, reported by Addr, and
// closed by the drain; one whose server never serves is closed by Shutdown.
func TestFromHTTPListener(t *testing.T) {
	t.Run("served and closed by the drain", func(t *testing.T) {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		hs := FromHTTPListener(&http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Write([]byte("hi"))
		})}, ln)
		h := runUntilReady(t, hs, Period(time.Hour))
		if got, want := hs.Addr().String(), ln.Addr().String(); got != want {
			t.Errorf("Addr = %s, want the listener's %s", got, want)
		}
		client := &http.Client{Transport: &http.Transport{}}
		defer client.CloseIdleConnections()
		if code, body, err := get(client, "http://"+ln.Addr().String()); err != nil || code != 200 || body != "hi" {
			t.Errorf("GET = %d %q %v, want 200 \"hi\"", code, body, err)
		}
		sendSignal(h)
		if err := <-h.done; err != nil {
			t.Errorf("Run = %v, want nil", err)
		}
		if _, err := ln.Accept(); err == nil {
			t.Error("the listener is still open after the drain")
		}
	})
	t.Run("closed by a Shutdown that came before Serve", func(t *testing.T) {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		hs := FromHTTPListener(&http.Server{}, ln)
		if err := hs.Shutdown(context.Background()); err != nil {
			t.Fatal(err)
		}
		if err := hs.Serve(context.Background()); err != nil {
			t.Errorf("Serve after Shutdown = %v, want nil", err)
		}
		if _, err := ln.Accept(); err == nil {
			t.Error("the listener is still open")
		}
	})
}

// Connections that have made no request owe nothing, even when they might
// be HTTP/2 ones: none of them may hold the drain past the period (found
// from the outside: each of these held it for the whole period).
func TestFromHTTPNewConnectionsDoNotHoldTheDrain(t *testing.T) {
	cert, _ := selfSigned(t)
	plain := func() *http.Server { return &http.Server{Addr: "127.0.0.1:0"} }
	withTLS := func() *http.Server {
		return &http.Server{Addr: "127.0.0.1:0", TLSConfig: &tls.Config{Certificates: []tls.Certificate{cert}}}
	}
	for _, tc := range []struct {
		name   string
		srv    func() *http.Server
		period time.Duration
		client func(t *testing.T, addr string) (stop func())
	}{
		{
			// The config GetConfigForClient returns offers no ALPN, so
			// the handshake settles on HTTP/1.1 although the client
			// offered h2: a preconnect that then sends nothing.
			name: "a TLS preconnect whose config picks HTTP/1.1",
			srv: func() *http.Server {
				s := withTLS()
				s.TLSConfig = &tls.Config{GetConfigForClient: func(*tls.ClientHelloInfo) (*tls.Config, error) {
					return &tls.Config{Certificates: []tls.Certificate{cert}}, nil
				}}
				return s
			},
			period: 500 * time.Millisecond, // shorter than httpdrain's newConnGrace: the prediction must be right
			client: func(t *testing.T, addr string) func() {
				c, err := tls.Dial("tcp", addr, &tls.Config{InsecureSkipVerify: true, NextProtos: []string{"h2", "http/1.1"}})
				if err != nil {
					t.Fatal(err)
				}
				if p := c.ConnectionState().NegotiatedProtocol; p == "h2" {
					t.Fatalf("negotiated %q, want HTTP/1.1", p)
				}
				return func() { c.Close() }
			},
		},
		{
			name:   `a plain connection that sent "PRI" and stalls`,
			srv:    plain,
			period: 500 * time.Millisecond,
			client: func(t *testing.T, addr string) func() {
				c := dialAndSend(t, addr, "PRI")
				return func() { c.Close() }
			},
		},
		{
			// An HTTP/2 client would be ended by the GOAWAY; one that
			// stalls in its handshake is closed after httpdrain's newConnGrace.
			name:   "a TLS handshake that stalls after a ClientHello offering h2",
			srv:    withTLS,
			period: time.Hour,
			client: func(t *testing.T, addr string) func() {
				raw, err := net.Dial("tcp", addr)
				if err != nil {
					t.Fatal(err)
				}
				stalled := &stallingConn{Conn: raw, stall: make(chan struct{}), reading: make(chan struct{})}
				done := make(chan struct{})
				go func() {
					defer close(done)
					tls.Client(stalled, &tls.Config{InsecureSkipVerify: true, NextProtos: []string{"h2", "http/1.1"}}).Handshake()
				}()
				<-stalled.reading // the ClientHello is out
				return func() { close(stalled.stall); raw.Close(); <-done }
			},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			hs := FromHTTP(tc.srv())
			h := runUntilReady(t, hs, Period(tc.period))
			stop := tc.client(t, hs.Addr().String())
			defer stop()
			// A request on another connection shows the first one has
			// been accepted (the accept loop takes them in order).
			probe := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
			if resp, err := probe.Get("http://" + hs.Addr().String()); err == nil {
				resp.Body.Close()
			}
			sendSignal(h)
			if err := <-h.done; err != nil {
				t.Errorf("Run = %v, want nil: a connection that made no request held the drain", err)
			}
		})
	}
}

func dialAndSend(t *testing.T, addr, s string) net.Conn {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	io.WriteString(c, s)
	return c
}

// stallingConn lets writes through and blocks every read until stall is
// closed; reading is closed at the first read.
type stallingConn struct {
	net.Conn
	stall   chan struct{}
	once    sync.Once
	reading chan struct{}
}

func (c *stallingConn) Read([]byte) (int, error) {
	c.once.Do(func() { close(c.reading) })
	<-c.stall
	return 0, io.EOF
}

// An HTTPServer serves once: running it again is an error, not a silent nil.
func TestFromHTTPServesOnce(t *testing.T) {
	hs := FromHTTP(&http.Server{Addr: "127.0.0.1:0"})
	h := runUntilReady(t, hs)
	sendSignal(h)
	if err := <-h.done; err != nil {
		t.Fatalf("first Run = %v", err)
	}
	err := Run(context.Background(), hs, WithoutLogger(), Signals())
	if err == nil || !strings.Contains(err.Error(), "lameduck: HTTPServer's Serve called more than once") {
		t.Errorf("second Run = %v, want the Serve-called-more-than-once error", err)
	}
}
