package workloop

import (
	"context"
	"errors"
	"fmt"
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

// errGraceOver ends the settle context a close grace after Close.
var errGraceOver = errors.New("lameduck: close grace after Close is over")

// startSettling makes the context given to Settle, which ends a close grace
// after handle's, and returns the function that releases it, which Serve
// calls before it returns.
func (s *Loop[T]) startSettling(serveCtx context.Context) (release func()) {
	grace := s.cfg.Grace
	settleCtx, cancel := context.WithCancelCause(context.WithoutCancel(serveCtx))
	s.settleCtx = settleCtx
	ran := make(chan struct{})
	stop := context.AfterFunc(s.handleCtx, func() {
		defer close(ran)
		t := time.NewTimer(grace)
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
			<-ran
		}
	}
}

// settleItem calls the Settle function, turning a panic into a failure.
func (s *Loop[T]) settleItem(item T, err error) {
	defer func() {
		if p := recover(); p != nil {
			s.fail(s.cfg.Recovered("Settle", p))
		}
	}()
	s.cfg.Settle(s.settleCtx, item, err)
}
