package lameduck

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"syscall"
	"time"
)

// Option changes how a [Runner] behaves. Options are applied in order over
// the defaults, so a later option wins over an earlier one of the same kind
// (the loggers, [WithLogger], [WithSlog] and [WithoutLogger], are one kind).
// Steps are the exception: each [WithPreShutdown] and [WithPostShutdown]
// adds its steps after those of the options before it, and so does
// [WithReady] with its functions.
//
// One rule names them: an option that sets a value is named for the value
// ([Period], [Signals], [CloseGrace]); one that hands the Runner something
// to call or to write to begins with With ([WithLogger], [WithSlog],
// [WithPreShutdown], [WithPostShutdown], [WithReady]), and [WithoutLogger]
// takes the logger away. The set of options is closed: only this package
// can make one.
type Option interface {
	apply(*config) error
}

// Logger receives one line for each phase of a run: serving, the trigger, each
// failed pre- or post-shutdown step (by position, and by name when it was
// made with [Named]), the outcome of the drain (with the time the
// pre-shutdown steps took apart from Shutdown's) or why the period ended
// (it ran out, during which step; or a second signal), and the outcome of
// Close. Infof is called from more than one goroutine, so it must be safe
// for concurrent use.
type Logger interface {
	Infof(format string, args ...any)
}

// config holds everything the options can set.
type config struct {
	period     time.Duration
	closeGrace time.Duration
	signals    []os.Signal
	logger     Logger
	slog       *slog.Logger                  // when set, used instead of logger
	steps      []func(context.Context) error // pre-shutdown
	post       []func(context.Context) error // post-shutdown
	onReady    []func()                      // WithReady
	source     signalSource
}

func defaultConfig() config {
	return config{
		period:     3 * time.Second,
		closeGrace: closeGrace,
		signals:    []os.Signal{os.Interrupt, syscall.SIGTERM},
		logger:     glogLogger{},
		source:     osSignals{},
	}
}

type optionFunc func(*config) error

func (f optionFunc) apply(c *config) error { return f(c) }

// Period sets the lame-duck period: the most time that the pre-shutdown steps
// and Shutdown get, together, from the moment lame-duck mode begins until the
// Runner gives up and calls Close. The default is 3 seconds. A period that is
// not positive makes NewRunner fail.
func Period(d time.Duration) Option {
	return optionFunc(func(c *config) error {
		if d <= 0 {
			return fmt.Errorf("lameduck: Period must be positive, got %v", d)
		}
		c.period = d
		return nil
	})
}

// CloseGrace sets how long the Runner waits, once it has called Close, for
// Close, Serve and whatever part of the drain is still running to return;
// the default is 1 second. Past it, Run returns an error naming what is
// stuck and leaves it running. The post-shutdown steps get at least this
// long after a forced stop, and a [Worker.Settle] function gets this long
// after Close to ack or nack what Close cut short: a Worker that the Runner
// runs, directly or in a [Group] or [Member]; one inside a Server of your
// own keeps the default. A grace that is not positive makes NewRunner fail.
func CloseGrace(d time.Duration) Option {
	return optionFunc(func(c *config) error {
		if d <= 0 {
			return fmt.Errorf("lameduck: CloseGrace must be positive, got %v", d)
		}
		c.closeGrace = d
		return nil
	})
}

// Signals replaces the list of signals that begin lame-duck mode; the default
// is [os.Interrupt] and [syscall.SIGTERM]. When a signal began lame-duck
// mode, the next one ends the period at once; when the context or [Stop]
// began it, the first signal does not, and the one after it does.
//
// Signals() with no arguments means that only cancelling the context given to
// Run begins lame-duck mode; no signal handler is installed at all.
func Signals(sigs ...os.Signal) Option {
	list := append([]os.Signal(nil), sigs...)
	return optionFunc(func(c *config) error {
		for i, s := range list {
			if s == nil {
				return fmt.Errorf("lameduck: Signals: signal %d is nil", i)
			}
		}
		c.signals = list
		return nil
	})
}

// WithLogger sends the Runner's log lines to l instead of the default, glog.
// The default logs failures and forced stops at glog's ERROR severity (so
// that they reach stderr with glog's default flags) and the rest at INFO, and
// Run flushes glog before it returns. To log nothing, use [WithoutLogger]; a
// nil l is an error.
func WithLogger(l Logger) Option {
	return optionFunc(func(c *config) error {
		if l == nil {
			return errors.New("lameduck: WithLogger(nil); use WithoutLogger to turn logging off")
		}
		c.logger, c.slog = l, nil
		return nil
	})
}

