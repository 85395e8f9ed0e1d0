package lameduck

import (
	"context"
	"errors"
	"fmt"
	"testing"
)

func TestExitCode(t *testing.T) {
	cases := []struct {
		name string
		err  error
		want int
	}{
		{"a clean stop exits 0", nil, 0},
		{"an expired period exits 2", &LameDuckError{Expired: true}, 2},
		{"an expired period whose Close failed exits 2", &LameDuckError{Expired: true, Err: errors.New("close failed")}, 2},
		{"a wrapped expiry still exits 2", fmt.Errorf("stopping api: %w", &LameDuckError{Expired: true}), 2},
		{"a failed Shutdown exits 1", &LameDuckError{Err: errors.New("flush failed")}, 1},
		{"a failed Serve exits 1", errors.New("listen tcp :80: permission denied"), 1},
		{"a bare DeadlineExceeded is not a forced stop", context.DeadlineExceeded, 1},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := ExitCode(c.err); got != c.want {
				t.Errorf("ExitCode(%v) = %d, want %d", c.err, got, c.want)
			}
		})
	}
}
