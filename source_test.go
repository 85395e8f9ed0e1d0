package lameduck

import (
	"context"
	"errors"
	"sync"
	"syscall"
	"testing"
	"testing/synctest"
	"time"

	"github.com/google/go-cmp/cmp"
)

// prefetcher is a source that keeps a buffer of items it has taken from
// its broker, as nats.go's Messages() does. Its release hook hands the
// buffer back.
type prefetcher struct {
	mu       sync.Mutex
	buffer   []int
	next     int
	released int       // how many times release was called
	afterRel int       // calls of next after release
	when     time.Time // when release was called
}

func (p *prefetcher) pull(ctx context.Context) (int, error) {
	p.mu.Lock()
	if p.released > 0 {
		p.afterRel++
	}
	p.mu.Unlock()
	select {
	case <-time.After(100 * time.Millisecond):
	case <-ctx.Done():
		return 0, ctx.Err()
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	// It fetches three at a time and keeps two.
	if len(p.buffer) == 0 {
		p.buffer = []int{p.next, p.next + 1, p.next + 2}
		p.next += 3
	}
	item := p.buffer[0]
	p.buffer = p.buffer[1:]
	return item, nil
}

func (p *prefetcher) release(context.Context) ([]int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.released++
	p.when = time.Now()
	items := p.buffer
	p.buffer = nil
	return items, nil
}

// checkReleasedOnce reports a release called other than once, or a call
// of next after it.
func (p *prefetcher) checkReleasedOnce(t *testing.T) {
	t.Helper()
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.released != 1 || p.afterRel != 0 {
		t.Errorf("release called %d times, next %d times after it; want 1 and 0", p.released, p.afterRel)
	}
}

func TestSourceLife(t *testing.T) {
	t.Run("start runs before next, and its error is Run's", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			errRecovery := errors.New("recovery failed")
			var order []string
			w := FromWorker(func(context.Context) (int, error) { order = append(order, "next"); return 0, nil },
				func(context.Context, int) error { return nil }).
				StartSource(func(context.Context) error { order = append(order, "start"); return errRecovery })
			err := Run(context.Background(), w, withSignalSource(&fakeSignals{}), WithoutLogger())
			if !errors.Is(err, errRecovery) {
				t.Errorf("Run = %v, want the start hook's error", err)
			}
			if diff := cmp.Diff([]string{"start"}, order); diff != "" {
				t.Errorf("calls (-want +got):\n%s", diff)
			}
		})
	})
	t.Run("prefetched items are released at lame-duck and handled within the period", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			p := &prefetcher{}
			var rec settled
			var handled []int
			w := FromWorker(p.pull, func(_ context.Context, i int) error {
				handled = append(handled, i)
				return nil
			}).ReleaseSource(p.release).Settle(rec.settle)
			h := runInBubble(t, w)
			time.Sleep(250 * time.Millisecond) // two items pulled, one still in the buffer
			h.sig.send(syscall.SIGTERM)
			if _, err := h.wait(); err != nil {
				t.Errorf("Run = %v, want nil", err)
			}
			if diff := cmp.Diff([]int{0, 1, 2}, handled); diff != "" {
				t.Errorf("handled (-want +got):\n%s", diff)
			}
			want := map[int][]string{0: {"done"}, 1: {"done"}, 2: {"done"}}
			if diff := cmp.Diff(want, rec.got); diff != "" {
				t.Errorf("settled (-want +got):\n%s", diff)
			}
			p.checkReleasedOnce(t)
		})
	})
	t.Run("release is called when the drain begins, even while every handler is busy", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			// A prefetching client goes on taking work from its broker
			// until it is released: waiting for a free handler would let
			// it take more in lame-duck mode.
			p := &prefetcher{}
			var handled []int
			w := FromWorker(p.pull, func(_ context.Context, i int) error {
				time.Sleep(400 * time.Millisecond)
				handled = append(handled, i)
				return nil
			}).ReleaseSource(p.release)
			h := runInBubble(t, w)
			time.Sleep(150 * time.Millisecond) // item 0 in handle, 1 and 2 in the buffer
			sigAt := time.Now()
			h.sig.send(syscall.SIGTERM)
			if _, err := h.wait(); err != nil {
				t.Errorf("Run = %v, want nil", err)
			}
			if got := p.when.Sub(sigAt); got != 0 {
				t.Errorf("release called %v after SIGTERM, want at once (the handler was busy for another 350ms)", got)
			}
			if diff := cmp.Diff([]int{0, 1, 2}, handled); diff != "" {
				t.Errorf("handled (-want +got):\n%s", diff)
			}
			p.checkReleasedOnce(t)
		})
	})
	t.Run("next is never called once release has run, even between the drain's two steps", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			// Shutdown begins the drain and then ends next's context; a
			// handler slot that comes back for an item in between still
			// calls next, so release must wait for the second step.
			p := &prefetcher{}
			gate := make(chan struct{})
			w := FromWorker(p.pull, func(_ context.Context, i int) error {
				if i == 0 {
					<-gate
				}
				return nil
			}).ReleaseSource(p.release)
			done := make(chan error)
			go func() { done <- w.Serve(context.Background()) }()
			time.Sleep(150 * time.Millisecond) // item 0 in handle, 1 and 2 in the buffer
			w.mu.Lock()
			w.drain.Begin() // Shutdown's first step alone
			w.mu.Unlock()
			synctest.Wait()
			close(gate) // the slot comes back and calls next: item 1
			synctest.Wait()
			w.mu.Lock()
			w.loop.StopTaking() // Shutdown's second step
			w.mu.Unlock()
			if err := <-done; err != nil {
				t.Errorf("Serve = %v, want nil", err)
			}
			p.checkReleasedOnce(t)
		})
	})
	t.Run("released items that Close leaves are settled as cancelled, not handled", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			p := &prefetcher{}
			var rec settled
			var handled []int
			w := FromWorker(p.pull, func(ctx context.Context, i int) error {
				handled = append(handled, i)
				<-ctx.Done() // longer than the period
				return ctx.Err()
			}).ReleaseSource(p.release).Settle(rec.settle)
			h := runInBubble(t, w, Period(time.Second))
			time.Sleep(150 * time.Millisecond) // item 0 in handle, 1 and 2 in the buffer
			h.sig.send(syscall.SIGTERM)
			_, err := h.wait()
			var lde *LameDuckError
			if !errors.As(err, &lde) || !lde.Expired || lde.Err != nil {
				t.Errorf("Run = %v, want a clean expiry", err)
			}
			if diff := cmp.Diff([]int{0}, handled); diff != "" {
				t.Errorf("handled (-want +got):\n%s", diff)
			}
			want := map[int][]string{0: {"cancelled"}, 1: {"cancelled"}, 2: {"cancelled"}}
			if diff := cmp.Diff(want, rec.got); diff != "" {
				t.Errorf("settled (-want +got):\n%s", diff)
			}
			if p.released != 1 {
				t.Errorf("release called %d times, want once", p.released)
			}
		})
	})
	t.Run("release's error is Run's, and the drain goes on", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			errRelease := errors.New("nak failed")
			var handled []int
			w := FromWorker(ChanSource(make(chan int)), func(_ context.Context, i int) error {
				handled = append(handled, i)
				return nil
			}).ReleaseSource(func(context.Context) ([]int, error) { return []int{7}, errRelease })
			h := runInBubble(t, w)
			h.sig.send(syscall.SIGTERM)
			if _, err := h.wait(); !errors.Is(err, errRelease) {
				t.Errorf("Run = %v, want release's error", err)
			}
			if diff := cmp.Diff([]int{7}, handled); diff != "" {
				t.Errorf("handled (-want +got):\n%s", diff)
			}
		})
	})
}
