// Command grpcserver is a gRPC service that stops without failing an RPC.
// On SIGTERM or Ctrl-C it reports NOT_SERVING through the standard health
// service, keeps serving for -drain-delay while clients and load balancers
// move away, then drains the RPCs in flight (GracefulStop) for up to
// -period, and exits. Streams still open -stream-grace into the drain (the
// health service's Watch streams, which never end by themselves) are ended
// with Unavailable, so that they do not hold the drain to the period.
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
	"github.com/b583c413/lameduck/lameduckgrpc"
	"github.com/golang/glog"
	"google.golang.org/grpc"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
)

func main() {
	addr := flag.String("addr", ":9090", "address to listen on")
	period := flag.Duration("period", 10*time.Second, "the most time to drain in-flight RPCs, after the drain delay")
	drainDelay := flag.Duration("drain-delay", 0, "time to keep serving, with the health service answering NOT_SERVING, before the drain starts (~5s on Kubernetes)")
	grace := flag.Duration("stream-grace", 2*time.Second, "time a stream may run on once the drain has begun before it is ended with Unavailable; keep it below -period")
	// Phases go to stderr unless the user asks glog for files.
	_ = flag.Set("logtostderr", "true")
	flag.Parse()
	os.Exit(run(*addr, *period, *drainDelay, *grace))
}

func run(addr string, period, drainDelay, grace time.Duration) int {
	sv, err := newService(grace)
	if err != nil {
		glog.Errorf("%v", err)
		glog.Flush()
		return 1
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		glog.Errorf("%v", err)
		glog.Flush()
		return 1
	}

	err = lameduck.Run(context.Background(), sv.streams.FromGRPC(sv.grpc, ln),
		// The delay is spent inside the lame-duck budget, so the budget is
		// the delay plus the time allowed for the drain itself.
		lameduck.Period(drainDelay+period),
		lameduck.WithPreShutdown(sv.notServing, lameduck.Delay(drainDelay)),
		// Serve has started and SIGTERM is handled: only now is it safe to
		// say so.
		lameduck.WithReady(func() { fmt.Printf("listening on %s\n", ln.Addr()) }),
	)
	c := sv.streams.Counts()
	glog.Infof("streams: %d ended on their own, %d ended after the grace, %d cancelled", c.Ended, c.Cut, c.Cancelled)
	if err != nil {
		glog.Errorf("%v", err)
	}
	glog.Flush()
	return lameduck.ExitCode(err)
}

// service is the gRPC server with the demo and health services, the
// interceptors that end its streams in the drain, and the step that takes
// it out of rotation before the drain.
type service struct {
	grpc    *grpc.Server
	health  *health.Server
	streams *lameduckgrpc.Streams
}

func newService(grace time.Duration) (*service, error) {
	streams, err := lameduckgrpc.New(lameduckgrpc.Grace(grace))
	if err != nil {
		return nil, err
	}
	sv := &service{health: health.NewServer(), streams: streams}
	sv.grpc = grpc.NewServer(
		grpc.ChainStreamInterceptor(streams.StreamInterceptor),
		grpc.ChainUnaryInterceptor(streams.UnaryInterceptor))
	registerDemo(sv.grpc)
	sv.health.SetServingStatus(demoService, healthpb.HealthCheckResponse_SERVING)
	healthpb.RegisterHealthServer(sv.grpc, sv.health)
	return sv, nil
}

// notServing is the first pre-shutdown step: every service, "" included,
// answers NOT_SERVING from now on, to Check and on every Watch stream.
func (sv *service) notServing(context.Context) error {
	sv.health.Shutdown()
	glog.Infof("health: NOT_SERVING; clients and load balancers now move away")
	return nil
}
