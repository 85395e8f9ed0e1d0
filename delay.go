package lameduck

import (
	"context"
	"fmt"
	"math"
	"reflect"
	"time"
)

// Delay returns a step that waits for d, or until its context is done,
// whichever comes first; in the second case it returns the context's error.
// As a pre-shutdown step it keeps the server serving while load balancers
// notice a failed readiness probe (see [Readiness]). The wait counts against
// the lame-duck period: NewRunner fails when the Delays given directly to
// [WithPreShutdown] add up to the whole period or more, since every stop
// would then expire before Shutdown is called. A d of zero or less does not
// wait.
//
//go:noinline
func Delay(d time.Duration) func(context.Context) error {
	// Kept out of line so that every step it makes runs the same code,
	// which is how NewRunner tells a Delay from any other step.
	return func(ctx context.Context) error {
		if p, ok := ctx.Value(delayProbeKey{}).(*time.Duration); ok {
			*p = d
			return nil
		}
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

// delayProbeKey is the context key under which checkDelays asks a step
// made by Delay for its d, without waiting.
type delayProbeKey struct{}

// delayCode is the code of every step Delay makes.
var delayCode = reflect.ValueOf(Delay(0)).Pointer()

// checkDelays fails when the Delays among steps leave nothing of period for
// Shutdown.
func checkDelays(steps []func(context.Context) error, period time.Duration) error {
	if total := delays(steps); total >= period {
		return fmt.Errorf("lameduck: pre-shutdown Delay of %v is not shorter than the %v Period: every stop would expire before Shutdown", total, period)
	}
	return nil
}

// delays returns how long the Delays among steps wait in all. Only steps
// that run Delay's code are asked; no other step is called.
func delays(steps []func(context.Context) error) time.Duration {
	var total time.Duration
	for _, step := range steps {
		if reflect.ValueOf(step).Pointer() != delayCode {
			continue
		}
		var d time.Duration
		_ = step(context.WithValue(context.Background(), delayProbeKey{}, &d))
		switch {
		case d <= 0:
		case total > math.MaxInt64-d: // the sum saturates rather than wraps
			total = math.MaxInt64
		default:
			total += d
		}
	}
	return total
}
