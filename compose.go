package lameduck

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// Chain joins steps into one step that runs them in order. It goes on past a
// step that fails, so that (for example) a failed deregistration does not
// skip the wait for the load balancer; it stops early only when ctx is done,
// and then the context's error is among those it returns. The result is the
// [errors.Join] of every error, or nil when all steps succeed. A nil step is
// reported as an error, not called.
//
// F can be any function type with the shape func(context.Context) error, so
// Chain composes named step types without conversions.
func Chain[F ~func(context.Context) error](steps ...F) F {
	steps = append([]F(nil), steps...)
	return func(ctx context.Context) error {
		var errs []error
		for i, step := range steps {
			if err := ctx.Err(); err != nil {
				errs = append(errs, err)
				break
			}
			if step == nil {
				errs = append(errs, fmt.Errorf("lameduck: Chain: step %d is nil", i))
				continue
			}
			if err := step(ctx); err != nil {
				errs = append(errs, err)
			}
		}
		return errors.Join(errs...)
	}
}

// Delay returns a step that waits for d, or until its context is done,
// whichever comes first; in the second case it returns the context's error.
// As a pre-shutdown step it keeps the server serving while load balancers
// notice a failed readiness probe (see [Readiness]). The wait counts against
// the lame-duck period. A d of zero or less does not wait.
func Delay(d time.Duration) func(context.Context) error {
	return func(ctx context.Context) error {
		if d <= 0 {
			return nil
		}
		t := time.NewTimer(d)
		defer t.Stop()
		select {
		case <-t.C:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}
