package lameduck

import (
	"bufio"
	"crypto/tls"
	"io"
	"net"
	"net/http"
	"testing"
	"time"
)

// Tests that close gaps found by mutation testing of the HTTP code (each
// names the mutants it kills). They use real loopback sockets, so they wait
// on channels and on the server's own answers, never on the clock.

// FromHTTP serves TLS exactly when srv.TLSConfig can supply a certificate
// (Certificates, GetCertificate or GetConfigForClient); a TLSConfig that
// cannot (one that only sets versions or ciphers, say) leaves the server
// plain HTTP. Kills the mutants of useTLS's conditions.
func TestFromHTTPServesTLSOnlyWithACertificate(t *testing.T) {
	cert, _ := selfSigned(t)
	getCert := func(*tls.ClientHelloInfo) (*tls.Certificate, error) { return &cert, nil }
	for _, tc := range []struct {
		name    string
		cfg     *tls.Config
		wantTLS bool
	}{
		{"no TLSConfig is plain HTTP", nil, false},
		{"a TLSConfig without a certificate is plain HTTP", &tls.Config{MinVersion: tls.VersionTLS12}, false},
		{"Certificates is TLS", &tls.Config{Certificates: []tls.Certificate{cert}}, true},
		{"GetCertificate alone is TLS", &tls.Config{GetCertificate: getCert}, true},
		{"GetConfigForClient alone is TLS", &tls.Config{GetConfigForClient: func(*tls.ClientHelloInfo) (*tls.Config, error) {
			return &tls.Config{Certificates: []tls.Certificate{cert}}, nil
		}}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			hs := FromHTTP(&http.Server{
				Addr:      "127.0.0.1:0",
				Handler:   http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("hi")) }),
				TLSConfig: tc.cfg,
			})
			h := runUntilReady(t, hs, Period(time.Hour))
			scheme := "http"
			if tc.wantTLS {
				scheme = "https"
			}
			client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}}
			defer client.CloseIdleConnections()
			code, body, err := get(client, scheme+"://"+hs.Addr().String())
			if err != nil || code != http.StatusOK || body != "hi" {
				t.Errorf("GET over %s = %d %q %v, want 200 \"hi\"", scheme, code, body, err)
			}
			client.CloseIdleConnections()
			sendSignal(h)
			if err := <-h.done; err != nil {
				t.Errorf("Run = %v, want nil", err)
			}
		})
	}
}

// roundTrip writes one HTTP/1.1 request for path on c and reads its response.
func roundTrip(t *testing.T, c net.Conn, r *bufio.Reader, path string) (*http.Response, string) {
	t.Helper()
	if _, err := io.WriteString(c, "GET "+path+" HTTP/1.1\r\nHost: x\r\n\r\n"); err != nil {
		t.Fatalf("writing the request for %s: %v", path, err)
	}
	resp, err := http.ReadResponse(r, nil)
	if err != nil {
		t.Fatalf("reading the response to %s: %v", path, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("reading the body of %s: %v", path, err)
	}
	return resp, string(body)
}

// While the server serves, an HTTP/1 keep-alive connection that goes idle
// stays open for the client's next request: only the drain closes idle
// connections. Kills the mutant that closes idle connections outside the
// drain (the stage check in httpdrain's follow).
func TestFromHTTPKeepAliveWhileServing(t *testing.T) {
	hs := FromHTTP(&http.Server{Addr: "127.0.0.1:0", Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, r.URL.Path)
	})})
	h := runUntilReady(t, hs, Period(time.Hour))
	c, err := net.Dial("tcp", hs.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second)) // a bound, not a wait
	r := bufio.NewReader(c)
	for _, path := range []string{"/first", "/second", "/third"} {
		if resp, body := roundTrip(t, c, r, path); resp.StatusCode != http.StatusOK || body != path || resp.Close {
			t.Errorf("GET %s on the kept-alive connection: %s %q, close=%v; want 200 %q on a connection kept open", path, resp.Status, body, resp.Close, path)
		}
	}
	sendSignal(h)
	if err := <-h.done; err != nil {
		t.Errorf("Run = %v, want nil", err)
	}
}

// An HTTP/2 connection holds the drain until it is gone, even with no
// stream open: net/http sends it a GOAWAY and, as this client does not hang
// up, closes it a second later; only then may Shutdown return (FromHTTP's
// doc). Kills the mutant that counts a connection that starts to hold the
// drain as one fewer (the increment in httpdrain's recount), with which
// Shutdown returned at once.
func TestFromHTTPWaitsForAnIdleHTTP2Connection(t *testing.T) {
	srv := &http.Server{Addr: "127.0.0.1:0", Handler: http.NotFoundHandler(), Protocols: new(http.Protocols)}
	srv.Protocols.SetHTTP1(true)
	srv.Protocols.SetUnencryptedHTTP2(true)
	hs := FromHTTP(srv)
	h := runUntilReady(t, hs, Period(time.Hour))
	c := dialH2(t, hs.Addr().String(), false, nil)
	defer c.conn.Close()
	c.setUp(t)
	sendSignal(h)
	if !c.readUntil(func() bool { return c.goAway }) {
		t.Fatalf("the connection ended (%v) after frames %v, without a GOAWAY", c.end, c.frames)
	}
	if err := <-h.done; err != nil {
		t.Fatalf("Run = %v, want nil", err)
	}
	// Run has returned, so the server has closed the connection: its end
	// is already here. The deadline only bounds a failure.
	c.conn.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
	c.readUntil(func() bool { return false })
	if c.end != io.EOF {
		t.Errorf("reading the connection once Run has returned: %v after frames %v, want io.EOF: the server had not closed it", c.end, c.frames)
	}
}
