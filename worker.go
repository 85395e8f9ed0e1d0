package lameduck

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
)

// Worker is a queue consumer run as a [Server]; make one with [FromWorker].
type Worker[T any] struct {
	next   func(context.Context) (T, error)
	handle func(context.Context, T) error
	n      int
	err    error // what was wrong with FromWorker's arguments, if anything

	done chan struct{} // closed when Serve has finished, or will never start

	mu         sync.Mutex
	started    bool
	stopping   bool
	cancelNext context.CancelFunc // ends the context given to next
	cancelAll  context.CancelFunc // ends the contexts given to next and handle
}

// WorkerOption configures a [Worker].
type WorkerOption interface {
	applyWorker(*workerConfig) error
}

type workerConfig struct {
	concurrency int
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

// FromWorker makes a [Server] that pulls items with next and processes each
// with handle.
//
// next is given a context that ends when lame-duck mode begins (Shutdown) or
// the Worker is closed, so that a blocking pull can give up. When next
// returns an error wrapping [io.EOF] the source is done: no more items are
// pulled, and Serve returns nil once the handlers in flight have finished.
// Any other error from next is fatal, and so is any error from handle: no
// more items are pulled, the handlers in flight finish, and Serve returns the
// error.
//
// handle is given a context that carries Serve's values and ends only when
// the Worker is closed, so that work in flight can finish during the drain.
//
// Shutdown stops pulling and waits for the handlers in flight. Close cancels
// the handlers' context. Every item that next returns with a nil error is
// passed to handle exactly once, even when it arrives after lame-duck mode
// has begun, or after Close (with a context already cancelled): the handler,
// not the Worker, decides what to do with it.
//
// A nil next or handle, or an invalid option, makes NewRunner and Serve fail.
func FromWorker[T any](next func(context.Context) (T, error), handle func(context.Context, T) error, opts ...WorkerOption) *Worker[T] {
	w := &Worker[T]{next: next, handle: handle, n: 1, done: make(chan struct{})}
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
	w.n = cfg.concurrency
	return w
}

func (w *Worker[T]) validate() error { return w.err }

// Serve pulls and handles items until the source is done, a call fails, or
// the Worker is shut down or closed. See [FromWorker].
func (w *Worker[T]) Serve(ctx context.Context) error {
	if w.err != nil {
		return w.err
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
	handleCtx, cancelAll := context.WithCancel(ctx)
	nextCtx, cancelNext := context.WithCancel(handleCtx)
	w.cancelAll, w.cancelNext = cancelAll, cancelNext
	w.mu.Unlock()
	defer close(w.done)
	defer cancelAll()

	s := &serving[T]{w: w, nextCtx: nextCtx, handleCtx: handleCtx, stop: cancelNext}
	if w.n > 1 {
		s.pull = make(chan struct{}, 1)
	}
	var wg sync.WaitGroup
	for range w.n - 1 {
		wg.Go(s.loop)
	}
	s.loop()
	wg.Wait()
	if len(s.errs) == 1 {
		return s.errs[0]
	}
	return errors.Join(s.errs...)
}

// Shutdown stops pulling items and waits until the handlers in flight have
// returned, or until ctx ends, in which case it returns ctx's error.
func (w *Worker[T]) Shutdown(ctx context.Context) error {
	w.mu.Lock()
	w.stopping = true
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
	w.mu.Lock()
	w.stopping = true
	if w.cancelAll != nil {
		w.cancelAll()
	}
	w.mu.Unlock()
	return nil
}

// serving is the state of one call of Serve, shared by its loops.
type serving[T any] struct {
	w         *Worker[T]
	nextCtx   context.Context
	handleCtx context.Context
	stop      context.CancelFunc // stops every loop from pulling again

	// pull holds a token while next runs, so that calls never overlap; it
	// is nil when there is a single loop, which needs no turn-taking. It is
	// a channel rather than a mutex because goroutines blocked on a channel
	// count as durably blocked in a testing/synctest bubble, so users can
	// test their workers with fake time; a mutex waited on for long would
	// stall the bubble.
	pull chan struct{}
	mu   sync.Mutex
	errs []error
}

func (s *serving[T]) loop() {
	for {
		item, ok := s.take()
		if !ok {
			return
		}
		if err := s.handle(item); err != nil {
			s.fail(err)
		}
	}
}

// take pulls one item, or reports that this loop should stop.
func (s *serving[T]) take() (item T, ok bool) {
	if s.pull != nil {
		s.pull <- struct{}{}
		defer func() { <-s.pull }()
	}
	if s.nextCtx.Err() != nil {
		return item, false
	}
	item, err := s.next()
	switch {
	case err == nil:
		return item, true
	case errors.Is(err, io.EOF), s.nextCtx.Err() != nil:
		// The source is done, or lame-duck mode has begun: neither is a failure.
		s.stop()
	default:
		s.fail(err)
	}
	return item, false
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
	return s.w.next(s.nextCtx)
}

func (s *serving[T]) handle(item T) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = newPanicError("handle", p)
		}
	}()
	return s.w.handle(s.handleCtx, item)
}

func (s *serving[T]) fail(err error) {
	s.stop()
	s.mu.Lock()
	s.errs = append(s.errs, err)
	s.mu.Unlock()
}

// ChanSource makes a next function for [FromWorker] that receives from c. It
// returns [io.EOF] once c is closed and drained, and the context's error when
// the context ends first; an item is either received and returned, or left
// in the channel.
func ChanSource[T any](c <-chan T) func(context.Context) (T, error) {
	return func(ctx context.Context) (T, error) {
		select {
		case item, ok := <-c:
			if !ok {
				return item, io.EOF
			}
			return item, nil
		case <-ctx.Done():
			var zero T
			return zero, ctx.Err()
		}
	}
}
