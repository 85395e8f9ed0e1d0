package lameduck

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"slices"
	"time"
)

// lameDuck drains the Server after a trigger and decides what Run returns.
func (ru *run) lameDuck(ctx context.Context, trig trigger) error {
	start := ru.beginLameDuck(trig)
	// The drain keeps Run's values but not its cancellation: a cancelled
	// context would make Shutdown give up at once instead of draining.
	drainCtx, cancelDrain := context.WithTimeout(withDrainNotes(context.WithoutCancel(ctx)), ru.cfg.period)
	defer cancelDrain()
	drain := ru.spawn("drain", func() error { return ru.drain(drainCtx, start) })

	end := ru.awaitDrain(drainCtx, cancelDrain, drain, start)
	if end.clean {
		return ru.drained(start)
	}
	if !end.failed() {
		ru.noteHeld()
	}
	ru.logEnd(end)
	cancelDrain()
	return ru.closeAfterDrain(drain, end)
}

// beginLameDuck moves the Runner into lame-duck mode, logs the trigger and
// returns the time the period began.
func (ru *run) beginLameDuck(trig trigger) time.Time {
	start := time.Now()
	if trig.kind == "stop" {
		ru.mu.Lock()
		if len(ru.causes) > 0 {
			trig.cause = message(ru.causes[0])
		}
		ru.mu.Unlock()
	}
	ru.noteTrigger(trig.kind, trig.cause, start)
	ru.periodEnd = start.Add(ru.cfg.period)
	ru.r.life.stop(phaseStopping)
	close(ru.r.lameDuck)
	ru.log(slog.LevelInfo, "lameduck: entering lame-duck mode", "lameduck: "+trig.tmpl+"; entering lame-duck mode for up to {period}",
		append(slices.Clip(trig.attrs), slog.Duration("period", ru.cfg.period))...)
	// After a signal began lame-duck mode, the next one forces the end.
	// After a context or a Stop began it, the first signal is only the
	// first (rule 7): one SIGTERM that reached both a signal.NotifyContext
	// context and Run's own handler must count once.
	if trig.signal != nil {
		ru.toForce = 1
	}
	return start
}

// drainEnd is how the wait for a drain ended.
type drainEnd struct {
	clean   bool  // the drain returned nil and Serve returned: the rest is moot
	ended   bool  // the drain had returned
	err     error // what the drain returned, when it had
	serving bool  // Serve had not returned
	forced  bool  // a second signal ended the period
	ctxErr  error // the drain context's error when the wait ended
}

// failed reports whether Shutdown failed (rule 6), rather than running out
// of time: DeadlineExceeded from Shutdown, wrapped or not, is an expiry
// (rule 5).
func (e drainEnd) failed() bool {
	return e.ended && e.err != nil && !errors.Is(e.err, context.DeadlineExceeded)
}

// awaitDrain waits until the drain and Serve have both returned, the drain
// has failed, the period has ended, or a second signal ends it at once
// (rule 7), which cancels ctx.
func (ru *run) awaitDrain(ctx context.Context, cancel context.CancelFunc, drain *task, start time.Time) drainEnd {
	// Local copies, set to nil once seen, so the select stops waiting for
	// what has already happened; the tasks keep their results.
	serveDone, drainDone := ru.serve.done, drain.done
	forced := false
wait:
	for {
		select {
		case <-drainDone:
			drainDone = nil
			if drain.err != nil {
				break wait
			}
			if serveDone == nil {
				return drainEnd{clean: true}
			}
		case <-serveDone:
			serveDone = nil
			if drainDone == nil {
				return drainEnd{clean: true}
			}
		case <-ctx.Done():
			break wait
		case sig := <-ru.sigc:
			if forced = ru.forcedBy(sig, start); forced {
				cancel()
				break wait
			}
		}
	}
	end := drainEnd{ended: drainDone == nil, serving: serveDone != nil, forced: forced, ctxErr: ctx.Err()}
	if end.ended {
		end.err = drain.err
	}
	return end
}

// forcedBy counts sig, received during the drain, and reports whether it
// ends the period now (rule 7).
func (ru *run) forcedBy(sig os.Signal, start time.Time) bool {
	if !ru.forces() {
		ru.log(slog.LevelInfo, "lameduck: signal during lame-duck mode", `lameduck: received signal "{signal}" during lame-duck mode; another one ends the period now`,
			slog.String("signal", sig.String()))
		return false
	}
	ru.log(slog.LevelWarn, "lameduck: second signal ends the lame-duck period", `lameduck: received signal "{signal}" again after {elapsed}, during {stage}; ending the lame-duck period now`,
		slog.String("signal", sig.String()), slog.String("stage", ru.drainStage()), slog.Duration("elapsed", time.Since(start)))
	ru.periodEnd = time.Now() // what is left of it is not the post-shutdown steps' either
	return true
}

