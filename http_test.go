package lameduck

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"net"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"github.com/b583c413/lameduck/internal/testcert"
)

// get fetches url with a client of its own and returns status and body.
func get(c *http.Client, url string) (int, string, error) {
	resp, err := c.Get(url)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body), err
}

// TestFromHTTPDrainsInFlightRequest is the whole story on real sockets: a
// request in flight when the signal arrives is answered with 200, new
// connections are refused, and Run returns right after the response.
func TestFromHTTPDrainsInFlightRequest(t *testing.T) {
	entered := make(chan struct{})
	release := make(chan struct{})
	var handlerReturned atomic.Int64
	mux := http.NewServeMux()
	mux.HandleFunc("/slow", func(w http.ResponseWriter, r *http.Request) {
		close(entered)
		<-release
		// Keep working well into the drain, past net/http's first few polls.
		time.Sleep(300 * time.Millisecond)
		w.Write([]byte("done"))
		handlerReturned.Store(time.Now().UnixNano())
	})
	hs := FromHTTP(&http.Server{Addr: "127.0.0.1:0", Handler: mux})
	h := runUntilReady(t, hs, Period(30*time.Second))
	url := "http://" + hs.Addr().String()

	type reply struct {
		code int
		body string
		err  error
	}
	replies := make(chan reply, 1)
	go func() {
		code, body, err := get(&http.Client{}, url+"/slow")
		replies <- reply{code, body, err}
	}()
	<-entered
	sendSignal(h)

	// Lame-duck mode has begun once the listener refuses connections.
	for {
		conn, err := net.Dial("tcp", hs.Addr().String())
		if err != nil {
			break
		}
		conn.Close()
		select {
		case err := <-h.done:
			t.Fatalf("Run returned %v with a request in flight", err)
		default:
		}
	}

	close(release)
	if got := <-replies; got.err != nil || got.code != http.StatusOK || got.body != "done" {
		t.Errorf("in-flight request got %d %q (error %v), want 200 %q", got.code, got.body, got.err, "done")
	}
	if err := <-h.done; err != nil {
		t.Fatalf("Run = %v, want nil", err)
	}
	lag := time.Duration(time.Now().UnixNano() - handlerReturned.Load())
	t.Logf("lag from the handler's return to Run's return: %v", lag)
}

// TestFromHTTPShutdownWaitsForActiveConnections drives the drain through
// real sockets: Shutdown waits while a request is in flight, and does not
// wait for an idle keep-alive connection, which it closes on the way out.
func TestFromHTTPShutdownWaitsForActiveConnections(t *testing.T) {
	entered, release := make(chan struct{}), make(chan struct{})
	hs := FromHTTP(&http.Server{Addr: "127.0.0.1:0", Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/slow" {
			close(entered)
			<-release
		}
		io.WriteString(w, "ok")
	})})
	served := make(chan error, 1)
	go func() { served <- hs.Serve(context.Background()) }()
	<-hs.Ready()
	addr := hs.Addr().String()

	// A keep-alive connection that has had its answer and is now idle.
	idle, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer idle.Close()
	io.WriteString(idle, "GET / HTTP/1.1\r\nHost: x\r\n\r\n")
	idleReader := bufio.NewReader(idle)
	if resp, err := http.ReadResponse(idleReader, nil); err != nil {
		t.Fatal(err)
	} else {
		io.ReadAll(resp.Body)
		resp.Body.Close()
	}

	reply := make(chan error, 1)
	go func() { _, _, err := get(&http.Client{}, "http://"+addr+"/slow"); reply <- err }()
	<-entered

	done := make(chan error, 1)
	go func() { done <- hs.Shutdown(context.Background()) }()
	// The idle connection is closed while the slow request still runs.
	if _, err := idleReader.ReadByte(); err != io.EOF {
		t.Errorf("reading the idle keep-alive connection during the drain: %v, want io.EOF", err)
	}
	idle.Close()
	select {
	case err := <-done:
		t.Fatalf("Shutdown returned %v with a request still in flight", err)
	default:
	}
	close(release)
	if err := <-reply; err != nil {
		t.Errorf("the request in flight failed: %v", err)
	}
	if err := <-done; err != nil {
		t.Errorf("Shutdown = %v, want nil", err)
	}
	if err := <-served; err != nil {
		t.Errorf("Serve = %v, want nil", err)
	}
}

