package lameduck

import (
	"context"
	"errors"
	"io"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/google/go-cmp/cmp"
)

// ledger checks the Worker's promise: every item next returned is handled
// exactly once.
type ledger struct {
	mu                sync.Mutex
	pulled, handled   []int
	pulling, handling int // calls in progress now
	maxPull, maxHand  int // the most ever in progress at once
	pullsAtOnce       int // how many calls of next may overlap: 0 means 1
}

func (l *ledger) enter(calls, most *int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	*calls++
	*most = max(*most, *calls)
}

func (l *ledger) leave(calls *int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	*calls--
}

// source returns next, which yields 0, 1, 2, ... taking pull each, up to n
// items (then io.EOF), giving up when its ctx ends.
func (l *ledger) source(n int, pull time.Duration) func(context.Context) (int, error) {
	i := 0
	return func(ctx context.Context) (int, error) {
		l.enter(&l.pulling, &l.maxPull)
		defer l.leave(&l.pulling)
		if i == n {
			return 0, io.EOF
		}
		select {
		case <-time.After(pull):
		case <-ctx.Done():
			return 0, ctx.Err()
		}
		l.mu.Lock()
		defer l.mu.Unlock()
		l.pulled = append(l.pulled, i)
		i++
		return i - 1, nil
	}
}

// handler returns handle, which takes work per item (or until its ctx ends)
// and records the item.
func (l *ledger) handler(work time.Duration, fail map[int]error) func(context.Context, int) error {
	return func(ctx context.Context, item int) error {
		l.enter(&l.handling, &l.maxHand)
		defer l.leave(&l.handling)
		select {
		case <-time.After(work):
		case <-ctx.Done():
		}
		l.mu.Lock()
		l.handled = append(l.handled, item)
		l.mu.Unlock()
		return fail[item]
	}
}

// check reports items pulled but not handled once, or handled twice.
func (l *ledger) check(t *testing.T) {
	t.Helper()
	l.mu.Lock()
	defer l.mu.Unlock()
	count := map[int]int{}
	for _, i := range l.handled {
		count[i]++
	}
	for _, i := range l.pulled {
		if count[i] != 1 {
			t.Errorf("item %d was handled %d times, want exactly once", i, count[i])
		}
		delete(count, i)
	}
	for i := range count {
		t.Errorf("item %d was handled but never pulled", i)
	}
	if allowed := max(l.pullsAtOnce, 1); l.maxPull > allowed {
		t.Errorf("next ran %d times at once, want at most %d", l.maxPull, allowed)
	}
}

func TestWorker(t *testing.T) {
	errItem := errors.New("item 2 is bad")
	cases := []struct {
		name        string
		items       int // how many the source has; 0 for endless
		work        time.Duration
		n           int
		fail        map[int]error
		triggerAt   time.Duration // 0: no trigger
		period      time.Duration
		wantErr     error
		wantElapsed time.Duration
		wantHandled int
		wantMax     int // the most handlers at once
	}{{
		name:  "a source that runs dry ends Serve and Run with nil",
		items: 5, work: 100 * time.Millisecond, n: 1,
		wantElapsed: 5 * 110 * time.Millisecond, wantHandled: 5, wantMax: 1,
	}, {
		name: "lame-duck mode stops the pulling and waits for the item in flight",
		work: time.Second, n: 1, triggerAt: 1500 * time.Millisecond,
		// item 0: 10ms..1010ms; item 1: 1020ms..2020ms; the pull of item 2 gives up at 1500ms
		wantElapsed: 2020 * time.Millisecond, wantHandled: 2, wantMax: 1,
	}, {
		name:  "Concurrency runs handlers side by side",
		items: 8, work: time.Second, n: 4,
		// pulls take turns: items 0-3 start at 10..40ms, 4-7 at 1020..1050ms
		wantElapsed: 2050 * time.Millisecond, wantHandled: 8, wantMax: 4,
	}, {
		name:  "a handler's error is fatal: no new items, in-flight ones finish, Run returns the error",
		items: 100, work: time.Second, n: 2, fail: map[int]error{2: errItem},
		// items 0,1 start at 10/20ms; 2,3 at 1020/1030ms; 2 fails at 2020ms
		// while 3 runs to 2030ms; nothing is pulled after the failure
		wantErr: errItem, wantElapsed: 2030 * time.Millisecond, wantHandled: 4, wantMax: 2,
	}, {
		name: "Close cancels the handlers' context when the period expires",
		work: time.Hour, n: 3, triggerAt: time.Second, period: 2 * time.Second,
		wantErr: context.DeadlineExceeded, wantElapsed: 3 * time.Second, wantHandled: 3, wantMax: 3,
	}}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				l := &ledger{}
				items := c.items
				if items == 0 {
					items = -1
				}
				w := FromWorker(l.source(items, 10*time.Millisecond), l.handler(c.work, c.fail)).Concurrency(c.n)
				opts := []Option{WithoutLogger()}
				if c.period > 0 {
					opts = append(opts, Period(c.period))
				}
				begin := time.Now()
				h := runUntilReady(t, w, opts...)
				if c.triggerAt > 0 {
					time.Sleep(c.triggerAt)
					sendSignal(h)
				}
				err := <-h.done
				elapsed := time.Since(begin)
				if !errors.Is(err, c.wantErr) && !(c.wantErr != nil && err != nil && err.Error() == c.wantErr.Error()) {
					t.Errorf("Run = %v, want %v", err, c.wantErr)
				}
				if elapsed != c.wantElapsed {
					t.Errorf("Run took %v, want %v", elapsed, c.wantElapsed)
				}
				l.check(t)
				if len(l.handled) != c.wantHandled || l.maxHand != c.wantMax {
					t.Errorf("handled %d items, at most %d at once; want %d and %d", len(l.handled), l.maxHand, c.wantHandled, c.wantMax)
				}
			})
		})
	}
}

