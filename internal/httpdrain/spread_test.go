package httpdrain

import (
	"context"
	"net/http"
	"slices"
	"sync"
	"testing"
	"testing/synctest"
	"time"
)

type toldKey struct{}

// spreadTracker returns a Tracker with the spread installed on a server
// that is never served, and a function that makes a connection as net/http
// would: accepted onto the books, then given its context.
func spreadTracker(window time.Duration) (*Tracker, func() <-chan struct{}) {
	srv := &http.Server{}
	t := New(srv, func(ctx context.Context) context.Context { return ctx }, func() {})
	t.Spread(window, func(ctx context.Context, ch <-chan struct{}) context.Context {
		return context.WithValue(ctx, toldKey{}, ch)
	})
	t.Install(context.Background(), false)
	connect := func() <-chan struct{} {
		c := &conn{t: t}
		t.mu.Lock()
		t.conns[c] = struct{}{}
		t.mu.Unlock()
		ctx := srv.ConnContext(context.Background(), c)
		return ctx.Value(toldKey{}).(<-chan struct{})
	}
	return t, connect
}

// toldAfter returns, for each channel, how long after now it was closed,
// waiting at most limit of the bubble's time; -1 for one still open then.
func toldAfter(chans []<-chan struct{}, limit time.Duration) []time.Duration {
	start := time.Now()
	got := make([]time.Duration, len(chans))
	var wg sync.WaitGroup
	for i, ch := range chans {
		wg.Go(func() {
			select {
			case <-ch:
				got[i] = time.Since(start)
			case <-time.After(limit):
				got[i] = -1
			}
		})
	}
	wg.Wait()
	return got
}

func TestSpread(t *testing.T) {
	t.Run("each connection is told at its own moment within the window", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			const window, n = time.Second, 50
			tr, connect := spreadTracker(window)
			var chans []<-chan struct{}
			for range n {
				chans = append(chans, connect())
			}
			synctest.Wait()
			for i, ch := range chans {
				select {
				case <-ch:
					t.Fatalf("connection %d was told before the drain began", i)
				default:
				}
			}
			tr.BeginDrain()
			tr.startSpread(context.Background())
			got := toldAfter(chans, time.Hour)
			slices.Sort(got)
			if got[0] < 0 || got[n-1] >= window {
				t.Errorf("told between %v and %v after the drain began, want every one within [0, %v)", got[0], got[n-1], window)
			}
			if distinct := len(slices.Compact(got)); distinct < n/2 {
				t.Errorf("%d connections were told at only %d moments, want them spread", n, distinct)
			}
			tr.BeginClose()
		})
	})
	t.Run("the window shrinks to half of what Shutdown's context has left", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			tr, connect := spreadTracker(10 * time.Second)
			var chans []<-chan struct{}
			for range 20 {
				chans = append(chans, connect())
			}
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			defer cancel()
			tr.BeginDrain()
			tr.startSpread(ctx)
			got := toldAfter(chans, time.Hour)
			if last := slices.Max(got); last >= time.Second {
				t.Errorf("the last connection was told %v after the drain began, want less than 1s (half of the 2s left)", last)
			}
			tr.BeginClose()
		})
	})
	t.Run("a connection that arrives during the window is told within it", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			const window = time.Second
			tr, connect := spreadTracker(window)
			tr.BeginDrain()
			tr.startSpread(context.Background())
			time.Sleep(window / 2)
			got := toldAfter([]<-chan struct{}{connect()}, time.Hour)
			if got[0] > window/2 {
				t.Errorf("told %v after it arrived, halfway through the window; want within the %v left", got[0], window/2)
			}
			tr.BeginClose()
		})
	})
	t.Run("Close tells every connection not yet told, and a later one at once", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			tr, connect := spreadTracker(time.Hour)
			chans := []<-chan struct{}{connect(), connect(), connect()}
			tr.BeginDrain()
			tr.startSpread(context.Background())
			tr.BeginClose()
			chans = append(chans, connect())
			got := toldAfter(chans, time.Nanosecond)
			if !slices.Equal(got, []time.Duration{0, 0, 0, 0}) {
				t.Errorf("told after %v, want every one at once", got)
			}
		})
	})
	t.Run("a connection forgotten before its moment leaves no timer behind", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			tr, connect := spreadTracker(time.Hour)
			connect()
			tr.BeginDrain()
			tr.startSpread(context.Background())
			tr.mu.Lock()
			for c := range tr.conns {
				if c.tellTimer == nil {
					t.Fatal("the connection was given no moment of its own")
				}
				tr.forget(c)
				if c.tellTimer.Stop() {
					t.Error("the connection's timer was still running after it was forgotten")
				}
			}
			tr.mu.Unlock()
		})
	})
}
