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

	calls     int // calls of next
	liveCalls int // calls after the end with a context not yet done
	released  int // calls of release
	afterRel  int // calls of next after release
}

const holderPanic = "lost the broker connection"

func (h *holder) next(ctx context.Context) (int, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.calls++
	if h.released > 0 {
		h.afterRel++
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

// Items a source has accepted are handled even when its next ends or fails
// while it still holds some: io.EOF ends what next fetches, not what a
// release hook holds; a failure stops the Worker gracefully, and the drain
// still asks the source for what it holds (FromWorker, rule 15).
func TestWorkerHandlesHeldItemsWhenNextEnds(t *testing.T) {
	errQueue := errors.New("queue unreachable")
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
	}, {
		name: "an error: the drain asks a DrainSource for what it holds, and each item is handled",
		end:  errQueue, hold: "drain",
		want: want{err: "queue unreachable", handled: []int{1, 2, 3, 4, 5}, calls: 7},
	}, {
		name: "an error: release hands back what the source prefetched, and each item is handled",
		end:  errQueue, hold: "release",
		want: want{err: "queue unreachable", handled: []int{1, 2, 3, 4, 5}, calls: 3, released: 1},
	}, {
		name: "a panic: the drain asks a DrainSource for what it holds, and each item is handled",
		end:  nil, hold: "drain",
		want: want{err: "lameduck: next panicked: " + holderPanic, handled: []int{1, 2, 3, 4, 5}, calls: 7},
	}, {
		name: "a panic: release hands back what the source prefetched, and each item is handled",
		end:  nil, hold: "release",
		want: want{err: "lameduck: next panicked: " + holderPanic, handled: []int{1, 2, 3, 4, 5}, calls: 3, released: 1},
	}, {
		name: "a DrainSource that fails again in the drain is asked once, not until the period ends",
		end:  errQueue, broken: true, hold: "drain",
		want: want{err: "queue unreachable\nqueue unreachable", handled: []int{1, 2}, calls: 4},
	}, {
		name: "a DrainSource that panics again in the drain is asked once, not until the period ends",
		end:  nil, broken: true, hold: "drain",
		want: want{err: "lameduck: next panicked: " + holderPanic + "\nlameduck: next panicked: " + holderPanic, handled: []int{1, 2}, calls: 4},
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
						w := FromWorker(h.next, func(_ context.Context, i int) error {
							mu.Lock()
							defer mu.Unlock()
							handled = append(handled, i)
							return nil
						}).Concurrency(n).Settle(rec.settle)
						if c.hold == "release" {
							w.ReleaseSource(h.release)
						} else {
							w.DrainSource()
						}
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
						if h.liveCalls > 0 || h.afterRel > 0 {
							t.Errorf("next was called %d times with a live context after it ended, %d times after release; want neither", h.liveCalls, h.afterRel)
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

// A next that wraps ChanSource and fails on one item (a decoder that meets
// a malformed message) stops the Worker gracefully; the items the channel
// still holds were accepted, and the drain hands them over.
func TestWorkerHandlesChanSourceBufferAfterWrapperFails(t *testing.T) {
	errBad := errors.New("malformed item 3")
	for _, runner := range []bool{true, false} {
		t.Run(map[bool]string{true: "under a Runner", false: "Serve alone"}[runner], func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				items := make(chan int, 6) // producers still running: never closed
				for i := 1; i <= 6; i++ {
					items <- i
				}
				source := ChanSource(items)
				next := func(ctx context.Context) (int, error) {
					i, err := source(ctx)
					if err == nil && i == 3 {
						return 0, errBad
					}
					return i, err
				}
				var handled []int
				w := FromWorker(next, func(_ context.Context, i int) error { handled = append(handled, i); return nil })
				var err error
				if runner {
					err = Run(context.Background(), w, withSignalSource(&fakeSignals{}), WithoutLogger())
				} else {
					err = w.Serve(context.Background())
				}
				if err != errBad {
					t.Errorf("Run = %v, want %v", err, errBad)
				}
				if diff := cmp.Diff([]int{1, 2, 4, 5, 6}, handled); diff != "" {
					t.Errorf("handled (-want +got):\n%s", diff)
				}
				if len(items) != 0 {
					t.Errorf("%d accepted items left in the channel, want none", len(items))
				}
			})
		})
	}
}
