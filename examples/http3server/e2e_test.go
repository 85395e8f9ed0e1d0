package main

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/b583c413/lameduck/internal/testcert"
	"github.com/quic-go/quic-go/http3"
)

// The tests in this file run the example as a child process and stop it
// with a real SIGTERM, with quic-go's HTTP/3 client and Go's HTTP/1.1 and
// HTTP/2 clients talking to it.

// SIGTERM with requests in flight over HTTP/1.1, HTTP/2 and HTTP/3 on the
// one port number: each gets its whole response, the process exits 0, and
// its stop report says both servers drained with nothing cut.
func TestSIGTERMDrainsAllThreeProtocols(t *testing.T) {
	const (
		perProto = 3
		size     = 256 << 10
		sleep    = 500 * time.Millisecond
	)
	certFile, keyFile, pool := writeCert(t)
	clients := map[string]*http.Client{"HTTP/1.1": h1(pool), "HTTP/2.0": h2(pool), "HTTP/3.0": h3(t, pool)}
	for rep := range 2 {
		p, addr := start(t, "-cert", certFile, "-key", keyFile, "-period", "10s")
		base := "https://" + addr

		// Each client says hello first; the TCP answers name the UDP port.
		_, port, _ := net.SplitHostPort(addr)
		for proto, c := range clients {
			resp, err := c.Get(base + "/")
			if err != nil {
				t.Fatalf("rep %d: %s hello: %v", rep, proto, err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if want := "hello over " + proto + "\n"; string(body) != want {
				t.Errorf("rep %d: got %q, want %q", rep, body, want)
			}
			if alt := resp.Header.Get("Alt-Svc"); proto != "HTTP/3.0" && !strings.HasPrefix(alt, `h3=":`+port+`"`) {
				t.Errorf("rep %d: %s answer's Alt-Svc is %q, want h3 on port %s", rep, proto, alt, port)
			}
		}

		type result struct {
			proto string
			err   error
		}
		results := make(chan result, 3*perProto)
		for proto, c := range clients {
			for range perProto {
				go func() {
					results <- result{proto, fetchWhole(c, fmt.Sprintf("%s/slow?d=%v&n=%d", base, sleep, size), proto, size)}
				}()
			}
		}
		p.WaitFor(true, 3*perProto, "slow request over")
		p.Term()
		for range 3 * perProto {
			if r := <-results; r.err != nil {
				t.Errorf("rep %d: %s request in flight at SIGTERM: %v", rep, r.proto, r.err)
			}
		}
		if code, _ := p.Wait(); code != 0 {
			t.Errorf("rep %d: exit code %d, want 0", rep, code)
		}
		report := p.WaitFor(true, 1, "lameduck: stop report:")[0]
		t.Logf("rep %d: %s", rep, report[strings.Index(report, "lameduck:"):])
		for _, want := range []string{
			"stop report: clean",
			fmt.Sprintf(`"tcp": %d requests in flight at lame-duck, %[1]d finished, 0 cut`, 2*perProto),
			fmt.Sprintf(`"quic": %d requests in flight at lame-duck, %[1]d finished, 0 cut`, perProto),
		} {
			if !strings.Contains(report, want) {
				t.Errorf("rep %d: the stop report does not say %q", rep, want)
			}
		}
	}
}

// A request longer than the period is cut off when the period ends, over
// HTTP/2 and HTTP/3 alike: both clients see an error, and the process
// exits 2 with a stop report that counts both requests cut.
func TestPeriodCutsRequestsOnBothServers(t *testing.T) {
	certFile, keyFile, pool := writeCert(t)
	p, addr := start(t, "-cert", certFile, "-key", keyFile, "-period", "300ms")
	errs := make(chan error, 2)
	for _, c := range []*http.Client{h2(pool), h3(t, pool)} {
		go func() {
			resp, err := c.Get("https://" + addr + "/slow?d=30s")
			if err == nil {
				_, err = io.ReadAll(resp.Body)
				resp.Body.Close()
			}
			errs <- err
		}()
	}
	p.WaitFor(true, 2, "slow request over")
	p.Term()
	if code, _ := p.Wait(); code != 2 {
		t.Errorf("exit code %d, want 2", code)
	}
	for range 2 {
		if err := <-errs; err == nil {
			t.Error("a request cut off by the period ended without an error")
		}
	}
	report := p.WaitFor(true, 1, "lameduck: stop report:")[0]
	for _, want := range []string{"stop report: expired", `"tcp": 1 request in flight at lame-duck, 0 finished, 1 cut`, `"quic": 1 request in flight at lame-duck, 0 finished, 1 cut`} {
		if !strings.Contains(report, want) {
			t.Errorf("the stop report does not say %q: %s", want, report)
		}
	}
}

// fetchWhole gets url and checks that the answer came over proto and is
// the whole pattern of size bytes.
func fetchWhole(c *http.Client, url, proto string, size int) error {
	resp, err := c.Get(url)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	switch {
	case err != nil:
		return fmt.Errorf("%d bytes, then %v", len(body), err)
	case resp.Proto != proto:
		return fmt.Errorf("answered over %s", resp.Proto)
	case resp.StatusCode != http.StatusOK || !bytes.Equal(body, pattern(size)):
		return fmt.Errorf("status %d, %d bytes, not the %d sent", resp.StatusCode, len(body), size)
	}
	return nil
}

// h1 is Go's client over TLS, offering only HTTP/1.1.
func h1(pool *x509.CertPool) *http.Client {
	tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}
	tr.Protocols = new(http.Protocols)
	tr.Protocols.SetHTTP1(true)
	return &http.Client{Transport: tr, Timeout: bound}
}

// h2 is Go's client over TLS, with HTTP/2.
func h2(pool *x509.CertPool) *http.Client {
	tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}
	tr.Protocols = new(http.Protocols)
	tr.Protocols.SetHTTP2(true)
	return &http.Client{Transport: tr, Timeout: bound}
}

// h3 is quic-go's client.
func h3(t *testing.T, pool *x509.CertPool) *http.Client {
	tr := &http3.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}
	t.Cleanup(func() { tr.Close() })
	return &http.Client{Transport: tr, Timeout: bound}
}

// writeCert writes the tests' self-signed certificate for 127.0.0.1 and
// its key to PEM files, for -cert and -key, and returns a pool that trusts
// it.
func writeCert(t *testing.T) (certFile, keyFile string, pool *x509.CertPool) {
	c, err := testcert.Get()
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile, err = c.WritePEM(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	return certFile, keyFile, c.Pool
}
