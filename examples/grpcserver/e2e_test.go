package main

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/b583c413/lameduck/internal/proctest"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/resolver"
	"google.golang.org/grpc/resolver/manual"
	"google.golang.org/grpc/status"
)

// The tests in this file run the example as a child process and stop it
// with a real SIGTERM, with real grpc-go clients talking to it.

// SIGTERM with unary RPCs, a server stream and a health Watch in flight:
// every RPC completes, the Watch ends with Unavailable after NOT_SERVING
// once its stream grace has run out, and the process exits 0 as soon as
// the last RPC is done.
func TestSIGTERMDrainsRPCsInFlight(t *testing.T) {
	const (
		unary      = 8
		sleep      = 300 * time.Millisecond
		streamLen  = 40 // messages, countInterval apart
		drainDelay = 100 * time.Millisecond
		grace      = time.Second // more than the stream has left when the drain begins
	)
	for rep := range 3 {
		p, addr := startServer(t, "-drain-delay", drainDelay.String(), "-period", "5s", "-stream-grace", grace.String())
		cc := dial(t, addr)

		ctx, cancel := context.WithCancel(context.Background())
		statuses, watchErr := watchHealth(ctx, cc, demoService)
		if got := <-statuses; got != healthpb.HealthCheckResponse_SERVING {
			t.Fatalf("first health status %v, want SERVING", got)
		}
		unaryErrs := make(chan error, unary)
		for range unary {
			go func() { unaryErrs <- callSleep(ctx, cc, sleep) }()
		}
		type streamResult struct {
			got []int64
			err error
		}
		streamDone := make(chan streamResult, 1)
		go func() {
			got, err := callCount(ctx, cc, streamLen, nil)
			streamDone <- streamResult{got, err}
		}()
		p.WaitFor(true, unary, "sleep: "+sleep.String())
		p.WaitFor(true, 1, fmt.Sprintf("count: %d", streamLen))

		sigAt := p.Term()
		var lastDone time.Time
		for range unary {
			if err := <-unaryErrs; err != nil {
				t.Errorf("rep %d: unary RPC in flight at SIGTERM: %v", rep, err)
			}
		}
		sr := <-streamDone
		lastDone = time.Now()
		if sr.err != nil || len(sr.got) != streamLen {
			t.Errorf("rep %d: stream in flight at SIGTERM got %d of %d messages, then %v", rep, len(sr.got), streamLen, sr.err)
		}
		if got := <-statuses; got != healthpb.HealthCheckResponse_NOT_SERVING {
			t.Errorf("rep %d: health status after SIGTERM %v, want NOT_SERVING", rep, got)
		}
		if err := <-watchErr; status.Code(err) != codes.Unavailable {
			t.Errorf("rep %d: health Watch ended with %v, want Unavailable", rep, err)
		}
		code, exitAt := p.Wait()
		cancel()
		t.Logf("rep %d: %d unary + 1 stream in flight, all done %v after SIGTERM; exit %d %v after SIGTERM (%v after the last RPC)",
			rep, unary, lastDone.Sub(sigAt).Round(time.Millisecond), code, exitAt.Sub(sigAt).Round(time.Millisecond), exitAt.Sub(lastDone).Round(time.Millisecond))
		if code != 0 {
			t.Errorf("rep %d: exit code %d, want 0", rep, code)
		}
		if limit := drainDelay + grace + time.Second; exitAt.Sub(sigAt) > limit {
			t.Errorf("rep %d: exited %v after SIGTERM, want at most %v", rep, exitAt.Sub(sigAt), limit)
		}
	}
}

// An RPC longer than the period is cut off when the period ends: the
// client sees Unavailable (or Canceled), and the process exits 2, within
// the period plus a second.
func TestPeriodExpires(t *testing.T) {
	const period = 300 * time.Millisecond
	p, addr := startServer(t, "-period", period.String())
	cc := dial(t, addr)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	unaryErr, streamErr := make(chan error, 1), make(chan error, 1)
	go func() { unaryErr <- callSleep(ctx, cc, 30*time.Second) }()
	go func() {
		_, err := callCount(ctx, cc, 1_000_000, nil)
		streamErr <- err
	}()
	p.WaitFor(true, 1, "sleep: 30s")
	p.WaitFor(true, 1, "count: 1000000")

	sigAt := p.Term()
	code, exitAt := p.Wait()
	t.Logf("exit %d %v after SIGTERM", code, exitAt.Sub(sigAt).Round(time.Millisecond))
	if code != 2 {
		t.Errorf("exit code %d, want 2", code)
	}
	if d := exitAt.Sub(sigAt); d > period+time.Second {
		t.Errorf("exited %v after SIGTERM, want at most %v", d, period+time.Second)
	}
	for name, errc := range map[string]chan error{"unary": unaryErr, "stream": streamErr} {
		err := <-errc
		if c := status.Code(err); c != codes.Unavailable && c != codes.Canceled {
			t.Errorf("%s RPC cut off by the period ended with %v, want Unavailable or Canceled", name, err)
		}
	}
}