// WithSlog sends the Runner's phases to l as structured records instead of
// log lines, in slog's own style: each message is a constant, the same for
// every run, such as "lameduck: drained" or "lameduck: lame-duck period
// expired", and the figures are attributes that keep their types
// (durations are [slog.Duration], errors are errors): "took",
// "pre_shutdown", "shutdown", "period", "stage", "error". Others name what
// began lame-duck mode ("trigger": signal, context or stop; "signal";
// "cause") and, for a failed step, its "step", "steps" and "name". The last
// record is "lameduck: stop report", whose "report" attribute is the
// [Report] as a group (see [Report.LogValue]). Failures and forced stops
// are at level Warn or Error. WithSlog replaces the Logger; a nil l is an
// error.
func WithSlog(l *slog.Logger) Option {
	return optionFunc(func(c *config) error {
		if l == nil {
			return errors.New("lameduck: WithSlog(nil); use WithoutLogger to turn logging off")
		}
		c.slog = l
		return nil
	})
}

// WithoutLogger turns the Runner's logging off.
func WithoutLogger() Option {
	return optionFunc(func(c *config) error {
		c.logger, c.slog = nopLogger{}, nil
		return nil
	})
}

// WithPreShutdown adds steps that run, in order, once lame-duck mode begins
// and before Shutdown is called: failing a readiness probe, deregistering
// from service discovery, waiting for a load balancer to notice. Each step
// gets the drain context, whose deadline is the end of the lame-duck period,
// so the steps' time comes out of the same budget as Shutdown's.
//
// A step's error (or panic) is logged, by the step's position and, for a
// step made with [Named], its name, and the drain goes on; a step is never
// a reason to skip Shutdown. List the steps here rather than joining them
// with [Chain], which would make them one step whose failures cannot be told
// apart. Repeated WithPreShutdown options accumulate. A nil step makes
// NewRunner fail. When a part of the Server fails before the Server was
// ever ready (a Group member whose port is in use), the steps are skipped:
// no balancer sent it traffic.
func WithPreShutdown[F ~func(context.Context) error](steps ...F) Option {
	return stepsOption("WithPreShutdown", steps, func(c *config) *[]func(context.Context) error { return &c.steps })
}

// WithPostShutdown adds steps that run, in order, once the Server has
// stopped: after a clean drain, and also after Close (the period ran out, a
// second signal, Shutdown or Serve failed), or after Serve returned on its
// own. They are for what must outlive the servers and end with them:
// flushing telemetry, closing a database pool the handlers used. Repeated
// options accumulate; when several components each add steps, add them in
// the order they should stop.
//
// The steps get a context with the values of Run's and a deadline at the
// end of the lame-duck period: they use what the drain left of it. When less
// than the close grace ([CloseGrace], 1 second by default) is left (the
// period ran out, or a second signal ended it), the deadline is the grace
// away; when Serve returned before lame-duck mode began, it is a whole
// period away. A signal that would have forced the end of the period (rule
// 7 of CONTRACT.md: after a signal began lame-duck mode, the next one;
// otherwise the second) ends their context at once. A step is not started
// once the context has ended.
//
// A step's error (or panic) is logged and does not change what Run returns;
// a step that has not returned the close grace after its context ended is
// named in Run's error, and left running. A nil step makes NewRunner fail.
func WithPostShutdown[F ~func(context.Context) error](steps ...F) Option {
	return stepsOption("WithPostShutdown", steps, func(c *config) *[]func(context.Context) error { return &c.post })
}

// WithReady has the Runner call f once it is ready, when its Ready channel
// closes: the signal handlers are in place and the Server serves (for
// [FromHTTP], the port is bound, so [HTTPServer.Addr] has the address). It
// is the plain way for a main function to say "listening on ..." or to
// notify a supervisor, without a goroutine around Run. f runs on Run's
// goroutine and must return promptly; it is not called when Run ends before
// the Server is ready. Repeated options accumulate, called in order. A nil
// f makes NewRunner fail.
func WithReady(f func()) Option {
	return optionFunc(func(c *config) error {
		if f == nil {
			return errors.New("lameduck: WithReady(nil)")
		}
		c.onReady = append(c.onReady, f)
		return nil
	})
}

// stepsOption is WithPreShutdown and WithPostShutdown: it adds steps to the
// list that field picks, and rejects a nil one.
func stepsOption[F ~func(context.Context) error](name string, steps []F, field func(*config) *[]func(context.Context) error) Option {
	list := make([]func(context.Context) error, len(steps))
	for i, s := range steps {
		list[i] = s
	}
	return optionFunc(func(c *config) error {
		for i, s := range list {
			if s == nil {
				return fmt.Errorf("lameduck: %s: step %d is nil", name, i)
			}
		}
		dst := field(c)
		*dst = append(*dst, list...)
		return nil
	})
}

type nopLogger struct{}

func (nopLogger) Infof(string, ...any) {}
