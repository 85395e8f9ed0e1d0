package lameduck

import (
	"context"
	"errors"
	"fmt"
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