func TestWorkerEdges(t *testing.T) {
	t.Run("an item that next returns after lame-duck began is still handled", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			var handled []string
			pulled := false
			next := func(ctx context.Context) (string, error) {
				if pulled {
					return "", io.EOF
				}
				<-ctx.Done() // lame-duck has begun...
				pulled = true
				return "late", nil // ...but the item was already taken off the queue
			}
			w := FromWorker(next, func(_ context.Context, s string) error { handled = append(handled, s); return nil })
			h := runInBubble(t, w, WithoutLogger())
			sendSignal(h)
			if err := <-h.done; err != nil {
				t.Fatalf("Run = %v", err)
			}
			if diff := cmp.Diff([]string{"late"}, handled); diff != "" {
				t.Errorf("handled (-want +got):\n%s", diff)
			}
		})
	})
	t.Run("an error from next other than io.EOF is fatal", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			errQueue := errors.New("queue unreachable")
			w := FromWorker(func(context.Context) (int, error) { return 0, errQueue }, func(context.Context, int) error { return nil })
			if err := Run(context.Background(), w, withSignalSource(&fakeSignals{}), WithoutLogger()); err != errQueue {
				t.Errorf("Run = %v, want %v unwrapped", err, errQueue)
			}
		})
	})
	// CONTRACT.md, FromWorker helper: a panic or error of next is an error even
	// during the drain (issue 10, case 5).
	for _, c := range []struct {
		name string
		next func(context.Context) (int, error)
		want string
	}{
		{"a panic in next during the drain is Run's error, not swallowed",
			func(ctx context.Context) (int, error) { <-ctx.Done(); panic("queue client bug") },
			"lameduck: next panicked: queue client bug"},
		{"an error from next during the drain, other than its context's, is Run's error",
			func(ctx context.Context) (int, error) { <-ctx.Done(); return 0, errors.New("connection reset") },
			"connection reset"},
	} {
		t.Run(c.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				h := runInBubble(t, FromWorker(c.next, func(context.Context, int) error { return nil }), WithoutLogger())
				sendSignal(h)
				if err := <-h.done; err == nil || err.Error() != c.want {
					t.Errorf("Run = %v, want %q", err, c.want)
				}
			})
		})
	}
	t.Run("a wrapped io.EOF also ends the source", func(t *testing.T) {
		w := FromWorker(func(context.Context) (int, error) { return 0, errors.Join(io.EOF) }, func(context.Context, int) error { return nil })
		if err := w.Serve(context.Background()); err != nil {
			t.Errorf("Serve = %v, want nil", err)
		}
	})
	// CONTRACT.md, FromWorker: a failure still hands over the accepted items (here, with
	// no Runner to ask, the Worker drains on its own), so each item in the
	// channel reaches handle once and each panic is reported.
	t.Run("a panicking handler is a failure, and the accepted items are still handled", func(t *testing.T) {
		var got []int
		w := FromWorker(ChanSource(chanOf(1, 2)), func(_ context.Context, i int) error { got = append(got, i); panic("bad item") })
		err := w.Serve(context.Background())
		if err == nil || err.Error() != "lameduck: handle panicked: bad item\nlameduck: handle panicked: bad item" {
			t.Errorf("Serve = %v", err)
		}
		if diff := cmp.Diff([]int{1, 2}, got); diff != "" {
			t.Errorf("handled (-want +got):\n%s", diff)
		}
	})
	t.Run("Shutdown before Serve: Serve takes nothing new and returns nil", func(t *testing.T) {
		// next may be asked, with its context already done, whether it
		// holds accepted items (it could be a ChanSource); a source that
		// honours its context gives nothing.
		var asked []error
		handled := 0
		w := FromWorker(func(ctx context.Context) (int, error) { asked = append(asked, ctx.Err()); return 0, ctx.Err() },
			func(context.Context, int) error { handled++; return nil })
		if err := w.Shutdown(context.Background()); err != nil {
			t.Fatalf("Shutdown = %v", err)
		}
		if err := w.Serve(context.Background()); err != nil || handled != 0 {
			t.Errorf("Serve = %v (%d handled), want nil and nothing handled", err, handled)
		}
		for _, err := range asked {
			if err == nil {
				t.Errorf("next was called with a live context after Shutdown")
			}
		}
		if err := w.Serve(context.Background()); err == nil {
			t.Error("a second Serve returned nil")
		}
	})
	t.Run("Shutdown gives up when its context ends", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			release := make(chan struct{})
			w := FromWorker(ChanSource(chanOf(1)), func(context.Context, int) error { <-release; return nil })
			done := make(chan error, 1)
			go func() { done <- w.Serve(context.Background()) }()
			synctest.Wait()
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			defer cancel()
			if err := w.Shutdown(ctx); err != context.DeadlineExceeded {
				t.Errorf("Shutdown = %v, want DeadlineExceeded", err)
			}
			close(release)
			if err := <-done; err != nil {
				t.Errorf("Serve = %v", err)
			}
		})
	})
}

