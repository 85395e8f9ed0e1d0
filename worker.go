package lameduck

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"sync/atomic"
)

// Worker is a queue consumer run as a [Server]; make one with [FromWorker].
// The zero value is not usable: NewRunner and Serve reject it.
type Worker[T any] struct {
	next    func(context.Context) (T, error)
	handle  func(context.Context, T) error
	onError func(context.Context, T, error) error // nil: every error is a failure
	settle  func(context.Context, T, Outcome)     // nil: nothing to settle
	start   func(context.Context) error           // StartSource; nil: none
	release func(context.Context) ([]T, error)    // ReleaseSource; nil: none
	n       int
	holds   bool  // DrainSource: next hands over accepted items after lame-duck
	err     error // what was wrong with FromWorker's arguments, if anything

	done     chan struct{} // closed when Serve has finished, or will never start
	draining chan struct{} // closed once accepted items are to be handed over
	drain    sync.Once     // closes draining

	mu         sync.Mutex
	started    bool
	stopping   bool
	cancelNext context.CancelFunc      // ends the context given to next
	cancelAll  context.CancelCauseFunc // ends the contexts given to next and handle
}

// WorkerOption configures a [Worker].
type WorkerOption interface {
	applyWorker(*workerConfig) error
}

type workerConfig struct {
	concurrency int
	onError     any // a func(context.Context, T, error) error, checked by FromWorker
	settle      any // a func(context.Context, T, Outcome), checked by FromWorker
	start       func(context.Context) error
	release     any // a func(context.Context) ([]T, error), checked by FromWorker
	holds       bool
}

type workerOption func(*workerConfig) error

func (o workerOption) applyWorker(c *workerConfig) error { return o(c) }

// Concurrency sets how many items a Worker handles at once; the default is 1.
// Calls of next are never concurrent: they take turns, and an item is pulled
// only when a handler is free to take it, so nothing waits in a buffer where
// a force-close could strand it.
func Concurrency(n int) WorkerOption {
	return workerOption(func(c *workerConfig) error {
		if n < 1 {
			return fmt.Errorf("lameduck: Concurrency must be at least 1, got %d", n)
		}
		c.concurrency = n
		return nil
	})
}

// OnError sets the Worker's policy for an item whose handle call failed
// (returned an error or panicked). policy gets the item and the error, with
// handle's context: returning nil goes on past the item (log it, send it to
// a dead-letter queue), and returning an error (err itself, say) is a
// failure of the Worker, as it is without OnError: see [FromWorker]. T must
// be the Worker's item type, or NewRunner fails.
//
// An item whose handler returned its context's error after Close is not a
// failure and is not passed to policy: the Runner reports the forced stop.
func OnError[T any](policy func(ctx context.Context, item T, err error) error) WorkerOption {
	return workerOption(func(c *workerConfig) error {
		if policy == nil {
			return errors.New("lameduck: OnError: policy is nil")
		}
		c.onError = policy
		return nil
	})
}

// DrainSource tells the Worker that next holds items already accepted into
// the process (prefetched, leased, buffered), which must be handled rather
// than dropped when lame-duck mode begins. The Worker then goes on calling
// next during the drain, with a context that is already done: next must
// return an item it holds, without fetching new work or waiting, or its
// context's error once it holds nothing more (see [FromWorker]).
// [ChanSource] needs no option: it tells the Worker by itself.
func DrainSource() WorkerOption {
	return workerOption(func(c *workerConfig) error {
		c.holds = true
		return nil
	})
}

