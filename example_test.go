package lameduck_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/b583c413/lameduck"
)

// A Server that serves until it is shut down. In a real program the context
// would come from main and lame-duck mode would begin on SIGTERM; here the
// example cancels the context itself, which takes the same path.
func ExampleRun() {
	stop := make(chan struct{})
	started := make(chan struct{})
	srv := lameduck.ServerFuncs{
		ServeFunc: func(context.Context) error {
			fmt.Println("serving")
			close(started)
			<-stop
			return nil
		},
		ShutdownFunc: func(context.Context) error {
			fmt.Println("draining")
			close(stop)
			return nil
		},
	}

	r, err := lameduck.NewRunner(srv, lameduck.WithoutLogger())
	if err != nil {
		fmt.Println(err)
		return
	}
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		<-r.Ready() // signal handlers are in and Serve has been called
		<-started   // (only so that the output below comes in order)
		cancel()    // stands in for SIGTERM
	}()
	fmt.Println("Run:", r.Run(ctx))
	// Output:
	// serving
	// draining
	// Run: <nil>
}

func ExampleFromHTTP() {
	srv := &http.Server{
		Addr: "127.0.0.1:0", // port 0: any free port; Addr reports the one bound
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			fmt.Fprint(w, "hello")
		}),
	}
	h := lameduck.FromHTTP(srv)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- lameduck.Run(ctx, h, lameduck.WithoutLogger()) }()

	<-h.Ready() // the port is bound
	resp, err := http.Get("http://" + h.Addr().String() + "/")
	if err != nil {
		fmt.Println(err)
	} else {
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		fmt.Println(resp.StatusCode, string(body))
	}

	cancel()
	fmt.Println("Run:", <-done)
	// Output:
	// 200 hello
	// Run: <nil>
}

// A worker that drains a channel. When the channel is closed and empty the
// source is done, Serve returns nil and so does Run, without waiting for a
// signal.
func ExampleFromWorker() {
	jobs := make(chan string, 3)
	jobs <- "resize photo 1"
	jobs <- "resize photo 2"
	jobs <- "resize photo 3"
	close(jobs)

	w := lameduck.FromWorker(lameduck.ChanSource(jobs), func(ctx context.Context, job string) error {
		fmt.Println("done:", job)
		return nil
	})
	fmt.Println("Run:", lameduck.Run(context.Background(), w, lameduck.WithoutLogger()))
	// Output:
	// done: resize photo 1
	// done: resize photo 2
	// done: resize photo 3
	// Run: <nil>
}

func ExampleChain() {
	deregister := func(context.Context) error {
		fmt.Println("deregister from service discovery")
		return errors.New("registry unreachable")
	}
	flush := func(context.Context) error {
		fmt.Println("flush metrics")
		return nil
	}
	// The failed first step does not stop the second; its error is kept.
	err := lameduck.Chain(deregister, flush)(context.Background())
	fmt.Println("Chain:", err)
	// Output:
	// deregister from service discovery
	// flush metrics
	// Chain: registry unreachable
}

// Fail the readiness probe first, so the load balancer stops sending new
// requests, and only then drain. The steps' time comes out of the period.
func ExampleWithPreShutdown() {
	var ready atomic.Bool
	ready.Store(true)
	failReadiness := func(context.Context) error {
		ready.Store(false)
		fmt.Println("readiness probe now fails")
		return nil
	}
	waitForLoadBalancer := func(ctx context.Context) error {
		select {
		case <-time.After(10 * time.Millisecond): // ~5s in production
		case <-ctx.Done():
		}
		return ctx.Err()
	}

	stop := make(chan struct{})
	srv := lameduck.ServerFuncs{
		ServeFunc: func(context.Context) error { <-stop; return nil },
		ShutdownFunc: func(context.Context) error {
			fmt.Println("draining; ready =", ready.Load())
			close(stop)
			return nil
		},
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel() // stands in for SIGTERM
	err := lameduck.Run(ctx, srv,
		lameduck.WithPreShutdown(failReadiness, waitForLoadBalancer), // in order; failures logged by position
		lameduck.WithoutLogger())
	fmt.Println("Run:", err)
	// Output:
	// readiness probe now fails
	// draining; ready = false
	// Run: <nil>
}

// A batch job is a Server whose Serve returns on its own; Run then returns
// at once. Shutdown and Close may be left nil.
func ExampleServerFuncs() {
	job := lameduck.ServerFuncs{
		ServeFunc: func(ctx context.Context) error {
			fmt.Println("compacting the database")
			return nil
		},
	}
	fmt.Println("Run:", lameduck.Run(context.Background(), job, lameduck.WithoutLogger()))
	// Output:
	// compacting the database
	// Run: <nil>
}

// A Server that does not finish within the period is closed, and Run says
// so with a *LameDuckError.
func ExampleLameDuckError() {
	closed := make(chan struct{})
	stuck := lameduck.ServerFuncs{
		ServeFunc:    func(context.Context) error { <-closed; return nil },
		ShutdownFunc: func(ctx context.Context) error { <-ctx.Done(); return ctx.Err() },
		CloseFunc:    func() error { close(closed); return nil },
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	err := lameduck.Run(ctx, stuck, lameduck.Period(20*time.Millisecond), lameduck.WithoutLogger())

	var lde *lameduck.LameDuckError
	fmt.Println(errors.As(err, &lde) && lde.Expired)
	fmt.Println(errors.Is(err, context.DeadlineExceeded))
	fmt.Println(err)
	// Output:
	// true
	// true
	// lameduck: lame-duck period expired; server closed
}
