package lameduck

import (
	"context"
	"errors"
	"fmt"
	"io"
	"testing"
	"testing/synctest"
	"time"
)

// workerCase is one FromWorker scenario decoded from fuzz bytes.
type workerCase struct {
	items     int
	n         int
	pull      time.Duration   // how long each call of next takes (it honours ctx)
	work      []time.Duration // per item
	outcome   []int           // per item: 0 ok, 1 error, 2 panic
	triggerAt time.Duration   // 0: no trigger
	period    time.Duration
	buffered  bool // the items wait in a buffered channel read by ChanSource
	shared    bool // the custom source is declared safe for concurrent calls
}

func decodeWorker(data []byte) workerCase {
	next := reader(data)
	c := workerCase{
		items:  next(40),
		n:      1 + next(6),
		pull:   time.Duration(next(3)) * 7 * time.Millisecond,
		period: time.Duration(1+next(10)) * 100 * time.Millisecond,
	}
	if t := next(20); t > 0 {
		c.triggerAt = time.Duration(t)*50*time.Millisecond + time.Microsecond
	}
	for range c.items {
		c.work = append(c.work, time.Duration(next(30))*10*time.Millisecond+3*time.Microsecond)
		o := 0
		switch next(16) {
		case 0:
			o = 1
		case 1:
			o = 2
		}
		c.outcome = append(c.outcome, o)
	}
	c.buffered = next(2) == 1
	c.shared = next(2) == 1
	return c
}

func runWorkerCase(t *testing.T, c workerCase) {
	t.Helper()
	synctest.Test(t, func(t *testing.T) {
		l := &ledger{}
		pulledN := 0
		// Safe for concurrent calls, so that it can be declared so.
		next := func(ctx context.Context) (int, error) {
			l.enter(&l.pulling, &l.maxPull)
			defer l.leave(&l.pulling)
			l.mu.Lock()
			dry := pulledN == c.items
			l.mu.Unlock()
			if dry {
				return 0, io.EOF
			}
			if c.pull > 0 {
				select {
				case <-time.After(c.pull):
				case <-ctx.Done():
					return 0, ctx.Err()
				}
			}
			l.mu.Lock()
			defer l.mu.Unlock()
			if pulledN == c.items {
				return 0, io.EOF
			}
			l.pulled = append(l.pulled, pulledN)
			pulledN++
			return pulledN - 1, nil
		}
		handle := func(ctx context.Context, item int) error {
			l.enter(&l.handling, &l.maxHand)
			defer l.leave(&l.handling)
			defer func() {
				l.mu.Lock()
				l.handled = append(l.handled, item)
				l.mu.Unlock()
			}()
			select {
			case <-time.After(c.work[item]):
			case <-ctx.Done(): // Close: cancelled, but still counts as handled once
				return ctx.Err()
			}
			switch c.outcome[item] {
			case 1:
				return fmt.Errorf("item %d failed", item)
			case 2:
				panic(fmt.Sprintf("item %d panicked", item))
			}
			return nil
		}
		if c.buffered {
			// Every item is accepted before Run starts: in the channel,
			// which is closed (the source runs dry) only when nothing else
			// would end the run.
			items := make(chan int, c.items)
			for i := range c.items {
				items <- i
			}
			if c.triggerAt == 0 {
				close(items)
			}
			source := ChanSource(items)
			next = func(ctx context.Context) (int, error) {
				l.enter(&l.pulling, &l.maxPull)
				defer l.leave(&l.pulling)
				i, err := source(ctx)
				if err == nil {
					l.mu.Lock()
					l.pulled = append(l.pulled, i)
					l.mu.Unlock()
				}
				return i, err
			}
		}
		var rec settled
		w := FromWorker(next, handle).Concurrency(c.n).Settle(rec.settle)
		if c.shared {
			l.pullsAtOnce = c.n
			w.ConcurrentNext()
		}
		h := runInBubble(t, w, Period(c.period), WithoutLogger())
		begin := time.Now()
		if c.triggerAt > 0 {
			time.AfterFunc(c.triggerAt, func() { sendSignal(h) })
		}
		err := <-h.done
		elapsed := time.Since(begin)
		describe := fmt.Sprintf("case %+v: Run = %v after %v", c, err, elapsed)

		l.check(t)
		if l.maxHand > c.n {
			t.Errorf("%d handlers ran at once, want at most %d\n%s", l.maxHand, c.n, describe)
		}
		if c.triggerAt > 0 && elapsed > c.triggerAt+c.period+closeGrace {
			t.Errorf("Run outlived trigger + period + grace\n%s", describe)
		}
		failed := false
		for _, item := range l.handled {
			if c.outcome[item] != 0 {
				failed = true
			}
		}
		if c.triggerAt == 0 && !failed {
			// No trigger, nothing failed: the source ran dry and every item
			// was handled.
			if err != nil || len(l.handled) != c.items {
				t.Errorf("handled %d of %d items\n%s", len(l.handled), c.items, describe)
			}
		}
		var lde *LameDuckError
		if err != nil && !errors.As(err, &lde) && !failed {
			t.Errorf("Run failed although no handler did\n%s", describe)
		}
		// Settle: each handled item once, with an outcome that fits it;
		// cancelled only when Close came (the period ran out).
		if len(rec.got) != len(l.handled) {
			t.Errorf("settled %d items, handled %d\n%s", len(rec.got), len(l.handled), describe)
		}
		for _, item := range l.handled {
			kinds := rec.got[item]
			if len(kinds) != 1 {
				t.Errorf("item %d settled %v, want once\n%s", item, kinds, describe)
				continue
			}
			want := []string{"done", "failed", "panicked"}[c.outcome[item]]
			if kinds[0] != want && (kinds[0] != "cancelled" || lde == nil) {
				t.Errorf("item %d settled as %s, want %s (or cancelled after Close)\n%s", item, kinds[0], want, describe)
			}
		}
		// Accepted items are handled during the drain; only Close (the
		// period over) may leave some in the channel (rule 15).
		if c.buffered && !(lde != nil && lde.Expired) && len(l.handled) != c.items {
			t.Errorf("handled %d of %d accepted items without an expiry\n%s", len(l.handled), c.items, describe)
		}
	})
}

func FuzzWorker(f *testing.F) {
	for _, seed := range [][]byte{
		{},
		{10, 0, 0, 0, 0},               // 10 items, one at a time, no trigger
		{20, 3, 1, 2, 5},               // 4 loops, trigger at 250ms
		{30, 5, 2, 0, 3, 29, 3, 29, 3}, // long items outlast a short period
		{8, 1, 0, 9, 0, 5, 0, 5, 1, 5}, // an item fails
		{8, 1, 0, 9, 0, 5, 1, 5, 2, 5}, // an item panics
		{39, 5, 1, 9, 19, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16},
		{12, 2, 0, 9, 1, 3, 5, 3, 5, 3, 5, 3, 5, 3, 5, 3, 5, 3, 5, 3, 5, 3, 5, 3, 5, 3, 5, 3, 5, 1}, // SIGTERM with items buffered in a channel
		{6, 1, 0, 9, 2, 3, 5, 3, 0, 3, 5, 3, 5, 3, 5, 3, 5, 1},                                      // ... and one of them fails
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		runWorkerCase(t, decodeWorker(data))
	})
}

func TestWorkerStress(t *testing.T) {
	stress(t, 1000, 7, 48, func(data []byte) { runWorkerCase(t, decodeWorker(data)) })
}
