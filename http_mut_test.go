package lameduck

import (
	"crypto/tls"
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
