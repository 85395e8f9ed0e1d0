package lameduck

import (
	"context"
	"io"

	"github.com/b583c413/lameduck/internal/workloop"
)

// ChanSource makes a next function for [FromWorker] that receives from c.
// It returns [io.EOF] once c is closed and drained. An item in c is
// accepted: sent by a producer (an HTTP handler that answered 202, say) and
// owed processing. So when the context ends (lame-duck mode), a buffered
// item is returned rather than the context's error, and the Worker keeps
// calling, without waiting, until c is empty: every item sent before the
// drain began is handled, and only what is sent after the channel was found
// empty stays in it. Stop the producers first ([Group] shuts members down in
// reverse order: list the front end after the worker). An item is either
// received and returned, or left in the channel. ChanSource is safe for
// concurrent use. With several handler slots the calls take turns, which is
// always correct and costs a few tens of nanoseconds an item;
// [Worker.ConcurrentNext] drops the turns, which pays off for a source that
// waits on the network, hardly for a channel (unless your next wraps it in
// code that is not safe, when it must not be used).
func ChanSource[T any](c <-chan T) func(context.Context) (T, error) {
	return func(ctx context.Context) (T, error) {
		workloop.MarkHolds(ctx)
		// An item already buffered is taken without a select: the cheap
		// path for a busy queue, and the same choice the select would make.
		select {
		case item, ok := <-c:
			return received(item, ok)
		default:
		}
		if ctx.Err() == nil {
			select {
			case item, ok := <-c:
				return received(item, ok)
			case <-ctx.Done():
			}
		}
		// The context has ended: hand over what is buffered, never wait.
		select {
		case item, ok := <-c:
			return received(item, ok)
		default:
			var zero T
			return zero, ctx.Err()
		}
	}
}

func received[T any](item T, ok bool) (T, error) {
	if !ok {
		return item, io.EOF
	}
	return item, nil
}
