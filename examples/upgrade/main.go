// Command upgrade is an HTTP service that is restarted in place, with no
// load balancer in front, without refusing or failing a request. It gets
// its listening socket one of two ways:
//
//   - from systemd, by socket activation (LISTEN_FDS): systemd holds the
//     socket, so connections wait in its queue while the service restarts;
//   - through github.com/cloudflare/tableflip otherwise: on SIGHUP the
//     process starts a new copy of its binary, which inherits the socket;
//     once the new process serves, the old one drains and exits.
//
// Either way the old process stops through lameduck: it stops accepting,
// tells its keep-alive clients to reconnect (see handoff.go), drains the
// requests in flight within -period, and exits. SIGTERM stops it the same
// way; a SIGTERM that comes while an upgrade is under way waits for it
// (upgrade.go), and if the new process serves, this one hands over to it
// rather than stopping the service. It tells systemd READY=1 once it
// serves and STOPPING=1 when the service stops, when NOTIFY_SOCKET is set.
//
// Exit status: 0 after a clean drain, 1 when the server failed, 2 when the
// period ran out or a second signal forced the stop.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/b583c413/lameduck"
	"github.com/golang/glog"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:8080", "address to listen on, unless systemd passes a socket")
	period := flag.Duration("period", 10*time.Second, "lame-duck period: the most time for the hand-off and the drain together")
	handoffMax := flag.Duration("handoff", time.Second, "the most time, within the period, to let keep-alive clients move before the drain closes idle connections; 0: no hand-off, the drain begins at once")
	pidFile := flag.String("pid-file", "", "file to write the pid of the serving process to (tableflip writes it after each upgrade)")
	// Phases go to stderr unless the user asks glog for files.
	_ = flag.Set("logtostderr", "true")
	flag.Parse()
	os.Exit(run(*addr, *pidFile, *period, *handoffMax))
}

// errHandedOver is the cause of the lame-duck mode that follows an upgrade.
var errHandedOver = errors.New("a new process has taken over the socket")

func run(addr, pidFile string, period, handoffMax time.Duration) int {
	// SIGHUP's default action ends the process; take it over before anything
	// could announce that this process serves.
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)

	src, err := open(addr, pidFile)
	if err != nil {
		glog.Errorf("cannot listen: %v", err)
		glog.Flush()
		return 1
	}
	defer src.stop()

	ho := newHandoff(src.ln)
	srv := &http.Server{
		Handler:           ho.wrap(routes()),
		ConnState:         ho.connState,
		ReadHeaderTimeout: 10 * time.Second,
	}
	h := lameduck.FromHTTPListener(srv, ho.ln)
	// Run's context is how a successor ends this process: once an upgrade
	// has succeeded, up cancels it.
	ctx, cancel := context.WithCancelCause(context.Background())
	defer cancel(nil)
	up := &upgrades{src: src, budget: period + 2*time.Second, handOver: func() { cancel(errHandedOver) }}
	// Upgrades begin once this process serves (ready below, which Run
	// calls on this goroutine) and end before it exits.
	upCtx, stopUpgrades := context.WithCancel(context.Background())
	defer stopUpgrades()
	var upDone chan struct{}
	ready := func() {
		// Only now may the parent, if any, stop serving.
		if err := src.ready(); err != nil {
			glog.Errorf("telling the parent process: %v", err)
		}
		if err := notify(readyMessage()); err != nil {
			glog.Warningf("sd_notify: %v", err)
		}
		fmt.Printf("listening on %s (pid %d, socket from %s)\n", h.Addr(), os.Getpid(), src.how)
		upDone = make(chan struct{})
		go func() {
			defer close(upDone)
			up.loop(upCtx, hup)
		}()
	}
	// settle comes first: until it knows whether a new process will serve
	// the socket, this process must go on accepting from it.
	opts := []lameduck.Option{
		lameduck.Period(period),
		lameduck.WithPreShutdown(lameduck.Named("settle upgrade", up.settle)),
		lameduck.WithReady(ready),
	}
	if handoffMax > 0 {
		opts = append(opts, lameduck.WithPreShutdown(ho.step(handoffMax)))
	}
	err = lameduck.Run(ctx, h, opts...)
	if upDone != nil {
		// An upgrade can still be under way here only if Run ended without
		// settle (Serve failed) or settle gave up on it; either way it is
		// aborted before this process exits.
		stopUpgrades()
		<-upDone
	}
	return exit(err)
}

// exit logs how the stop went and returns the exit status for it.
func exit(err error) int {
	if err != nil {
		glog.Errorf("%v", err)
	}
	glog.Flush()
	return lameduck.ExitCode(err)
}

func routes() http.Handler {
	mux := http.NewServeMux()
	pid := os.Getpid()
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "hello from %d", pid)
	})
	// /slow?d=30ms stands in for a request that takes a while.
	mux.HandleFunc("GET /slow", func(w http.ResponseWriter, r *http.Request) {
		d, err := time.ParseDuration(r.FormValue("d"))
		if err != nil || d < 0 {
			http.Error(w, "d must be a duration such as 30ms", http.StatusBadRequest)
			return
		}
		t := time.NewTimer(d)
		defer t.Stop()
		select {
		case <-t.C:
			fmt.Fprintf(w, "slept %v in %d", d, pid)
		case <-r.Context().Done():
		}
	})
	// POST /echo answers with the request's body, so a client can check
	// that what it sent arrived whole.
	mux.HandleFunc("POST /echo", func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, 1<<20))
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		w.Header().Set("X-Pid", fmt.Sprint(pid))
		w.Write(body)
	})
	return mux
}
