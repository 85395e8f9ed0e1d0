package lameduck

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"syscall"
	"testing"
	"testing/synctest"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

// settled records what a Settle function was told, item by item.
type settled struct {
	mu  sync.Mutex
	got map[int][]string // item → how it ended, each time it was settled (see outcome)
}

func (s *settled) settle(_ context.Context, item int, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.got == nil {
		s.got = map[int][]string{}
	}
	s.got[item] = append(s.got[item], outcome(err))
}

// outcome names how an item ended from the error Settle got, with the
// switch that Settle's doc gives, and a panic told apart from a failure.
func outcome(err error) string {
	var pe *panicError
	switch {
	case err == nil:
		return "done"
	case errors.Is(err, ErrClosed):
		return "cancelled"
	case errors.As(err, &pe):
		return "panicked"
	default:
		return "failed"
	}
}

func TestSettle(t *testing.T) {
	errBad := errors.New("bad item")
	t.Run("every item is settled once, with how its handling ended", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			var rec settled
			handle := func(_ context.Context, i int) error {
				switch i {
				case 2:
					return errBad
				case 3:
					panic("poison")
				}
				return nil
			}
			w := FromWorker(ChanSource(chanOf(1, 2, 3, 4)), handle).
				Concurrency(2).
				OnError(func(context.Context, int, error) error { return nil }).
				Settle(rec.settle)
			if err := Run(context.Background(), w, withSignalSource(&fakeSignals{}), WithoutLogger()); err != nil {
				t.Errorf("Run = %v, want nil: the policy went on past the bad items", err)
			}
			want := map[int][]string{1: {"done"}, 2: {"failed"}, 3: {"panicked"}, 4: {"done"}}
			if diff := cmp.Diff(want, rec.got); diff != "" {
				t.Errorf("settled (-want +got):\n%s", diff)
			}
		})
	})
	t.Run("an item cut by Close is settled as cancelled, with a live context", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			var (
				cause      error
				settled    error
				settleErrs []error // settle's ctx.Err() as settle began and after its nack
			)
			handle := func(ctx context.Context, _ int) error {
				<-ctx.Done()
				cause = context.Cause(ctx)
				return ctx.Err()
			}
			settle := func(ctx context.Context, _ int, err error) {
				settled = err
				settleErrs = append(settleErrs, ctx.Err())
				time.Sleep(100 * time.Millisecond) // the nack's round trip, in bubble time
				settleErrs = append(settleErrs, ctx.Err())
			}
			w := FromWorker(ChanSource(chanOf(1)), handle).Settle(settle)
			h := runInBubble(t, w, Period(2*time.Second), CloseGrace(300*time.Millisecond))
			h.sig.send(syscall.SIGTERM)
			elapsed, err := h.wait()
			var lde *LameDuckError
			if !errors.As(err, &lde) || !lde.Expired || lde.Err != nil {
				t.Errorf("Run = %v, want a clean expiry", err)
			}
			if elapsed != 2100*time.Millisecond {
				t.Errorf("Run returned %v after the signal, want the period + the nack = 2.1s", elapsed)
			}
			if !errors.Is(cause, ErrClosed) {
				t.Errorf("context.Cause(handle's ctx) = %v, want ErrClosed", cause)
			}
			if settled != ErrClosed {
				t.Errorf("settled with %v, want ErrClosed itself", settled)
			}
			if diff := cmp.Diff([]error{nil, nil}, settleErrs, cmpopts.EquateErrors()); diff != "" {
				t.Errorf("settle's ctx.Err() before and after the nack (-want +got):\n%s", diff)
			}
		})
	})
	t.Run("settle's context ends three quarters of the close grace after Close, with that deadline", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			var lived, budget time.Duration
			w := FromWorker(ChanSource(chanOf(1)),
				func(ctx context.Context, _ int) error { <-ctx.Done(); return ctx.Err() }).
				Settle(func(ctx context.Context, _ int, _ error) {
					begin := time.Now()
					if d, ok := ctx.Deadline(); ok {
						budget = d.Sub(begin)
					}
					<-ctx.Done()
					lived = time.Since(begin)
				})
			done := make(chan error)
			go func() { done <- w.Serve(context.Background()) }()
			synctest.Wait()
			w.Close()
			if err := <-done; err != nil {
				t.Errorf("Serve = %v, want nil: Close cut the item, nothing failed", err)
			}
			if want := closeGrace * 3 / 4; lived != want || budget != want {
				t.Errorf("settle's ctx lived %v after Close with a deadline %v away, want %v for both", lived, budget, want)
			}
		})
	})
	t.Run("a settle that returns when its context ends is not reported stuck", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			next := func(ctx context.Context) (int, error) {
				if ctx.Err() != nil {
					return 0, ctx.Err()
				}
				return 1, nil
			}
			w := FromWorker(next, func(ctx context.Context, _ int) error { <-ctx.Done(); return ctx.Err() }).
				Settle(func(ctx context.Context, _ int, _ error) { <-ctx.Done() })
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Millisecond)
			defer cancel()
			err := Run(ctx, w, Period(20*time.Millisecond), CloseGrace(100*time.Millisecond), WithoutLogger(), Signals())
			var lde *LameDuckError
			if !errors.As(err, &lde) || !lde.Expired || lde.Err != nil {
				t.Errorf("Run = %v, want an expiry with nothing stuck", err)
			}
		})
	})
	t.Run("a caller's cancellation is not Close, but its item is settled as cut short", func(t *testing.T) {
		var cause, settled error
		ctx, cancel := context.WithCancel(context.Background())
		w := FromWorker(ChanSource(chanOf(1)), func(ctx context.Context, _ int) error {
			cancel()
			<-ctx.Done()
			cause = context.Cause(ctx)
			return ctx.Err()
		}).Settle(func(_ context.Context, _ int, err error) { settled = err })
		if err := w.Serve(ctx); err != nil {
			t.Errorf("Serve = %v, want nil", err)
		}
		if cause != context.Canceled {
			t.Errorf("context.Cause = %v, want context.Canceled, not ErrClosed", cause)
		}
		if !errors.Is(settled, ErrClosed) || !errors.Is(settled, context.Canceled) {
			t.Errorf("settled with %v, want an error that matches both ErrClosed and context.Canceled", settled)
		}
	})
	t.Run("a failed item is settled with handle's own error, whatever the policy says", func(t *testing.T) {
		var settled []error
		w := FromWorker(ChanSource(chanOf(1, 2)), func(context.Context, int) error { return errBad }).
			OnError(func(context.Context, int, error) error { return nil }).
			Settle(func(_ context.Context, _ int, err error) { settled = append(settled, err) })
		if err := w.Serve(context.Background()); err != nil {
			t.Errorf("Serve = %v, want nil: the policy went on", err)
		}
		if diff := cmp.Diff([]error{errBad, errBad}, settled, cmpopts.EquateErrors()); diff != "" {
			t.Errorf("settled with (-want +got):\n%s", diff)
		}
	})
	t.Run("a panic in settle is a failure", func(t *testing.T) {
		w := FromWorker(ChanSource(chanOf(1)), func(context.Context, int) error { return nil }).
			Settle(func(context.Context, int, error) { panic("ack lost") })
		err := w.Serve(context.Background())
		if err == nil || err.Error() != "lameduck: Settle panicked: ack lost" {
			t.Errorf("Serve = %v, want the panic", err)
		}
	})
}

