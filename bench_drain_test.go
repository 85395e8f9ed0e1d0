package lameduck

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"testing"
	"time"
)

// BenchmarkDrainLag: one request is in flight when lame-duck mode begins and
// its handler returns d later; lag is the time from the handler's return to
// the return of Run (or of the hand-written loop).
func BenchmarkDrainLag(b *testing.B) {
	for _, d := range []time.Duration{50 * time.Millisecond, 300 * time.Millisecond, time.Second} {
		for _, impl := range impls {
			b.Run(fmt.Sprintf("d=%v/impl=%s", d, impl), func(b *testing.B) {
				var lags samples
				for range b.N {
					lags = append(lags, protoLagOnce(b, "http1", impl, d))
				}
				lags.report(b, "ms", time.Millisecond)
			})
		}
	}
}

// BenchmarkDrainKeepAlive: 64 idle keep-alive connections and 8 active
// requests when lame-duck mode begins; the active handlers return 20ms
// later. Reported: the time from the trigger to the run's return.
func BenchmarkDrainKeepAlive(b *testing.B) {
	const idle, active, hold = 64, 8, 20 * time.Millisecond
	for _, impl := range impls {
		b.Run("impl="+impl, func(b *testing.B) {
			var drains samples
			for range b.N {
				drains = append(drains, keepAliveOnce(b, impl, idle, active, hold))
			}
			drains.report(b, "ms", time.Millisecond)
		})
	}
}

func keepAliveOnce(b *testing.B, impl string, idle, active int, hold time.Duration) time.Duration {
	entered := make(chan struct{}, active)
	release := make(chan struct{})
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/hold" {
			entered <- struct{}{}
			<-release
		}
		io.WriteString(w, "ok")
	})}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	addr, done := serveImpl(b, impl, ctx, srv)

	// Raw connections, so that each idle one is surely a distinct
	// keep-alive connection that has finished a request.
	var conns []net.Conn
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	request := func(path string) (net.Conn, *bufio.Reader) {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			b.Fatal(err)
		}
		conns = append(conns, c)
		fmt.Fprintf(c, "GET %s HTTP/1.1\r\nHost: bench\r\n\r\n", path)
		return c, bufio.NewReader(c)
	}
	for range idle {
		_, r := request("/")
		resp, err := http.ReadResponse(r, nil)
		if err != nil {
			b.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
	replies := make(chan error, active)
	for range active {
		_, r := request("/hold")
		go func() {
			resp, err := http.ReadResponse(r, nil)
			if err == nil {
				_, err = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
			}
			replies <- err
		}()
	}
	for range active {
		<-entered
	}

	begin := time.Now()
	cancel()
	timer := time.AfterFunc(hold, func() { close(release) })
	defer timer.Stop()
	if err := <-done; err != nil {
		b.Fatalf("%s returned %v", impl, err)
	}
	took := time.Since(begin)
	for range active {
		if err := <-replies; err != nil {
			b.Fatalf("an active request failed: %v", err)
		}
	}
	return took
}
