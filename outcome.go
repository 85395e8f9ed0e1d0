package lameduck

import (
	"context"
	"errors"
	"slices"
)

// What Run returns after a stop is put together here, from what Serve,
// Shutdown, Close and the Servers calling [Stop] returned.

// failures joins the errors Serve returned (if it has) and those Servers
// reported through Stop, leaving out a reported one that Serve's error
// already contains, so that a Group or Worker failure is told once. It is
// called once Run's result is settled, and ends Stop in the same step as
// it takes the causes: a Stop that returned true is always reported.
func (ru *run) failures() error {
	serveErr := ru.serve.result()
	ru.mu.Lock()
	ru.ended = true
	causes := slices.Clone(ru.causes)
	ru.mu.Unlock()
	var errs []error
	for _, c := range causes {
		if serveErr == nil || !errors.Is(serveErr, c) {
			errs = append(errs, c)
		}
	}
	return joinErrors(append(errs, serveErr)...)
}

// stopErrors is the Err of a LameDuckError (rules 5 and 6): what Shutdown
// returned (but its context's own error, ctxErr), the failures, Close's
// error and what is stuck; nil when there was none of them. The steps'
// errors are only logged (rule 3): they did not stop the drain.
func (ru *run) stopErrors(drain *task, ctxErr error, closing *task, stuck error) error {
	return joinErrors(withoutOwnErrs(drain.result(), ctxErr), ru.failures(), closing.result(), stuck)
}

// withoutOwnErrs returns what Shutdown returned without the drain context's
// own errors, which LameDuckError.Expired already reports: a
// DeadlineExceeded (wrapped or not, as rule 5 counts it) or ctxErr (the
// cancellation by a second signal). From a joined error (a Group's
// Shutdown) it keeps the rest.
func withoutOwnErrs(err, ctxErr error) error {
	if multi, ok := err.(interface{ Unwrap() []error }); ok {
		var keep []error
		for _, e := range multi.Unwrap() {
			if e = withoutOwnErrs(e, ctxErr); e != nil {
				keep = append(keep, e)
			}
		}
		if len(keep) == len(multi.Unwrap()) {
			return err
		}
		return joinErrors(keep...)
	}
	if errors.Is(err, context.DeadlineExceeded) || (ctxErr != nil && errors.Is(err, ctxErr)) {
		return nil
	}
	return err
}

// joinErrors is errors.Join, except that a single error is returned as it
// is, so that errors.Is, == and its message are exactly the original's.
func joinErrors(errs ...error) error {
	var kept []error
	for _, err := range errs {
		if err != nil {
			kept = append(kept, err)
		}
	}
	if len(kept) == 1 {
		return kept[0]
	}
	return errors.Join(kept...)
}
