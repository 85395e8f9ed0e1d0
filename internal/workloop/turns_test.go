package workloop

import (
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"
)

// One slot at a time, however many contend, and every slot gets its turns:
// a lost wake-up would hang the test. The count inside the turn is a plain
// int, so the race detector also sees an overlap.
func TestTurnsExclude(t *testing.T) {
	const slots, each = 8, 20000
	tu := newTurns()
	var inside atomic.Int32
	var most atomic.Int32
	count := 0
	var wg sync.WaitGroup
	for range slots {
		wg.Go(func() {
			for range each {
				tu.begin()
				if n := inside.Add(1); n > most.Load() {
					most.Store(n)
				}
				count++
				inside.Add(-1)
				tu.end()
			}
		})
	}
	wg.Wait()
	if count != slots*each {
		t.Errorf("count = %d, want %d", count, slots*each)
	}
	if m := most.Load(); m != 1 {
		t.Errorf("%d slots had the turn at once, want 1", m)
	}
}

// A slot waiting for its turn is durably blocked in a synctest bubble, so
// fake time moves on while the slot whose turn it is sleeps: eight turns of
// one second each take exactly eight seconds. With a sync.Mutex the bubble
// could not advance its clock and the test would hang.
func TestTurnsInBubble(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		tu := newTurns()
		begin := time.Now()
		var wg sync.WaitGroup
		for range 8 {
			wg.Go(func() {
				tu.begin()
				defer tu.end()
				time.Sleep(time.Second)
			})
		}
		wg.Wait()
		if got := time.Since(begin); got != 8*time.Second {
			t.Errorf("eight one-second turns took %v, want 8s", got)
		}
	})
}
