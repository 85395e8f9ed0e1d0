// Package workloop is the machinery behind lameduck's Worker: the handler
// slots that pull items from a source and handle them, the turns their calls
// of next take, the drain that asks the source for the items it accepted,
// and what a failure or Close does to all of that. The Worker validates its
// configuration and hands it over in a [Config]; nothing here reads the
// Runner's settings from a context.
package workloop

import (
	"context"
	"sync"
	"time"
)

// Config is what one Serve of a Worker runs with.
type Config[T any] struct {
	Next    func(context.Context) (T, error)      // pulls an item; never nil
	Handle  func(context.Context, T) error        // processes an item; never nil
	OnError func(context.Context, T, error) error // policy for a failed item; nil: every failure counts
	Settle  func(context.Context, T, error)       // tells the source how an item ended; nil: none
	Start   func(context.Context) error           // called before the first pull; nil: none
	Release func(context.Context) ([]T, error)    // stops a prefetching source; nil: none
	Slots   int                                   // handler slots; at least 1
	Holds   bool                                  // next holds accepted items to hand over in the drain
	Shared  bool                                  // next is safe for concurrent use: no turns

	// Grace bounds Settle's context after Close and Release's context.
	Grace time.Duration
	// Closed is the cause with which Close cancels the handlers; every
	// item that Close cuts short is settled with an error that matches it.
	Closed error
	// Stop asks whoever runs the Worker for a graceful stop of the whole
	// service, and reports whether anyone took the request; without a
	// taker the loop drains on its own.
	Stop func(ctx context.Context, cause error) bool
	// Recovered turns a panic value recovered from the user's function
	// what into an error. It is called inside the deferred recover, so
	// that a stack it records is the panic's.
	Recovered func(what string, p any) error
}

// call runs f and turns a panic inside it into an error.
func (c *Config[T]) call(what string, f func() error) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = c.Recovered(what, p)
		}
	}()
	return f()
}

// Drain says when the items that the source holds are to be handed over:
// a Worker makes it before Serve, as Shutdown may begin the drain first.
type Drain struct {
	c    chan struct{}
	once sync.Once
}

// NewDrain returns a Drain that has not begun.
func NewDrain() *Drain { return &Drain{c: make(chan struct{})} }

// Begin begins the drain; later calls do nothing.
func (d *Drain) Begin() { d.once.Do(func() { close(d.c) }) }

// Begun returns a channel that is closed once the drain has begun.
func (d *Drain) Begun() <-chan struct{} { return d.c }
