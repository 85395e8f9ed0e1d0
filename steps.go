package lameduck

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync/atomic"
	"time"
)

// stepList runs a list of pre- or post-shutdown steps in order, and can say
// from any goroutine which one is running, by position and, when the step
// was made with [Named], by name.
type stepList struct {
	kind  string // "pre-shutdown" or "post-shutdown"
	list  []func(context.Context) error
	at    atomic.Int32              // the position running; len(list) once past them
	label atomic.Pointer[stepLabel] // the running step's label
}

// stepLabelKey is the context key under which a step finds its label.
type stepLabelKey struct{}

// stepLabel is where a [Named] step writes its name while it runs.
type stepLabel struct {
	name  atomic.Pointer[string]
	first atomic.Pointer[string] // the first name given to the step as a whole, kept for the Report
}

func (l *stepLabel) get() string {
	if l == nil {
		return ""
	}
	if p := l.name.Load(); p != nil {
		return *p
	}
	return ""
}

// run runs the steps under ctx, logging each failure. It stops before the
// next step once ctx is done, and returns ctx's error then.
func (s *stepList) run(ctx context.Context, ru *run) error {
	n := len(s.list)
	for i, step := range s.list {
		if err := ctx.Err(); err != nil {
			return err
		}
		label := new(stepLabel)
		s.label.Store(label)
		s.at.Store(int32(i))
		stepCtx := context.WithValue(ctx, stepLabelKey{}, label)
		err := ru.timed(func() string { return s.reportName(i, label) }, func() error {
			return ru.guard(s.position(i), func() error { return step(stepCtx) })
		})
		// A step that gave up because the period ended (or a signal ended
		// it) is not a failure of its own: the line that says why the
		// period ended names it.
		if err != nil && (ctx.Err() == nil || !errors.Is(err, ctx.Err())) {
			attrs := []slog.Attr{slog.String("stage", s.describe(i, label)), slog.Int("step", i+1), slog.Int("steps", n)}
			if name := label.get(); name != "" {
				attrs = append(attrs, slog.String("name", name))
			}
			ru.log(slog.LevelWarn, "lameduck: step failed", "lameduck: {stage} failed: {error}", append(attrs, slog.Any("error", err))...)
		}
	}
	// A step that ran out the budget stays the current one, so that the
	// expiry is told against it.
	if err := ctx.Err(); err != nil {
		return err
	}
	s.at.Store(int32(n))
	return nil
}

// position names step i by its position alone, such as "pre-shutdown step
// 2 of 4".
func (s *stepList) position(i int) string {
	return fmt.Sprintf("%s step %d of %d", s.kind, i+1, len(s.list))
}

// describe is position with the step's name, when it has one.
func (s *stepList) describe(i int, label *stepLabel) string {
	if name := label.get(); name != "" {
		return fmt.Sprintf("%s (%s)", s.position(i), name)
	}
	return s.position(i)
}

// current describes the step running now, or returns "" once the steps
// are over.
// reportName names step i for the Report: by the name it runs under now,
// or, once it has returned fine (and Named has put back the name around
// it), by the first name it was given.
func (s *stepList) reportName(i int, label *stepLabel) string {
	if label.get() == "" {
		if first := label.first.Load(); first != nil {
			return fmt.Sprintf("%s (%s)", s.position(i), *first)
		}
	}
	return s.describe(i, label)
}

func (s *stepList) current() string {
	i := int(s.at.Load())
	if i >= len(s.list) {
		return ""
	}
	return s.describe(i, s.label.Load())
}

// postShutdown runs the post-shutdown steps once the Server has stopped,
// whatever the outcome (err is what Run is about to return), and returns
// Run's result. The steps' own errors are only logged; a step that has not
// returned the close grace after its context ended is named in the result, as a
// stuck Server method is.
//
// Their deadline is the end of the lame-duck period. When less than
// the close grace of it is left (the period ran out, or a second signal ended
// it) they get the close grace from now; when no lame-duck mode began (Serve
// returned first) they get a whole period. A signal while they run ends
// their context at once when it is a second signal as rule 7 counts them:
// after a signal began lame-duck mode, the first one; otherwise the
// second.
func (ru *run) postShutdown(ctx context.Context, err error) error {
	if len(ru.post.list) == 0 {
		return err
	}
	now := time.Now()
	deadline := ru.periodEnd
	if deadline.IsZero() {
		deadline = now.Add(ru.cfg.period)
	}
	if least := now.Add(ru.cfg.closeGrace); deadline.Before(least) {
		deadline = least
	}
	postCtx, cancel := context.WithDeadline(context.WithoutCancel(ctx), deadline)
	defer cancel()
	running := ru.spawn("post-shutdown steps", func() error { return ru.post.run(postCtx, ru) })

	sigc, ctxDone := ru.sigc, postCtx.Done()
	var graceOver <-chan time.Time
	for !running.finished() {
		select {
		case <-running.done:
		case sig := <-sigc:
			// Counted as during the drain (rule 7): the first signal after
			// a context, a Stop or Serve's own return forces nothing.
			if !ru.forces() {
				ru.log(slog.LevelInfo, "lameduck: signal during post-shutdown steps", `lameduck: received signal "{signal}" during {stage}; another one ends the post-shutdown steps now`,
					slog.String("signal", sig.String()), slog.String("stage", ru.post.current()))
				continue
			}
			sigc = nil
			ru.log(slog.LevelWarn, "lameduck: second signal ends the post-shutdown steps", `lameduck: received signal "{signal}" during {stage}; ending the post-shutdown steps now`,
				slog.String("signal", sig.String()), slog.String("stage", ru.post.current()))
			cancel()
		case <-ctxDone:
			ctxDone = nil
			grace := time.NewTimer(ru.cfg.closeGrace)
			defer grace.Stop()
			graceOver = grace.C
		case <-graceOver:
			stuck := fmt.Errorf("lameduck: %s did not return within %v of its context ending", ru.post.current(), ru.cfg.closeGrace)
			ru.log(slog.LevelError, "lameduck: post-shutdown step still running", "lameduck: {running} did not return within {grace} of its context ending",
				slog.String("running", ru.post.current()), slog.Duration("grace", ru.cfg.closeGrace))
			if lde, ok := err.(*LameDuckError); ok {
				lde.Err = joinErrors(lde.Err, stuck)
				return lde
			}
			return joinErrors(err, stuck)
		}
	}
	if running.err != nil {
		ru.log(slog.LevelWarn, "lameduck: post-shutdown steps cut short", "lameduck: post-shutdown steps cut short at {stage}: {error}",
			slog.String("stage", ru.post.current()), slog.Any("error", running.err))
	}
	return err
}
