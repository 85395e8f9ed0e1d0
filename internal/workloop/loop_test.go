package workloop

import (
	"context"
	"errors"
	"fmt"
	"io"
	"testing"
	"testing/synctest"
	"time"
)

var errClosed = errors.New("closed")

// items makes a next that returns 1..n and then io.EOF.
func items(n int) func(context.Context) (int, error) {
	i := 0
	return func(context.Context) (int, error) {
		if i == n {
			return 0, io.EOF
		}
		i++
		return i, nil
	}
}

func config(next func(context.Context) (int, error), handle func(context.Context, int) error) Config[int] {
	return Config[int]{
		Next: next, Handle: handle, Slots: 1, Grace: time.Second, Closed: errClosed,
		Recovered: func(what string, p any) error { return fmt.Errorf("%s panicked: %v", what, p) },
	}
}

// The loop reads nothing from its context that it is not given: the close
// grace and the cause of Close come from Config.
func TestLoopTakesItsSettingsFromConfig(t *testing.T) {
	t.Run("settle's context ends three quarters of Config.Grace after Cancel", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			var lived time.Duration
			var settled error
			cfg := config(items(1), func(ctx context.Context, _ int) error { <-ctx.Done(); return ctx.Err() })
			cfg.Grace = 2500 * time.Millisecond
			cfg.Settle = func(ctx context.Context, _ int, err error) {
				settled = err
				begin := time.Now()
				<-ctx.Done()
				lived = time.Since(begin)
			}
			l := New(context.Background(), cfg, NewDrain())
			done := make(chan []error)
			go func() { failures, _ := l.Serve(context.Background()); done <- failures }()
			synctest.Wait()
			l.Cancel(errClosed)
			if failures := <-done; len(failures) != 0 {
				t.Errorf("Serve failures = %v, want none", failures)
			}
			if want := cfg.Grace * 3 / 4; lived != want {
				t.Errorf("settle's ctx lived %v after Cancel, want three quarters of Config.Grace, %v", lived, want)
			}
			if !errors.Is(settled, errClosed) {
				t.Errorf("settled with %v, want an error matching Config.Closed", settled)
			}
		})
	})
	t.Run("a failure without a Stop taker begins the drain itself", func(t *testing.T) {
		drain := NewDrain()
		cfg := config(items(3), func(context.Context, int) error { return errors.New("boom") })
		failures, startErr := New(context.Background(), cfg, drain).Serve(context.Background())
		if startErr != nil || len(failures) != 1 || failures[0].Error() != "boom" {
			t.Errorf("Serve = %v, %v; want [boom], nil", failures, startErr)
		}
		select {
		case <-drain.Begun():
		default:
			t.Error("the drain has not begun after a failure with nobody to ask")
		}
	})
	t.Run("a failure that Config.Stop takes leaves the drain to the caller", func(t *testing.T) {
		drain := NewDrain()
		var asked error
		cfg := config(items(3), func(context.Context, int) error { return errors.New("boom") })
		cfg.Stop = func(_ context.Context, cause error) bool { asked = cause; drain.Begin(); return true }
		if _, err := New(context.Background(), cfg, drain).Serve(context.Background()); err != nil {
			t.Fatalf("Serve start error = %v", err)
		}
		if asked == nil || asked.Error() != "boom" {
			t.Errorf("Stop asked with %v, want boom", asked)
		}
	})
	t.Run("a panic in start is named by Config.Recovered", func(t *testing.T) {
		cfg := config(items(0), func(context.Context, int) error { return nil })
		cfg.Start = func(context.Context) error { panic("no broker") }
		_, err := New(context.Background(), cfg, NewDrain()).Serve(context.Background())
		if want := "StartSource panicked: no broker"; err == nil || err.Error() != want {
			t.Errorf("Serve start error = %v, want %q", err, want)
		}
	})
}
