package lameduck

import (
	"fmt"
	"log/slog"
	"strings"
	"time"
)

// closeGrace is the default of [CloseGrace]: how long a Runner waits, after
// calling Close, for Close, Serve and the drain (a pre-shutdown step or
// Shutdown) to return. A well-behaved Server needs far less. One whose
// methods ignore Close would otherwise hang Run for ever; once the grace has
// passed, Run returns an error that names what is still running and leaves
// its goroutines behind.
const closeGrace = time.Second

// graceTaker is a Server that bounds work of its own after Close by the
// Runner's close grace: a Worker, or a Group or Member that passes it on.
// The Runner tells it before Serve; without a Runner it keeps closeGrace.
type graceTaker interface {
	setCloseGrace(time.Duration)
}

// giveCloseGrace tells svr the close grace, if svr takes one.
func giveCloseGrace(svr Server, d time.Duration) {
	if g, ok := svr.(graceTaker); ok {
		g.setCloseGrace(d)
	}
}

// namedTask is a task Run waits for after Close, with how to name it when
// it is stuck.
type namedTask struct {
	t    *task
	name func() string
}

// closeAndWait cancels Serve's context, calls Close, and waits for Close, for
// drain (when not nil) and for Serve to return, for at most closeGrace. It
// returns Close's task, and an error naming what was still running when the
// grace ran out (nil when nothing was).
func (ru *run) closeAndWait(drain *task) (closing *task, stuck error) {
	tellClosing(ru.r.svr)
	ru.cancelServe(ErrClosed)
	closing = ru.spawn("Close", func() error { return ru.timed(func() string { return "Close" }, ru.r.svr.Close) })
	tasks := []namedTask{{closing, func() string { return "Close" }}}
	if drain != nil {
		tasks = append(tasks, namedTask{drain, ru.drainStage})
	}
	tasks = append(tasks, namedTask{ru.serve, func() string { return "Serve" }})
	ru.waitGrace(tasks)

	if closing.finished() {
		if closing.err != nil {
			ru.log(slog.LevelError, "lameduck: Close failed", "lameduck: Close failed: {error}", slog.Any("error", closing.err))
		} else {
			ru.log(slog.LevelInfo, "lameduck: server closed", "")
		}
	}
	return closing, ru.stuck(tasks)
}

// waitGrace waits for every task to return, for at most the close grace.
func (ru *run) waitGrace(tasks []namedTask) {
	grace := time.NewTimer(ru.cfg.closeGrace)
	defer grace.Stop()
	for _, n := range tasks {
		select {
		case <-n.t.done:
		case <-grace.C:
			return
		}
	}
}

// stuck logs and returns an error that names the tasks still running, or
// returns nil when none is.
func (ru *run) stuck(tasks []namedTask) error {
	var running []string
	for _, n := range tasks {
		if !n.t.finished() {
			running = append(running, n.name())
		}
	}
	if len(running) == 0 {
		return nil
	}
	list := strings.Join(running, ", ")
	if i := strings.LastIndex(list, ", "); i >= 0 {
		list = list[:i] + " and " + list[i+2:]
	}
	ru.log(slog.LevelError, "lameduck: still running after Close", "lameduck: {running} did not return within {grace} of Close being called",
		slog.String("running", list), slog.Duration("grace", ru.cfg.closeGrace))
	return fmt.Errorf("lameduck: %s did not return within %v of Close being called", list, ru.cfg.closeGrace)
}