// FromWorker makes a [Server] that pulls items with next and processes each
// with handle.
//
// next is given a context that ends when lame-duck mode begins (Shutdown),
// after a failure, or when the Worker is closed, so that a blocking pull can
// give up; an item it returns even so is handled. When next returns an error
// wrapping [io.EOF] the source is done: no more items are pulled, and Serve
// returns nil once the handlers in flight have finished. Any other error
// from next (or a panic) is a failure, even during the drain.
//
// Accepted items are finished. An item is accepted once the source holds it
// for this process: in [ChanSource]'s channel, or in a custom source that
// prefetches or leases (declare that with [DrainSource], or give it a
// [ReleaseSource] hook; a client library's hidden prefetch buffer that
// neither reaches is lost at lame-duck). Once the drain has
// begun, the Worker calls next again, with its done context, until next
// returns its context's error or io.EOF, and handles every item it returns,
// within the period. A source that is not declared so (a durable queue
// whose items wait safely outside the process) is not called again: its
// items stay for the next consumer.
//
// handle is given a context that carries Serve's values and ends only when
// the Worker is closed, so that work in flight can finish during the drain.
// An error from handle (or a panic) is a failure, unless an [OnError] policy
// says to go on past the item.
//
// A failure stops the service gracefully: the Worker takes no new items, the
// handlers in flight finish, and it asks the Runner through [Stop] to begin
// lame-duck mode, so that the rest of the service (the other members of a
// [Group]) drains under the one period and the pre-shutdown steps run. Its
// accepted items are handed over once the Runner's Shutdown reaches it.
// Serve then returns the failure, and so does Run. Without a Runner, the
// Worker drains on its own and Serve returns the failure.
//
// Shutdown begins the drain and waits until it is over: no item in flight,
// none accepted left. Close cancels the handlers' context, with cause
// [ErrClosed] (see [context.Cause]), and stops the pulling; a [Settle]
// function still gets a live context to hand the cut items back. Every item that next returns with a nil error is passed to
// handle exactly once, even after lame-duck mode has begun, or after Close
// (with a context already cancelled): the handler, not the Worker, decides
// what to do with it.
//
// A nil next or handle, or an invalid option, makes NewRunner and Serve fail.
func FromWorker[T any](next func(context.Context) (T, error), handle func(context.Context, T) error, opts ...WorkerOption) *Worker[T] {
	w := &Worker[T]{next: next, handle: handle, n: 1, done: make(chan struct{}), draining: make(chan struct{})}
	switch {
	case next == nil:
		w.err = errors.New("lameduck: FromWorker: next is nil")
	case handle == nil:
		w.err = errors.New("lameduck: FromWorker: handle is nil")
	}
	cfg := workerConfig{concurrency: 1}
	for i, o := range opts {
		if w.err != nil {
			break
		}
		if o == nil {
			w.err = fmt.Errorf("lameduck: FromWorker: option %d is nil", i)
		} else {
			w.err = o.applyWorker(&cfg)
		}
	}
	if cfg.onError != nil && w.err == nil {
		policy, ok := cfg.onError.(func(context.Context, T, error) error)
		if !ok {
			w.err = fmt.Errorf("lameduck: FromWorker: OnError's policy is a %T, want a %T", cfg.onError, policy)
		}
		w.onError = policy
	}
	if cfg.settle != nil && w.err == nil {
		settle, ok := cfg.settle.(func(context.Context, T, Outcome))
		if !ok {
			w.err = fmt.Errorf("lameduck: FromWorker: Settle's function is a %T, want a %T", cfg.settle, settle)
		}
		w.settle = settle
	}
	if cfg.release != nil && w.err == nil {
		release, ok := cfg.release.(func(context.Context) ([]T, error))
		if !ok {
			w.err = fmt.Errorf("lameduck: FromWorker: ReleaseSource's function is a %T, want a %T", cfg.release, release)
		}
		w.release = release
	}
	w.n, w.start = cfg.concurrency, cfg.start
	// A source with a release hook holds what it prefetched: the drain asks
	// for it, through the hook rather than through next.
	w.holds = cfg.holds || w.release != nil
	return w
}

func (w *Worker[T]) validate() error {
	if w.done == nil {
		return errors.New("lameduck: Worker not made by FromWorker")
	}
	return w.err
}

// beginDrain lets the loops hand over the items the source holds.
func (w *Worker[T]) beginDrain() { w.drain.Do(func() { close(w.draining) }) }

