package lameduck

import (
	"errors"
	"fmt"
	"log/slog"
	"runtime/debug"
)

// call runs f and turns a panic inside it into an error, so that a bug in a
// Server method, a step or a worker function is reported by Run instead of
// crashing the process halfway through a drain.
func call(what string, f func() error) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = newPanicError(what, p)
		}
	}()
	return f()
}

// guard is call for the Runner: it also logs the panic's stack, which the
// error carries but does not print.
func (ru *run) guard(what string, f func() error) error {
	err := call(what, f)
	var pe *panicError
	if errors.As(err, &pe) {
		ru.log(slog.LevelError, "lameduck: {what} panicked: {panic}",
			slog.String("what", pe.what), slog.String("panic", fmt.Sprint(pe.value)), slog.String("stack", string(pe.stack)))
	}
	return err
}

// panicError is a recovered panic.
type panicError struct {
	what  string // what panicked, such as "Shutdown"
	value any    // what it panicked with
	stack []byte // where
}

// newPanicError must be called from the deferred function that recovered,
// so that the stack it records is the panic's.
func newPanicError(what string, value any) error {
	return &panicError{what: what, value: value, stack: debug.Stack()}
}

func (p *panicError) Error() string {
	return fmt.Sprintf("lameduck: %s panicked: %v", p.what, p.value)
}

// Unwrap returns the panic value when it is an error, so errors.Is and
// errors.As still find it.
func (p *panicError) Unwrap() error {
	err, _ := p.value.(error)
	return err
}
