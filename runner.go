package lameduck

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"reflect"
	"sync"
	"sync/atomic"
	"time"
)

// Runner runs one Server with lame-duck behaviour. Make one with [NewRunner];
// it can be run once.
type Runner struct {
	svr      Server
	cfg      config
	ready    chan struct{}
	lameDuck chan struct{} // closed when lame-duck mode begins
	life     lifecycle     // Run starts it, lame-duck mode stops it, Run's return closes it
	failed   atomic.Bool   // Run returned an error; set before life is closed
	book     book          // what Run writes down for Report
}

// NewRunner checks svr and options and returns a Runner for them. It fails,
// with an error starting "lameduck: ", when svr is nil or is a helper built
// from invalid input (such as a [ServerFuncs] without a ServeFunc, a
// zero-value [Worker] or a [Group] without members) or when an option is
// invalid.
func NewRunner(svr Server, options ...Option) (*Runner, error) {
	if err := checkServer(svr); err != nil {
		return nil, err
	}
	cfg := defaultConfig()
	for i, o := range options {
		if o == nil {
			return nil, fmt.Errorf("lameduck: option %d is nil", i)
		}
		if err := o.apply(&cfg); err != nil {
			return nil, err
		}
	}
	if err := checkDelays(cfg.steps, cfg.period); err != nil {
		return nil, err
	}
	if err := fitDrain(svr, cfg.period-delays(cfg.steps)); err != nil {
		return nil, err
	}
	return &Runner{svr: svr, cfg: cfg, ready: make(chan struct{}), lameDuck: make(chan struct{})}, nil
}

// validator is implemented by this package's helpers so that NewRunner can
// reject one built from bad input before anything starts.
type validator interface{ validate() error }

// drainFitter is a Server with a setting that must fit in the time the
// period leaves for Shutdown (HTTPServer's Spread), or a Group or Member
// that passes the question on.
type drainFitter interface{ fitDrain(d time.Duration) error }

// fitDrain asks svr whether its settings fit in d, if it has any that must.
func fitDrain(svr Server, d time.Duration) error {
	if f, ok := svr.(drainFitter); ok {
		return f.fitDrain(d)
	}
	return nil
}

func checkServer(svr Server) error {
	if svr == nil {
		return errors.New("lameduck: nil Server")
	}
	if isNil(svr) {
		return fmt.Errorf("lameduck: nil %T Server", svr)
	}
	if v, ok := svr.(validator); ok {
		return v.validate()
	}
	return nil
}

// isNil reports whether v is nil or an interface holding a nil pointer, map,
// slice, func or channel: a value whose methods would panic or block.
func isNil(v any) bool {
	if v == nil {
		return true
	}
	switch rv := reflect.ValueOf(v); rv.Kind() {
	case reflect.Pointer, reflect.Map, reflect.Slice, reflect.Func, reflect.Chan, reflect.Interface:
		return rv.IsNil()
	}
	return false
}

// Ready returns a channel that is closed once the Runner's signal handlers
// are installed and its Server has started serving. When the Server has a
// method Ready() <-chan struct{} (as [HTTPServer] does), the channel also
// waits for that one, so that for an HTTP server it means the port is bound.
//
// The channel is never closed if the Server fails, or lame-duck mode begins,
// before it is ready: wait on it together with Run's return.
func (r *Runner) Ready() <-chan struct{} {
	if r == nil {
		return nil
	}
	return r.ready
}

// Run serves the Runner's Server until lame-duck mode begins, then drains it;
// see [Run] for what it returns. Calling Run a second time returns an error.
func (r *Runner) Run(ctx context.Context) error {
	switch {
	case r == nil || r.svr == nil:
		return errors.New("lameduck: Runner not made by NewRunner")
	case ctx == nil:
		return errors.New("lameduck: Run called with a nil Context")
	}
	if _, err := r.life.start("Runner's Run"); err != nil {
		return err
	}
	ru := &run{r: r, cfg: &r.cfg, sigc: make(chan os.Signal, 2), stopAsked: make(chan struct{}), toForce: 2}
	ru.pre.kind, ru.pre.list = "pre-shutdown", r.cfg.steps
	ru.post.kind, ru.post.list = "post-shutdown", r.cfg.post
	// Handlers go in before Serve starts and before Ready can close, so a
	// signal sent the moment a caller sees "ready" takes the graceful path
	// instead of the default action (which would kill the process). They
	// stay until the post-shutdown steps are over, for the same reason.
	if len(r.cfg.signals) > 0 {
		r.cfg.source.Notify(ru.sigc, r.cfg.signals...)
	}
	err := ru.serveUntilStopped(ctx)
	ru.end()
	// The outcome is known before the post-shutdown steps, so that a step
	// that pushes the Report sends it; a step stuck past the grace may
	// still change it.
	ru.noteOutcome(err)
	err = ru.postShutdown(ctx, err)
	if len(r.cfg.signals) > 0 {
		r.cfg.source.Stop(ru.sigc)
	}
	ru.noteOutcome(err)
	ru.noteReturn()
	r.failed.Store(err != nil)
	r.life.stop(phaseClosed)
	ru.logReport()
	ru.flushLog()
	return err
}

// run holds the state of one call of Runner.Run. Its tasks can be read from
// anywhere; the fields under mu are written by Servers calling [Stop], from
// their own goroutines.
type run struct {
	r              *Runner
	cfg            *config
	sigc           chan os.Signal
	cancelServe    context.CancelCauseFunc
	serve          *task
	pre, post      stepList      // the pre- and post-shutdown steps
	shutdownCalled atomic.Bool   // set by the drain, after stepsTook, as it calls Shutdown
	stepsTook      time.Duration // set by the drain before it calls Shutdown
	periodEnd      time.Time     // trigger time + period; zero until a trigger
	toForce        int           // signals still to come before one forces the end (rule 7)
	stopAsked      chan struct{} // closed by the first call of Stop

	mu     sync.Mutex
	asked  bool    // stopAsked is closed
	ended  bool    // Run has returned: Stop is a no-op
	causes []error // the failures Servers reported through Stop, in order
}

