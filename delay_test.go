package lameduck

import (
	"context"
	"testing"
	"time"
)

// TestDelayLongerThanPeriod: a readiness Delay that uses up the period would
// make every stop expire; NewRunner says so before anything is served.
func TestDelayLongerThanPeriod(t *testing.T) {
	callMe := func(context.Context) error { panic("NewRunner called a step that is not a Delay") }
	cases := []struct {
		name string
		opts []Option
		want string // "" for no error
	}{
		{"a Delay as long as the Period", []Option{WithPreShutdown(Delay(5 * time.Second)), Period(5 * time.Second)},
			"lameduck: pre-shutdown Delay of 5s is not shorter than the 5s Period: every stop would expire before Shutdown"},
		{"a Delay as long as the default Period", []Option{WithPreShutdown(Delay(3 * time.Second))},
			"lameduck: pre-shutdown Delay of 3s is not shorter than the 3s Period: every stop would expire before Shutdown"},
		{"Delays that add up to more than the Period", []Option{WithPreShutdown(Delay(3*time.Second), callMe), WithPreShutdown(Delay(3 * time.Second)), Period(5 * time.Second)},
			"lameduck: pre-shutdown Delay of 6s is not shorter than the 5s Period: every stop would expire before Shutdown"},
		{"a Delay shorter than the Period, beside other steps", []Option{WithPreShutdown(callMe, Delay(4*time.Second)), Period(5 * time.Second)}, ""},
		{"a Period set before the Delay", []Option{Period(10 * time.Second), WithPreShutdown(Delay(5 * time.Second))}, ""},
		{"a negative Delay", []Option{WithPreShutdown(Delay(-time.Hour)), Period(time.Second)}, ""},
		{"Delays whose sum overflows", []Option{WithPreShutdown(Delay(1<<62), Delay(1<<62)), Period(time.Second)},
			"lameduck: pre-shutdown Delay of 2562047h47m16.854775807s is not shorter than the 1s Period: every stop would expire before Shutdown"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := NewRunner(newFakeServer(), c.opts...)
			got := ""
			if err != nil {
				got = err.Error()
			}
			if got != c.want {
				t.Errorf("NewRunner = %q, want %q", got, c.want)
			}
		})
	}
}

// A Delay of zero or less does not wait, so it does not look at its context
// either: it returns nil even when the context is already done, every time
// (a zero-length timer raced against the done context would return the
// context's error about half the time). Kills the boundary mutant of
// Delay's d <= 0.
func TestDelayOfNothingIgnoresADoneContext(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	for _, d := range []time.Duration{0, -time.Second} {
		for i := range 64 {
			if err := Delay(d)(ctx); err != nil {
				t.Fatalf("Delay(%v) with a done context, try %d: got %v, want nil", d, i, err)
			}
		}
	}
}
