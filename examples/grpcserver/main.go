// Command grpcserver is a gRPC service that stops without failing an RPC.
// On SIGTERM or Ctrl-C it reports NOT_SERVING through the standard health
// service, keeps serving for -drain-delay while clients and load balancers
// move away, ends the health Watch streams, then drains the RPCs in flight
// (GracefulStop) for up to -period, and exits.
//
// Exit status: 0 after a clean drain, 1 when the server failed, 2 when the
// period ran out or a second signal forced the stop.
package main

import (
	"context"
	"flag"
	"fmt"
	"net"
	"os"
	"time"

	"github.com/b583c413/lameduck"
	"github.com/golang/glog"
	"google.golang.org/grpc"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
)

func main() {
	addr := flag.String("addr", ":9090", "address to listen on")
	period := flag.Duration("period", 10*time.Second, "the most time to drain in-flight RPCs, after the drain delay")
	drainDelay := flag.Duration("drain-delay", 0, "time to keep serving, with the health service answering NOT_SERVING, before the drain starts (~5s on Kubernetes)")
	// Phases go to stderr unless the user asks glog for files.
	_ = flag.Set("logtostderr", "true")
	flag.Parse()
	os.Exit(run(*addr, *period, *drainDelay))
}

func run(addr string, period, drainDelay time.Duration) int {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		glog.Errorf("%v", err)
		glog.Flush()
		return 1
	}

	sv := newService()
	err = lameduck.Run(context.Background(), lameduck.FromGRPC(sv.grpc, ln),
		// The delay is spent inside the lame-duck budget, so the budget is
		// the delay plus the time allowed for the drain itself.
		lameduck.Period(drainDelay+period),
		lameduck.WithPreShutdown(sv.notServing, lameduck.Delay(drainDelay), sv.endWatches),
		// Serve has started and SIGTERM is handled: only now is it safe to
		// say so.
		lameduck.WithReady(func() { fmt.Printf("listening on %s\n", ln.Addr()) }),
	)
	if err != nil {
		glog.Errorf("%v", err)
	}
	glog.Flush()
	return lameduck.ExitCode(err)
}

// service is the gRPC server with the demo and health services, and the
// steps that take it out of rotation before the drain.
type service struct {
	grpc    *grpc.Server
	health  *health.Server
	watches *watchGate
}

func newService() *service {
	sv := &service{health: health.NewServer(), watches: &watchGate{}}
	sv.grpc = grpc.NewServer(grpc.StreamInterceptor(sv.watches.intercept))
	registerDemo(sv.grpc)
	sv.health.SetServingStatus(demoService, healthpb.HealthCheckResponse_SERVING)
	healthpb.RegisterHealthServer(sv.grpc, sv.health)
	return sv
}

// notServing is the first pre-shutdown step: every service, "" included,
// answers NOT_SERVING from now on, to Check and on every Watch stream.
func (sv *service) notServing(context.Context) error {
	sv.health.Shutdown()
	glog.Infof("health: NOT_SERVING; clients and load balancers now move away")
	return nil
}

// endWatches is the last pre-shutdown step, after the drain delay. A Watch
// stream is an RPC that lasts as long as its client wants: left open,
// GracefulStop would wait for it until the period ran out.
func (sv *service) endWatches(context.Context) error {
	n := sv.watches.end()
	glog.Infof("health: ended %d Watch stream(s)", n)
	return nil
}
