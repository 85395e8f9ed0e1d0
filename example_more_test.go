package lameduck_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"time"

	"github.com/b583c413/lameduck"
)

// An HTTP front end and the worker it feeds, under one Runner and one
// period. Members are listed in start order; Shutdown runs in reverse, so the
// front end stops taking requests before the worker is drained.
func ExampleGroup() {
	jobs := make(chan string, 10)
	handled := make(chan string, 10)
	worker := lameduck.FromWorker(lameduck.ChanSource(jobs), func(ctx context.Context, job string) error {
		handled <- job
		return nil
	})
	front := lameduck.FromHTTP(&http.Server{
		Addr: "127.0.0.1:0",
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			jobs <- r.URL.Query().Get("job")
			fmt.Fprint(w, "queued")
		}),
	})
	r, err := lameduck.NewRunner(lameduck.Group(worker, front), lameduck.WithoutLogger())
	if err != nil {
		fmt.Println(err)
		return
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	<-r.Ready() // the worker is consuming and the front end is bound

	resp, err := http.Get("http://" + front.Addr().String() + "/?job=thumbnail")
	if err == nil {
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		fmt.Println("front end said", string(body))
	}
	fmt.Println("worker handled", <-handled)
	cancel()
	fmt.Println("Run:", <-done)
	// Output:
	// front end said queued
	// worker handled thumbnail
	// Run: <nil>
}

// The Kubernetes wiring: /readyz fails the moment lame-duck mode begins, the
// server keeps serving while endpoints are updated, then it drains. Give the
// period room for the delay and the drain.
func ExampleReadiness() {
	var ready lameduck.Readiness
	mux := http.NewServeMux()
	mux.Handle("/readyz", &ready)
	h := lameduck.FromHTTP(&http.Server{Addr: "127.0.0.1:0", Handler: mux})

	probe := func() {
		resp, err := http.Get("http://" + h.Addr().String() + "/readyz")
		if err != nil {
			fmt.Println(err)
			return
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		fmt.Printf("%d %q\n", resp.StatusCode, body)
	}
	probeInDelay := func(context.Context) error { probe(); return nil }

	r, _ := lameduck.NewRunner(h, lameduck.WithoutLogger(), lameduck.Period(15*time.Second),
		lameduck.WithPreShutdown(lameduck.Chain(ready.Fail, lameduck.Delay(10*time.Millisecond), probeInDelay)))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	<-r.Ready()
	probe()
	cancel()
	fmt.Println("Run:", <-done)
	// Output:
	// 200 "ok"
	// 503 "lame duck\n"
	// Run: <nil>
}

// grpcStub stands in for *grpc.Server, which has the same three methods.
type grpcStub struct{ stopped chan struct{} }

func (s *grpcStub) Serve(ln net.Listener) error { <-s.stopped; return nil }
func (s *grpcStub) GracefulStop()               { fmt.Println("GracefulStop"); close(s.stopped) }
func (s *grpcStub) Stop()                       { fmt.Println("Stop") }

func ExampleFromGRPC() {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fmt.Println(err)
		return
	}
	s := &grpcStub{stopped: make(chan struct{})} // grpc.NewServer() in a real program
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	fmt.Println("Run:", lameduck.Run(ctx, lameduck.FromGRPC(s, ln), lameduck.WithoutLogger()))
	// Output:
	// GracefulStop
	// Run: <nil>
}

