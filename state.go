package lameduck

import "fmt"

// State is where a [Runner] is in its life; see [Runner.State].
type State int32

const (
	// StateNotStarted: Run has not been called.
	StateNotStarted State = iota
	// StateRunning: Run has started the Server and no trigger has come.
	StateRunning
	// StateLameDuck: a trigger came; the pre-shutdown steps and the drain
	// are under way.
	StateLameDuck
	// StateStopped: Run has returned nil.
	StateStopped
	// StateFailed: Run has returned an error.
	StateFailed
)

// String names the state in words, such as "lame duck".
func (s State) String() string {
	switch s {
	case StateNotStarted:
		return "not started"
	case StateRunning:
		return "running"
	case StateLameDuck:
		return "lame duck"
	case StateStopped:
		return "stopped"
	case StateFailed:
		return "failed"
	}
	return fmt.Sprintf("State(%d)", int32(s))
}

// State reports where the Runner is in its life. It is safe to call from
// any goroutine, at any time; a health or metrics endpoint can export it.
func (r *Runner) State() State {
	if r == nil {
		return StateNotStarted
	}
	switch r.life.phase() {
	case phaseServing:
		return StateRunning
	case phaseStopping:
		return StateLameDuck
	case phaseClosed:
		if r.failed.Load() {
			return StateFailed
		}
		return StateStopped
	}
	return StateNotStarted
}

// LameDuck returns a channel that is closed when lame-duck mode begins, just
// before the pre-shutdown steps run. It is never closed if Run ends without
// a lame-duck mode (Serve returned first, or Run was called wrongly), so wait
// on it together with Run's return.
func (r *Runner) LameDuck() <-chan struct{} {
	if r == nil {
		return nil
	}
	return r.lameDuck
}

// MarshalText writes the state as String does, so that a [Report] encoded
// as JSON says "lame duck" rather than 2.
func (s State) MarshalText() ([]byte, error) { return []byte(s.String()), nil }
