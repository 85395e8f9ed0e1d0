package lameduckhttp3

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/b583c413/lameduck"
	"github.com/quic-go/quic-go/http3"
)

// BenchmarkDrainLag: one HTTP/3 request is in flight when lame-duck mode
// begins, and its handler returns d later; lag is the time from the
// handler's return to the return of Run (or of the hand-written loop
// around quic-go's own Shutdown). The client is quic-go's: it reads the
// response, and closes its connection itself once it has the GOAWAY and
// no request open. As the library's BenchmarkDrainLagProtocols, for
// HTTP/1 and HTTP/2.
func BenchmarkDrainLag(b *testing.B) {
	const d = 50 * time.Millisecond
	for _, impl := range []string{"lameduck", "quic-go"} {
		b.Run("impl="+impl, func(b *testing.B) {
			var lags samples
			for range b.N {
				lags = append(lags, lagOnce(b, impl, d, false))
			}
			lags.report(b)
		})
	}
}

// BenchmarkDrainLagKeeper: as BenchmarkDrainLag, with a client that reads
// the response and keeps its connection whatever the server says (the raw
// client of the tests), as a client that pools connections and ignores
// GOAWAY does. The drain closes the connection at its linger (1 s, since
// it carried a response) and reports a cut; quic-go's Shutdown waits for
// its deadline, here 3 s.
func BenchmarkDrainLagKeeper(b *testing.B) {
	const d = 50 * time.Millisecond
	for _, impl := range []string{"lameduck", "quic-go"} {
		b.Run("impl="+impl, func(b *testing.B) {
			var lags samples
			for range b.N {
				lags = append(lags, lagOnce(b, impl, d, true))
			}
			lags.report(b)
		})
	}
}

func lagOnce(b *testing.B, impl string, d time.Duration, keeper bool) time.Duration {
	entered := make(chan struct{})
	var returned atomic.Int64
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		close(entered)
		time.Sleep(d)
		io.WriteString(w, "ok")
		returned.Store(time.Now().UnixNano())
	})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	addr, done := serveImpl(b, impl, ctx, h)
	replied := make(chan error, 1)
	if keeper {
		c := dialRaw(b, addr)
		go func() {
			str, err := c.get("/")
			if err == nil {
				var body []byte
				body, err = readBody(str)
				if err == nil && string(body) != "ok" {
					err = fmt.Errorf("body %q", body)
				}
			}
			replied <- err
		}()
	} else {
		cl := client(b)
		go func() {
			resp, err := cl.Get("https://" + addr + "/")
			if err == nil {
				var body []byte
				body, err = io.ReadAll(resp.Body)
				resp.Body.Close()
				if err == nil && string(body) != "ok" {
					err = fmt.Errorf("body %q", body)
				}
			}
			replied <- err
		}()
	}
	<-entered
	cancel() // lame-duck mode begins
	err := <-done
	lag := time.Duration(time.Now().UnixNano() - returned.Load())
	if err != nil && !keeper {
		b.Fatalf("%s returned %v", impl, err)
	}
	if err := <-replied; err != nil {
		b.Fatalf("the request in flight failed: %v", err)
	}
	return lag
}

// serveImpl serves h over HTTP/3 on a loopback port, under a Runner or
// under the loop a user writes around quic-go's Shutdown, until ctx is
// cancelled; it returns the address and a channel for what the run
// returns.
func serveImpl(b *testing.B, impl string, ctx context.Context, h http.Handler) (string, <-chan error) {
	b.Helper()
	cert, _ := certs()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	srv := &http3.Server{Handler: h, TLSConfig: &tls.Config{Certificates: []tls.Certificate{cert}}}
	done := make(chan error, 1)
	if impl == "lameduck" {
		r, err := lameduck.NewRunner(FromHTTP3(srv, pc), lameduck.Signals(), lameduck.WithoutLogger(), lameduck.Period(time.Minute))
		if err != nil {
			b.Fatal(err)
		}
		go func() { done <- r.Run(ctx) }()
		<-r.Ready()
		return pc.LocalAddr().String(), done
	}
	go func() { done <- handWritten(ctx, srv, pc, 3*time.Second) }()
	return pc.LocalAddr().String(), done
}

// handWritten is the loop a user writes around quic-go's own Shutdown:
// Serve in a goroutine, then Shutdown with a timeout.
func handWritten(ctx context.Context, srv *http3.Server, pc net.PacketConn, period time.Duration) error {
	defer pc.Close()
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(pc) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), period)
	defer cancel()
	err := srv.Shutdown(sctx)
	if serr := <-errc; !errors.Is(serr, http.ErrServerClosed) {
		return serr
	}
	return err
}

// samples collects one duration per iteration and reports the 50th and
// 99th percentiles, in milliseconds.
type samples []time.Duration

func (s samples) report(b *testing.B) {
	if len(s) == 0 {
		return
	}
	sorted := slices.Clone(s)
	slices.Sort(sorted)
	at := func(q float64) float64 {
		i := int(q*float64(len(sorted))+0.5) - 1
		return float64(sorted[max(0, min(i, len(sorted)-1))]) / float64(time.Millisecond)
	}
	b.ReportMetric(at(0.50), "p50-ms")
	b.ReportMetric(at(0.99), "p99-ms")
}
