package lameduck

import (
	"context"
	"io"
	"sync/atomic"
)

// sourceNote is what the Worker hands next through its context so that
// ChanSource can say what kind of source it is. A user's next need not
// know of it: DrainSource and ConcurrentNext say the same.
type sourceNote struct {
	holds  atomic.Bool // next hands over accepted items once its context ends
	shared atomic.Bool // next may be called by several slots at once
}

// noteKey is the context key of the Worker's *sourceNote.
type noteKey struct{}

// ChanSource makes a next function for [FromWorker] that receives from c.
// It returns [io.EOF] once c is closed and drained. An item in c is
// accepted: sent by a producer (an HTTP handler that answered 202, say) and
// owed processing. So when the context ends (lame-duck mode), a buffered
// item is returned rather than the context's error, and the Worker keeps
// calling, without waiting, until c is empty: every item sent before the
// drain began is handled, and only what is sent after the channel was found
// empty stays in it. Stop the producers first ([Group] shuts members down in
// reverse order: list the front end after the worker). An item is either
// received and returned, or left in the channel. Receiving from a channel
// is safe from several goroutines, so ChanSource also tells the Worker, as
// [ConcurrentNext] does, that its handler slots need not take turns.
func ChanSource[T any](c <-chan T) func(context.Context) (T, error) {
	return func(ctx context.Context) (T, error) {
		if note, ok := ctx.Value(noteKey{}).(*sourceNote); ok && !note.holds.Load() {
			note.holds.Store(true)
			note.shared.Store(true)
		}
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
