package lameduckgrpc

import (
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
	"google.golang.org/protobuf/types/known/emptypb"
	"google.golang.org/protobuf/types/known/wrapperspb"
)

// The clients of the test service, and what runs the server under a Runner.

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
