package lameduck

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

// TestWrappedChanSourceFailingFirst: a next that wraps ChanSource and fails
// before its first call of it still has the channel's buffer handled in the
// drain: the Worker could not yet know that the source holds items, and
// asks it once.
func TestWrappedChanSourceFailingFirst(t *testing.T) {
	errNext := errors.New("broker hiccup")
	for _, n := range []int{1, 3} {
		t.Run(fmt.Sprintf("Concurrency(%d)", n), func(t *testing.T) {
			items := chanOf(1, 2, 3, 4)
			cs := ChanSource(items)
			first := true
			var mu sync.Mutex
			next := func(ctx context.Context) (int, error) {
				mu.Lock()
				fail := first
				first = false
				mu.Unlock()
				if fail {
					return 0, errNext
				}
				return cs(ctx)
			}
			var handled []int
			handle := func(_ context.Context, i int) error {
				mu.Lock()
				defer mu.Unlock()
				handled = append(handled, i)
				return nil
			}
			err := Run(context.Background(), FromWorker(next, handle).Concurrency(n), Signals(), WithoutLogger())
			if !errors.Is(err, errNext) {
				t.Errorf("Run = %v, want %v", err, errNext)
			}
			if diff := cmp.Diff([]int{1, 2, 3, 4}, handled, cmpopts.SortSlices(func(a, b int) bool { return a < b })); diff != "" || len(items) != 0 {
				t.Errorf("handled (-want +got):\n%s\n%d items left in the channel", diff, len(items))
			}
		})
	}
}