func TestCloseGrace(t *testing.T) {
	t.Run("a grace that is not positive is bad input", func(t *testing.T) {
		for _, d := range []time.Duration{0, -time.Second} {
			want := fmt.Sprintf("lameduck: CloseGrace must be positive, got %v", d)
			if _, err := NewRunner(ServerFuncs{ServeFunc: func(context.Context) error { return nil }}, CloseGrace(d)); err == nil || err.Error() != want {
				t.Errorf("NewRunner(CloseGrace(%v)) = %v, want %q", d, err, want)
			}
		}
	})
	t.Run("Run waits for a stuck Serve for the grace it was given", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			release := make(chan struct{})
			defer close(release)
			svr := ServerFuncs{
				ServeFunc:    func(context.Context) error { <-release; return nil },
				ShutdownFunc: func(ctx context.Context) error { <-ctx.Done(); return ctx.Err() },
			}
			h := runInBubble(t, svr, Period(time.Second), CloseGrace(2500*time.Millisecond))
			h.sig.send(syscall.SIGTERM)
			elapsed, err := h.wait()
			if elapsed != 3500*time.Millisecond {
				t.Errorf("Run returned %v after the signal, want period + grace = 3.5s", elapsed)
			}
			want := "Serve did not return within 2.5s of Close being called"
			if err == nil || !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), want) {
				t.Errorf("Run = %v, want it to name Serve and the grace", err)
			}
		})
	})
}
