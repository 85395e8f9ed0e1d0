package lameduck

import (
	"context"
	"errors"
	"io"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

// holder is a source that has accepted items (a prefetch buffer) and whose
// next ends (io.EOF), fails or panics after returning some of them, while
// it still holds the rest: the items it holds are owed processing all the
// same.
type holder struct {
	mu     sync.Mutex
	buffer []int
	give   int   // items next returns before it ends
	end    error // what next returns then; nil: it panics
	broken bool  // next keeps failing after the end, even in the drain

	calls      int // calls of next
	liveCalls  int // calls after the end with a context not yet done
	released   int // calls of release
	afterRelse int // calls of next after release
}

const holderPanic = "lost the broker connection"

func (h *holder) next(ctx context.Context) (int, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.calls++
	if h.released > 0 {
		h.afterRelse++
	}
	switch {
	case h.give > 0:
		h.give--
		return h.pop(), nil
	case h.give == 0:
		h.give-- // the end, once
		if h.end == nil {
			panic(holderPanic)
		}
		return 0, h.end
	}
	// After the end: only the drain may ask, with a done context.
	if ctx.Err() == nil {
		h.liveCalls++
	}
	switch {
	case errors.Is(h.end, io.EOF):
		return 0, io.EOF
	case h.broken && h.end == nil:
		panic(holderPanic)
	case h.broken:
		return 0, h.end
	case len(h.buffer) > 0:
		return h.pop(), nil
	}
	return 0, ctx.Err()
}

func (h *holder) pop() int {
	item := h.buffer[0]
	h.buffer = h.buffer[1:]
	return item
}

func (h *holder) release(context.Context) ([]int, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.released++
	items := h.buffer
	h.buffer = nil
	return items, nil
}

// Items a source has accepted are handled even when its next ends while it
// still holds some: io.EOF ends what next fetches, not what a release hook
// holds (FromWorker, rule 15).
func TestWorkerHandlesHeldItemsWhenNextEnds(t *testing.T) {
	type want struct {
		err      string // Run's (or Serve's) error; "" for nil
		handled  []int
		calls    int // calls of next
		released int // calls of release
	}
	cases := []struct {
		name   string
		end    error // nil: next panics
		broken bool
		hold   string // how the source says it holds items: "release" or "drain"
		want   want
	}{{
		name: "io.EOF: release hands back what the source prefetched, and each item is handled before Serve returns",
		end:  io.EOF, hold: "release",
		want: want{handled: []int{1, 2, 3, 4, 5}, calls: 3, released: 1},
	}, {
		name: "io.EOF from a DrainSource's next says it holds nothing more: it is not asked again",
		end:  io.EOF, hold: "drain",
		want: want{handled: []int{1, 2}, calls: 3},
	}}
	for _, c := range cases {
		for _, n := range []int{1, 3} {
			for _, runner := range []bool{true, false} {
				name := c.name + "/" + map[bool]string{true: "under a Runner", false: "Serve alone"}[runner]
				if n > 1 {
					name += ", three slots"
				}
				t.Run(name, func(t *testing.T) {
					synctest.Test(t, func(t *testing.T) {
						h := &holder{buffer: []int{1, 2, 3, 4, 5}, give: 2, end: c.end, broken: c.broken}
						var mu sync.Mutex
						var handled []int
						var rec settled
						opts := []WorkerOption{Concurrency(n), Settle(rec.settle)}
						if c.hold == "release" {
							opts = append(opts, ReleaseSource(h.release))
						} else {
							opts = append(opts, DrainSource())
						}
						w := FromWorker(h.next, func(_ context.Context, i int) error {
							mu.Lock()
							defer mu.Unlock()
							handled = append(handled, i)
							return nil
						}, opts...)
						var err error
						begin := time.Now()
						if runner {
							err = Run(context.Background(), w, withSignalSource(&fakeSignals{}), WithoutLogger())
						} else {
							err = w.Serve(context.Background())
						}
						got := want{handled: handled, calls: h.calls, released: h.released}
						if err != nil {
							got.err = err.Error()
						}
						if diff := cmp.Diff(c.want, got, cmp.AllowUnexported(want{}), cmpopts.SortSlices(func(a, b int) bool { return a < b })); diff != "" {
							t.Errorf("(-want +got):\n%s", diff)
						}
						if elapsed := time.Since(begin); elapsed != 0 {
							t.Errorf("took %v, want no wait: nothing blocks", elapsed)
						}
						if h.liveCalls > 0 || h.afterRelse > 0 {
							t.Errorf("next was called %d times with a live context after it ended, %d times after release; want neither", h.liveCalls, h.afterRelse)
						}
						wantSettled := map[int][]string{}
						for _, i := range c.want.handled {
							wantSettled[i] = []string{"done"}
						}
						if diff := cmp.Diff(wantSettled, rec.got, cmpopts.EquateEmpty()); diff != "" {
							t.Errorf("settled (-want +got):\n%s", diff)
						}
					})
				})
			}
		}
	}
}
