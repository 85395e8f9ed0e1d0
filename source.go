package lameduck

import (
	"context"
	"time"
)

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

// released hands out, one per call, the items that release returned,
// calling it the first time; then it returns next's context's error, which
// tells the loops that the source holds nothing more. Calls take turns
// (see turns), so release runs once, never beside next.
func (s *serving[T]) released() (item T, err error) {
	s.callRelease(s.handleCtx)
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.releasedItems) == 0 {
		return item, s.nextCtx.Err()
	}
	item = s.releasedItems[0]
	s.releasedItems = s.releasedItems[1:]
	return item, nil
}

// callRelease calls release unless it has been called, recording its
// items and its error.
func (s *serving[T]) callRelease(ctx context.Context) {
	s.mu.Lock()
	called := s.releaseCalled
	s.releaseCalled = true
	s.mu.Unlock()
	if called {
		return
	}
	grace := closeGrace
	if d, ok := ctx.Value(graceKey{}).(time.Duration); ok {
		grace = d
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), grace)
	defer cancel()
	var items []T
	err := call("ReleaseSource", func() (err error) {
		items, err = s.w.release(ctx)
		return err
	})
	s.mu.Lock()
	defer s.mu.Unlock()
	s.releasedItems = append(s.releasedItems, items...)
	if err != nil {
		s.errs = append(s.errs, err)
	}
}

// releaseAtDrain calls release as soon as the drain begins, in a turn of
// its own so that it never runs beside next, rather than when a handler
// slot is next free: a prefetching client goes on taking work from its
// broker until it is released, and that work is due back.
func (s *serving[T]) releaseAtDrain(slotsDone <-chan struct{}) {
	select {
	case <-s.w.draining:
	case <-slotsDone:
		return
	}
	// The drain ends next's context too, a moment later. Wait for it: a
	// slot decides between next and what release handed back by that
	// context, and must never call next once release has run.
	select {
	case <-s.nextCtx.Done():
	case <-slotsDone:
		return
	}
	s.turns.begin()
	defer s.turns.end()
	s.callRelease(s.handleCtx)
}

// settleLeftovers runs as Serve ends: it calls release if nobody has, and
// settles what it handed back that was never handled as cut short.
func (s *serving[T]) settleLeftovers(serveCtx context.Context) {
	s.callRelease(serveCtx)
	s.mu.Lock()
	left := s.releasedItems
	s.releasedItems = nil
	s.mu.Unlock()
	if s.w.settle == nil {
		return
	}
	// Only a cancelled handle context leaves released items behind:
	// otherwise the slots hand out every one before they stop.
	for _, item := range left {
		s.settleItem(item, cutShort(s.handleCtx))
	}
}
