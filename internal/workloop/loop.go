package workloop

import (
	"context"
	"errors"
	"io"
	"sync"
	"sync/atomic"
)

// Loop is the state of one call of a Worker's Serve, shared by its handler
// slots.
type Loop[T any] struct {
	cfg       Config[T]
	drain     *Drain
	nextCtx   context.Context
	handleCtx context.Context
	stop      context.CancelFunc      // ends nextCtx: no new items are taken
	cancel    context.CancelCauseFunc // ends handleCtx and nextCtx
	settleCtx context.Context         // given to Settle; ends settleShare of the grace after handleCtx
	closing   settleAfterClose        // Settle's context once handleCtx has ended

	note   sourceNote  // whether the source holds accepted items: see Worker.DrainSource
	called atomic.Bool // next has returned an item, or been asked in the drain (so ChanSource has said so)
	dry    atomic.Bool // next has nothing more to hand over, or failed in the drain: pull no more
	broke  atomic.Bool // next has failed (an error or a panic) and the failure is recorded

	// turns keeps calls of next (and of release) from overlapping. It is
	// nil when there is a single slot and no release hook, or when
	// ConcurrentNext says that next may be called by several at once.
	turns *turns
	mu    sync.Mutex
	errs  []error

	// What ReleaseSource handed back, not yet handed out; under mu.
	releaseCalled bool
	releasedItems []T

	books books // for the stop report (see counts.go)
}

// New makes the state of one Serve, whose handlers get a context derived
// from ctx. The drain is shared with the Worker's Shutdown, which may begin
// it before Serve.
func New[T any](ctx context.Context, cfg Config[T], drain *Drain) *Loop[T] {
	handleCtx, cancel := context.WithCancelCause(ctx)
	s := &Loop[T]{cfg: cfg, drain: drain, handleCtx: handleCtx, cancel: cancel, books: newBooks(cfg.Slots)}
	// A source with a release hook holds what it prefetched: the drain
	// asks for it, through the hook rather than through next.
	s.note.holds.Store(cfg.Holds || cfg.Release != nil)
	s.nextCtx, s.stop = context.WithCancel(context.WithValue(handleCtx, noteKey{}, &s.note))
	return s
}

// StopTaking ends next's context: no new items are taken, and once the
// drain has begun the source is asked for what it holds.
func (s *Loop[T]) StopTaking() { s.stop() }

// Cancel ends the handlers' context with cause, and so the pulling.
func (s *Loop[T]) Cancel(cause error) {
	s.books.cancelled.Store(true)
	s.cancel(cause)
}

// Serve calls the start hook and then runs the handler slots until they
// have all stopped. It returns the start hook's error when that failed
// (and nothing ran), and otherwise the failures of the run.
func (s *Loop[T]) Serve(ctx context.Context) (failures []error, startErr error) {
	defer s.cancel(nil)
	if s.cfg.Settle != nil {
		defer s.startSettling(ctx)()
	}
	if s.cfg.Start != nil {
		if err := s.cfg.call("StartSource", func() error { return s.cfg.Start(s.handleCtx) }); err != nil {
			return nil, err
		}
	}
	s.run(ctx)
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.errs, nil
}

// stage says which of the user's functions a slot is in, so that a panic
// is blamed on the right one.
type stage uint8

const (
	inWorker stage = iota // the Worker's own code
	inNext
	inHandle
	inSettle
)

// slot is one handler slot: a goroutine that takes an item, handles it,
// settles it and takes the next.
type slot[T any] struct {
	s    *Loop[T]
	book *slotBook
	at   stage
	turn bool // it is the slot's turn to call next
	over bool // nothing more to take
	// inDrain says that the slot calls next in the drain: set by the
	// first such call and never cleared, as pullInTurn, once it has sent a
	// slot to pullStopped, never calls next again.
	inDrain bool
	// probing says that the slot's call of next is the drain's one question
	// to a source that never said it holds accepted items.
	probing bool
}

// run runs the handler slots, and the release hook's goroutine when there
// is one, until all have stopped; then it settles what release handed
// back that was never handled.
func (s *Loop[T]) run(serveCtx context.Context) {
	c := &s.cfg
	if (c.Slots > 1 && !c.Shared) || c.Release != nil {
		s.turns = newTurns()
	}
	var wg sync.WaitGroup
	for range c.Slots - 1 {
		wg.Go(s.loop)
	}
	var releaser sync.WaitGroup
	slotsDone := make(chan struct{})
	if c.Release != nil {
		releaser.Go(func() { s.releaseAtDrain(slotsDone) })
	}
	s.loop()
	wg.Wait()
	close(slotsDone)
	releaser.Wait()
	if c.Release != nil {
		s.settleLeftovers(serveCtx)
	}
}

