package lameduckgrpc

import (
	"cmp"
	"context"
	"errors"
	"io"
	"net"
	"testing"
	"time"

	"github.com/b583c413/lameduck"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
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

func listen(t testing.TB) net.Listener {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return ln
}

// dial makes a client of addr, closed when the test ends; opts come after
// the insecure credentials.
func dial(t testing.TB, addr string, opts ...grpc.DialOption) *grpc.ClientConn {
	t.Helper()
	cc, err := grpc.NewClient("passthrough:///"+addr,
		append([]grpc.DialOption{grpc.WithTransportCredentials(insecure.NewCredentials())}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cc.Close() })
	return cc
}

// runAsync runs svr under a Runner triggered by its context and returns a
// function that triggers it and one that waits for Run's result.
func runAsync(t testing.TB, svr lameduck.Server, opts ...lameduck.Option) (trigger func() time.Time, result func() error) {
	t.Helper()
	r, err := lameduck.NewRunner(svr, append([]lameduck.Option{lameduck.Signals(), lameduck.WithoutLogger()}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	t.Cleanup(func() { cancel(); done <- <-done })
	select {
	case <-r.Ready():
	case err := <-done:
		t.Fatalf("Run returned before it was ready: %v", err)
	}
	return func() time.Time { cancel(); return time.Now() },
		func() error {
			err := <-done
			done <- err // for the cleanup
			return err
		}
}

// ended is how a client's stream ended.
type ended struct {
	msgs int       // messages received
	err  error     // nil for a clean end (io.EOF)
	at   time.Time // when the client saw the end
}

// openTicks opens a Ticks stream and returns, once the first tick has
// arrived, a channel that gets how the stream ended.
func openTicks(t testing.TB, ctx context.Context, cc grpc.ClientConnInterface, ignore bool) <-chan ended {
	t.Helper()
	out, err := startTicks(ctx, cc, ignore)
	if err != nil {
		t.Fatalf("opening a Ticks stream: %v", err)
	}
	return out
}

// startTicks is openTicks for any goroutine: it returns the error instead.
func startTicks(ctx context.Context, cc grpc.ClientConnInterface, ignore bool) (<-chan ended, error) {
	if ignore {
		ctx = metadata.AppendToOutgoingContext(ctx, ignoreKey, "1")
	}
	cs, err := cc.NewStream(ctx, &testDesc.Streams[0], ticksMethod)
	if err == nil {
		err = cs.SendMsg(new(emptypb.Empty))
	}
	if err == nil {
		err = cs.CloseSend()
	}
	if err == nil {
		err = cs.RecvMsg(new(wrapperspb.Int64Value))
	}
	if err != nil {
		return nil, err
	}
	out := make(chan ended, 1)
	go func() {
		n := 1
		for {
			if err := cs.RecvMsg(new(wrapperspb.Int64Value)); err != nil {
				if errors.Is(err, io.EOF) {
					err = nil
				}
				out <- ended{n, err, time.Now()}
				return
			}
			n++
		}
	}()
	return out, nil
}

// openEcho opens an Echo stream, has one message echoed, and then sends one
// every tickInterval until the stream ends; the channel gets the number of
// echoes received and how the stream ended.
func openEcho(t testing.TB, ctx context.Context, cc grpc.ClientConnInterface, ignore bool) <-chan ended {
	t.Helper()
	if ignore {
		ctx = metadata.AppendToOutgoingContext(ctx, ignoreKey, "1")
	}
	cs, err := cc.NewStream(ctx, &testDesc.Streams[1], echoMethod)
	if err == nil {
		err = cs.SendMsg(wrapperspb.String("hello"))
	}
	if err == nil {
		err = cs.RecvMsg(new(wrapperspb.StringValue))
	}
	if err != nil {
		t.Fatalf("opening an Echo stream: %v", err)
	}
	out := make(chan ended, 1)
	stop := make(chan struct{})
	go func() {
		tick := time.NewTicker(tickInterval)
		defer tick.Stop()
		for {
			select {
			case <-stop:
				return
			case <-tick.C:
				// A send fails once the stream is over; RecvMsg says how.
				if cs.SendMsg(wrapperspb.String("again")) != nil {
					return
				}
			}
		}
	}()
	go func() {
		defer close(stop)
		n := 1
		for {
			if err := cs.RecvMsg(new(wrapperspb.StringValue)); err != nil {
				if errors.Is(err, io.EOF) {
					err = nil
				}
				out <- ended{n, err, time.Now()}
				return
			}
			n++
		}
	}()
	return out
}
