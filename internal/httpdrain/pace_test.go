package httpdrain

import (
	"testing"
	"testing/synctest"
	"time"
)

// The first stage waits ten of the recent gaps between requests without a
// request, within 100 ms and 1 s: a server that nginx sends a request every
// 30 ms waits 300 ms, since nginx may still hold connections pooled 100 ms
// after its last request (an outside review lost POSTs with 4 MB bodies and
// a fixed 100 ms).
func TestPaceQuiet(t *testing.T) {
	for _, tc := range []struct {
		name     string
		requests int
		gap      time.Duration
		want     time.Duration
	}{
		{"too few requests to tell", 63, 30 * time.Millisecond, minQuiet},
		{"fast requests", 200, time.Millisecond, minQuiet},
		{"a request every 30 ms", 200, 30 * time.Millisecond, 300 * time.Millisecond},
		{"slow requests", 200, time.Second, maxQuiet},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				var p pace
				for range tc.requests {
					p.count()
					time.Sleep(tc.gap)
				}
				if got := p.quiet(); got != tc.want {
					t.Errorf("quiet = %v, want %v", got, tc.want)
				}
			})
		})
	}
}