func TestFromHTTPAddrAndReady(t *testing.T) {
	var states atomic.Int32
	srv := &http.Server{
		Addr:      "127.0.0.1:0",
		Handler:   http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write([]byte(r.Context().Value(ctxKey{}).(string))) }),
		ConnState: func(net.Conn, http.ConnState) { states.Add(1) },
	}
	hs := FromHTTP(srv)
	if hs.Addr() != nil {
		t.Errorf("Addr before Serve = %v, want nil", hs.Addr())
	}
	r, err := NewRunner(hs, Signals(), WithoutLogger())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.WithValue(context.Background(), ctxKey{}, "from Run"))
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	<-r.Ready()
	select {
	case <-hs.Ready():
	default:
		t.Fatal("the Runner was ready before the HTTPServer had bound its port")
	}
	addr, ok := hs.Addr().(*net.TCPAddr)
	if !ok || addr.Port == 0 {
		t.Fatalf("Addr after Ready = %v, want a bound TCP port", hs.Addr())
	}
	code, body, err := get(&http.Client{}, "http://"+addr.String())
	if err != nil || code != 200 || body != "from Run" {
		t.Errorf("GET = %d %q %v, want 200 with the request context carrying Run's value", code, body, err)
	}
	cancel()
	if err := <-done; err != nil {
		t.Errorf("Run = %v", err)
	}
	if states.Load() == 0 {
		t.Error("the server's own ConnState hook was never called")
	}
}

func TestFromHTTPTLS(t *testing.T) {
	cert, pool := selfSigned(t)
	hs := FromHTTP(&http.Server{
		Addr:      "127.0.0.1:0",
		Handler:   http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write([]byte(r.Proto)) }),
		TLSConfig: &tls.Config{Certificates: []tls.Certificate{cert}},
	})
	h := runUntilReady(t, hs)
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}, ForceAttemptHTTP2: true}}
	defer client.CloseIdleConnections()
	code, body, err := get(client, "https://"+hs.Addr().String())
	if err != nil || code != 200 || body != "HTTP/2.0" {
		t.Errorf("GET over TLS = %d %q %v, want 200 over HTTP/2.0", code, body, err)
	}
	sendSignal(h)
	if err := <-h.done; err != nil {
		t.Errorf("Run = %v", err)
	}
}

func TestFromHTTPLifecycleEdges(t *testing.T) {
	t.Run("Shutdown before Serve: Serve returns nil without listening", func(t *testing.T) {
		hs := FromHTTP(&http.Server{Addr: "127.0.0.1:0"})
		if err := hs.Shutdown(context.Background()); err != nil {
			t.Fatalf("Shutdown = %v", err)
		}
		if err := hs.Serve(context.Background()); err != nil {
			t.Errorf("Serve after Shutdown = %v, want nil", err)
		}
		if hs.Addr() != nil {
			t.Errorf("Addr = %v, want nil: nothing should be listening", hs.Addr())
		}
	})
	t.Run("Close twice is safe and Serve then returns nil", func(t *testing.T) {
		hs := FromHTTP(&http.Server{Addr: "127.0.0.1:0"})
		done := make(chan error, 1)
		go func() { done <- hs.Serve(context.Background()) }()
		<-hs.Ready()
		if err := hs.Close(); err != nil {
			t.Errorf("first Close = %v", err)
		}
		if err := hs.Close(); err != nil {
			t.Errorf("second Close = %v", err)
		}
		if err := <-done; err != nil {
			t.Errorf("Serve after Close = %v, want nil (never http.ErrServerClosed)", err)
		}
	})
	t.Run("a port already in use is Serve's error, returned by Run", func(t *testing.T) {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer ln.Close()
		err = Run(context.Background(), FromHTTP(&http.Server{Addr: ln.Addr().String()}), WithoutLogger())
		var opErr *net.OpError
		if !errors.As(err, &opErr) || opErr.Op != "listen" {
			t.Errorf("Run = %v, want the listen error", err)
		}
	})
	t.Run("Serve twice is an error", func(t *testing.T) {
		hs := FromHTTP(&http.Server{Addr: "127.0.0.1:0"})
		done := make(chan error, 1)
		go func() { done <- hs.Serve(context.Background()) }()
		<-hs.Ready()
		if err := hs.Serve(context.Background()); err == nil {
			t.Error("second Serve returned nil")
		}
		hs.Close()
		<-done
	})
	t.Run("idle keep-alive connections do not hold up the drain", func(t *testing.T) {
		hs := FromHTTP(&http.Server{Addr: "127.0.0.1:0", Handler: http.HandlerFunc(func(http.ResponseWriter, *http.Request) {})})
		h := runUntilReady(t, hs, Period(time.Hour))
		client := &http.Client{}
		defer client.CloseIdleConnections()
		for range 3 {
			if _, _, err := get(client, "http://"+hs.Addr().String()); err != nil {
				t.Fatal(err)
			}
		}
		sendSignal(h)
		// With a one-hour period, only a drain that ignores idle connections returns.
		if err := <-h.done; err != nil {
			t.Errorf("Run = %v", err)
		}
	})
}

// selfSigned returns the tests' certificate for 127.0.0.1 and a pool that
// trusts it.
func selfSigned(t testing.TB) (tls.Certificate, *x509.CertPool) {
	t.Helper()
	c, err := testcert.Get()
	if err != nil {
		t.Fatal(err)
	}
	return c.TLS, c.Pool
}
