// Command httpserver is an HTTP service that stops without dropping a
// request. On SIGTERM or Ctrl-C it fails its readiness probe, keeps serving
// for -drain-delay while load balancers take it out of rotation, then drains
// the requests in flight for up to -period, and exits. The lame-duck period
// it gives lameduck is -drain-delay plus -period.
//
// Exit status: 0 after a clean drain, 1 when the server failed, 2 when the
// period ran out or a second signal forced the stop.
package main

import (
	"context"
	"flag"
	"fmt"
	"net/http"
	"os"
	"time"

	"github.com/b583c413/lameduck"
	"github.com/golang/glog"
)

func main() {
	addr := flag.String("addr", ":8080", "address to listen on")
	period := flag.Duration("period", 10*time.Second, "the most time to drain in-flight requests, after -drain-delay (lameduck's Period is drain-delay + period)")
	drainDelay := flag.Duration("drain-delay", 0, "time to keep serving, with /readyz failing, before the drain starts (~5s on Kubernetes); spent inside lameduck's Period")
	seenSole := flag.Bool("seen-sole", false, "with -seen-margin: the checking balancer is the only way requests come, so once it has seen the 503 the drain closes idle keep-alive connections at once")
	seenMargin := flag.Duration("seen-margin", 0, "if set, the drain delay ends this long after /readyz has first answered 503 (to a load balancer's health check); -drain-delay is then the longest it may last")
	// Phases go to stderr unless the user asks glog for files.
	_ = flag.Set("logtostderr", "true")
	flag.Parse()
	os.Exit(run(*addr, *period, *drainDelay, *seenMargin, *seenSole))
}

func run(addr string, period, drainDelay, seenMargin time.Duration, seenSole bool) int {
	var ready lameduck.Readiness
	srv := &http.Server{
		Addr:              addr,
		Handler:           routes(&ready),
		ReadHeaderTimeout: 10 * time.Second,
	}
	h := lameduck.FromHTTP(srv)

	announce := func(context.Context) error {
		glog.Infof("/readyz now answers 503; serving for %v more while load balancers notice", drainDelay)
		return nil
	}
	wait := lameduck.Delay(drainDelay)
	if seenMargin > 0 {
		announce = func(context.Context) error {
			glog.Infof("/readyz now answers 503; serving until a health check has seen it, then %v more (%v at most)", seenMargin, drainDelay)
			return nil
		}
		wait = ready.FailUntilSeen(lameduck.Seen{Margin: seenMargin, Ceiling: drainDelay, Sole: seenSole})
	}
	err := lameduck.Run(context.Background(), h,
		// The drain delay is spent inside the lame-duck budget, so the
		// budget is the delay plus the time allowed for the drain itself.
		lameduck.Period(drainDelay+period),
		lameduck.WithPreShutdown(lameduck.Chain(ready.Fail, announce, wait)),
		// The port is bound and SIGTERM is handled: only now is it safe to
		// say so.
		lameduck.WithReady(func() { fmt.Printf("listening on %s\n", h.Addr()) }),
	)
	if err != nil {
		glog.Errorf("%v", err)
	}
	glog.Flush()
	return lameduck.ExitCode(err)
}

func routes(ready *lameduck.Readiness) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, "hello")
	})
	// /slow?d=300ms stands in for a request that takes a while.
	mux.HandleFunc("GET /slow", func(w http.ResponseWriter, r *http.Request) {
		d, err := time.ParseDuration(r.FormValue("d"))
		if err != nil || d < 0 {
			http.Error(w, "d must be a duration such as 300ms", http.StatusBadRequest)
			return
		}
		glog.V(1).Infof("slow request: sleeping %v", d)
		t := time.NewTimer(d)
		defer t.Stop()
		select {
		case <-t.C:
			fmt.Fprintf(w, "slept %v", d)
		case <-r.Context().Done(): // the client left, or the server was closed
		}
	})
	// /events?every=1s is a stream of server-sent events, a tick every
	// `every`, that ends with a "bye" event when the drain begins.
	mux.HandleFunc("GET /events", events)
	mux.Handle("GET /readyz", ready)
	return mux
}

// events streams server-sent events until the client leaves or the drain
// begins; then it sends a last event and returns, which ends the response
// cleanly (the chunked body's end), so the client knows to reconnect, to
// another instance, rather than seeing the stream cut at the end of the
// period.
func events(w http.ResponseWriter, r *http.Request) {
	every := time.Second
	if s := r.FormValue("every"); s != "" {
		d, err := time.ParseDuration(s)
		if err != nil || d <= 0 {
			http.Error(w, "every must be a positive duration such as 100ms", http.StatusBadRequest)
			return
		}
		every = d
	}
	w.Header().Set("Content-Type", "text/event-stream")
	tick := time.NewTicker(every)
	defer tick.Stop()
	rc := http.NewResponseController(w)
	for n := 1; ; n++ {
		select {
		case <-tick.C:
			fmt.Fprintf(w, "id: %d\ndata: tick %d\n\n", n, n)
			if err := rc.Flush(); err != nil {
				return
			}
		case <-lameduck.Draining(r.Context()):
			fmt.Fprint(w, "event: bye\ndata: server going away\n\n")
			return
		case <-r.Context().Done():
			return
		}
	}
}
