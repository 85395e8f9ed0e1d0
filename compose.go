package lameduck

import (
	"context"
	"errors"
	"fmt"
)

// Chain joins steps into one step that runs them in order. It goes on past a
// step that fails or panics, so that (for example) a failed deregistration
// does not skip the wait for the load balancer; it stops early only when ctx
// is done, and then the context's error is among those it returns. The
// result is the [errors.Join] of every error, or nil when all steps succeed.
// A nil step is reported as an error, not called.
//
// F can be any function type with the shape func(context.Context) error, so
// Chain composes named step types without conversions. [WithPreShutdown]
// and [WithPostShutdown] already run their steps in order; give them the
// steps themselves, and the Runner's log says which one failed. Chain is for
// where one step is wanted, such as a Server's own hook.
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
			// A panic is one more way for a step to fail; recovering it
			// here keeps it from skipping the steps after it.
			if err := call(fmt.Sprintf("Chain: step %d", i), func() error { return step(ctx) }); err != nil {
				errs = append(errs, err)
			}
		}
		return errors.Join(errs...)
	}
}

// Named gives step a name for the Runner's log and errors. A step registered
// with [WithPreShutdown] or [WithPostShutdown] is otherwise known by its
// position alone ("pre-shutdown step 2 of 4"); a named one also by its name
// ("pre-shutdown step 2 of 4 (deregister)"), in the line that reports its
// failure, in the one that says the period ran out while it ran, and in
// the error that names it when it does not return.
//
// The name travels in the step's context, so Named works for any function
// type with the shape func(context.Context) error, and a named step inside a
// [Chain] names the Chain's position while it runs (and after, if it
// failed). Called other than by a Runner, the step behaves exactly like
// step. Named(name, nil) is nil, which WithPreShutdown reports.
func Named[F ~func(context.Context) error](name string, step F) F {
	if step == nil {
		return nil
	}
	return func(ctx context.Context) error {
		label, _ := ctx.Value(stepLabelKey{}).(*stepLabel)
		if label == nil {
			return step(ctx)
		}
		outer := label.name.Swap(&name)
		if outer == nil {
			label.first.CompareAndSwap(nil, &name)
		}
		err := step(ctx)
		if err == nil {
			// Done and fine: the name of what runs around it (or failed
			// before it in the same Chain) is the more useful one now.
			label.name.Store(outer)
		}
		return err
	}
}
