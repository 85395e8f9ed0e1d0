package lameduck

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/b583c413/lameduck/internal/workloop"
)

// Worker is a queue consumer run as a [Server]; make one with [FromWorker]
// and configure it with its methods, which each return the Worker so that
// the calls chain:
//
//	w := lameduck.FromWorker(next, handle).Concurrency(4).Settle(settle)
//
// The hooks that name the item type (OnError, Settle, ReleaseSource) take
// it from the Worker, so a hook for another type does not compile. A
// method given bad input (a nil function, Concurrency below 1) records the
// mistake instead of panicking: NewRunner, Run and Serve then fail with an
// error that names it. Configure the Worker before it runs: a method called
// once Serve has begun changes nothing, and Serve reports the call in its
// error (unless it has already returned). A method called on a nil *Worker
// does nothing and returns nil, which NewRunner rejects.
//
// The zero value is not usable: NewRunner and Serve reject it.
type Worker[T any] struct {
	next    func(context.Context) (T, error)
	handle  func(context.Context, T) error
	onError func(context.Context, T, error) error // nil: every error is a failure
	settle  func(context.Context, T, error)       // nil: nothing to settle
	start   func(context.Context) error           // StartSource; nil: none
	release func(context.Context) ([]T, error)    // ReleaseSource; nil: none
	n       int
	holds   bool          // DrainSource: next hands over accepted items after lame-duck
	shared  bool          // ConcurrentNext: next may be called by several slots at once
	err     error         // the first mistake in FromWorker's arguments or a method's; under mu
	grace   time.Duration // the Runner's close grace (see setCloseGrace); under mu

	done  chan struct{}   // closed when Serve has finished, or will never start
	drain *workloop.Drain // begun once accepted items are to be handed over

	// mu guards the configuration until Serve begins (the handler slots
	// read it without the lock afterwards, which is why a late method
	// changes nothing) and the fields below.
	mu   sync.Mutex
	life lifecycle         // Serve, Shutdown and Close, in step with loop under mu
	late []error           // methods called once Serve had begun
	loop *workloop.Loop[T] // the running Serve's state; nil before
}

// FromWorker makes a [Server] that pulls items with next and processes each
// with handle.
//
// next is given a context that ends when lame-duck mode begins (Shutdown),
// after a failure, or when the Worker is closed, so that a blocking pull can
// give up; an item it returns even so is handled. When next returns an error
// wrapping [io.EOF] the source is done: no more items are pulled, and Serve
// returns nil once the handlers in flight have finished and the items that a
// [Worker.ReleaseSource] hook hands back have been handled. Any other error
// from next (or a panic) is a failure, even during the drain.
//
// Accepted items are finished. An item is accepted once the source holds it
// for this process: in [ChanSource]'s channel, or in a custom source that
// prefetches or leases (declare that with [Worker.DrainSource], or give it
// a [Worker.ReleaseSource] hook; a client library's hidden prefetch buffer
// that neither reaches is lost at lame-duck). Once the drain has begun, the
// Worker calls next again, with its done context, until next returns its
// context's error or io.EOF, and handles every item it returns, within the
// period. A failure of next before the drain does not change that: the
// drain still asks the source for what it holds. One during the drain ends
// the asking, so that a broken source is not called in a loop; what it
// still holds is then lost, and Run reports the failure. A source that is
// not declared so (a durable queue whose items wait safely outside the
// process) is not called again: its items stay for the next consumer.
//
// handle is given a context that carries Serve's values and ends only when
// the Worker is closed, so that work in flight can finish during the drain.
// An error from handle (or a panic) is a failure, unless a
// [Worker.OnError] policy says to go on past the item.
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
// [ErrClosed] (see [context.Cause]), and stops the pulling; a
// [Worker.Settle] function still gets a live context to hand the cut items
// back. Every item that next returns with a nil error is passed to handle
// exactly once, even after lame-duck mode has begun, or after Close (with a
// context already cancelled): the handler, not the Worker, decides what to
// do with it.
//
// The Worker handles one item at a time until [Worker.Concurrency] says
// otherwise. A nil next or handle makes NewRunner and Serve fail.
func FromWorker[T any](next func(context.Context) (T, error), handle func(context.Context, T) error) *Worker[T] {
	w := &Worker[T]{next: next, handle: handle, n: 1, grace: closeGrace, done: make(chan struct{}), drain: workloop.NewDrain()}
	switch {
	case next == nil:
		w.err = errors.New("lameduck: FromWorker: next is nil")
	case handle == nil:
		w.err = errors.New("lameduck: FromWorker: handle is nil")
	}
	return w
}

