package lameduck

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"reflect"
	"strings"
	"sync/atomic"
)

// Runner runs one Server with lame-duck behaviour. Make one with [NewRunner];
// it can be run once.
type Runner struct {
	svr   Server
	cfg   config
	ready chan struct{}
	ran   atomic.Bool

	state    atomic.Int32 // a State
	lameDuck chan struct{}
}

// NewRunner checks svr and options and returns a Runner for them. It fails,
// with an error starting "lameduck: ", when svr is nil or is a helper built
// from invalid input (such as a [ServerFuncs] without a ServeFunc) or when an
// option is invalid.
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
	return &Runner{svr: svr, cfg: cfg, ready: make(chan struct{}), lameDuck: make(chan struct{})}, nil
}

// validator is implemented by this package's helpers so that NewRunner can
// reject one built from bad input before anything starts.
type validator interface{ validate() error }

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
	case !r.ran.CompareAndSwap(false, true):
		return errors.New("lameduck: Runner.Run called more than once")
	}
	r.state.Store(int32(StateRunning))
	ru := &run{Runner: r, sigc: make(chan os.Signal, 2)}
	err := ru.serve(ctx)
	if err != nil {
		r.state.Store(int32(StateFailed))
	} else {
		r.state.Store(int32(StateStopped))
	}
	return err
}

// run holds the state of one call of Runner.Run. Only the goroutine that
// called Run touches its fields.
type run struct {
	*Runner
	sigc        chan os.Signal
	cancelServe context.CancelFunc
	serveDone   chan error // nil once Serve's result has been received
	serveErr    error
}

// note records one phase of the run: as a record with attributes when the
// Runner has a *slog.Logger, and otherwise as a line through its Logger.
func (ru *run) note(level slog.Level, msg string, attrs []slog.Attr, format string, args ...any) {
	if ru.cfg.slog != nil {
		ru.cfg.slog.LogAttrs(context.Background(), level, msg, attrs...)
		return
	}
	ru.cfg.logger.Infof(format, args...)
}

// serve starts the Server and waits for a trigger or for Serve to end.
func (ru *run) serve(ctx context.Context) error {
	// Handlers go in before Serve starts and before Ready can close, so a
	// signal sent the moment a caller sees "ready" takes the graceful path
	// instead of the default action (which would kill the process).
	if len(ru.cfg.signals) > 0 {
		ru.cfg.source.Notify(ru.sigc, ru.cfg.signals...)
		defer ru.cfg.source.Stop(ru.sigc)
	}

	serveCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	defer cancel()
	ru.cancelServe = cancel
	ru.serveDone = make(chan error, 1)
	go func() {
		ru.serveDone <- ru.guard("Serve", func() error { return ru.svr.Serve(serveCtx) })
	}()

	var ready <-chan struct{}
	if rs, ok := ru.svr.(interface{ Ready() <-chan struct{} }); ok {
		ready = rs.Ready()
	} else {
		close(ru.ready)
	}
	ru.note(slog.LevelInfo, "lameduck: serving", []slog.Attr{slog.Any("signals", ru.signalNames())},
		"lameduck: serving; lame-duck mode begins on %s", ru.triggers())

	for {
		select {
		case err := <-ru.serveDone:
			ru.serveDone = nil
			if err != nil {
				ru.note(slog.LevelError, "lameduck: Serve failed", []slog.Attr{slog.Any("error", err)},
					"lameduck: Serve failed: %v", err)
			} else {
				ru.note(slog.LevelInfo, "lameduck: Serve returned; nothing to drain", nil,
					"lameduck: Serve returned; nothing to drain")
			}
			return err
		case <-ready:
			ready = nil
			close(ru.ready)
		case sig := <-ru.sigc:
			return ru.lameDuck(ctx, fmt.Sprintf("received signal %q", sig),
				slog.String("trigger", "signal"), slog.String("signal", sig.String()))
		case <-ctx.Done():
			cause := context.Cause(ctx)
			return ru.lameDuck(ctx, fmt.Sprintf("context done (%v)", cause),
				slog.String("trigger", "context"), slog.Any("cause", cause))
		}
	}
}

func (ru *run) signalNames() []string {
	var names []string
	for _, s := range ru.cfg.signals {
		names = append(names, s.String())
	}
	return names
}

func (ru *run) triggers() string {
	var names []string
	for _, s := range ru.cfg.signals {
		names = append(names, fmt.Sprintf("%q", s))
	}
	return strings.Join(append(names, "context cancellation"), ", ")
}
