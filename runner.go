package lameduck

import (
	"context"
	"errors"
	"fmt"
	"os"
	"reflect"
	"strings"
	"sync/atomic"
	"time"
)

// closeGrace is how long a Runner waits, after calling Close, for Close,
// Serve and Shutdown to return. A well-behaved Server needs far less. One
// whose methods ignore Close would otherwise hang Run for ever; once the grace
// has passed, Run returns an error that names the methods still running and
// leaves their goroutines behind.
const closeGrace = time.Second

// Runner runs one Server with lame-duck behaviour. Make one with [NewRunner];
// it can be run once.
type Runner struct {
	svr   Server
	cfg   config
	ready chan struct{}
	ran   atomic.Bool
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
	return &Runner{svr: svr, cfg: cfg, ready: make(chan struct{})}, nil
}

// validator is implemented by this package's helpers so that NewRunner can
// reject one built from bad input before anything starts.
type validator interface{ validate() error }

func checkServer(svr Server) error {
	if svr == nil {
		return errors.New("lameduck: nil Server")
	}
	if v := reflect.ValueOf(svr); v.Kind() == reflect.Pointer && v.IsNil() {
		return fmt.Errorf("lameduck: nil %T Server", svr)
	}
	if v, ok := svr.(validator); ok {
		return v.validate()
	}
	return nil
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
	ru := &run{Runner: r, sigc: make(chan os.Signal, 2)}
	return ru.serve(ctx)
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

func (ru *run) logf(format string, args ...any) { ru.cfg.logger.Infof(format, args...) }

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
	ru.logf("lameduck: serving; lame-duck mode begins on %s", ru.triggers())

	for {
		select {
		case err := <-ru.serveDone:
			ru.serveDone = nil
			if err != nil {
				ru.logf("lameduck: Serve failed: %v", err)
			} else {
				ru.logf("lameduck: Serve returned; nothing to drain")
			}
			return err
		case <-ready:
			ready = nil
			close(ru.ready)
		case sig := <-ru.sigc:
			return ru.lameDuck(ctx, fmt.Sprintf("received signal %q", sig))
		case <-ctx.Done():
			return ru.lameDuck(ctx, fmt.Sprintf("context done (%v)", context.Cause(ctx)))
		}
	}
}

func (ru *run) triggers() string {
	var names []string
	for _, s := range ru.cfg.signals {
		names = append(names, fmt.Sprintf("%q", s))
	}
	return strings.Join(append(names, "context cancellation"), ", ")
}

// lameDuck drains the Server after a trigger and decides what Run returns.
func (ru *run) lameDuck(ctx context.Context, trigger string) error {
	start := time.Now()
	ru.logf("lameduck: %s; entering lame-duck mode for up to %v", trigger, ru.cfg.period)

	// The drain keeps Run's values but not its cancellation: a cancelled
	// context would make Shutdown give up at once instead of draining.
	drainCtx, cancelDrain := context.WithTimeout(context.WithoutCancel(ctx), ru.cfg.period)
	defer cancelDrain()
	shutdownDone := make(chan error, 1)
	go func() { shutdownDone <- ru.drain(drainCtx) }()

	for {
		select {
		case err := <-shutdownDone:
			shutdownDone = nil
			switch {
			case errors.Is(err, context.DeadlineExceeded):
				if drainCtx.Err() != nil {
					ru.logf("lameduck: lame-duck period of %v expired", ru.cfg.period)
				} else {
					ru.logf("lameduck: Shutdown gave up before the period ended: %v", err)
				}
				return &LameDuckError{Expired: true, Err: ru.closeAndWait(nil)}
			case err != nil:
				ru.logf("lameduck: Shutdown failed: %v", err)
				if closeErr := ru.closeAndWait(nil); closeErr != nil {
					err = errors.Join(err, closeErr)
				}
				return &LameDuckError{Err: err}
			}
			if ru.serveDone == nil {
				return ru.drained(start)
			}
		case err := <-ru.serveDone:
			ru.serveDone, ru.serveErr = nil, err
			if shutdownDone == nil {
				return ru.drained(start)
			}
		case <-drainCtx.Done():
			if shutdownDone == nil {
				ru.logf("lameduck: lame-duck period of %v expired; Shutdown returned but Serve did not", ru.cfg.period)
			} else {
				ru.logf("lameduck: lame-duck period of %v expired", ru.cfg.period)
			}
			cancelDrain()
			return &LameDuckError{Expired: true, Err: ru.closeAndWait(shutdownDone)}
		case sig := <-ru.sigc:
			ru.logf("lameduck: received signal %q again; ending the lame-duck period now", sig)
			cancelDrain()
			return &LameDuckError{Expired: true, Err: ru.closeAndWait(shutdownDone)}
		}
	}
}

func (ru *run) drained(start time.Time) error {
	if ru.serveErr != nil {
		ru.logf("lameduck: drained in %v; Serve failed: %v", time.Since(start), ru.serveErr)
	} else {
		ru.logf("lameduck: drained in %v", time.Since(start))
	}
	return ru.serveErr
}

// drain runs the pre-shutdown steps and then Shutdown, all under ctx.
func (ru *run) drain(ctx context.Context) error {
	for i, step := range ru.cfg.steps {
		if err := ctx.Err(); err != nil {
			return err
		}
		name := fmt.Sprintf("pre-shutdown step %d of %d", i+1, len(ru.cfg.steps))
		if err := ru.guard(name, func() error { return step(ctx) }); err != nil {
			ru.logf("lameduck: %s failed: %v", name, err)
		}
	}
	// Steps that used up the budget leave nothing for Shutdown: Run is
	// already on its way to Close, and Shutdown would only race it.
	if err := ctx.Err(); err != nil {
		return err
	}
	return ru.guard("Shutdown", func() error { return ru.svr.Shutdown(ctx) })
}

// closeAndWait cancels Serve's context, calls Close, and waits for Close,
// for Serve and, when shutdownDone is not nil, for Shutdown to return, for at
// most closeGrace. It returns Close's error, joined with an error naming any
// method that was still running when the grace ran out.
func (ru *run) closeAndWait(shutdownDone <-chan error) error {
	ru.cancelServe()
	closeDone := make(chan error, 1)
	go func() { closeDone <- ru.guard("Close", ru.svr.Close) }()

	grace := time.NewTimer(closeGrace)
	defer grace.Stop()
	var closeErr error
	for closeDone != nil || shutdownDone != nil || ru.serveDone != nil {
		select {
		case closeErr = <-closeDone:
			closeDone = nil
			if closeErr != nil {
				ru.logf("lameduck: Close failed: %v", closeErr)
			} else {
				ru.logf("lameduck: server closed")
			}
		case <-shutdownDone:
			shutdownDone = nil
		case <-ru.serveDone:
			ru.serveDone = nil
		case <-grace.C:
			var stuck []string
			if closeDone != nil {
				stuck = append(stuck, "Close")
			}
			if shutdownDone != nil {
				stuck = append(stuck, "Shutdown")
			}
			if ru.serveDone != nil {
				stuck = append(stuck, "Serve")
			}
			list := strings.Join(stuck, ", ")
			if i := strings.LastIndex(list, ", "); i >= 0 {
				list = list[:i] + " and " + list[i+2:]
			}
			err := fmt.Errorf("lameduck: %s did not return within %v of Close being called", list, closeGrace)
			ru.logf("%v", err)
			return errors.Join(closeErr, err)
		}
	}
	return closeErr
}