// configure applies one of the configuration methods: apply, unless the
// method's input is bad (mistake is not empty) or Serve has begun, in
// which cases it records why not.
func (w *Worker[T]) configure(method, mistake string, apply func()) *Worker[T] {
	if w == nil {
		return nil
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	switch {
	case w.life.hasStarted():
		w.late = append(w.late, fmt.Errorf("lameduck: FromWorker: %s called after Serve began; it changed nothing", method))
	case mistake != "":
		if w.err == nil {
			w.err = fmt.Errorf("lameduck: FromWorker: %s: %s", method, mistake)
		}
	default:
		apply()
	}
	return w
}

// Concurrency sets how many items the Worker handles at once; the default
// is 1, and n must be at least 1. Each handler slot calls next when it is
// free, so an item is pulled only when a handler is free to take it and
// nothing waits in a buffer where a force-close could strand it. The calls
// take turns, so next need not be safe for concurrent use, unless
// [Worker.ConcurrentNext] says it is.
func (w *Worker[T]) Concurrency(n int) *Worker[T] {
	var mistake string
	if n < 1 {
		mistake = fmt.Sprintf("must be at least 1, got %d", n)
	}
	return w.configure("Concurrency", mistake, func() { w.n = n })
}

// ConcurrentNext tells the Worker that next is safe for concurrent use, so
// that its handler slots (see [Worker.Concurrency]) call it without taking
// turns. That matters for a source that waits on the network, such as a
// blocking pop from a pooled client: with turns, one slow call holds up
// every free slot, and a Worker pulls no faster than one call at a time;
// without, each free slot has a call of its own in flight. The cost of
// taking turns is also gone (see BENCHMARKS.md). [ChanSource] is safe, but
// only this method says so: a next that wraps a safe source may itself not
// be. A source with a [Worker.ReleaseSource] hook always takes turns, so
// that release never runs beside next: combining the two makes NewRunner
// fail.
func (w *Worker[T]) ConcurrentNext() *Worker[T] {
	return w.configure("ConcurrentNext", "", func() { w.shared = true })
}

// DrainSource tells the Worker that next holds items already accepted into
// the process (prefetched, leased, buffered), which must be handled rather
// than dropped when lame-duck mode begins. The Worker then goes on calling
// next during the drain, with a context that is already done: next must
// return an item it holds, without fetching new work or waiting, or its
// context's error once it holds nothing more (see [FromWorker]); io.EOF
// says the same. It is asked so after a failure of next too, unless the
// failure came during the drain. [ChanSource] needs no such call: it tells
// the Worker by itself.
func (w *Worker[T]) DrainSource() *Worker[T] {
	return w.configure("DrainSource", "", func() { w.holds = true })
}

// OnError sets the Worker's policy for an item whose handle call failed
// (returned an error or panicked); without one, every such item is a
// failure of the Worker. policy gets the item and the error, with handle's
// context: returning nil goes on past the item (log it, or leave it for
// [Worker.Settle] to dead-letter), and returning an error (err itself, say)
// is a failure of the Worker: see [FromWorker]. A panic in policy is a
// failure too.
//
// An item whose handler returned its context's error after Close is not a
// failure and is not passed to policy: the Runner reports the forced stop.
func (w *Worker[T]) OnError(policy func(ctx context.Context, item T, err error) error) *Worker[T] {
	var mistake string
	if policy == nil {
		mistake = "policy is nil"
	}
	return w.configure("OnError", mistake, func() { w.onError = policy })
}

// validate reports what makes w unusable, for NewRunner and for w's own
// methods.
func (w *Worker[T]) validate() error {
	if w == nil {
		return fmt.Errorf("lameduck: nil %T Server", w) // as NewRunner says it
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.check()
}

// check is validate for a caller that holds w.mu.
func (w *Worker[T]) check() error {
	switch {
	case w.done == nil:
		return errors.New("lameduck: Worker not made by FromWorker")
	case w.err != nil:
		return w.err
	case w.shared && w.release != nil:
		return errors.New("lameduck: FromWorker: ConcurrentNext and ReleaseSource cannot be combined: release must not run beside a call of next")
	}
	return nil
}

// setCloseGrace is how a Runner gives the Worker its close grace before
// Serve (see [CloseGrace]): it bounds Settle's context after Close and
// ReleaseSource's context.
func (w *Worker[T]) setCloseGrace(d time.Duration) {
	if w == nil {
		return
	}
	w.mu.Lock()
	w.grace = d
	w.mu.Unlock()
}

// Serve pulls and handles items until the source is done, a call fails, or
// the Worker is shut down or closed. See [FromWorker].
func (w *Worker[T]) Serve(ctx context.Context) error {
	loop, err := w.begin(ctx)
	if loop == nil {
		return err
	}
	defer close(w.done)
	failures, err := loop.Serve(ctx)
	if err != nil {
		return err
	}
	w.mu.Lock()
	late := w.late
	w.mu.Unlock()
	return joinErrors(append(failures, late...)...)
}

// begin marks w as started and hands its configuration to the loop of its
// one Serve, or returns nil and the error Serve returns.
func (w *Worker[T]) begin(ctx context.Context) (*workloop.Loop[T], error) {
	if w == nil {
		return nil, w.validate()
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if err := w.check(); err != nil {
		return nil, err
	}
	stopped, err := w.life.start("Worker's Serve")
	if err != nil {
		return nil, err
	}
	if stopped && w.life.phase() == phaseClosed {
		close(w.done)
		return nil, nil
	}
	w.loop = workloop.New(ctx, w.config(), w.drain)
	if stopped {
		// Shutdown came first (a SIGTERM during start-up): nothing new is
		// taken, but what the source already holds, such as ChanSource's
		// buffer, is still handed over and handled.
		w.loop.StopTaking()
	}
	return w.loop, nil
}

// config is what the loop runs with; the caller holds w.mu.
func (w *Worker[T]) config() workloop.Config[T] {
	return workloop.Config[T]{
		Next:      w.next,
		Handle:    w.handle,
		OnError:   w.onError,
		Settle:    w.settle,
		Start:     w.start,
		Release:   w.release,
		Slots:     w.n,
		Holds:     w.holds,
		Shared:    w.shared,
		Grace:     w.grace,
		Closed:    ErrClosed,
		Stop:      Stop,
		Recovered: newPanicError,
	}
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
	w.life.stop(phaseStopping)
	// Draining first, so that a loop woken by the cancellation below
	// already sees it and asks the source for what it holds.
	w.drain.Begin()
	if w.loop != nil {
		w.loop.StopTaking()
	}
	started := w.life.hasStarted()
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
	w.life.stop(phaseClosed)
	if w.loop != nil {
		w.loop.Cancel(ErrClosed)
	}
	w.mu.Unlock()
	return nil
}
