package lameduck

import (
	"fmt"
	"sync/atomic"
)

// lifecycle is where a Server adapter, or a Runner, is in its life. It only
// moves forward:
//
//	idle → serving → stopping → closed
//
// start (the one call of Serve, or of Run) moves it from idle to serving.
// stop moves it to stopping (Shutdown, lame-duck mode) or to closed (Close,
// Run's return) from any earlier phase, so a Serve that comes after a stop
// learns that it must not serve. The zero value is idle.
//
// Its methods are safe to call from any goroutine. An adapter whose own
// state must change in step with the phase (the HTTPServer's connections)
// calls them under its own lock.
type lifecycle struct {
	now     atomic.Int32 // a phase
	started atomic.Bool  // start has been called
}

// phase is a step of a lifecycle.
type phase int32

const (
	phaseIdle     phase = iota // not started, not stopped
	phaseServing               // started; no stop asked for yet
	phaseStopping              // a graceful stop has begun
	phaseClosed                // Close has been called, or Run has returned
)

// start records the call that begins the life; call names it in the error a
// second call gets ("HTTPServer's Serve"). stopped reports that a stop came
// first: the caller must then not serve.
func (l *lifecycle) start(call string) (stopped bool, err error) {
	if !l.started.CompareAndSwap(false, true) {
		return false, fmt.Errorf("lameduck: %s called more than once", call)
	}
	return !l.now.CompareAndSwap(int32(phaseIdle), int32(phaseServing)), nil
}

// stop moves the life on to p, unless it is there or past it already, and
// returns the phase it was in.
func (l *lifecycle) stop(p phase) (was phase) {
	for {
		was = phase(l.now.Load())
		if was >= p || l.now.CompareAndSwap(int32(was), int32(p)) {
			return was
		}
	}
}

// phase returns the phase the life is in.
func (l *lifecycle) phase() phase { return phase(l.now.Load()) }

// hasStarted reports whether start has been called.
func (l *lifecycle) hasStarted() bool { return l.started.Load() }
