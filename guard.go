package lameduck

import (
	"fmt"
	"log/slog"
	"runtime/debug"
	"sync/atomic"
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

// guard is call for the Runner: it also logs the stack of a panic in err,
// which the error carries but does not print, once, naming the Group member
// where it happened: a panic recovered by a Group, a Worker or an inner
// guard reaches the Runner's guards more than once.
func (ru *run) guard(what string, f func() error) error {
	err := call(what, f)
	if pe, where := findPanic(err); pe != nil && pe.logged.CompareAndSwap(false, true) {
		ru.log(slog.LevelError, "lameduck: panic", "lameduck: {what} panicked: {panic}",
			slog.String("what", where), slog.String("panic", fmt.Sprint(pe.value)), slog.String("stack", string(pe.stack)))
	}
	return err
}

// findPanic returns the first recovered panic in err's tree, and what
// panicked, with the Group members around it ("Group: server 1 (api):
// Serve").
func findPanic(err error) (*panicError, string) {
	switch e := err.(type) {
	case *panicError:
		return e, e.what
	case *memberError:
		if pe, where := findPanic(e.err); pe != nil {
			return pe, e.label() + ": " + where
		}
	case interface{ Unwrap() []error }:
		for _, inner := range e.Unwrap() {
			if pe, where := findPanic(inner); pe != nil {
				return pe, where
			}
		}
	case interface{ Unwrap() error }:
		return findPanic(e.Unwrap())
	}
	return nil, ""
}

// panicError is a recovered panic.
type panicError struct {
	what   string      // what panicked, such as "Shutdown"
	value  any         // what it panicked with
	stack  []byte      // where
	logged atomic.Bool // a Runner has logged it
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
