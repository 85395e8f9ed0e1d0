package workloop

import (
	"context"
	"sync/atomic"
)

// sourceNote is what the Worker hands next through its context so that
// ChanSource can say that it holds accepted items, as DrainSource says for
// a user's source. A next that wraps ChanSource holds what it holds, so the
// note holds for the wrapper too. Whether next is safe for concurrent use
// is not a thing ChanSource can say: a wrapper around it may not be, so
// only ConcurrentNext says that.
type sourceNote struct {
	holds atomic.Bool // next hands over accepted items once its context ends
}

// noteKey is the context key of the loop's *sourceNote. Everything else
// reaches the loop as a parameter, but ChanSource is called by the user's
// next, which may wrap it in code of its own: the context given to next is
// the only thing that certainly gets through.
type noteKey struct{}

// MarkHolds tells the loop whose next was given ctx (or a context derived
// from it) that the source holds accepted items; ChanSource calls it.
func MarkHolds(ctx context.Context) {
	if note, ok := ctx.Value(noteKey{}).(*sourceNote); ok && !note.holds.Load() {
		note.holds.Store(true)
	}
}
