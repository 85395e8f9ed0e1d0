package httpdrain

import (
	"net"
	"syscall"
	"unsafe"
)

// siocoutq is Linux's SIOCOUTQ (TIOCOUTQ) ioctl: for a TCP socket, the bytes
// sent but not yet acknowledged plus those not yet sent (a FIN counts as one).
const siocoutq = 0x5411

// unacked reports how many bytes written to c its peer has not acknowledged
// yet; ok is false when the kernel cannot tell.
func unacked(c net.Conn) (n int, ok bool) {
	sc, isSC := c.(syscall.Conn)
	if !isSC {
		return 0, false
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return 0, false
	}
	var errno syscall.Errno
	err = rc.Control(func(fd uintptr) {
		var v int32
		_, _, errno = syscall.Syscall(syscall.SYS_IOCTL, fd, siocoutq, uintptr(unsafe.Pointer(&v)))
		n = int(v)
	})
	return n, err == nil && errno == 0
}
