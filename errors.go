package lameduck

import (
	"context"
	"errors"
	"fmt"
	"strings"
)

// LameDuckError reports a stop that did not end in a clean drain. Run returns
// it in two cases:
//
//   - Expired is true: the lame-duck period ended before the drain did. The
//     period ran out, or Shutdown reported [context.DeadlineExceeded], or a
//     second signal cut the period short (Forced is then true as well).
//     Close was called.
//   - Expired is false: Shutdown failed with some other error. Close was
//     still called so that nothing keeps running.
//
// Err joins every error seen during the stop: Shutdown's (apart from its
// context's own error, including what a Shutdown still running at the end
// of the period returned within the grace after Close), Serve's and the
// failures reported through [Stop] (such as a Group member's or a worker
// handler's), Close's, and one naming what did not return after Close. The
// pre-shutdown steps' errors are only logged: a failed step does not stop
// the drain (rule 3). When Shutdown's error is the only one, Err is exactly
// that error. Err is nil only when there was none; errors.Is finds each.
//
// For an expired LameDuckError, errors.Is(err, context.DeadlineExceeded)
// reports true even when Err is nil, so callers can test for expiry without
// a type assertion.
type LameDuckError struct {
	Expired bool  // the period ended before the server drained, and Close was called
	Forced  bool  // a second signal, not the clock, ended the period; Expired is true too
	Err     error // every error seen during the stop; see above

	during string // what the period ran out during ("Shutdown"); "" if unknown
	held   string // what held the drain then, as the Report says it; "" if nothing it counts
}

// Error says how the stop went (whether the period ran out or a second
// signal ended it), followed by Err if there is one.
func (lde *LameDuckError) Error() string {
	if lde == nil {
		return "lameduck: <nil>"
	}
	what := "lameduck: shutdown failed"
	switch {
	case lde.Forced:
		what = "lameduck: a second signal ended the lame-duck period"
	case lde.Expired:
		what = "lameduck: lame-duck period expired"
	}
	if lde.Expired && lde.held != "" {
		// Named only with what held it, which is what the operator asks.
		what += " during " + lde.during + ": " + lde.held
	}
	switch {
	case lde.Expired && lde.Err == nil:
		return what + "; server closed"
	case lde.Expired:
		return fmt.Sprintf("%s; closing the server: %s", what, message(lde.Err))
	case lde.Err == nil:
		return what
	default:
		return fmt.Sprintf("%s: %s", what, message(lde.Err))
	}
}

// message is err's text without this package's prefix, for a sentence
// that already begins with it: "lameduck: Shutdown failed: Group: …" rather
// than "lameduck: Shutdown failed: lameduck: Group: …".
func message(err error) string {
	return strings.TrimPrefix(err.Error(), "lameduck: ")
}

// Unwrap returns Err, so that errors.Is and errors.As see through the
// LameDuckError to every error it reports.
func (lde *LameDuckError) Unwrap() error {
	if lde == nil {
		return nil
	}
	return lde.Err
}

// Is reports whether target is [context.DeadlineExceeded] and the period
// expired. It lets errors.Is recognise expiry even when Close returned nil.
func (lde *LameDuckError) Is(target error) bool {
	return lde != nil && lde.Expired && target == context.DeadlineExceeded
}

// ExitCode turns what [Run] returned into a process exit status, so that a
// main function can end with os.Exit(lameduck.ExitCode(err)): 0 for nil, 2
// for a [*LameDuckError] whose period expired or was cut short by a second
// signal (the server was closed by force), and 1 for any other error.
//
// Distinct codes let a supervisor or a deploy script tell a clean stop from a
// forced one without parsing logs.
func ExitCode(err error) int {
	var lde *LameDuckError
	switch {
	case err == nil:
		return 0
	case errors.As(err, &lde) && lde.Expired:
		return 2
	default:
		return 1
	}
}

// ErrClosed is the cause of the cancellation of Serve's context when a
// [Runner] calls Close, and of the context a [FromWorker] Worker gives
// handle when the Worker is closed: context.Cause(ctx) tells a forced stop
// apart from other cancellations, such as the caller's own. A
// [Worker.Settle] function gets an error that matches it (with
// [errors.Is]) for every item that was cut short.
var ErrClosed = errors.New("lameduck: closed")
