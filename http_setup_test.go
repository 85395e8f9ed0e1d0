package lameduck

import (
	"context"
	"crypto/tls"
	"errors"
	"net"
	"net/http"
	"testing"
	"time"
)

// A TLS config that net/http refuses to serve HTTP/2 with: a TLS 1.2 cipher
// list without either AES-128-GCM suite that HTTP/2 requires. A server with
// it never serves, so Run returns net/http's error (rule 8), Ready never
// closes (rule 1: nothing is served), and nothing stays bound: the port that
// FromHTTP bound is free again, and a listener given to FromHTTPListener is
// closed.
func TestFromHTTPTLSSetupFailure(t *testing.T) {
	cert, _ := selfSigned(t)
	badTLS := func() *tls.Config {
		return &tls.Config{
			Certificates: []tls.Certificate{cert},
			CipherSuites: []uint16{tls.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384},
		}
	}
	// What net/http itself says of the config: Run must pass it on.
	ref, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ref.Close()
	wantErr := (&http.Server{TLSConfig: badTLS()}).ServeTLS(ref, "", "")
	if wantErr == nil || errors.Is(wantErr, http.ErrServerClosed) {
		t.Fatalf("net/http's ServeTLS with the config = %v, want a set-up error", wantErr)
	}

	for _, tc := range []struct {
		name  string
		given bool // FromHTTPListener rather than FromHTTP
	}{
		{"FromHTTP", false},
		{"FromHTTPListener", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var hs *HTTPServer
			var ln net.Listener
			var addr string
			if tc.given {
				if ln, err = net.Listen("tcp", "127.0.0.1:0"); err != nil {
					t.Fatal(err)
				}
				defer ln.Close()
				hs = FromHTTPListener(&http.Server{TLSConfig: badTLS()}, ln)
			} else {
				addr = freeAddr(t)
				hs = FromHTTP(&http.Server{Addr: addr, TLSConfig: badTLS()})
			}
			r, err := NewRunner(hs, Signals(), WithoutLogger())
			if err != nil {
				t.Fatal(err)
			}
			err = r.Run(context.Background())
			if err == nil || err.Error() != wantErr.Error() {
				t.Errorf("Run = %v, want net/http's %q", err, wantErr)
			}
			for name, ready := range map[string]<-chan struct{}{"HTTPServer.Ready": hs.Ready(), "Runner.Ready": r.Ready()} {
				select {
				case <-ready:
					t.Errorf("%s closed for a server that never served, want it open", name)
				default:
				}
			}
			if tc.given {
				// A deadline in the past turns the Accept of a listener
				// left open into a timeout instead of a wait.
				ln.(*net.TCPListener).SetDeadline(time.Now())
				if c, err := ln.Accept(); !errors.Is(err, net.ErrClosed) {
					if c != nil {
						c.Close()
					}
					t.Errorf("Accept on the given listener after Run = %v, want net.ErrClosed", err)
				}
				return
			}
			again, err := net.Listen("tcp", addr)
			if err != nil {
				t.Errorf("binding %s again after Run returned: %v, want the port free", addr, err)
				return
			}
			again.Close()
		})
	}
}

// freeAddr returns a loopback address whose port was free a moment ago.
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// Setting HTTP/2 up on a server of its own must leave net/http's choice of
// protocol as it was: HTTP/2 over TLS by default, HTTP/1 where srv turns
// HTTP/2 off (srv.Protocols, or a TLSNextProto without "h2", which the
// HTTPServer leaves alone).
func TestFromHTTPProtocolChoice(t *testing.T) {
	cert, pool := selfSigned(t)
	for _, tc := range []struct {
		name  string
		setUp func(*http.Server)
		want  string
	}{
		{"default", func(*http.Server) {}, "HTTP/2.0"},
		{"Protocols without HTTP/2", func(s *http.Server) {
			s.Protocols = new(http.Protocols)
			s.Protocols.SetHTTP1(true)
		}, "HTTP/1.1"},
		{"GetConfigForClient that starts from srv.TLSConfig", func(s *http.Server) {
			s.TLSConfig.GetConfigForClient = func(*tls.ClientHelloInfo) (*tls.Config, error) {
				c := s.TLSConfig.Clone() // as net/http left it: with "h2" in NextProtos
				c.GetConfigForClient = nil
				return c, nil
			}
		}, "HTTP/2.0"},
		{"TLSNextProto without h2", func(s *http.Server) {
			s.TLSNextProto = map[string]func(*http.Server, *tls.Conn, http.Handler){}
		}, "HTTP/1.1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := &http.Server{
				Addr:      "127.0.0.1:0",
				Handler:   http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write([]byte(r.Proto)) }),
				TLSConfig: &tls.Config{Certificates: []tls.Certificate{cert}},
			}
			tc.setUp(srv)
			hs := FromHTTP(srv)
			h := runUntilReady(t, hs, Period(time.Minute))
			client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}, ForceAttemptHTTP2: true}}
			defer client.CloseIdleConnections()
			if code, body, err := get(client, "https://"+hs.Addr().String()); err != nil || code != 200 || body != tc.want {
				t.Errorf("GET = %d %q %v, want 200 %q", code, body, err, tc.want)
			}
			sendSignal(h)
			if err := <-h.done; err != nil {
				t.Errorf("Run = %v, want nil", err)
			}
		})
	}
}
