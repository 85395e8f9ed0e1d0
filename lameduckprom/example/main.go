// Command example serves a small HTTP API under lameduck and exports the
// Runner's metrics through lameduckprom on a second port.
//
//	go run ./example -addr :8080 -metrics-addr :9090
//
// The API has two routes: GET / says hello, and POST /upload reads the
// request's body to its end and says how many bytes came. An upload lasts as
// long as its client keeps sending, so a slow upload (curl -T - reading from
// a terminal, say) is a request that stays in flight for as long as you like:
// send SIGTERM meanwhile and watch lameduck_in_flight on /metrics while the
// drain waits for it.
//
// /metrics is served by a plain http.Server that the Runner does not run. A
// Group member would not do: the Group would shut it down as part of the
// drain (only the order is up to you), and Run's final account, readable
// once Run has returned, could then never be scraped; its own scrapes would
// also count as work in flight. So this server is started before Run and
// shut down after it, once one scrape has read the stop's final account or
// -linger has passed, whichever comes first. Keep -period plus -linger
// within the time your platform waits before it kills the process
// (terminationGracePeriodSeconds on Kubernetes).
//
// Exit status: 0 after a clean drain, 1 when the server failed, 2 when the
// period ran out or a second signal forced the stop.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"sync"
	"syscall"
	"time"

	"github.com/b583c413/lameduck"
	"github.com/b583c413/lameduck/lameduckprom"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

func main() {
	addr := flag.String("addr", ":8080", "address of the API")
	metricsAddr := flag.String("metrics-addr", ":9090", "address of /metrics, which stays up through the drain")
	period := flag.Duration("period", 10*time.Second, "the lame-duck period: the most time the API has to drain")
	linger := flag.Duration("linger", 15*time.Second, "after the stop, how long /metrics waits at most for a scrape to read the final account")
	flag.Parse()
	os.Exit(run(*addr, *metricsAddr, *period, *linger))
}

func run(addr, metricsAddr string, period, linger time.Duration) int {
	logger := slog.New(slog.NewTextHandler(os.Stderr, nil))

	api := lameduck.FromHTTP(&http.Server{Addr: addr, Handler: routes(), ReadHeaderTimeout: 10 * time.Second})
	r, err := lameduck.NewRunner(api,
		lameduck.Period(period),
		lameduck.WithSlog(logger),
		lameduck.WithReady(func() { fmt.Printf("api listening on http://%s\n", api.Addr()) }))
	if err != nil {
		logger.Error("bad set-up", "error", err)
		return 1
	}

	reg := prometheus.NewRegistry()
	reg.MustRegister(lameduckprom.NewCollector(r))
	final := &finalScrape{next: promhttp.HandlerFor(reg, promhttp.HandlerOpts{}), runner: r, read: make(chan struct{})}
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", final)
	metrics := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	ln, err := net.Listen("tcp", metricsAddr)
	if err != nil {
		logger.Error("metrics server", "error", err)
		return 1
	}
	served := make(chan error, 1)
	go func() { served <- metrics.Serve(ln) }()
	fmt.Printf("metrics on http://%s/metrics\n", ln.Addr())

	err = r.Run(context.Background())

	// Run no longer handles signals: one now ends the wait at once, rather
	// than killing the process with the default action.
	sig, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	wait := time.NewTimer(linger)
	defer wait.Stop()
	select {
	case <-final.read:
	case <-wait.C:
		logger.Warn("no scrape read the stop's final account", "linger", linger)
	case <-sig.Done():
	case e := <-served:
		logger.Error("metrics server", "error", e)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if e := metrics.Shutdown(ctx); e != nil {
		logger.Error("metrics server shutdown", "error", e)
	}
	return lameduck.ExitCode(err)
}

// finalScrape passes scrapes on to next, and closes read once it has
// answered a scrape that began when the Runner had already stopped, and so
// read the stop's final account.
type finalScrape struct {
	next   http.Handler
	runner *lameduck.Runner
	once   sync.Once
	read   chan struct{}
}

func (f *finalScrape) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	// The Runner's state turns stopped or failed only once the Report is
	// complete, a moment before Run returns: a scrape that sees it reads the
	// final account, even if Run has not returned yet.
	s := f.runner.State()
	over := s == lameduck.StateStopped || s == lameduck.StateFailed
	f.next.ServeHTTP(w, r)
	if over {
		f.once.Do(func() { close(f.read) })
	}
}

func routes() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintln(w, "hello")
	})
	// /upload ends when its client has sent the whole body, not before: the
	// client decides how long the request stays in flight.
	mux.HandleFunc("POST /upload", func(w http.ResponseWriter, r *http.Request) {
		n, err := io.Copy(io.Discard, r.Body)
		if err != nil {
			return // the client left, or Close cut the connection
		}
		fmt.Fprintf(w, "got %d bytes\n", n)
	})
	return mux
}
