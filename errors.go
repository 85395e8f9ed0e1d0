package lameduck

import (
	"context"
	"errors"
	"fmt"
)

// LameDuckError reports a stop that did not end in a clean drain. Run returns
// it in two cases:
//
//   - Expired is true: the lame-duck period ran out, Shutdown reported
//     [context.DeadlineExceeded], or a second signal cut the period short. Close
//     was called and Err holds what Close returned (nil when it succeeded).
//   - Expired is false: Shutdown failed with some other error, which Err holds.
//     Close was still called so that nothing keeps running; if it failed too,
//     Err is the [errors.Join] of both errors.
//
// For an expired LameDuckError, errors.Is(err, context.DeadlineExceeded)
// reports true even when Err is nil, so callers can test for expiry without
// a type assertion.
type LameDuckError struct {
	Expired bool  // the period ended before the server drained, and Close was called
	Err     error // Close's error when Expired; otherwise Shutdown's error
}

// Error describes how the stop went, including the underlying error if any.
func (lde *LameDuckError) Error() string {
	if lde == nil {
		return "lameduck: <nil>"
	}
	switch {
	case lde.Expired && lde.Err == nil:
		return "lameduck: lame-duck period expired; server closed"
	case lde.Expired:
		return fmt.Sprintf("lameduck: lame-duck period expired; closing the server: %v", lde.Err)
	case lde.Err == nil:
		return "lameduck: shutdown failed"
	default:
		return fmt.Sprintf("lameduck: shutdown failed: %v", lde.Err)
	}
}

// Unwrap returns Err, so that errors.Is and errors.As see through the
// LameDuckError to what Shutdown or Close returned.
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
