package lameduck

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// Settle gives the Worker one place to tell the source how each item
// ended: ack it, dead-letter it, or hand it back. settle is called exactly
// once for every item passed to handle, right after handle returns (and
// after a [Worker.OnError] policy, if any), in the same goroutine, before
// that handler slot takes a new item; so Shutdown returns only once every
// item has been settled. It is also called, once, for each item that a
// [Worker.ReleaseSource] hook handed back and Close left unhandled. The
// default is to settle nothing.
//
// err says how the item ended, and a switch tells the cases apart in this
// order:
//
//	switch {
//	case err == nil:
//		// handle succeeded: ack.
//	case errors.Is(err, lameduck.ErrClosed):
//		// Close cut the item short (or never let handle see it): the
//		// item was not processed; hand it back.
//	default:
//		// handle failed: err is its error, or one whose message says
//		// that handle panicked (it unwraps to the panic value when that
//		// is an error). Dead-letter, or nack for a retry.
//	}
//
// A failed item reaches settle whether or not an OnError policy went on
// past it, so that settle can dead-letter it. An item is cut short when
// handle returned its context's error after Close; when something other
// than Close ended Serve's context (its caller, without a Runner), err
// matches that cause as well as ErrClosed.
//
// settle's context carries Serve's values but is not handle's: it is still
// live after Close has cancelled handle's, and it ends the Runner's
// [CloseGrace] (1 second without a Runner) after Close, by which time
// settle must have returned, or the Runner reports Serve as stuck. A panic
// in settle is a failure of the Worker, as a failed handle is.
func (w *Worker[T]) Settle(settle func(ctx context.Context, item T, err error)) *Worker[T] {
	var mistake string
	if settle == nil {
		mistake = "function is nil"
	}
	return w.configure("Settle", mistake, func() { w.settle = settle })
}

// cutShort returns the error that Settle gets for an item that Close, or
// the end of Serve's context, kept from being processed: it always
// matches ErrClosed, so that one test finds every item owed to the source.
func cutShort(handleCtx context.Context) error {
	cause := context.Cause(handleCtx)
	if errors.Is(cause, ErrClosed) {
		return cause
	}
	return fmt.Errorf("%w: %w", ErrClosed, cause)
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
func (s *serving[T]) settleItem(item T, err error) {
	defer func() {
		if p := recover(); p != nil {
			s.fail(newPanicError("Settle", p))
		}
	}()
	s.w.settle(s.settleCtx, item, err)
}
