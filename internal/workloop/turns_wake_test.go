package workloop

import (
	"testing"
	"testing/synctest"
)

// What turns does besides excluding (turns_test.go): it wakes a waiting
// slot only when one waits, and counts each waiting slot once, so that no
// slot is woken for nothing later on.
func TestTurnsWakeOnlyWaitingSlots(t *testing.T) {
	t.Run("a turn that nobody waits for leaves no wake-up behind", func(t *testing.T) {
		tu := newTurns()
		for range 3 {
			tu.begin()
			tu.end()
		}
		if n := len(tu.wake); n != 0 {
			t.Errorf("%d wake-ups pending with nobody waiting, want 0", n)
		}
	})
	t.Run("a slot that was woken is no longer counted as waiting", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			tu := newTurns()
			tu.begin()
			done := make(chan struct{})
			go func() {
				defer close(done)
				tu.begin() // waits: the turn is held
				tu.end()
			}()
			synctest.Wait()
			if n := tu.waiting.Load(); n != 1 {
				t.Errorf("%d slots counted as waiting while one waits, want 1", n)
			}
			tu.end()
			<-done
			if n := tu.waiting.Load(); n != 0 {
				t.Errorf("%d slots counted as waiting once all have had their turn, want 0", n)
			}
			if n := len(tu.wake); n != 0 {
				t.Errorf("%d wake-ups pending with nobody waiting, want 0", n)
			}
		})
	})
}
