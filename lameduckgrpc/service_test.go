package lameduckgrpc

import (
	"cmp"
	"context"
	"errors"
	"io"
	"time"

	"github.com/b583c413/lameduck"
	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/emptypb"
	"google.golang.org/protobuf/types/known/wrapperspb"
)

// The test service is written out by hand, with protobuf's well-known types
// as messages, so that no protoc step is needed. In proto form:
//
//	service Test {
//	  // Ticks sends 1, 2, 3 ... one every tickInterval.
//	  rpc Ticks(google.protobuf.Empty) returns (stream google.protobuf.Int64Value);
//	  // Echo sends back each message it receives.
//	  rpc Echo(stream google.protobuf.StringValue) returns (stream google.protobuf.StringValue);
//	  // Wait is a long poll: it answers when Draining closes.
//	  rpc Wait(google.protobuf.Empty) returns (google.protobuf.Empty);
//	}
//
// Ticks and Echo end cleanly when Draining closes, unless the call carries
// the metadata "ignore-draining"; then they end only when their context
// does.
const (
	testService  = "lameduckgrpc.test.Test"
	ticksMethod  = "/" + testService + "/Ticks"
	echoMethod   = "/" + testService + "/Echo"
	waitMethod   = "/" + testService + "/Wait"
	tickInterval = 10 * time.Millisecond
	ignoreKey    = "ignore-draining"
)

// testServer is the implementation; started, when not nil, gets the time
// each handler starts, and Ticks ticks every tick (tickInterval when 0).
type testServer struct {
	started chan time.Time
	tick    time.Duration
}

// ignoring reports whether the call asked its handler to ignore Draining.
func ignoring(ctx context.Context) bool {
	md, _ := metadata.FromIncomingContext(ctx)
	return len(md.Get(ignoreKey)) > 0
}

// draining returns what the handler should watch: Draining, or nothing.
func draining(ctx context.Context) <-chan struct{} {
	if ignoring(ctx) {
		return nil
	}
	return lameduck.Draining(ctx)
}

func (t testServer) announce() {
	if t.started != nil {
		t.started <- time.Now()
	}
}

func (t testServer) ticks(ss grpc.ServerStream) error {
	if err := ss.RecvMsg(new(emptypb.Empty)); err != nil {
		return err
	}
	t.announce()
	ctx := ss.Context()
	tick := time.NewTicker(cmp.Or(t.tick, tickInterval))
	defer tick.Stop()
	for i := int64(1); ; i++ {
		if err := ss.SendMsg(wrapperspb.Int64(i)); err != nil {
			return err
		}
		select {
		case <-tick.C:
		case <-draining(ctx):
			return nil
		case <-ctx.Done():
			return status.FromContextError(ctx.Err()).Err()
		}
	}
}

func (t testServer) echo(ss grpc.ServerStream) error {
	t.announce()
	ctx := ss.Context()
	in := make(chan *wrapperspb.StringValue)
	recvErr := make(chan error, 1)
	go func() {
		for {
			m := new(wrapperspb.StringValue)
			if err := ss.RecvMsg(m); err != nil {
				recvErr <- err
				return
			}
			select {
			case in <- m:
			case <-ctx.Done():
				return
			}
		}
	}()
	for {
		select {
		case m := <-in:
			if err := ss.SendMsg(m); err != nil {
				return err
			}
		case err := <-recvErr:
			if errors.Is(err, io.EOF) {
				return nil
			}
			return err
		case <-draining(ctx):
			return nil
		case <-ctx.Done():
			return status.FromContextError(ctx.Err()).Err()
		}
	}
}

func (t testServer) wait(ctx context.Context) error {
	t.announce()
	select {
	case <-lameduck.Draining(ctx):
		return nil
	case <-ctx.Done():
		return status.FromContextError(ctx.Err()).Err()
	}
}

var testDesc = grpc.ServiceDesc{
	ServiceName: testService,
	HandlerType: (*any)(nil),
	Methods: []grpc.MethodDesc{{
		MethodName: "Wait",
		Handler: func(srv any, ctx context.Context, dec func(any) error, icpt grpc.UnaryServerInterceptor) (any, error) {
			if err := dec(new(emptypb.Empty)); err != nil {
				return nil, err
			}
			call := func(ctx context.Context, _ any) (any, error) {
				return new(emptypb.Empty), srv.(testServer).wait(ctx)
			}
			if icpt == nil {
				return call(ctx, nil)
			}
			return icpt(ctx, nil, &grpc.UnaryServerInfo{Server: srv, FullMethod: waitMethod}, call)
		},
	}},
	Streams: []grpc.StreamDesc{{
		StreamName:    "Ticks",
		ServerStreams: true,
		Handler:       func(srv any, ss grpc.ServerStream) error { return srv.(testServer).ticks(ss) },
	}, {
		StreamName:    "Echo",
		ServerStreams: true,
		ClientStreams: true,
		Handler:       func(srv any, ss grpc.ServerStream) error { return srv.(testServer).echo(ss) },
	}},
}

// newServer returns a gRPC server with the test service behind the
// interceptors of s. When finished is not nil, it gets a value each time a
// stream RPC has gone all the way through s's interceptor.
func newServer(s *Streams, impl testServer, finished chan<- struct{}) *grpc.Server {
	outer := func(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
		err := handler(srv, ss)
		if finished != nil {
			finished <- struct{}{}
		}
		return err
	}
	g := grpc.NewServer(
		grpc.ChainStreamInterceptor(outer, s.StreamInterceptor),
		grpc.ChainUnaryInterceptor(s.UnaryInterceptor))
	g.RegisterService(&testDesc, impl)
	return g
}
