package lameduck

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net/http"
	"sync/atomic"
	"testing"
	"time"
)

// protoSetup makes a server and a client for one protocol: HTTP/1.1,
// HTTP/2 over TLS, or HTTP/2 in clear text (h2c, prior knowledge).
func protoSetup(tb testing.TB, proto string, h http.Handler) (*http.Server, *http.Client, string) {
	srv := &http.Server{Handler: h}
	tr := &http.Transport{}
	scheme := "http"
	switch proto {
	case "h2-tls":
		cert, pool := selfSigned(tb)
		srv.TLSConfig = &tls.Config{Certificates: []tls.Certificate{cert}}
		tr.TLSClientConfig = &tls.Config{RootCAs: pool}
		tr.ForceAttemptHTTP2 = true
		scheme = "https"
	case "h2c":
		srv.Protocols = new(http.Protocols)
		srv.Protocols.SetUnencryptedHTTP2(true)
		tr.Protocols = new(http.Protocols)
		tr.Protocols.SetUnencryptedHTTP2(true)
	}
	return srv, &http.Client{Transport: tr}, scheme
}

var protos = []string{"http1", "h2-tls", "h2c"}

// BenchmarkDrainLagProtocols: as BenchmarkDrainLag (d = 50ms), for each
// protocol. For HTTP/2 the drain ends when the client, having read the
// response and the GOAWAY, closes its connection; net/http's Shutdown
// notices that at its next poll.
func BenchmarkDrainLagProtocols(b *testing.B) {
	const d = 50 * time.Millisecond
	for _, proto := range protos {
		for _, impl := range impls {
			b.Run(fmt.Sprintf("proto=%s/impl=%s", proto, impl), func(b *testing.B) {
				var lags samples
				for range b.N {
					lags = append(lags, protoLagOnce(b, proto, impl, d))
				}
				lags.report(b, "ms", time.Millisecond)
			})
		}
	}
}

func protoLagOnce(b *testing.B, proto, impl string, d time.Duration) time.Duration {
	entered := make(chan struct{})
	var handlerReturned atomic.Int64
	srv, client, scheme := protoSetup(b, proto, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		close(entered)
		time.Sleep(d)
		io.WriteString(w, "ok")
		handlerReturned.Store(time.Now().UnixNano())
	}))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	addr, done := serveImpl(b, impl, ctx, srv)
	defer client.CloseIdleConnections()
	replied := make(chan error, 1)
	go func() {
		resp, err := client.Get(scheme + "://" + addr)
		if err == nil {
			_, err = io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 200 || (proto != "http1") != (resp.ProtoMajor == 2) {
				err = fmt.Errorf("status %d over %s", resp.StatusCode, resp.Proto)
			}
		}
		replied <- err
	}()
	<-entered
	cancel() // lame-duck mode begins
	if err := <-done; err != nil {
		b.Fatalf("%s returned %v", impl, err)
	}
	lag := time.Duration(time.Now().UnixNano() - handlerReturned.Load())
	if err := <-replied; err != nil {
		b.Fatalf("the in-flight request failed: %v", err)
	}
	return lag
}

// BenchmarkRequestCost: keep-alive HTTP/1.1 requests from parallel clients,
// served by bare net/http or through FromHTTP, to measure what following
// connections and handler calls adds per request. Run it with -cpu 1,2,4,8.
func BenchmarkRequestCost(b *testing.B) {
	for _, impl := range []string{"net/http", "lameduck"} {
		b.Run("impl="+impl, func(b *testing.B) {
			srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				io.WriteString(w, "ok")
			})}
			ctx, cancel := context.WithCancel(context.Background())
			addr, done := serveImpl(b, map[string]string{"net/http": "handwritten", "lameduck": "lameduck"}[impl], ctx, srv)
			tr := &http.Transport{MaxIdleConnsPerHost: 64}
			client := &http.Client{Transport: tr}
			url := "http://" + addr + "/"
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					resp, err := client.Get(url)
					if err != nil {
						b.Error(err)
						return
					}
					io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
				}
			})
			b.StopTimer()
			tr.CloseIdleConnections()
			cancel()
			if err := <-done; err != nil {
				b.Fatal(err)
			}
		})
	}
}