func (s *Loop[T]) loop() {
	l := slot[T]{s: s, book: s.books.take()}
	for !l.over {
		l.run()
	}
}

// run takes and handles items until there is none to take, and then sets
// over. A panic in next, handle or Settle ends it early, once recovered has
// dealt with it, and loop calls it again: one deferred recover per run
// rather than one per call keeps an item's path as short as in a loop
// written by hand.
func (l *slot[T]) run() {
	var item T
	defer func() {
		if p := recover(); p != nil {
			l.recovered(p, item)
		}
	}()
	s := l.s
	for {
		var ok bool
		if s.turns == nil && s.nextCtx.Err() == nil {
			// take and pullInTurn's common case, written out (two calls
			// fewer per item): no turns to take, nothing has happened
			// yet, and next gives an item.
			l.at = inNext
			var err error
			item, err = s.cfg.Next(s.nextCtx)
			l.at = inWorker
			if ok = err == nil; ok {
				s.gotItem()
			} else {
				item, ok = l.takeFailed(err)
			}
		} else {
			item, ok = l.take()
		}
		if !ok {
			l.over = true
			return
		}
		l.at = inHandle
		l.began()
		err := s.cfg.Handle(s.handleCtx, item)
		l.ended(err != nil)
		if err != nil {
			l.at = inWorker
			err = s.handleFailed(item, err, false)
		}
		if s.cfg.Settle != nil {
			l.at = inSettle
			// settleContext, written out.
			ctx := s.settleCtx
			if s.handleCtx.Err() != nil {
				ctx = s.afterClose().ctx
			}
			s.cfg.Settle(ctx, item, err)
		}
		l.at = inWorker
	}
}

// recovered deals with a panic in one of the user's functions as the
// Worker deals with an error from it. A panic in the Worker's own code is
// not hidden.
func (l *slot[T]) recovered(p any, item T) {
	s, at := l.s, l.at
	l.at = inWorker
	switch at {
	case inNext:
		// The failure stops the pulling before the turn is handed on, so
		// that no other slot calls next with a live context in between.
		l.nextBroke(s.cfg.Recovered("next", p), l.inDrain)
		l.endTurn()
	case inHandle:
		l.ended(true)
		err := s.handleFailed(item, s.cfg.Recovered("handle", p), true)
		if s.cfg.Settle != nil {
			s.settleItem(item, err)
		}
	case inSettle:
		s.fail(s.cfg.Recovered("Settle", p))
	default:
		panic(p)
	}
}

// take returns the next item, or reports that this slot should stop.
func (l *slot[T]) take() (item T, ok bool) {
	for {
		l.beginTurn()
		item, got, stop := l.pullInTurn()
		l.endTurn()
		switch {
		case got || stop:
			return item, got
		case !l.s.awaitDrain():
			// No new items may be taken, and none is held for the drain.
			return item, false
		}
	}
}

// takeFailed is take once run's own call of next (without turns, before
// anything happened) has failed with err.
func (l *slot[T]) takeFailed(err error) (item T, ok bool) {
	if l.nextFailed(err, false) || !l.s.awaitDrain() {
		return item, false
	}
	return l.take()
}

// beginTurn waits for the slot's turn to call next, unless no turns are
// taken (see Loop.turns).
func (l *slot[T]) beginTurn() {
	s := l.s
	if s.turns == nil {
		return
	}
	s.turns.begin()
	l.turn = true
}

func (l *slot[T]) endTurn() {
	if l.turn {
		l.turn = false
		l.s.turns.end()
	}
}

// awaitDrain is called once no new items may be taken. It reports whether
// to call next again: only for a source that holds accepted items (or one
// never asked yet, which may be a ChanSource that could not say so), and
// only once the drain has begun. After a failure the drain waits for the
// Runner's Shutdown, so that items producers hand over meanwhile (an HTTP
// front end still draining its requests) are not stranded.
func (s *Loop[T]) awaitDrain() bool {
	if s.dry.Load() || (!s.note.holds.Load() && s.called.Load()) {
		return false
	}
	select {
	case <-s.drain.c:
		return true
	case <-s.handleCtx.Done():
		return false
	}
}

// pullInTurn calls next once, in the slot's turn. It returns the item if
// next gave one, and otherwise whether the slot should stop (rather than
// go back to take). Until something happens (lame-duck mode, Close, a
// failure, the end of the source or of Serve's context: each ends
// nextCtx), an item costs one check on top of the user's call. run does
// the same without calling it when no turns are taken, the common case.
func (l *slot[T]) pullInTurn() (item T, got, stop bool) {
	s := l.s
	if s.nextCtx.Err() != nil {
		return l.pullStopped()
	}
	l.at = inNext
	item, err := s.cfg.Next(s.nextCtx)
	l.at = inWorker
	if err != nil {
		return item, false, l.nextFailed(err, false)
	}
	s.gotItem()
	return item, true, false
}