func TestChanSource(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := make(chan int, 1)
		next := ChanSource(c)
		c <- 7
		if got, err := next(context.Background()); got != 7 || err != nil {
			t.Errorf("next = %d, %v; want 7, nil", got, err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		if _, err := next(ctx); err != context.DeadlineExceeded {
			t.Errorf("next on an empty channel with an ending ctx = %v, want DeadlineExceeded", err)
		}
		close(c)
		if _, err := next(context.Background()); err != io.EOF {
			t.Errorf("next on a closed channel = %v, want io.EOF", err)
		}
	})
}

// A Worker whose slots call next at once, and one of them finds the
// channel closed and empty: Serve returns nil without waiting for a drain
// (rule 9), also for a slot that finds next's context ended by the end of
// the source before the source is marked dry. Without a Runner no drain
// would ever come.
func TestWorkerEndsWhenConcurrentSourceRunsDry(t *testing.T) {
	for round := range 2000 {
		w := FromWorker(ChanSource(chanOf(make([]int, 64)...)), func(context.Context, int) error { return nil }).
			Concurrency(8).
			ConcurrentNext()
		done := make(chan error, 1)
		go func() { done <- w.Serve(context.Background()) }()
		select {
		case err := <-done:
			if err != nil {
				t.Fatalf("round %d: Serve = %v, want nil", round, err)
			}
		case <-time.After(10 * time.Second):
			w.Shutdown(context.Background()) // let Serve end, for goleak
			<-done
			t.Fatalf("round %d: Serve did not return after the source ran dry", round)
		}
	}
}

func chanOf[T any](items ...T) <-chan T {
	c := make(chan T, len(items))
	for _, i := range items {
		c <- i
	}
	close(c)
	return c
}

// Once Serve's context is cancelled, or Close is called, the Worker takes
// no new item: not one more call of next, even from a source that always
// has an item ready and a handler that never blocks, which gives the
// scheduler no moment to run anything else.
func TestWorkerStopsPullingAtOnce(t *testing.T) {
	for _, how := range []string{"Serve's context", "Close", "Shutdown"} {
		t.Run(how, func(t *testing.T) {
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			pulled := 0
			next := func(context.Context) (int, error) { pulled++; return pulled, nil }
			var w *Worker[int]
			handle := func(_ context.Context, item int) error {
				if item == 5 {
					switch how {
					case "Serve's context":
						cancel()
					case "Close":
						_ = w.Close()
					case "Shutdown":
						go func() { _ = w.Shutdown(context.Background()) }()
						<-w.drain.Begun()
						// Shutdown holds mu until it has also ended
						// the pulling.
						w.mu.Lock()
						w.mu.Unlock() //nolint:staticcheck // only waiting for Shutdown

					}
				}
				return nil
			}
			w = FromWorker(next, handle)
			if err := w.Serve(ctx); err != nil {
				t.Fatalf("Serve = %v", err)
			}
			if pulled != 5 {
				t.Errorf("next was called %d times, want 5: no call after the stop", pulled)
			}
		})
	}
}

