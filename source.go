package lameduck

import "context"

// StartSource gives the Worker's source a start: start is called once, by
// Serve, before the first call of next, with handle's context (which ends
// only when the Worker is closed). It is the place for recovery: moving the
// jobs that a killed predecessor left in a processing list back to the
// queue, say. An error (or panic) from start is Serve's error, and so Run's;
// next is then never called. The default is no start.
func (w *Worker[T]) StartSource(start func(ctx context.Context) error) *Worker[T] {
	var mistake string
	if start == nil {
		mistake = "function is nil"
	}
	return w.configure("StartSource", mistake, func() { w.start = start })
}

// ReleaseSource gives the Worker's source an end, for sources that
// prefetch: release must stop the prefetching and return the items that
// the source holds but next has not returned yet. It is called exactly
// once per Serve that gets past [Worker.StartSource] (not when start fails,
// nor when Close came before Serve), once a call of next in progress has
// returned, and next is not called after it. It is called as soon as the
// drain begins, even while every handler is busy (after a failure of next,
// too: the graceful stop still hands over what was accepted); when next
// returns [io.EOF], since the end of what next fetches is not the end of
// what the source already took; or, when the Worker is closed before
// either, as Serve ends. Its context carries Serve's values and ends the
// close grace (see [CloseGrace]) after it is called. The default is no
// release; a Worker with one cannot also have [Worker.ConcurrentNext].
//
// The items it returns are handled, as next's are: within the lame-duck
// period, or, after io.EOF, before Serve returns. Those that Close (or the
// end of Serve's context) leaves unhandled are not passed to handle: a
// [Worker.Settle] function, if there is one, gets each with an error that
// matches [ErrClosed], so that it can hand them back to the broker. An
// error (or panic) from release does not stop the drain; Serve returns it,
// and so does Run.
func (w *Worker[T]) ReleaseSource(release func(ctx context.Context) ([]T, error)) *Worker[T] {
	var mistake string
	if release == nil {
		mistake = "function is nil"
	}
	return w.configure("ReleaseSource", mistake, func() { w.release = release })
}
