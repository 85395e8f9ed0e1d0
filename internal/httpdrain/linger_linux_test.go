package httpdrain

import (
	"net"
	"syscall"
	"testing"
	"time"
)

// On Linux the kernel says how much of what was written the peer has not
// acknowledged: nothing on a connection that has sent nothing, and the
// bytes that a peer which does not read has no room for. The drain's gentle
// close relies on it to end as soon as the client has everything, instead
// of lingerClose's fixed fallback. Kills the mutants of unacked's error
// checks.
func TestUnackedOnLinux(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	client := dialSmallReceiveBuffer(t, ln.Addr().String())
	defer client.Close()
	server, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer server.Close()

	if n, ok := unacked(server); !ok || n != 0 {
		t.Errorf("unacked with nothing written = %d, %v; want 0, true", n, ok)
	}
	// Far more than the client's receive buffer, all of it taken by the
	// server's send buffer: the client reads nothing, so most of it stays
	// unacknowledged.
	const size = 256 << 10
	server.(*net.TCPConn).SetWriteBuffer(1 << 20)
	server.SetWriteDeadline(time.Now().Add(10 * time.Second)) // a bound, not a wait
	if _, err := server.Write(make([]byte, size)); err != nil {
		t.Fatal(err)
	}
	if n, ok := unacked(server); !ok || n < size/2 || n > size {
		t.Errorf("unacked with %d bytes written to a client that reads nothing = %d, %v; want most of them, true", size, n, ok)
	}
}

// dialSmallReceiveBuffer connects to addr with a receive buffer of a few
// KiB, set before the connection opens so that the window it advertises is
// small from the start.
func dialSmallReceiveBuffer(t *testing.T, addr string) net.Conn {
	t.Helper()
	d := net.Dialer{Control: func(_, _ string, rc syscall.RawConn) error {
		var serr error
		if err := rc.Control(func(fd uintptr) {
			serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 4096)
		}); err != nil {
			return err
		}
		return serr
	}}
	c, err := d.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	return c
}
