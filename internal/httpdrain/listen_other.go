//go:build !linux

package httpdrain

import (
	"net"
	"time"
)

// quiesce can do nothing on this system: the listener closes at once, and
// connections in its accept queue are reset (see listen_linux.go).
func quiesce(net.Listener, time.Duration) {}
