package httpdrain

import (
	"net"
	"syscall"
	"unsafe"
)

// siocoutq is Linux's SIOCOUTQ (TIOCOUTQ) ioctl: for a TCP socket, the bytes
// sent but not yet acknowledged plus those not yet sent (a FIN counts as one).
// siocinq is SIOCINQ (FIONREAD): the bytes received and not yet read.
const (
	siocoutq = 0x5411
	siocinq  = 0x541b
)

// unacked reports how many bytes written to c its peer has not acknowledged
// yet; ok is false when the kernel cannot tell.
func unacked(c net.Conn) (n int, ok bool) {
	n, _, ok = queues(c)
	return n, ok
}

// settled reports whether the kernel says that c's peer has acknowledged
// every byte of data written to c (a FIN apart) and that nothing it sent
// waits unread, so that closing c now neither cuts off what it owes nor
// answers with a reset. It reports false when the kernel cannot tell.
func settled(c net.Conn) bool {
	out, in, ok := queues(c)
	return ok && out <= 1 && in == 0
}

// queues returns c's send queue (SIOCOUTQ) and receive queue (SIOCINQ) in
// one visit to its socket; ok is false when the kernel cannot tell.
func queues(c net.Conn) (out, in int, ok bool) {
	sc, isSC := c.(syscall.Conn)
	if !isSC {
		return 0, 0, false
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return 0, 0, false
	}
	var errno syscall.Errno
	err = rc.Control(func(fd uintptr) {
		var o, i int32
		_, _, errno = syscall.Syscall(syscall.SYS_IOCTL, fd, siocoutq, uintptr(unsafe.Pointer(&o)))
		if errno == 0 {
			_, _, errno = syscall.Syscall(syscall.SYS_IOCTL, fd, siocinq, uintptr(unsafe.Pointer(&i)))
		}
		out, in = int(o), int(i)
	})
	return out, in, err == nil && errno == 0
}