// forces counts a signal received after the trigger and reports whether it
// is the one that forces the end (rule 7): the first after a signal
// trigger, the second after any other. The count runs on through the
// post-shutdown steps.
func (ru *run) forces() bool {
	ru.toForce--
	return ru.toForce <= 0
}

// logEnd logs how a drain that did not finish cleanly ended: Shutdown
// failed or gave up, or the period ran out (a second signal has logged
// itself).
func (ru *run) logEnd(end drainEnd) {
	switch {
	case end.failed():
		ru.log(slog.LevelError, "lameduck: Shutdown failed", "lameduck: Shutdown failed: {error}", slog.Any("error", end.err))
	case end.forced:
	case end.ended && end.ctxErr == nil:
		ru.log(slog.LevelWarn, "lameduck: Shutdown gave up", "lameduck: Shutdown gave up before the period ended: {error}", slog.Any("error", end.err))
	case end.ended && end.serving && end.err == nil:
		ru.expired("Serve (Shutdown had returned)")
	default:
		ru.expired(ru.drainStage())
	}
}

// closeAfterDrain calls Close after a drain that did not finish cleanly and
// returns Run's LameDuckError.
func (ru *run) closeAfterDrain(drain *task, end drainEnd) error {
	closing, stuck := ru.closeAndWait(drain)
	if !end.ended {
		// What a Shutdown still running at the period returned within the
		// grace is reported too, unless it is only the context's error.
		if err := withoutOwnErrs(drain.result(), end.ctxErr); err != nil {
			ru.log(slog.LevelError, "lameduck: Shutdown failed", "lameduck: Shutdown failed: {error}", slog.Any("error", err))
		}
	}
	err := ru.stopErrors(drain, end.ctxErr, closing, stuck)
	if end.failed() {
		return &LameDuckError{Err: err}
	}
	during := ru.drainStage()
	if end.ended && end.serving && end.err == nil {
		during = "Serve (Shutdown had returned)"
	}
	return &LameDuckError{Expired: true, Forced: end.forced, Err: err, during: during, held: ru.r.Report().heldText()}
}

// drained ends a drain that finished within the period. Run returns nil,
// or the failures that Serve returned or reported through [Stop].
func (ru *run) drained(start time.Time) error {
	took := time.Since(start)
	tmpl, attrs := "lameduck: drained in {took}", []slog.Attr{slog.Duration("took", took)}
	if len(ru.pre.list) > 0 {
		// The steps usually wait on purpose (for a load balancer), so the
		// time the Server itself took to drain is worth its own figure.
		tmpl += " (pre-shutdown steps {pre_shutdown}, Shutdown {shutdown})"
		attrs = append(attrs, slog.Duration("pre_shutdown", ru.stepsTook), slog.Duration("shutdown", took-ru.stepsTook))
	}
	err := ru.failures()
	if err != nil {
		ru.log(slog.LevelError, "lameduck: drained; Serve failed", tmpl+"; Serve failed: {error}", append(attrs, slog.Any("error", err))...)
	} else {
		ru.log(slog.LevelInfo, "lameduck: drained", tmpl, attrs...)
	}
	return err
}

// drain runs the pre-shutdown steps and then Shutdown, all under ctx. It
// returns Shutdown's error, or ctx's when the steps used up the period.
func (ru *run) drain(ctx context.Context, start time.Time) error {
	// Steps that used up the budget leave nothing for Shutdown: Run is
	// already on its way to Close, and Shutdown would only race it.
	if err := ru.pre.run(ctx, ru); err != nil {
		return err
	}
	ru.stepsTook = time.Since(start)
	ru.shutdownCalled.Store(true)
	return ru.timed(func() string { return "Shutdown" }, func() error {
		return ru.guard("Shutdown", func() error { return ru.r.svr.Shutdown(ctx) })
	})
}

// drainStage names what the drain is doing, or was doing when it gave up:
// a pre-shutdown step (by its position, and name if it has one) or
// Shutdown.
func (ru *run) drainStage() string {
	if step := ru.pre.current(); step != "" && !ru.shutdownCalled.Load() {
		return step
	}
	return "Shutdown"
}

// expired logs that the period ran out while stage was under way.
func (ru *run) expired(stage string) {
	tmpl := "lameduck: lame-duck period of {period} expired during {stage}"
	attrs := []slog.Attr{slog.Duration("period", ru.cfg.period), slog.String("stage", stage)}
	if stage == "Shutdown" && len(ru.pre.list) > 0 && ru.shutdownCalled.Load() {
		// Set before shutdownCalled, so it can be read now.
		tmpl += " (pre-shutdown steps took {pre_shutdown})"
		attrs = append(attrs, slog.Duration("pre_shutdown", ru.stepsTook))
	}
	ru.log(slog.LevelWarn, "lameduck: lame-duck period expired", tmpl, attrs...)
}
