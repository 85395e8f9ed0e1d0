package lameduck

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync/atomic"
	"testing"
	"time"
)

// BenchmarkDrainLag: one HTTP/1.1 request is in flight when lame-duck mode
// begins and its handler returns d later; lag is the time from the
// handler's return to the return of Run (or of the hand-written loop). The
// client reads the response headers and keeps its connection, as a proxy
// that pools connections does, until the run has returned (issue #21): the
// drain's close of the connection is not cut short by the client hanging
// up, as Go's Transport does when it sees the server's FIN
// (BenchmarkDrainLagProtocols measures that client).
func BenchmarkDrainLag(b *testing.B) {
	for _, d := range []time.Duration{50 * time.Millisecond, 300 * time.Millisecond, time.Second} {
		for _, impl := range impls {
			b.Run(fmt.Sprintf("d=%v/impl=%s", d, impl), func(b *testing.B) {
				var lags samples
				for range b.N {
					lags = append(lags, keepLagOnce(b, impl, d))
				}
				lags.report(b, "ms", time.Millisecond)
			})
		}
	}
}

// keepLagOnce is one sample of BenchmarkDrainLag: a raw HTTP/1.1 client
// sends a request, reads the response headers, and keeps its connection
// open, neither reading on nor closing, until the run has returned.
func keepLagOnce(b *testing.B, impl string, d time.Duration) time.Duration {
	entered := make(chan struct{})
	var handlerReturned atomic.Int64
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		close(entered)
		time.Sleep(d)
		io.WriteString(w, "ok")
		handlerReturned.Store(time.Now().UnixNano())
	})}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	addr, done := serveImpl(b, impl, ctx, srv)
	c, err := net.Dial("tcp", addr)
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	if _, err := io.WriteString(c, "GET / HTTP/1.1\r\nHost: bench\r\n\r\n"); err != nil {
		b.Fatal(err)
	}
	replied := make(chan error, 1)
	go func() {
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err == nil && resp.StatusCode != http.StatusOK {
			err = fmt.Errorf("status %d", resp.StatusCode)
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
