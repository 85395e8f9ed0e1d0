package workloop

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"
)

// cutShort returns the error that Settle gets for an item that Close, or
// the end of Serve's context, kept from being processed: it always
// matches Config.Closed, so that one test finds every item owed to the source.
func (s *Loop[T]) cutShort() error {
	cause := context.Cause(s.handleCtx)
	if errors.Is(cause, s.cfg.Closed) {
		return cause
	}
	return fmt.Errorf("%w: %w", s.cfg.Closed, cause)
}

// errGraceOver ends the settle context once Settle's share of the close
// grace after Close is over.
var errGraceOver = errors.New("lameduck: close grace after Close is over")

// settleShare is how much of the close grace after Close Settle's context
// lives: three quarters, so that a settle that returns when its context
// ends still returns, and Serve after it, before the Runner stops waiting.
func settleShare(grace time.Duration) time.Duration { return grace - grace/4 }

// startSettling makes the context given to Settle, which ends settleShare
// of the grace after handle's, and returns the function that releases it,
// which Serve calls before it returns.
func (s *Loop[T]) startSettling(serveCtx context.Context) (release func()) {
	settleCtx, cancel := context.WithCancelCause(context.WithoutCancel(serveCtx))
	s.settleCtx = settleCtx
	ran := make(chan struct{})
	stop := context.AfterFunc(s.handleCtx, func() {
		defer close(ran)
		// A settle already running holds settleCtx itself: end it too.
		t := time.NewTimer(time.Until(s.afterClose().end))
		defer t.Stop()
		select {
		case <-t.C:
			cancel(errGraceOver)
		case <-settleCtx.Done():
		}
	})
	return func() {
		cancel(nil)
		if !stop() {
			// handle's context ended, so the function above made the
			// context with a deadline: release its timer too.
			<-ran
			s.closing.stop()
		}
	}
}

// settleAfterClose is settleCtx with its end as a deadline, made the first
// time it is asked for once handle's context has ended, so that a nack can
// budget its call.
type settleAfterClose struct {
	once sync.Once
	ctx  context.Context
	stop context.CancelFunc
	end  time.Time
}

// afterClose returns s.closing, made now if it is not yet.
func (s *Loop[T]) afterClose() *settleAfterClose {
	c := &s.closing
	c.once.Do(func() {
		c.end = time.Now().Add(settleShare(s.cfg.Grace))
		c.ctx, c.stop = context.WithDeadlineCause(s.settleCtx, c.end, errGraceOver)
	})
	return c
}

// settleContext is the context to give Settle now.
func (s *Loop[T]) settleContext() context.Context {
	if s.handleCtx.Err() != nil {
		return s.afterClose().ctx
	}
	return s.settleCtx
}

// settleItem calls the Settle function, turning a panic into a failure.
func (s *Loop[T]) settleItem(item T, err error) {
	defer func() {
		if p := recover(); p != nil {
			s.fail(s.cfg.Recovered("Settle", p))
		}
	}()
	s.cfg.Settle(s.settleContext(), item, err)
}