func ExampleWithSlog() {
	// Each message is a constant, the same for every run; the figures are
	// attributes of their own types (durations stay durations). The last
	// record is the stop's Report, as a group. The time, the durations and
	// the moment lame-duck mode began are left out here so that the output
	// is stable.
	handler := slog.NewTextHandler(os.Stdout, &slog.HandlerOptions{
		ReplaceAttr: func(_ []string, a slog.Attr) slog.Attr {
			switch a.Key {
			case slog.TimeKey, "took", "began":
				return slog.Attr{}
			}
			return a
		},
	})
	stop := make(chan struct{})
	srv := lameduck.ServerFuncs{
		ServeFunc:    func(context.Context) error { <-stop; return nil },
		ShutdownFunc: func(context.Context) error { close(stop); return nil },
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	lameduck.Run(ctx, srv, lameduck.WithSlog(slog.New(handler)), lameduck.Signals())
	// Output:
	// level=INFO msg="lameduck: serving"
	// level=INFO msg="lameduck: entering lame-duck mode" trigger=context cause="context canceled" period=3s
	// level=INFO msg="lameduck: drained"
	// level=INFO msg="lameduck: stop report" report.state=stopped report.outcome=clean report.trigger=context report.cause="context canceled" report.period=3s report.phases.shutdown.name=Shutdown
}

func ExampleRunner_State() {
	stop := make(chan struct{})
	srv := lameduck.ServerFuncs{
		ServeFunc:    func(context.Context) error { <-stop; return nil },
		ShutdownFunc: func(context.Context) error { close(stop); return nil },
	}
	r, _ := lameduck.NewRunner(srv, lameduck.WithoutLogger())
	fmt.Println(r.State())
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	<-r.Ready()
	fmt.Println(r.State())
	cancel()
	<-r.LameDuck() // closed when lame-duck mode begins
	<-done
	fmt.Println(r.State())
	// Output:
	// not started
	// running
	// stopped
}

// A handler that relays its hijacked connection to a backend puts the
// backend's connection under the drain with Track. The hijacked connection
// needs no Track: the server follows it already, so the drain waits for it
// and Close would close it.
func ExampleHTTPServer_Track() {
	backend, err := net.Listen("tcp", "127.0.0.1:0") // the service relayed to
	if err != nil {
		fmt.Println(err)
		return
	}
	defer backend.Close()
	go func() {
		c, err := backend.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		fmt.Fprintln(c, "from the backend")
		io.Copy(io.Discard, c) // until the relay hangs up
	}()

	srv := &http.Server{Addr: "127.0.0.1:0"}
	var h *lameduck.HTTPServer
	srv.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		up, err := net.Dial("tcp", backend.Addr().String())
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		release := h.Track(up)
		conn, _, err := http.NewResponseController(w).Hijack()
		if err != nil {
			up.Close()
			release()
			return
		}
		draining := lameduck.Draining(r.Context())
		go func() { // the relay outlives the handler
			defer release()
			defer up.Close()
			defer conn.Close()
			line, _ := bufio.NewReader(up).ReadString('\n')
			fmt.Fprint(conn, line)
			<-draining
			fmt.Fprintln(conn, "goodbye")
		}()
	})
	h = lameduck.FromHTTP(srv)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- lameduck.Run(ctx, h, lameduck.WithoutLogger()) }()
	<-h.Ready()

	conn, err := net.Dial("tcp", h.Addr().String())
	if err != nil {
		fmt.Println(err)
		cancel()
		<-done
		return
	}
	defer conn.Close()
	fmt.Fprint(conn, "GET /relay HTTP/1.1\r\nHost: example\r\n\r\n")
	r := bufio.NewReader(conn)
	line, _ := r.ReadString('\n')
	fmt.Print(line)
	cancel()
	rest, _ := io.ReadAll(r) // the drain waits for the goodbye
	fmt.Print(string(rest))
	fmt.Println("Run:", <-done)
	// Output:
	// from the backend
	// goodbye
	// Run: <nil>
}

func ExampleExitCode() {
	fmt.Println(lameduck.ExitCode(nil))
	fmt.Println(lameduck.ExitCode(&lameduck.LameDuckError{Expired: true}))
	fmt.Println(lameduck.ExitCode(errors.New("listen tcp :80: bind: permission denied")))
	// In main: os.Exit(lameduck.ExitCode(lameduck.Run(ctx, srv)))
	// Output:
	// 0
	// 2
	// 1
}
