package lameduck

import (
	"context"
	"errors"
	"net"
	"net/http"
	"os"
	"os/signal"
	"slices"
	"syscall"
	"testing"
	"time"
)

// samples collects one duration per benchmark iteration and reports their
// percentiles, since a mean hides exactly the tail a deploy cares about.
type samples []time.Duration

func (s samples) report(b *testing.B, unit string, scale time.Duration) {
	if len(s) == 0 {
		return
	}
	sorted := slices.Clone(s)
	slices.Sort(sorted)
	at := func(q float64) float64 {
		i := int(q*float64(len(sorted))+0.5) - 1
		return float64(sorted[max(0, min(i, len(sorted)-1))]) / float64(scale)
	}
	b.ReportMetric(at(0.50), "p50-"+unit)
	b.ReportMetric(at(0.99), "p99-"+unit)
}

// handWritten is the shutdown loop a user writes without this package:
// signal.NotifyContext, Serve in a goroutine, then http.Server.Shutdown with
// a timeout and Close if it runs out. It is the alternative each benchmark
// compares with.
func handWritten(parent context.Context, srv *http.Server, ln net.Listener, period time.Duration) error {
	ctx, stop := signal.NotifyContext(parent, os.Interrupt, syscall.SIGTERM)
	defer stop()
	errc := make(chan error, 1)
	go func() {
		if srv.TLSConfig != nil {
			errc <- srv.ServeTLS(ln, "", "")
		} else {
			errc <- srv.Serve(ln)
		}
	}()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), period)
	defer cancel()
	err := srv.Shutdown(sctx)
	if err != nil {
		srv.Close()
	}
	if serr := <-errc; !errors.Is(serr, http.ErrServerClosed) {
		return serr
	}
	return err
}

// serveImpl starts srv under one of the two implementations and returns
// the address to dial and a channel for what the run returns.
func serveImpl(b *testing.B, impl string, ctx context.Context, srv *http.Server) (string, <-chan error) {
	b.Helper()
	done := make(chan error, 1)
	switch impl {
	case "lameduck":
		srv.Addr = "127.0.0.1:0"
		h := FromHTTP(srv)
		go func() { done <- Run(ctx, h, WithoutLogger(), Period(time.Minute)) }()
		select {
		case <-h.Ready():
		case err := <-done:
			b.Fatal(err)
		}
		return h.Addr().String(), done
	default:
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			b.Fatal(err)
		}
		go func() { done <- handWritten(ctx, srv, ln, time.Minute) }()
		return ln.Addr().String(), done
	}
}

var impls = []string{"lameduck", "handwritten"}
