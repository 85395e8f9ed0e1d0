package lameduck

import (
	"context"
	"errors"
	"time"
)

// OutcomeKind says how the handling of one item ended.
type OutcomeKind int

const (
	// ItemDone means handle returned nil.
	ItemDone OutcomeKind = iota
	// ItemFailed means handle returned an error (other than the one that
	// Close's cancellation of its context made it return).
	ItemFailed
	// ItemCancelled means handle gave up because its context was cancelled:
	// by Close, when the Outcome's Err is [ErrClosed], or by the caller of
	// Serve. The item was not processed and is owed to the source.
	ItemCancelled
	// ItemPanicked means handle panicked; the Outcome's Err holds the panic
	// value (and unwraps to it when it is an error).
	ItemPanicked
)

// String returns the kind's name in lower case, such as "done".
func (k OutcomeKind) String() string {
	switch k {
	case ItemDone:
		return "done"
	case ItemFailed:
		return "failed"
	case ItemCancelled:
		return "cancelled"
	case ItemPanicked:
		return "panicked"
	}
	return "unknown"
}

// Outcome is what a [Settle] function learns about one item.
type Outcome struct {
	Kind OutcomeKind
	// Err is nil for ItemDone; handle's error for ItemFailed; the cause of
	// the cancellation for ItemCancelled (ErrClosed after Close); an error
	// describing the panic for ItemPanicked.
	Err error
}

// Settle gives a Worker one place to tell the source how each item ended:
// ack a done item, nack or dead-letter a failed or panicked one, hand a
// cancelled one back. settle is called exactly once for every item passed to
// handle, right after handle returns (and after an [OnError] policy, if any),
// in the same goroutine, before that handler slot takes a new item; so
// Shutdown returns only once every item has been settled.
//
// settle's context carries Serve's values but is not handle's: it is still
// live after Close has cancelled handle's, and it ends the Runner's
// [CloseGrace] (1 second without a Runner) after Close, by which time settle
// must have returned, or the Runner reports Serve as stuck. A panic in
// settle is a failure of the Worker, as a failed handle is. T must be the
// Worker's item type, or NewRunner fails.
func Settle[T any](settle func(ctx context.Context, item T, out Outcome)) WorkerOption {
	return workerOption(func(c *workerConfig) error {
		if settle == nil {
			return errors.New("lameduck: Settle: function is nil")
		}
		c.settle = settle
		return nil
	})
}

// errGraceOver ends the settle context a close grace after Close.
var errGraceOver = errors.New("lameduck: close grace after Close is over")

// startSettling makes the context given to Settle, which ends a close grace
// after handle's, and returns the function that releases it, which Serve
// calls before it returns.
func (s *serving[T]) startSettling(serveCtx context.Context) (release func()) {
	grace := closeGrace
	if d, ok := serveCtx.Value(graceKey{}).(time.Duration); ok {
		grace = d
	}
	settleCtx, cancel := context.WithCancelCause(context.WithoutCancel(serveCtx))
	s.settleCtx = settleCtx
	ran := make(chan struct{})
	stop := context.AfterFunc(s.handleCtx, func() {
		defer close(ran)
		t := time.NewTimer(grace)
		defer t.Stop()
		select {
		case <-t.C:
			cancel(errGraceOver)
		case <-settleCtx.Done():
		}
	})
	return func() {
		cancel(nil)
		if !stop() {
			<-ran
		}
	}
}

// settleItem calls the Settle function, turning a panic into a failure.
func (s *serving[T]) settleItem(item T, out Outcome) {
	defer func() {
		if p := recover(); p != nil {
			s.fail(newPanicError("Settle", p))
		}
	}()
	s.w.settle(s.settleCtx, item, out)
}
