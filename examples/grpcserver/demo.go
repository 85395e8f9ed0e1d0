package main

import (
	"context"
	"time"

	"github.com/golang/glog"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/wrapperspb"
)

// The demo service is written out by hand, with protobuf's well-known types
// as messages, so that the example needs no protoc step. In proto form:
//
//	service Demo {
//	  // Sleep waits for the given duration (or until the call is
//	  // cancelled) and returns it.
//	  rpc Sleep(google.protobuf.Duration) returns (google.protobuf.Duration);
//	  // Count sends 1, 2, ... n, one every countInterval.
//	  rpc Count(google.protobuf.Int64Value) returns (stream google.protobuf.Int64Value);
//	}
const (
	demoService   = "lameduck.example.Demo"
	sleepMethod   = "/" + demoService + "/Sleep"
	countMethod   = "/" + demoService + "/Count"
	countInterval = 10 * time.Millisecond
)

// demoServer is the interface that grpc.ServiceDesc.HandlerType names.
type demoServer interface {
	sleep(ctx context.Context, d time.Duration) error
	count(ctx context.Context, n int64, send func(int64) error) error
}

type demo struct{}

func (demo) sleep(ctx context.Context, d time.Duration) error {
	glog.V(1).Infof("sleep: %v", d)
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done(): // the client left, or the server was stopped
		return status.FromContextError(ctx.Err()).Err()
	}
}

func (demo) count(ctx context.Context, n int64, send func(int64) error) error {
	glog.V(1).Infof("count: %d", n)
	tick := time.NewTicker(countInterval)
	defer tick.Stop()
	for i := int64(1); i <= n; i++ {
		if err := send(i); err != nil {
			return err
		}
		if i == n {
			break
		}
		select {
		case <-tick.C:
		case <-ctx.Done():
			return status.FromContextError(ctx.Err()).Err()
		}
	}
	return nil
}

var demoDesc = grpc.ServiceDesc{
	ServiceName: demoService,
	HandlerType: (*demoServer)(nil),
	Methods: []grpc.MethodDesc{{
		MethodName: "Sleep",
		Handler: func(srv any, ctx context.Context, dec func(any) error, icpt grpc.UnaryServerInterceptor) (any, error) {
			in := new(durationpb.Duration)
			if err := dec(in); err != nil {
				return nil, err
			}
			call := func(ctx context.Context, req any) (any, error) {
				d := req.(*durationpb.Duration)
				if err := d.CheckValid(); err != nil || d.AsDuration() < 0 {
					return nil, status.Error(codes.InvalidArgument, "grpcserver: Sleep needs a duration ≥ 0")
				}
				if err := srv.(demoServer).sleep(ctx, d.AsDuration()); err != nil {
					return nil, err
				}
				return d, nil
			}
			if icpt == nil {
				return call(ctx, in)
			}
			return icpt(ctx, in, &grpc.UnaryServerInfo{Server: srv, FullMethod: sleepMethod}, call)
		},
	}},
	Streams: []grpc.StreamDesc{{
		StreamName:    "Count",
		ServerStreams: true,
		Handler: func(srv any, stream grpc.ServerStream) error {
			in := new(wrapperspb.Int64Value)
			if err := stream.RecvMsg(in); err != nil {
				return err
			}
			send := func(i int64) error { return stream.SendMsg(wrapperspb.Int64(i)) }
			return srv.(demoServer).count(stream.Context(), in.GetValue(), send)
		},
	}},
}

func registerDemo(s *grpc.Server) { s.RegisterService(&demoDesc, demo{}) }
