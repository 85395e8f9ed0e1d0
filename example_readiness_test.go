package lameduck_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/b583c413/lameduck"
)

// getReadyz prints what base/readyz answers.
func getReadyz(base string) {
	resp, err := http.Get(base + "/readyz")
	if err != nil {
		fmt.Println(err)
		return
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	fmt.Printf("%d %q\n", resp.StatusCode, body)
}

// A service that must load its data before it takes traffic: the probe
// says 503 until the data is in, although the port is bound and the other
// handlers already answer.
func ExampleWarming() {
	ready := lameduck.Warming()
	mux := http.NewServeMux()
	mux.Handle("/readyz", ready)
	h := lameduck.FromHTTP(&http.Server{Addr: "127.0.0.1:0", Handler: mux})

	r, _ := lameduck.NewRunner(h, lameduck.WithoutLogger(),
		lameduck.WithPreShutdown(ready.Fail, lameduck.Delay(10*time.Millisecond)))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	<-r.Ready() // the port is bound: the probe can answer
	base := "http://" + h.Addr().String()

	getReadyz(base)
	fmt.Println("loading the data…") // stands for the warm-up
	ready.Warmed()
	getReadyz(base)

	cancel()
	fmt.Println("Run:", <-done)
	// Output:
	// 503 "warming up\n"
	// loading the data…
	// 200 "ok"
	// Run: <nil>
}

// Behind a balancer that checks /readyz every 10 ms and takes a server out
// after one failed check (HAProxy: inter 10ms fall 1), the step keeps the
// server serving until the balancer has had its 503 and 20 ms more, instead
// of a fixed delay sized for the worst case. The Ceiling bounds the wait if
// no balancer ever asks.
func ExampleReadiness_FailUntilSeen() {
	var ready lameduck.Readiness
	mux := http.NewServeMux()
	mux.Handle("/readyz", &ready)
	h := lameduck.FromHTTP(&http.Server{Addr: "127.0.0.1:0", Handler: mux})

	r, _ := lameduck.NewRunner(h, lameduck.WithoutLogger(), lameduck.Period(10*time.Second),
		lameduck.WithPreShutdown(ready.FailUntilSeen(lameduck.Seen{
			Answers: 1, // HAProxy's fall
			Margin:  20 * time.Millisecond,
			Ceiling: 5 * time.Second,
		})))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	<-r.Ready()
	base := "http://" + h.Addr().String()
	getReadyz(base)

	begin := time.Now()
	cancel() // lame-duck mode begins
	checks := time.NewTicker(10 * time.Millisecond)
	defer checks.Stop()
	for getReadyzQuietly(base) != http.StatusServiceUnavailable {
		<-checks.C
	}
	fmt.Println("the balancer saw 503 and took the server out")
	fmt.Println("Run:", <-done)
	fmt.Println("stopped well before the ceiling:", time.Since(begin) < 5*time.Second)
	// Output:
	// 200 "ok"
	// the balancer saw 503 and took the server out
	// Run: <nil>
	// stopped well before the ceiling: true
}

// getReadyzQuietly returns the status base/readyz answers, printing nothing.
func getReadyzQuietly(base string) int {
	resp, err := http.Get(base + "/readyz")
	if err != nil {
		return 0
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode
}
