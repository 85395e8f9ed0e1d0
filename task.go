package lameduck

// task is one call of a Server method, a step sequence or Close, running in
// a goroutine of its own. done is closed once err is set, and never again
// written, so any function of the Runner can wait for the result or look at
// it, any number of times; no channel has to be received from exactly once.
type task struct {
	done chan struct{}
	err  error
}

// spawn runs f in a new goroutine, turning a panic into an error named what.
func (ru *run) spawn(what string, f func() error) *task {
	t := &task{done: make(chan struct{})}
	go func() {
		defer close(t.done)
		t.err = ru.guard(what, f)
	}()
	return t
}

// finished reports whether the task has returned, without waiting.
func (t *task) finished() bool {
	select {
	case <-t.done:
		return true
	default:
		return false
	}
}

// result returns the task's error if it has returned, and nil otherwise.
func (t *task) result() error {
	if t == nil || !t.finished() {
		return nil
	}
	return t.err
}
