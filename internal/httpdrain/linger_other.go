//go:build !linux

package httpdrain

import "net"

// unacked cannot tell on this system; lingerClose falls back to a fixed wait.
func unacked(net.Conn) (int, bool) { return 0, false }

// settled cannot tell on this system: lingerClose polls.
func settled(net.Conn) bool { return false }
