package workloop

import "sync/atomic"

// This file keeps the books a stop report reads: how many items are in
// handle, how many were handled, and how many Close cut short. Each slot
// counts its own items on a cache line of its own, so that the slots do
// not slow each other down.

// Counts is a snapshot of a Loop's books. Handled and Cut only grow.
type Counts struct {
	InHandle int // items whose handler is running
	Handled  int // items whose handler returned before Close
	Cut      int // items whose handler failed once Close had begun, and released items never handled
}

// slotBook is one slot's count.
type slotBook struct {
	seq atomic.Uint64 // odd while the slot is in handle; each item adds 2
	cut atomic.Uint64 // items whose handler failed after Close
	_   [48]byte
}

// books is a Loop's counts: one slotBook per slot, handed out in order.
type books struct {
	slots     []slotBook
	given     atomic.Int32
	cancelled atomic.Bool   // Cancel has been called: what returns now was cut
	left      atomic.Uint64 // released items settled (or dropped) unhandled
}

func newBooks(slots int) books { return books{slots: make([]slotBook, slots)} }

// take hands a slot its book.
func (b *books) take() *slotBook { return &b.slots[b.given.Add(1)-1] }

// Counts returns the Loop's books as they stand. It is safe to call from
// any goroutine.
func (s *Loop[T]) Counts() Counts {
	var c Counts
	for i := range s.books.slots {
		b := &s.books.slots[i]
		cut := b.cut.Load()
		seq := b.seq.Load()
		c.InHandle += int(seq & 1)
		c.Handled += int(seq/2 - cut)
		c.Cut += int(cut)
	}
	c.Cut += int(s.books.left.Load())
	return c
}

// Cutting says that Close is coming: a handler that returns from now on
// was cut short. Cancel says so too.
func (s *Loop[T]) Cutting() { s.books.cancelled.Store(true) }

// began and ended bracket a handler call in the slot's book. failed says
// the handler returned an error (or panicked): after Close, that is an item
// Close cut short; one that returned nil did its work, Close or not.
func (l *slot[T]) began() { l.book.seq.Add(1) }

func (l *slot[T]) ended(failed bool) {
	if failed && l.s.books.cancelled.Load() {
		l.book.cut.Add(1)
	}
	l.book.seq.Add(1)
}
