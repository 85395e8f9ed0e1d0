package lameduck

import (
	"context"
	"errors"
	"log/slog"
)

// stopKey is the context key under which Serve's context carries the
// stopper that Stop talks to: the run, or a Group's member's wrapper of it.
type stopKey struct{}

type stopper interface {
	requestStop(cause error) bool
}

// Stop asks the [Runner] running the Server whose Serve was given ctx (or a
// context derived from it) to begin lame-duck mode, as a first signal would:
// the pre-shutdown steps run, then Shutdown, within the one period. It lets
// a Server that holds several units of work turn the failure of one into a
// graceful stop of the rest, where failing Serve would make Run call Close;
// [Group] and [FromWorker] use it that way.
//
// cause is the failure, or nil for a stop that is not one. Run returns each
// non-nil cause (once, when Serve's error already contains it): after a clean
// drain as a plain error, as it is when there is only one, and otherwise in
// the Err of its [LameDuckError]. A call made after lame-duck mode has begun
// does not begin it again, but its cause is still reported.
//
// Stop reports whether a Runner took the request: it returns false for a
// context that did not come from a Runner, and once Run has returned. It is
// safe to call from any goroutine.
func Stop(ctx context.Context, cause error) bool {
	if ctx == nil {
		return false
	}
	s, _ := ctx.Value(stopKey{}).(stopper)
	if s == nil {
		return false
	}
	return s.requestStop(cause)
}

func (ru *run) requestStop(cause error) bool {
	ru.mu.Lock()
	if ru.ended {
		ru.mu.Unlock()
		return false
	}
	fresh := cause != nil && ru.addCause(cause)
	if !ru.asked {
		ru.asked = true
		close(ru.stopAsked)
	}
	ru.mu.Unlock()
	if fresh {
		ru.log(slog.LevelError, "lameduck: stop requested", "lameduck: stop requested: {error}", slog.Any("error", cause))
	}
	return true
}

// addCause records cause unless it is one already recorded, and reports
// whether it was new. A cause that contains a recorded one (the same failure
// named by a Group) takes its place, so that it is told once, in full.
func (ru *run) addCause(cause error) bool {
	for i, c := range ru.causes {
		switch {
		case errors.Is(c, cause):
			return false
		case errors.Is(cause, c):
			ru.causes[i] = cause
			return false
		}
	}
	ru.causes = append(ru.causes, cause)
	return true
}