// A next that wraps ChanSource (a priority channel first, a decoder, a
// connection of its own) is not made safe for concurrent use by what it
// wraps: without ConcurrentNext its calls take turns.
func TestWrappedChanSourceTakesTurns(t *testing.T) {
	items := make(chan int, 2000)
	for i := range 2000 {
		items <- i
	}
	close(items)
	l := &ledger{}
	source := ChanSource(items)
	next := func(ctx context.Context) (int, error) {
		l.enter(&l.pulling, &l.maxPull)
		defer l.leave(&l.pulling)
		runtime.Gosched() // widen the window for an overlap
		item, err := source(ctx)
		if err == nil {
			l.mu.Lock()
			l.pulled = append(l.pulled, item)
			l.mu.Unlock()
		}
		return item, err
	}
	w := FromWorker(next, l.handler(0, nil)).Concurrency(8)
	if err := w.Serve(context.Background()); err != nil {
		t.Fatalf("Serve = %v", err)
	}
	l.check(t)
	if len(l.handled) != 2000 {
		t.Errorf("handled %d items, want 2000", len(l.handled))
	}
}

// A Shutdown that comes before Serve (SIGTERM during start-up) still hands
// over the accepted items: Serve, when it comes, handles what ChanSource
// holds and takes nothing new. A Close before Serve does not.
func TestWorkerStoppedBeforeServe(t *testing.T) {
	for _, c := range []struct {
		stop string
		want int
	}{{"Shutdown", 50}, {"Close", 0}, {"Shutdown and Close", 0}} {
		t.Run(c.stop, func(t *testing.T) {
			items := make(chan int, 50)
			for i := range 50 {
				items <- i
			}
			handled := 0
			w := FromWorker(ChanSource(items), func(context.Context, int) error { handled++; return nil })
			if strings.Contains(c.stop, "Shutdown") {
				if err := w.Shutdown(context.Background()); err != nil {
					t.Fatalf("Shutdown = %v", err)
				}
			}
			if strings.Contains(c.stop, "Close") {
				_ = w.Close()
			}
			if err := w.Serve(context.Background()); err != nil {
				t.Errorf("Serve = %v, want nil", err)
			}
			if handled != c.want || len(items) != 50-c.want {
				t.Errorf("handled %d, %d left in the channel; want %d handled", handled, len(items), c.want)
			}
		})
	}
	t.Run("Run with a context already done, in a Group", func(t *testing.T) {
		// Run's Shutdown may reach the Worker before its Serve has begun.
		for range 200 {
			items := make(chan int, 50)
			for i := range 50 {
				items <- i
			}
			var handled atomic.Int64
			w := FromWorker(ChanSource(items), func(context.Context, int) error { handled.Add(1); return nil }).Concurrency(4)
			ctx, cancel := context.WithCancel(context.Background())
			cancel()
			if err := Run(ctx, Group(w), WithoutLogger()); err != nil {
				t.Fatalf("Run = %v, want nil", err)
			}
			if got := handled.Load(); got != 50 {
				t.Fatalf("handled %d of the 50 accepted items", got)
			}
		}
	})
}

// A Shutdown before Serve asks a source that never said it holds accepted
// items once, with its context already done, however many slots may call
// it at once: a durable queue's pop that ignores its context takes at most
// one item after the SIGTERM.
func TestStoppedBeforeServeAsksOnce(t *testing.T) {
	for range 2000 {
		var calls atomic.Int32
		next := func(context.Context) (int, error) { return int(calls.Add(1)), nil }
		w := FromWorker(next, func(context.Context, int) error { return nil }).Concurrency(16).ConcurrentNext()
		if err := w.Shutdown(context.Background()); err != nil {
			t.Fatalf("Shutdown = %v", err)
		}
		if err := w.Serve(context.Background()); err != nil {
			t.Fatalf("Serve = %v", err)
		}
		if n := calls.Load(); n > 1 {
			t.Fatalf("next was called %d times after the Shutdown, want at most once", n)
		}
	}
}
