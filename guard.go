package lameduck

import (
	"fmt"
	"log/slog"
	"runtime/debug"
)

// guard calls f and turns a panic inside it into an error, so that a bug in a
// Server method or a step is reported by Run instead of crashing the process
// halfway through a drain. The stack is logged, since the error cannot
// carry it readably.
func (ru *run) guard(what string, f func() error) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = panicError(what, p)
			stack := debug.Stack()
			ru.note(slog.LevelError, err.Error(), []slog.Attr{slog.String("stack", string(stack))}, "%v\n%s", err, stack)
		}
	}()
	return f()
}

// panicError describes a recovered panic. When the panic value is an error it
// is wrapped, so errors.Is and errors.As still find it.
func panicError(what string, p any) error {
	if err, ok := p.(error); ok {
		return fmt.Errorf("lameduck: %s panicked: %w", what, err)
	}
	return fmt.Errorf("lameduck: %s panicked: %v", what, p)
}
