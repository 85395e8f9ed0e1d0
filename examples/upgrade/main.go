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
// way. It tells systemd READY=1 once it serves and STOPPING=1 when it
// stops, when NOTIFY_SOCKET is set.
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
	opts := []lameduck.Option{lameduck.Period(period)}
	if handoffMax > 0 {
		opts = append(opts, lameduck.WithPreShutdown(ho.step(handoffMax)))
	}
	r, err := lameduck.NewRunner(h, opts...)
	if err != nil {
		glog.Errorf("%v", err)
		glog.Flush()
		return 1
	}

	// Run's context is how a successor ends this process: tableflip closes
	// handedOver once the new process has called Ready.
	ctx, cancel := context.WithCancelCause(context.Background())
	defer cancel(nil)
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()

	select {
	case <-r.Ready():
	case err := <-done:
		return exit(err)
	}
	// Only now may the parent, if any, stop serving.
	if err := src.ready(); err != nil {
		glog.Errorf("telling the parent process: %v", err)
	}
	if err := notify(readyMessage()); err != nil {
		glog.Warningf("sd_notify: %v", err)
	}
	fmt.Printf("listening on %s (pid %d, socket from %s)\n", h.Addr(), os.Getpid(), src.how)

	var (
		handedOver = src.handedOver()
		lameDuck   = r.LameDuck()
		upgraded   = make(chan error, 1)
		upgrading  bool
		stopping   bool
	)
	for {
		select {
		case <-hup:
			switch {
			case src.upg == nil:
				glog.Warningf("SIGHUP ignored: the socket came from %s; restart the service instead", src.how)
			case upgrading || stopping:
				glog.Warningf("SIGHUP ignored: an upgrade or a stop is under way")
			default:
				upgrading = true
				glog.Infof("SIGHUP: starting a new process")
				go func() { upgraded <- src.upg.Upgrade() }()
			}
		case err := <-upgraded:
			upgrading = false
			if err != nil {
				// The new process failed to start or to get ready; this
				// one goes on serving.
				glog.Errorf("upgrade failed: %v", err)
			}
		case <-handedOver:
			handedOver = nil
			if !stopping {
				glog.Infof("the new process serves; draining this one")
				cancel(errHandedOver)
			}
		case <-lameDuck:
			lameDuck = nil
			stopping = true
			if !errors.Is(context.Cause(ctx), errHandedOver) {
				// A real stop (SIGTERM): no upgrade from now on, and the
				// port closes with this process's listener.
				src.stop()
				if err := notify(stoppingMessage(period + 2*time.Second)); err != nil {
					glog.Warningf("sd_notify: %v", err)
				}
			}
		case err := <-done:
			if upgrading {
				// Stop ends an Upgrade that waits for its child.
				src.stop()
				<-upgraded
			}
			return exit(err)
		}
	}
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
