package lameduck

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"
)

// closeGrace is how long a Runner waits, after calling Close, for Close,
// Serve and Shutdown to return. A well-behaved Server needs far less. One
// whose methods ignore Close would otherwise hang Run for ever; once the grace
// has passed, Run returns an error that names the methods still running and
// leaves their goroutines behind.
const closeGrace = time.Second

// lameDuck drains the Server after a trigger and decides what Run returns.
func (ru *run) lameDuck(ctx context.Context, trigger string, attrs ...slog.Attr) error {
	start := time.Now()
	ru.state.Store(int32(StateLameDuck))
	close(ru.Runner.lameDuck)
	ru.note(slog.LevelInfo, "lameduck: entering lame-duck mode", append(attrs, slog.Duration("period", ru.cfg.period)),
		"lameduck: %s; entering lame-duck mode for up to %v", trigger, ru.cfg.period)

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
					ru.expired("")
				} else {
					ru.note(slog.LevelWarn, "lameduck: Shutdown gave up before the period ended", []slog.Attr{slog.Any("error", err)},
						"lameduck: Shutdown gave up before the period ended: %v", err)
				}
				return &LameDuckError{Expired: true, Err: ru.closeAndWait(nil)}
			case err != nil:
				ru.note(slog.LevelError, "lameduck: Shutdown failed", []slog.Attr{slog.Any("error", err)},
					"lameduck: Shutdown failed: %v", err)
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
				ru.expired("; Shutdown returned but Serve did not")
			} else {
				ru.expired("")
			}
			cancelDrain()
			return &LameDuckError{Expired: true, Err: ru.closeAndWait(shutdownDone)}
		case sig := <-ru.sigc:
			ru.note(slog.LevelWarn, "lameduck: second signal; ending the lame-duck period now", []slog.Attr{slog.String("signal", sig.String())},
				"lameduck: received signal %q again; ending the lame-duck period now", sig)
			cancelDrain()
			return &LameDuckError{Expired: true, Err: ru.closeAndWait(shutdownDone)}
		}
	}
}

func (ru *run) drained(start time.Time) error {
	if ru.serveErr != nil {
		took := time.Since(start)
		ru.note(slog.LevelError, "lameduck: drained; Serve failed", []slog.Attr{slog.Duration("took", took), slog.Any("error", ru.serveErr)},
			"lameduck: drained in %v; Serve failed: %v", took, ru.serveErr)
	} else {
		took := time.Since(start)
		ru.note(slog.LevelInfo, "lameduck: drained", []slog.Attr{slog.Duration("took", took)},
			"lameduck: drained in %v", took)
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
			ru.note(slog.LevelWarn, "lameduck: pre-shutdown step failed", []slog.Attr{slog.Int("step", i+1), slog.Int("steps", len(ru.cfg.steps)), slog.Any("error", err)},
				"lameduck: %s failed: %v", name, err)
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
				ru.note(slog.LevelError, "lameduck: Close failed", []slog.Attr{slog.Any("error", closeErr)},
					"lameduck: Close failed: %v", closeErr)
			} else {
				ru.note(slog.LevelInfo, "lameduck: server closed", nil, "lameduck: server closed")
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
			ru.note(slog.LevelError, err.Error(), nil, "%v", err)
			return errors.Join(closeErr, err)
		}
	}
	return closeErr
}

func (ru *run) expired(detail string) {
	ru.note(slog.LevelWarn, "lameduck: lame-duck period expired", []slog.Attr{slog.Duration("period", ru.cfg.period)},
		"lameduck: lame-duck period of %v expired%s", ru.cfg.period, detail)
}
