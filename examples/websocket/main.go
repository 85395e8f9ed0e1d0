// Command websocket is a WebSocket service that stops without leaving its
// clients guessing. When the drain begins, every connection is closed with
// status 1001 ("going away") and a closing handshake, which tells the
// client to reconnect elsewhere, instead of being cut (1006) at the end of
// the period.
//
// It serves two endpoints, one per library, each with the recipe for it:
//
//	/echo  github.com/coder/websocket: acknowledges each message ("ack M")
//	/chat  github.com/gorilla/websocket: acknowledges each message to its
//	       sender and sends it on to every other client ("from C: M")
//
// Each message is recorded on stdout ("ledger NAME CLIENT M", CLIENT from
// the ?client= query) before it is acknowledged, so that an acknowledged
// message is never one the service did not take. /readyz is the readiness
// probe. On SIGTERM it fails /readyz, serves for -drain-delay more, then
// drains for up to -period, and exits: 0 after a clean drain, 1 when the
// server failed, 2 when the period ran out or a second signal forced the
// stop.
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
	name := flag.String("name", "ws", "this instance's name in the ledger")
	period := flag.Duration("period", 10*time.Second, "the most time the drain may take, after -drain-delay (lameduck's Period is drain-delay + period)")
	drainDelay := flag.Duration("drain-delay", 0, "time to keep serving, with /readyz failing, before the drain begins")
	spread := flag.Duration("spread", 0, "close the WebSockets spread over this window of the drain instead of all at once")
	closeWait := flag.Duration("close-wait", time.Second, "the most time to wait for a client's close frame")
	_ = flag.Set("logtostderr", "true")
	flag.Parse()
	os.Exit(run(config{
		addr: *addr, name: *name, period: *period, drainDelay: *drainDelay,
		spread: *spread, closeWait: *closeWait,
	}))
}

// config is what the flags set.
type config struct {
	addr, name         string
	period, drainDelay time.Duration
	spread, closeWait  time.Duration
}

func run(cfg config) int {
	var ready lameduck.Readiness
	s := newService(cfg.name, os.Stdout, cfg.closeWait)
	srv := &http.Server{
		Addr:              cfg.addr,
		Handler:           s.routes(&ready),
		ReadHeaderTimeout: 10 * time.Second,
	}
	h := lameduck.FromHTTP(srv).Spread(cfg.spread)
	err := lameduck.Run(context.Background(), h,
		lameduck.Period(cfg.drainDelay+cfg.period),
		lameduck.WithPreShutdown(ready.Fail, lameduck.Delay(cfg.drainDelay)),
		lameduck.WithReady(func() { fmt.Printf("listening on %s\n", h.Addr()) }),
	)
	if err != nil {
		glog.Errorf("%v", err)
	}
	glog.Flush()
	return lameduck.ExitCode(err)
}
