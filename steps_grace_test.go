package lameduck

import (
	"testing"
	"testing/synctest"
	"time"

	"github.com/google/go-cmp/cmp"
)

// TestPostShutdownGetsTheCloseGrace: after a forced stop the post-shutdown
// steps get at least the close grace that CloseGrace set, not a fixed
// second, as the README and CloseGrace's doc say.
func TestPostShutdownGetsTheCloseGrace(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := newFakeServer()
		s.drain = time.Hour // the period runs out
		var j journal
		h := runInBubble(t, s, CloseGrace(2500*time.Millisecond), WithPostShutdown(j.budgetStep("flush")))
		sendSignal(h)
		<-h.done
		want := []string{"Serve", "Shutdown", "Close", "flush 2.5s"}
		if diff := cmp.Diff(want, append(s.Calls(), j.all()...)); diff != "" {
			t.Errorf("calls (-want +got):\n%s", diff)
		}
	})
}