// gotItem notes that next has returned an item. Only an item proves that a
// ChanSource inside next had its say: a wrapper that failed before calling
// it could not.
func (s *Loop[T]) gotItem() {
	if !s.called.Load() {
		s.called.Store(true)
	}
}

// pullStopped is pullInTurn once no new items may be taken: it calls next
// (or hands out what release returned) only to have the accepted items
// handed over.
func (l *slot[T]) pullStopped() (item T, got, stop bool) {
	s := l.s
	// Read before the call: an empty answer proves the source holds
	// nothing only if the drain had begun when it was asked.
	draining := closed(s.drain.c)
	switch {
	case s.handleCtx.Err() != nil, s.dry.Load():
		return item, false, true
	case !draining:
		return item, false, false // take decides whether to wait for the drain
	case !s.note.holds.Load() && !s.called.CompareAndSwap(false, true):
		// A source that never said it holds accepted items is asked once,
		// by one slot (it may be a ChanSource that had no call to say so
		// in); the others stop.
		return item, false, false
	}
	l.probing = !s.note.holds.Load() && s.cfg.Release == nil
	s.called.Store(true)
	l.at, l.inDrain = inNext, true
	var err error
	if s.cfg.Release != nil {
		item, err = s.released()
	} else {
		item, err = s.cfg.Next(s.nextCtx)
	}
	l.at = inWorker
	if err != nil {
		return item, false, l.nextFailed(err, draining)
	}
	l.probing = false
	return item, true, false
}

// nextFailed deals with an error from next (or the end of what release
// returned), and reports whether the slot should stop. draining says
// whether the drain had begun when next was called.
func (l *slot[T]) nextFailed(err error, draining bool) (stop bool) {
	s := l.s
	switch {
	case errors.Is(err, io.EOF):
		if s.cfg.Release != nil {
			// next has fetched its last item, but what the source
			// prefetched was accepted all the same: release hands it over
			// now, and the slots handle it before Serve returns.
			s.stop()
			s.drain.Begin()
			return false
		}
		// Dry before stopped: a slot that finds next's context ended
		// must also find the source dry, or it waits for a drain that,
		// without a Runner, never comes.
		s.dry.Store(true)
		s.stop()
		return true
	case s.nextCtx.Err() != nil && errors.Is(err, s.nextCtx.Err()):
		// Lame-duck mode or a failure: next stopped waiting.
		if draining {
			s.dry.Store(true)
		}
		return draining
	default:
		return l.nextBroke(err, draining)
	}
}

// nextBroke records a failure of next (an error or a panic) and reports
// whether the slot should stop. A failure before the drain leaves the
// source's accepted items where they are: the drain still asks for them,
// and take waits for it. One during the drain ends the asking, as a source
// that fails with nothing to wait for would otherwise be called in a busy
// loop until the period ends.
//
// The drain's one question to a source that never said it holds items is
// asked even after next failed (the source may be a ChanSource that failed
// before it could say so); its answer from a source already known to be
// broken repeats the failure that is reported, and is not reported again.
func (l *slot[T]) nextBroke(err error, draining bool) (stop bool) {
	s := l.s
	if draining {
		s.dry.Store(true)
	}
	if l.probing && s.broke.Load() {
		l.probing = false
		return draining
	}
	l.probing = false
	s.broke.Store(true)
	s.fail(err)
	return draining
}

// handleFailed applies the error policy to an item whose handler failed,
// and returns the error that Settle gets for it: handle's own, or, when
// Close cut the handler short, the error that says so.
func (s *Loop[T]) handleFailed(item T, err error, panicked bool) error {
	if ctxErr := s.handleCtx.Err(); ctxErr != nil && !panicked {
		if cause := context.Cause(s.handleCtx); errors.Is(err, ctxErr) || errors.Is(err, cause) {
			// A forced stop, which the Runner reports itself.
			return s.cutShort()
		}
	}
	failure := err
	if s.cfg.OnError != nil {
		failure = s.cfg.call("OnError policy", func() error { return s.cfg.OnError(s.handleCtx, item, err) })
		if failure == nil {
			return err
		}
	}
	s.fail(failure)
	return err
}

// fail records a failure, stops taking new items and asks the Runner for a
// graceful stop of the whole service. Without a Runner nobody will call
// Shutdown, so the Worker begins its own drain.
func (s *Loop[T]) fail(err error) {
	s.stop()
	s.mu.Lock()
	s.errs = append(s.errs, err)
	s.mu.Unlock()
	if s.cfg.Stop == nil || !s.cfg.Stop(s.handleCtx, err) {
		s.drain.Begin()
	}
}

func closed(c <-chan struct{}) bool {
	select {
	case <-c:
		return true
	default:
		return false
	}
}
