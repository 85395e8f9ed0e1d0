package e2e

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"
)

// plainEnv, set to an address, makes the test binary run plainServer there
// instead of the tests: the control of the passive-proxy test, a server that
// stops with net/http's own Shutdown and none of lameduck's help.
const plainEnv = "LAMEDUCK_E2E_PLAIN_ADDR"

// plainServer serves examples/httpserver's routes on addr with a bare
// *http.Server and, on SIGTERM, waits delay and calls Shutdown, as a
// program written without lameduck would. It prints "listening on ADDR"
// once it accepts.
func plainServer(addr string, delay time.Duration) int {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, "hello") })
	mux.HandleFunc("GET /slow", func(w http.ResponseWriter, r *http.Request) {
		d, _ := time.ParseDuration(r.FormValue("d"))
		time.Sleep(d)
		fmt.Fprintf(w, "slept %v", d)
	})
	srv := &http.Server{Addr: addr, Handler: mux}
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM)
	done := make(chan error, 1)
	go func() {
		<-sig
		time.Sleep(delay)
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		done <- srv.Shutdown(ctx)
	}()
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	fmt.Printf("listening on %s\n", ln.Addr())
	if err := srv.Serve(ln); err != http.ErrServerClosed {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	if err := <-done; err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	return 0
}