// Serve pulls and handles items until the source is done, a call fails, or
// the Worker is shut down or closed. See [FromWorker].
func (w *Worker[T]) Serve(ctx context.Context) error {
	if err := w.validate(); err != nil {
		return err
	}
	w.mu.Lock()
	if w.started {
		w.mu.Unlock()
		return errors.New("lameduck: Worker.Serve called more than once")
	}
	w.started = true
	if w.stopping {
		w.mu.Unlock()
		close(w.done)
		return nil
	}
	handleCtx, cancelAll := context.WithCancelCause(ctx)
	s := &serving[T]{w: w, handleCtx: handleCtx}
	s.holds.Store(w.holds)
	nextCtx, cancelNext := context.WithCancel(context.WithValue(handleCtx, holdsKey{}, &s.holds))
	s.nextCtx, s.stop = nextCtx, cancelNext
	w.cancelAll, w.cancelNext = cancelAll, cancelNext
	w.mu.Unlock()
	defer close(w.done)
	defer cancelAll(nil)
	if w.settle != nil {
		defer s.startSettling(ctx)()
	}

	if w.start != nil {
		if err := call("StartSource", func() error { return w.start(handleCtx) }); err != nil {
			return err
		}
	}
	if w.n > 1 {
		s.pull = make(chan struct{}, 1)
	}
	var wg sync.WaitGroup
	for range w.n - 1 {
		wg.Go(s.loop)
	}
	s.loop()
	wg.Wait()
	if w.release != nil {
		s.settleLeftovers(ctx)
	}
	return joinErrors(s.errs...)
}