// Two rolling restarts of three instances behind grpc-go's round_robin
// balancer with client-side health checking: each instance in turn gets
// SIGTERM while a replacement starts on a new port, and the addresses are
// updated the way a slow service registry would (the old address goes only
// once its process has exited). No RPC may fail.
func TestRollingRestartRoundRobin(t *testing.T) {
	const (
		workers    = 8
		minRPCs    = 2000
		drainDelay = 100 * time.Millisecond
	)
	args := []string{"-drain-delay", drainDelay.String(), "-period", "5s"}

	type instance struct {
		p    *proctest.Proc
		addr string
	}
	var live []instance
	for range 3 {
		p, addr := startServer(t, args...)
		live = append(live, instance{p, addr})
	}
	addrs := func(extra ...instance) resolver.State {
		var s resolver.State
		for _, in := range append(live, extra...) {
			s.Addresses = append(s.Addresses, resolver.Address{Addr: in.addr})
		}
		return s
	}
	r := manual.NewBuilderWithScheme("lameduck-e2e")
	r.InitialState(addrs())
	cc, err := grpc.NewClient(r.Scheme()+":///demo",
		grpc.WithResolvers(r),
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithDefaultServiceConfig(`{
			"loadBalancingConfig": [{"round_robin": {}}],
			"healthCheckConfig": {"serviceName": "`+demoService+`"}
		}`))
	if err != nil {
		t.Fatal(err)
	}
	defer cc.Close()

	var (
		mu       sync.Mutex
		sent     int
		failed   []error
		reached  = map[int]chan struct{}{}
		wg       sync.WaitGroup
		stopLoad = make(chan struct{})
	)
	// at returns a channel closed once n RPCs have been answered.
	at := func(n int) <-chan struct{} {
		mu.Lock()
		defer mu.Unlock()
		c := make(chan struct{})
		if sent >= n {
			close(c)
		} else {
			reached[n] = c
		}
		return c
	}
	for i := range workers {
		wg.Go(func() {
			for {
				select {
				case <-stopLoad:
					return
				default:
				}
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				// Every fourth worker sends RPCs that take a while, so that
				// some are always in flight when an instance is stopped.
				d := time.Duration(0)
				if i%4 == 0 {
					d = 20 * time.Millisecond
				}
				err := callSleep(ctx, cc, d)
				cancel()
				mu.Lock()
				sent++
				if err != nil {
					failed = append(failed, err)
				}
				if c, ok := reached[sent]; ok {
					close(c)
					delete(reached, sent)
				}
				mu.Unlock()
			}
		})
	}
	<-at(200)
	mu.Lock()
	before := sent
	mu.Unlock()

	for round := range 2 {
		for i, old := range live {
			sigAt := old.p.Term()
			p, addr := startServer(t, args...)
			live[i] = instance{p, addr}
			r.UpdateState(addrs(old)) // the new one joins; the old one is still listed
			code, exitAt := old.p.Wait()
			r.UpdateState(addrs())
			t.Logf("round %d, instance %d replaced: old one exited %d, %v after SIGTERM", round, i, code, exitAt.Sub(sigAt).Round(time.Millisecond))
			if code != 0 {
				t.Errorf("round %d, instance %d exited with code %d, want 0", round, i, code)
			}
		}
	}
	mu.Lock()
	during := sent - before
	target := max(minRPCs, sent+200) // the new instances carry the load too
	mu.Unlock()
	select {
	case <-at(target):
	case <-time.After(bound):
		t.Errorf("fewer than %d RPCs within %v", target, bound)
	}
	close(stopLoad)
	wg.Wait()

	for _, in := range live {
		in.p.Term()
		if code, _ := in.p.Wait(); code != 0 {
			t.Errorf("instance %s exited with code %d at the end, want 0", in.addr, code)
		}
	}
	t.Logf("%d RPCs over 2 rolling restarts of 3 instances (%d while instances were replaced), %d failed", sent, during, len(failed))
	if len(failed) > 0 {
		t.Errorf("%d of %d RPCs failed, e.g. %v", len(failed), sent, failed[:min(3, len(failed))])
	}
}
