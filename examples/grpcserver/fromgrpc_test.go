package main

import (
	"context"
	"errors"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/b583c413/lameduck"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/keepalive"
	"google.golang.org/grpc/status"
)

// These tests run FromGRPC in this process against a real *grpc.Server and
// real clients over loopback; the Runner is triggered by cancelling its
// context, so no signal is involved.

func listen(t testing.TB) net.Listener {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return ln
}

// runAsync runs a Runner for svr and returns a func that cancels its
// context and one that waits for Run's result.
func runAsync(t *testing.T, svr lameduck.Server, opts ...lameduck.Option) (trigger func() time.Time, result func() error) {
	t.Helper()
	r, err := lameduck.NewRunner(svr, append([]lameduck.Option{lameduck.Signals(), lameduck.WithoutLogger()}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done; done <- nil })
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

// stubborn is a demo service whose Sleep ignores its context: it returns
// only when the test closes release.
type stubborn struct{ started, release chan struct{} }

func (s stubborn) sleep(context.Context, time.Duration) error {
	s.started <- struct{}{}
	<-s.release
	return nil
}

func (stubborn) count(context.Context, int64, func(int64) error) error { return nil }

// When the period ends, Run returns then, not a second later: Shutdown does
// not wait for a handler that ignores its context (it outlives Run, as it
// would under grpc alone), and the client has already been cut off.
func TestFromGRPCExpiryDoesNotWaitForStubbornHandlers(t *testing.T) {
	const period = 300 * time.Millisecond
	st := stubborn{started: make(chan struct{}), release: make(chan struct{})}
	s := grpc.NewServer()
	s.RegisterService(&demoDesc, st)
	ln := listen(t)
	trigger, result := runAsync(t, lameduck.FromGRPC(s, ln), lameduck.Period(period))
	defer close(st.release) // lets the handler, and GracefulStop, end

	cc := dial(t, ln.Addr().String())
	callErr := make(chan error, 1)
	go func() { callErr <- callSleep(context.Background(), cc, time.Hour) }()
	<-st.started
	at := trigger()
	err := result()
	took := time.Since(at)

	var lde *lameduck.LameDuckError
	if !errors.As(err, &lde) || !lde.Expired || lde.Err != nil {
		t.Errorf("Run = %v, want an expired *LameDuckError with nothing else wrong", err)
	}
	// Before the fix, Run took the period plus the Runner's one-second
	// grace and blamed Shutdown.
	if limit := period + 300*time.Millisecond; took > limit {
		t.Errorf("Run returned %v after the trigger, want at most %v", took, limit)
	}
	if code := status.Code(<-callErr); code != codes.Unavailable && code != codes.Canceled {
		t.Errorf("the RPC cut off ended with %v, want Unavailable or Canceled", code)
	}
	t.Logf("Run returned %v after the trigger (period %v): %v", took.Round(time.Millisecond), period, err)
}

// When gRPC's Serve fails (here its listener is closed under it), Run
// returns that error, and a client on a connection accepted before is not
// served any more.
func TestFromGRPCServeFailureStopsTheServer(t *testing.T) {
	s := grpc.NewServer()
	registerDemo(s)
	ln := listen(t)
	_, result := runAsync(t, lameduck.FromGRPC(s, ln))
	cc := dial(t, ln.Addr().String())
	if err := callSleep(context.Background(), cc, 0); err != nil {
		t.Fatalf("first RPC: %v", err)
	}
	ln.Close()
	if err := result(); !errors.Is(err, net.ErrClosed) {
		t.Errorf("Run = %v, want the listener's error (net.ErrClosed)", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := callSleep(ctx, cc, 0); status.Code(err) != codes.Unavailable {
		t.Errorf("RPC on the old connection after Run returned: %v, want Unavailable", err)
	}
}

// A client watching the health service holds GracefulStop until the period
// ends when the server runs under lameduck.FromGRPC with health.Server.Shutdown
// as its step: Shutdown reports NOT_SERVING but leaves the stream open.
// Under lameduckgrpc's FromGRPC the Watch stream is ended once its grace
// has run out, with Unavailable, and the drain is clean.
func TestHealthWatchAndTheDrain(t *testing.T) {
	const period, grace = 500 * time.Millisecond, 100 * time.Millisecond
	for _, c := range []struct {
		name        string
		streams     bool // run the server through sv.streams.FromGRPC
		wantExpired bool
	}{
		{"lameduck.FromGRPC and health.Server.Shutdown: the Watch stream holds the drain to the period", false, true},
		{"lameduckgrpc's FromGRPC: the Watch stream is ended after its grace, and the drain is clean", true, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			sv, err := newService(grace)
			if err != nil {
				t.Fatal(err)
			}
			ln := listen(t)
			svr := lameduck.FromGRPC(sv.grpc, ln)
			if c.streams {
				svr = sv.streams.FromGRPC(sv.grpc, ln)
			}
			trigger, result := runAsync(t, svr, lameduck.Period(period), lameduck.WithPreShutdown(sv.notServing))
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			statuses, watchErr := watchHealth(ctx, dial(t, ln.Addr().String()), "")
			if got := <-statuses; got != healthpb.HealthCheckResponse_SERVING {
				t.Fatalf("first status %v, want SERVING", got)
			}

			at := trigger()
			if got := <-statuses; got != healthpb.HealthCheckResponse_NOT_SERVING {
				t.Errorf("status after the trigger %v, want NOT_SERVING", got)
			}
			err = result()
			took := time.Since(at)
			t.Logf("Run returned %v after the trigger: %v", took.Round(time.Millisecond), err)
			var lde *lameduck.LameDuckError
			if expired := errors.As(err, &lde) && lde.Expired; expired != c.wantExpired {
				t.Errorf("Run = %v; expired %v, want %v", err, expired, c.wantExpired)
			}
			if !c.wantExpired {
				if took < grace || took > period-grace {
					t.Errorf("the drain took %v, want the grace (%v) and well under the period (%v)", took, grace, period)
				}
				if err := <-watchErr; status.Code(err) != codes.Unavailable || !strings.Contains(err.Error(), "server going away") {
					t.Errorf("the Watch stream ended with %v, want Unavailable: server going away", err)
				}
			}
		})
	}
}

// The trap the README warns of: keepalive's MaxConnectionAgeGrace shorter
// than the period closes a connection with an RPC still on it, and to
// GracefulStop that is a connection that finished, so Run reports a clean
// drain although the client's RPC failed.
func TestMaxConnectionAgeGraceCutsRPCsWhileRunSaysNil(t *testing.T) {
	a := announcing{started: make(chan struct{}, 1)}
	s := grpc.NewServer(grpc.KeepaliveParams(keepalive.ServerParameters{
		MaxConnectionAge:      300 * time.Millisecond,
		MaxConnectionAgeGrace: 100 * time.Millisecond, // far less than the period
	}))
	s.RegisterService(&demoDesc, a)
	ln := listen(t)
	trigger, result := runAsync(t, lameduck.FromGRPC(s, ln), lameduck.Period(10*time.Second))
	callErr := make(chan error, 1)
	go func() { callErr <- callSleep(context.Background(), dial(t, ln.Addr().String()), 5*time.Second) }()
	<-a.started
	at := trigger()
	err := result()
	t.Logf("Run returned %v after the trigger: %v", time.Since(at).Round(time.Millisecond), err)
	if err != nil {
		t.Errorf("Run = %v; the trap is that it says nil", err)
	}
	if err := <-callErr; status.Code(err) != codes.Unavailable {
		t.Errorf("the RPC ended with %v; the trap is that it is cut (Unavailable)", err)
	} else {
		t.Logf("the RPC in flight: %v", err)
	}
}