// Shutdown stops pulling new items, hands over the accepted ones, and waits
// until every item taken has been handled, or until ctx ends, in which case
// it returns ctx's error.
func (w *Worker[T]) Shutdown(ctx context.Context) error {
	if err := w.validate(); err != nil {
		return err
	}
	w.mu.Lock()
	w.stopping = true
	// Draining first, so that a loop woken by the cancellation below
	// already sees it and asks the source for what it holds.
	w.beginDrain()
	if w.cancelNext != nil {
		w.cancelNext()
	}
	started := w.started
	w.mu.Unlock()
	if !started {
		return nil
	}
	select {
	case <-w.done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Close stops pulling items and cancels the context of the handlers in
// flight. It does not wait for them; Serve returns once they have.
func (w *Worker[T]) Close() error {
	if err := w.validate(); err != nil {
		return err
	}
	w.mu.Lock()
	w.stopping = true
	if w.cancelAll != nil {
		w.cancelAll(ErrClosed)
	}
	w.mu.Unlock()
	return nil
}

// serving is the state of one call of Serve, shared by its loops.
type serving[T any] struct {
	w         *Worker[T]
	nextCtx   context.Context
	handleCtx context.Context
	stop      context.CancelFunc // stops every loop from pulling new items
	settleCtx context.Context    // given to Settle; ends a close grace after handleCtx

	holds  atomic.Bool // next hands over accepted items once its context ends
	called atomic.Bool // next has been called (and so ChanSource has said so)
	dry    atomic.Bool // next has nothing more to hand over: pull no more

	// pull holds a token while next runs, so that calls never overlap; it
	// is nil when there is a single loop, which needs no turn-taking. It is
	// a channel rather than a mutex because goroutines blocked on a channel
	// count as durably blocked in a testing/synctest bubble, so users can
	// test their workers with fake time; a mutex waited on for long would
	// stall the bubble.
	pull chan struct{}
	mu   sync.Mutex
	errs []error

	// What ReleaseSource handed back, not yet handed out; under mu.
	releaseCalled bool
	releasedItems []T
}

func (s *serving[T]) loop() {
	for {
		item, ok := s.take()
		if !ok {
			return
		}
		panicked, err := s.handle(item)
		out := Outcome{Kind: ItemDone}
		if err != nil {
			out = s.handleFailed(item, err, panicked)
		}
		if s.w.settle != nil {
			s.settleItem(item, out)
		}
	}
}

// take returns the next item, or reports that this loop should stop.
func (s *serving[T]) take() (item T, ok bool) {
	for {
		if s.nextCtx.Err() != nil && !s.awaitDrain() {
			return item, false
		}
		item, got, stop := s.pullOne()
		if got || stop {
			return item, got
		}
	}
}

// awaitDrain is called once no new items may be taken. It reports whether
// to call next again: only for a source that holds accepted items (or one
// never asked yet, which may be a ChanSource that could not say so), and
// only once the drain has begun. After a failure the drain waits for the
// Runner's Shutdown, so that items producers hand over meanwhile (an HTTP
// front end still draining its requests) are not stranded.
func (s *serving[T]) awaitDrain() bool {
	if s.dry.Load() || (!s.holds.Load() && s.called.Load()) {
		return false
	}
	select {
	case <-s.w.draining:
		return true
	case <-s.handleCtx.Done():
		return false
	}
}

// pullOne calls next once, taking turns with the other loops. It returns
// the item if next gave one, and otherwise whether this loop should stop
// (rather than go back to take).
func (s *serving[T]) pullOne() (item T, got, stop bool) {
	if s.pull != nil {
		s.pull <- struct{}{}
		defer func() { <-s.pull }()
	}
	// Read before the call: an empty answer proves the source holds
	// nothing only if the drain had begun when it was asked.
	draining := closed(s.w.draining)
	switch {
	case s.handleCtx.Err() != nil, s.dry.Load():
		return item, false, true
	case s.nextCtx.Err() != nil && !(draining && (s.holds.Load() || !s.called.Load())):
		return item, false, false // take decides whether to wait for the drain
	}
	item, err := s.next()
	switch {
	case err == nil:
		return item, true, false
	case errors.Is(err, io.EOF):
		s.dry.Store(true)
		s.stop()
		return item, false, true
	case s.nextCtx.Err() != nil && errors.Is(err, s.nextCtx.Err()):
		// Lame-duck mode or a failure: next stopped waiting.
		if draining {
			s.dry.Store(true)
		}
		return item, false, draining
	default:
		s.dry.Store(true)
		s.fail(err)
		return item, false, true
	}
}

// next and handle call the user's functions, turning a panic into an error.
// They are methods rather than closures passed to a helper so that the
// per-item path allocates nothing.
func (s *serving[T]) next() (item T, err error) {
	defer func() {
		if p := recover(); p != nil {
			err = newPanicError("next", p)
		}
	}()
	if !s.called.Load() {
		s.called.Store(true)
	}
	if s.w.release != nil && s.nextCtx.Err() != nil {
		return s.released()
	}
	return s.w.next(s.nextCtx)
}

func (s *serving[T]) handle(item T) (panicked bool, err error) {
	defer func() {
		if p := recover(); p != nil {
			panicked, err = true, newPanicError("handle", p)
		}
	}()
	return false, s.w.handle(s.handleCtx, item)
}

// handleFailed applies the error policy to an item whose handler failed,
// and says how the item's handling ended.
func (s *serving[T]) handleFailed(item T, err error, panicked bool) Outcome {
	if ctxErr := s.handleCtx.Err(); ctxErr != nil && !panicked {
		if cause := context.Cause(s.handleCtx); errors.Is(err, ctxErr) || errors.Is(err, cause) {
			// Cut short by Close, a forced stop the Runner reports itself.
			return Outcome{Kind: ItemCancelled, Err: cause}
		}
	}
	out := Outcome{Kind: ItemFailed, Err: err}
	if panicked {
		out.Kind = ItemPanicked
	}
	if s.w.onError != nil {
		err = call("OnError policy", func() error { return s.w.onError(s.handleCtx, item, err) })
		if err == nil {
			return out
		}
	}
	s.fail(err)
	return out
}

// fail records a failure, stops taking new items and asks the Runner for a
// graceful stop of the whole service. Without a Runner nobody will call
// Shutdown, so the Worker begins its own drain.
func (s *serving[T]) fail(err error) {
	s.stop()
	s.mu.Lock()
	s.errs = append(s.errs, err)
	s.mu.Unlock()
	if !Stop(s.handleCtx, err) {
		s.w.beginDrain()
	}
}

// holdsKey is the context key under which the Worker gives next a flag to
// set: ChanSource sets it to say that it holds accepted items.
type holdsKey struct{}

func closed(c <-chan struct{}) bool {
	select {
	case <-c:
		return true
	default:
		return false
	}
}

// ChanSource makes a next function for [FromWorker] that receives from c.
// It returns [io.EOF] once c is closed and drained. An item in c is
// accepted: sent by a producer (an HTTP handler that answered 202, say) and
// owed processing. So when the context ends (lame-duck mode), a buffered
// item is returned rather than the context's error, and the Worker keeps
// calling, without waiting, until c is empty: every item sent before the
// drain began is handled, and only what is sent after the channel was found
// empty stays in it. Stop the producers first ([Group] shuts members down in
// reverse order: list the front end after the worker). An item is either
// received and returned, or left in the channel.
func ChanSource[T any](c <-chan T) func(context.Context) (T, error) {
	return func(ctx context.Context) (T, error) {
		if flag, ok := ctx.Value(holdsKey{}).(*atomic.Bool); ok && !flag.Load() {
			flag.Store(true)
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
