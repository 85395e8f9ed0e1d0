package lameduck

import "context"

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
// live after Close has cancelled handle's, and it ends three quarters of
// the Runner's [CloseGrace] (1 second without a Runner) after Close, with
// that end as its deadline, so that a nack can budget its call; the last
// quarter is for settle to return, or the Runner reports Serve as stuck. A panic
// in settle is a failure of the Worker, as a failed handle is.
func (w *Worker[T]) Settle(settle func(ctx context.Context, item T, err error)) *Worker[T] {
	var mistake string
	if settle == nil {
		mistake = "function is nil"
	}
	return w.configure("Settle", mistake, func() { w.settle = settle })
}