// trigger is what began lame-duck mode.
type trigger struct {
	kind   string      // "signal", "context" or "stop", for the Report
	cause  string      // the signal's name or the context's cause, for the Report
	signal os.Signal   // the signal received, if a signal began it
	tmpl   string      // the log's template for it, such as `received signal "{signal}"`
	attrs  []slog.Attr // what tmpl names, and "trigger"
}

var stopTrigger = trigger{kind: "stop", tmpl: "stop requested", attrs: []slog.Attr{slog.String("trigger", "stop")}}

// serveUntilStopped starts the Server, waits for a trigger or for Serve to
// end, and stops it.
func (ru *run) serveUntilStopped(ctx context.Context) error {
	base := context.WithValue(context.WithoutCancel(ctx), stopKey{}, ru)
	// Servers that settle work after Close (FromWorker) bound it by the
	// same grace the Runner gives them.
	giveCloseGrace(ru.r.svr, ru.cfg.closeGrace)
	serveCtx, cancel := context.WithCancelCause(base)
	defer cancel(nil)
	ru.cancelServe = cancel
	ru.serve = ru.spawn("Serve", func() error { return ru.r.svr.Serve(serveCtx) })

	var ready <-chan struct{}
	if rs, ok := ru.r.svr.(interface{ Ready() <-chan struct{} }); ok {
		ready = rs.Ready()
	} else {
		ru.becameReady()
	}
	ru.logServing()

	for {
		select {
		case <-ru.serve.done:
			// A Server that asked to stop and then returned at once (a
			// worker whose handler failed) still gets its graceful stop.
			if !ru.endUnlessAsked() {
				ru.skipStepsIfNeverReady(ready)
				return ru.lameDuck(ctx, stopTrigger)
			}
			return ru.served()
		case <-ready:
			ready = nil
			ru.becameReady()
		case sig := <-ru.sigc:
			return ru.lameDuck(ctx, trigger{kind: "signal", cause: sig.String(), signal: sig, tmpl: `received signal "{signal}"`,
				attrs: []slog.Attr{slog.String("trigger", "signal"), slog.String("signal", sig.String())}})
		case <-ctx.Done():
			cause := context.Cause(ctx)
			return ru.lameDuck(ctx, trigger{kind: "context", cause: fmt.Sprint(cause), tmpl: "context done ({cause})",
				attrs: []slog.Attr{slog.String("trigger", "context"), slog.Any("cause", cause)}})
		case <-ru.stopAsked:
			ru.skipStepsIfNeverReady(ready)
			return ru.lameDuck(ctx, stopTrigger)
		}
	}
}

// skipStepsIfNeverReady drops the pre-shutdown steps when a part of the
// Server failed (reported through Stop) before the Server was ever ready:
// no load balancer sent it traffic, so there is nothing to fail or wait
// for, and a failed start should not take a readiness delay to report.
// ready is the Server's Ready channel, nil when it has none or it has
// already been seen closed.
func (ru *run) skipStepsIfNeverReady(ready <-chan struct{}) {
	if ready == nil || len(ru.pre.list) == 0 {
		return
	}
	select {
	case <-ready:
		return
	default:
	}
	ru.mu.Lock()
	failed := len(ru.causes) > 0
	ru.mu.Unlock()
	if failed {
		ru.log(slog.LevelInfo, "lameduck: the server failed before it was ready; skipping the pre-shutdown steps", "")
		ru.pre.list = nil
	}
}

// becameReady closes the Runner's Ready channel and calls the functions
// given with WithReady. One that panics is logged, not fatal: being told of
// readiness is not a reason to stop serving.
func (ru *run) becameReady() {
	close(ru.r.ready)
	for _, f := range ru.cfg.onReady {
		if err := call("WithReady function", func() error { f(); return nil }); err != nil {
			ru.log(slog.LevelError, "lameduck: WithReady function failed", "lameduck: {error}", slog.Any("error", err))
		}
	}
}

// served handles Serve returning before any trigger: nil ends Run at once;
// an error still gets Close, so that nothing the Server started outlives
// Run (rule 8).
func (ru *run) served() error {
	err := ru.serve.err
	if err == nil {
		ru.log(slog.LevelInfo, "lameduck: Serve returned; nothing to drain", "")
		return nil
	}
	ru.log(slog.LevelError, "lameduck: Serve failed", "lameduck: Serve failed: {error}", slog.Any("error", err))
	closing, stuck := ru.closeAndWait(nil)
	return joinErrors(err, closing.result(), stuck)
}

// end makes later calls of Stop no-ops.
func (ru *run) end() {
	ru.mu.Lock()
	defer ru.mu.Unlock()
	ru.ended = true
}

// endUnlessAsked ends Stop, as end does, unless Stop has already been
// called; it reports whether it did. Checking and ending in one step means
// that a Stop racing Serve's return is either refused or drained.
func (ru *run) endUnlessAsked() bool {
	ru.mu.Lock()
	defer ru.mu.Unlock()
	if ru.asked {
		return false
	}
	ru.ended = true
	return true
}

func (ru *run) signalNames() []string {
	var names []string
	for _, s := range ru.cfg.signals {
		names = append(names, s.String())
	}
	return names
}
