package lameduck

import (
	"context"
	"sync/atomic"
)

// What the pre-shutdown steps learn that the drain can use travels in the
// drain's context: the steps and Shutdown are given the same one.

type drainNotesKey struct{}

// drainNotes is what the steps of one stop have learnt.
type drainNotes struct {
	// balancerStopped: a FailUntilSeen step saw its probe's failure read
	// by as many checks as it asked for, and waited its margin: the
	// balancer has stopped sending this server requests.
	balancerStopped atomic.Bool
}

// withDrainNotes gives ctx a fresh drainNotes.
func withDrainNotes(ctx context.Context) context.Context {
	return context.WithValue(ctx, drainNotesKey{}, new(drainNotes))
}

// noteBalancerStopped records, in ctx's notes if it has any, that the
// balancer stopped sending, when seen says so.
func noteBalancerStopped(ctx context.Context, seen bool) {
	if n, ok := ctx.Value(drainNotesKey{}).(*drainNotes); ok && seen {
		n.balancerStopped.Store(true)
	}
}

// balancerStopped reports whether a step of this stop saw the balancer stop
// sending.
func balancerStopped(ctx context.Context) bool {
	n, ok := ctx.Value(drainNotesKey{}).(*drainNotes)
	return ok && n.balancerStopped.Load()
}
