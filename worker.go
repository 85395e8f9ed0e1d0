package lameduck

import (
	"context"
	"errors"
	"fmt"
	"sync"
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
	shared  bool  // ConcurrentNext: next may be called by several slots at once
	err     error // what was wrong with FromWorker's arguments, if anything

	done     chan struct{} // closed when Serve has finished, or will never start
	draining chan struct{} // closed once accepted items are to be handed over
	drain    sync.Once     // closes draining

	mu       sync.Mutex
	started  bool        // Serve has been called
	shutdown bool        // Shutdown has been called
	closed   bool        // Close has been called
	serving  *serving[T] // the running Serve's state; nil before
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
	shared      bool
}

type workerOption func(*workerConfig) error

func (o workerOption) applyWorker(c *workerConfig) error { return o(c) }

// Concurrency sets how many items a Worker handles at once; the default is 1.
// Each handler slot calls next when it is free, so an item is pulled only
// when a handler is free to take it and nothing waits in a buffer where a
// force-close could strand it. The calls take turns, so next need not be
// safe for concurrent use, unless [ConcurrentNext] says it is.
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

// ConcurrentNext tells the Worker that next is safe for concurrent use, so
// that its handler slots (see [Concurrency]) call it without taking turns.
// That matters for a source that waits on the network, such as a blocking
// pop from a pooled client: with turns, one slow call holds up every free
// slot, and a Worker pulls no faster than one call at a time; without, each
// free slot has a call of its own in flight. The cost of taking turns is
// also gone (see BENCHMARKS.md). [ChanSource] is safe. Only the option
// says so: a next that wraps a safe source may itself not be. A source
// with a [ReleaseSource] hook always takes turns, so that release never
// runs beside next: combining the two is an error.
func ConcurrentNext() WorkerOption {
	return workerOption(func(c *workerConfig) error {
		c.shared = true
		return nil
	})
}

// DrainSource tells the Worker that next holds items already accepted into
// the process (prefetched, leased, buffered), which must be handled rather
// than dropped when lame-duck mode begins. The Worker then goes on calling
// next during the drain, with a context that is already done: next must
// return an item it holds, without fetching new work or waiting, or its
// context's error once it holds nothing more (see [FromWorker]); io.EOF
// says the same. It is asked so after a failure of next too, unless the
// failure came during the drain.
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
// returns nil once the handlers in flight have finished and the items that a
// [ReleaseSource] hook hands back have been handled. Any other error from
// next (or a panic) is a failure, even during the drain.
//
// Accepted items are finished. An item is accepted once the source holds it
// for this process: in [ChanSource]'s channel, or in a custom source that
// prefetches or leases (declare that with [DrainSource], or give it a
// [ReleaseSource] hook; a client library's hidden prefetch buffer that
// neither reaches is lost at lame-duck). Once the drain has
// begun, the Worker calls next again, with its done context, until next
// returns its context's error or io.EOF, and handles every item it returns,
// within the period. A failure of next before the drain does not change
// that: the drain still asks the source for what it holds. One during the
// drain ends the asking, so that a broken source is not called in a loop;
// what it still holds is then lost, and Run reports the failure. A source
// that is not declared so (a durable queue whose items wait safely outside
// the process) is not called again: its items stay for the next consumer.
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
	if cfg.shared && cfg.release != nil && w.err == nil {
		w.err = errors.New("lameduck: FromWorker: ConcurrentNext and ReleaseSource cannot be combined: release must not run beside a call of next")
	}
	w.n, w.start, w.shared = cfg.concurrency, cfg.start, cfg.shared
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
	if w.closed {
		w.mu.Unlock()
		close(w.done)
		return nil
	}
	handleCtx, cancelAll := context.WithCancelCause(ctx)
	s := &serving[T]{w: w, handleCtx: handleCtx, cancel: cancelAll}
	s.note.holds.Store(w.holds)
	s.nextCtx, s.stop = context.WithCancel(context.WithValue(handleCtx, noteKey{}, &s.note))
	if w.shutdown {
		// Shutdown came first (a SIGTERM during start-up): nothing new is
		// taken, but what the source already holds, such as ChanSource's
		// buffer, is still handed over and handled.
		s.stop()
	}
	w.serving = s
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
	if (w.n > 1 && !w.shared) || w.release != nil {
		s.turns = newTurns()
	}
	var wg sync.WaitGroup
	for range w.n - 1 {
		wg.Go(s.loop)
	}
	var releaser sync.WaitGroup
	slotsDone := make(chan struct{})
	if w.release != nil {
		releaser.Go(func() { s.releaseAtDrain(slotsDone) })
	}
	s.loop()
	wg.Wait()
	close(slotsDone)
	releaser.Wait()
	if w.release != nil {
		s.settleLeftovers(ctx)
	}
	return joinErrors(s.errs...)
}

// Shutdown stops pulling new items, hands over the accepted ones, and waits
// until every item taken has been handled, or until ctx ends, in which case
// it returns ctx's error. Before Serve it returns at once; Serve, when it
// comes, then only hands over and handles the accepted items.
func (w *Worker[T]) Shutdown(ctx context.Context) error {
	if err := w.validate(); err != nil {
		return err
	}
	w.mu.Lock()
	w.shutdown = true
	// Draining first, so that a loop woken by the cancellation below
	// already sees it and asks the source for what it holds.
	w.beginDrain()
	if w.serving != nil {
		w.serving.stop()
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
	w.closed = true
	if w.serving != nil {
		w.serving.cancel(ErrClosed)
	}
	w.mu.Unlock()
	return nil
}
