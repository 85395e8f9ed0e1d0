package main

import (
	"context"
	"errors"
	"io"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/wrapperspb"
)

// callSleep calls Sleep(d) on cc.
func callSleep(ctx context.Context, cc grpc.ClientConnInterface, d time.Duration, opts ...grpc.CallOption) error {
	return cc.Invoke(ctx, sleepMethod, durationpb.New(d), new(durationpb.Duration), opts...)
}

// callCount calls Count(n) on cc and returns the numbers received before
// the stream ended, and the error it ended with (nil for a clean end).
func callCount(ctx context.Context, cc grpc.ClientConnInterface, n int64, started func()) ([]int64, error) {
	stream, err := cc.NewStream(ctx, &demoDesc.Streams[0], countMethod)
	if err != nil {
		return nil, err
	}
	if err := stream.SendMsg(wrapperspb.Int64(n)); err != nil {
		return nil, err
	}
	if err := stream.CloseSend(); err != nil {
		return nil, err
	}
	var got []int64
	for {
		m := new(wrapperspb.Int64Value)
		if err := stream.RecvMsg(m); err != nil {
			if errors.Is(err, io.EOF) {
				return got, nil
			}
			return got, err
		}
		got = append(got, m.GetValue())
		if len(got) == 1 && started != nil {
			started()
		}
	}
}

// dial makes a client for one server address; it is closed when the test
// ends.
func dial(t testing.TB, addr string) *grpc.ClientConn {
	t.Helper()
	cc, err := grpc.NewClient("passthrough:///"+addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cc.Close() })
	return cc
}

// watchHealth opens a health Watch stream for service and sends each
// status it receives on the returned channel, which is closed with the
// stream's final error (nil on a clean end) sent to errc.
func watchHealth(ctx context.Context, cc grpc.ClientConnInterface, service string) (<-chan healthpb.HealthCheckResponse_ServingStatus, <-chan error) {
	statuses := make(chan healthpb.HealthCheckResponse_ServingStatus, 16)
	errc := make(chan error, 1)
	go func() {
		defer close(statuses)
		stream, err := healthpb.NewHealthClient(cc).Watch(ctx, &healthpb.HealthCheckRequest{Service: service})
		if err != nil {
			errc <- err
			return
		}
		for {
			resp, err := stream.Recv()
			if err != nil {
				if errors.Is(err, io.EOF) {
					err = nil
				}
				errc <- err
				return
			}
			statuses <- resp.GetStatus()
		}
	}()
	return statuses, errc
}
