package workloop

import "sync/atomic"

// turns lets one handler slot at a time call next. It is a lock with a
// channel to wait on rather than a sync.Mutex because a goroutine blocked
// on a channel counts as durably blocked in a testing/synctest bubble, so
// that users can test their workers with fake time, while one waiting for
// a mutex stalls the bubble for as long as the holder's next waits.
//
// A slot that finds the lock free takes it with one compare-and-swap, and
// a slot that comes back for its next turn may take it before one that is
// waiting: no hand-over at every call, which is what made a token passed
// through a channel cost three times a mutex when handlers are quick.
type turns struct {
	held    atomic.Bool
	waiting atomic.Int32  // slots that are waiting, or about to
	woken   atomic.Bool   // a token is on its way to a waiting slot
	wake    chan struct{} // the token: the slot that gets it tries again
}

func newTurns() *turns { return &turns{wake: make(chan struct{}, 1)} }

func (t *turns) begin() {
	for {
		if t.held.CompareAndSwap(false, true) {
			return
		}
		// Counted as waiting before trying again, so that an end that
		// comes after the failed attempt sees the count and wakes us.
		t.waiting.Add(1)
		if t.held.CompareAndSwap(false, true) {
			t.waiting.Add(-1)
			return
		}
		<-t.wake
		t.woken.Store(false)
		t.waiting.Add(-1)
	}
}

// end ends the turn and, if slots are waiting, wakes one, unless one is
// already woken and about to try: waking them all only for all but one to
// wait again is what costs. There is at most one token at a time (woken is
// set until it is taken), so the send never blocks.
func (t *turns) end() {
	t.held.Store(false)
	if t.waiting.Load() > 0 && t.woken.CompareAndSwap(false, true) {
		t.wake <- struct{}{}
	}
}
