// Package lameduck stops a server without dropping its work.
//
// When a process is told to stop (SIGTERM from Kubernetes, Ctrl-C at a
// terminal, or the cancellation of a context), [Run] puts its [Server] into
// lame-duck mode: the server stops taking new work, finishes what it has in
// flight, and returns. The drain is bounded by the lame-duck period (see
// [Period]); a server still busy when the period ends is closed by force. Run
// then says how the stop went: nil for a clean drain, the server's own error
// if it failed, or a [*LameDuckError] when the drain failed or ran out of time.
//
// Anything with Serve, Shutdown and Close methods shaped like
// [net/http.Server]'s can be run. [FromHTTP] adapts an *http.Server,
// [FromWorker] turns a pull-based queue consumer into a Server, and
// [FromGRPC] bounds a gRPC server's GracefulStop, [ServerFuncs] builds a
// Server from closures, and [Group] runs several under one period; when one
// of them fails, [Stop] turns the failure into a graceful stop of the rest.
// [WithPreShutdown] adds steps that run before the drain, such as failing a
// [Readiness] probe and waiting ([Delay]) for load balancers to notice;
// [WithPostShutdown] adds steps that run once the server has stopped, such
// as flushing telemetry. [Named] gives a step a name for the logs.
//
// The main function of an HTTP service that drains for up to ten seconds
// on SIGTERM, and exits with a status that says how the stop went:
//
//	func main() {
//		flag.Parse() // glog's flags, such as -logtostderr
//		mux := http.NewServeMux()
//		mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
//			fmt.Fprintln(w, "hello")
//		})
//		srv := &http.Server{Addr: ":8080", Handler: mux}
//		err := lameduck.Run(context.Background(), lameduck.FromHTTP(srv),
//			lameduck.Period(10*time.Second))
//		if err != nil {
//			log.Print(err)
//		}
//		os.Exit(lameduck.ExitCode(err)) // 0 clean, 1 failed, 2 forced
//	}
//
// The Runner logs each phase once, through glog unless [WithLogger],
// [WithSlog] or [WithoutLogger] says otherwise; with glog's default flags
// only failures and forced stops reach stderr (pass -logtostderr for all).
// The rules Run follows are numbered in CONTRACT.md, in the repository.
//
// Run promises that, by the time it returns, the signal handlers it installed
// are removed and every goroutine it started has ended (unless a Server method
// refuses to return even after Close; Run then reports that in its error
// rather than hang).
package lameduck

import "context"

// Server is a thing that Run can start and stop. Its methods follow the
// contract of [net/http.Server]'s methods of the same names.
//
// Serve does the work until the server is shut down or closed. It returns nil
// when it stopped because Shutdown or Close was called, or because it ran out
// of work; any other error means the server failed. Its context carries the
// values of the context given to Run. Run does not cancel it when lame-duck
// mode begins (work in flight must be allowed to finish); Run cancels it when
// it calls Close, and always before Run returns.
//
// Shutdown stops taking new work and waits for the work in flight to finish.
// It returns nil once everything has finished, or the context's error if the
// context ends first. Run gives it a context whose deadline is the end of the
// lame-duck period.
//
// Close stops everything at once. Run calls it when the period expires, when
// Shutdown fails, on a second signal, and when Serve fails before lame-duck
// mode (so that nothing the server started outlives Run); it may be called
// while Shutdown is still running and must make Shutdown and Serve return
// promptly.
//
// A Server that holds several units of work can ask for a graceful stop of
// all of them, when one fails, with [Stop] and the context Serve was given.
type Server interface {
	Serve(ctx context.Context) error
	Shutdown(ctx context.Context) error
	Close() error
}

// Run serves svr until lame-duck mode begins and then drains it, as
// configured by options. It is short for NewRunner followed by
// [Runner.Run]; use a [Runner] when you need its Ready channel.
//
// Lame-duck mode begins on the first of the configured signals (by default
// SIGINT and SIGTERM), when ctx is cancelled, or when the Server asks for it
// with [Stop], whichever comes first. A signal received during lame-duck mode
// ends the period at once when a signal began it; after any other trigger it
// takes a second one, so that one SIGTERM seen both through a
// [os/signal.NotifyContext] ctx and through Run's own handler counts once. Run
// returns:
//
//   - nil when Serve returns nil before lame-duck mode begins, or when the
//     drain finishes within the period and nothing failed;
//   - Serve's error, unwrapped, when Serve fails before lame-duck mode
//     begins (Close is called first, and its error joined if it fails);
//   - the failures that Serve returned or reported through Stop (a [Group]
//     member's, named; a [Worker] handler's) when the drain they began, or
//     that was under way, otherwise finished cleanly;
//   - a [*LameDuckError] when Shutdown fails, the period runs out or a second
//     signal cuts it short; its Err holds every error seen during the stop;
//   - an error starting with "lameduck: " when the arguments are invalid.
//
// If Close, Serve, Shutdown or a pre-shutdown step has not returned within
// the close grace after Close was called (one second unless [CloseGrace]
// says otherwise), Run returns anyway, with an error naming what is still
// running, and leaves it behind.
//
// The post-shutdown steps ([WithPostShutdown]) run after all of this, in
// every case but invalid arguments; their errors are only logged.
func Run(ctx context.Context, svr Server, options ...Option) error {
	r, err := NewRunner(svr, options...)
	if err != nil {
		return err
	}
	return r.Run(ctx)
}
