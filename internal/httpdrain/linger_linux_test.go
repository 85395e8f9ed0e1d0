package httpdrain

import (
	"io"
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

// recordingConn is a server's side of a real connection that counts the
// polls lingerClose makes (each sets a read deadline) and the bytes it
// reads; everything else is the socket's own (CloseWrite, SyscallConn).
type recordingConn struct {
	*net.TCPConn
	polls, read int
}

func (c *recordingConn) SetReadDeadline(d time.Time) error {
	c.polls++
	return c.TCPConn.SetReadDeadline(d)
}

func (c *recordingConn) Read(p []byte) (int, error) {
	n, err := c.TCPConn.Read(p)
	c.read += n
	return n, err
}

// loopbackPair returns both ends of a fresh loopback connection.
func loopbackPair(t *testing.T) (client net.Conn, server *net.TCPConn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	client, err = net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { client.Close() })
	s, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return client, s.(*net.TCPConn)
}

// waitForKernel waits until the kernel's queues of c satisfy ok (a loopback
// peer's kernel answers within microseconds, but not synchronously), and
// fails after 10 s.
func waitForKernel(t *testing.T, c net.Conn, what string, ok func(out, in int) bool) {
	t.Helper()
	for end := time.Now().Add(10 * time.Second); ; time.Sleep(100 * time.Microsecond) {
		out, in, known := queues(c)
		if !known {
			t.Fatal("the kernel cannot say what c's queues hold")
		}
		if ok(out, in) {
			return
		}
		if time.Now().After(end) {
			t.Fatalf("after 10 s, still not %s (send queue %d, receive queue %d)", what, out, in)
		}
	}
}

// A gentle close whose client already has everything, and has sent nothing
// more, ends as soon as the FIN is queued, without a poll: Go's timers make
// the first one last about a millisecond on an idle process, which was
// most of the HTTP/1 drain lag of issue #21 (1.4 ms, for a client that read
// its response and kept the connection). The client still gets a clean
// end of stream. Kills the mutant without the look before the first poll.
func TestLingerCloseEndsAtOnceWhenTheClientHasEverything(t *testing.T) {
	client, server := loopbackPair(t)
	const response = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"
	if _, err := io.WriteString(server, response); err != nil {
		t.Fatal(err)
	}
	got := make([]byte, len(response))
	if _, err := io.ReadFull(client, got); err != nil {
		t.Fatal(err)
	}
	waitForKernel(t, server, "acknowledged", func(out, _ int) bool { return out == 0 })

	rc := &recordingConn{TCPConn: server}
	lingerClose(rc) // the client keeps its connection, reading nothing
	if rc.polls != 0 {
		t.Errorf("lingerClose polled %d times for a client that had everything, want 0", rc.polls)
	}
	client.SetReadDeadline(time.Now().Add(10 * time.Second)) // a bound, not a wait
	if n, err := client.Read(got); n != 0 || err != io.EOF {
		t.Errorf("the client's read after the close = %d, %v; want 0, EOF", n, err)
	}
}

// A client that sent more before the close (the next request on a
// keep-alive connection) has it read, not left unread: closing a socket
// with unread bytes answers with a reset, which may throw away what the
// client has received but not read. So the look before the first poll
// does not end the linger then. Kills the mutant that ignores the receive
// queue.
func TestLingerCloseReadsWhatTheClientSentBeforeClosing(t *testing.T) {
	client, server := loopbackPair(t)
	const next = "GET /next HTTP/1.1\r\nHost: x\r\n\r\n"
	if _, err := io.WriteString(client, next); err != nil {
		t.Fatal(err)
	}
	waitForKernel(t, server, "holding the client's request", func(_, in int) bool { return in == len(next) })

	rc := &recordingConn{TCPConn: server}
	lingerClose(rc)
	if rc.read != len(next) || rc.polls == 0 {
		t.Errorf("lingerClose read %d bytes in %d polls, want the %d the client sent, in at least one", rc.read, rc.polls, len(next))
	}
}
