package workloop

import "context"

// released hands out, one per call, the items that release returned,
// calling it the first time; then it returns next's context's error, which
// tells the loops that the source holds nothing more. Calls take turns
// (see turns), so release runs once, never beside next.
func (s *Loop[T]) released() (item T, err error) {
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
func (s *Loop[T]) callRelease(ctx context.Context) {
	s.mu.Lock()
	called := s.releaseCalled
	s.releaseCalled = true
	s.mu.Unlock()
	if called {
		return
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.cfg.Grace)
	defer cancel()
	var items []T
	err := s.cfg.call("ReleaseSource", func() (err error) {
		items, err = s.cfg.Release(ctx)
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
func (s *Loop[T]) releaseAtDrain(slotsDone <-chan struct{}) {
	select {
	case <-s.drain.c:
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
func (s *Loop[T]) settleLeftovers(serveCtx context.Context) {
	s.callRelease(serveCtx)
	s.mu.Lock()
	left := s.releasedItems
	s.releasedItems = nil
	s.mu.Unlock()
	s.books.left.Add(uint64(len(left)))
	if s.cfg.Settle == nil {
		return
	}
	// Only a cancelled handle context leaves released items behind:
	// otherwise the slots hand out every one before they stop.
	for _, item := range left {
		s.settleItem(item, s.cutShort())
	}
}
