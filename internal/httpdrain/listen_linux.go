package httpdrain

import (
	"net"
	"syscall"
	"time"
	"unsafe"
)

// Closing a listening socket resets every connection in its accept queue:
// connections whose handshake the kernel has completed, whose clients may
// already have sent a request (nginx writes it as soon as connect returns),
// but that net/http has not accepted yet. Under load a few may be there at
// any moment. On Linux the drain closes the listener only once net/http
// has accepted them: from a moment when the queue is empty, the close is
// only a few system calls away, and a connection that completes in between
// is the one left to chance. (A socket filter that drops new SYNs first
// would close that gap too; the kernels this is tested on refuse socket
// filters, so it is not done.)

// quiesce returns once ln's accept queue is empty, so that closing ln
// resets no connection the kernel has completed, or after limit. It returns
// at once when the kernel cannot say.
func quiesce(ln net.Listener, limit time.Duration) {
	sc, ok := ln.(syscall.Conn)
	if !ok {
		return
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return
	}
	start := time.Now()
	for wait := 50 * time.Microsecond; acceptQueue(rc) > 0 && time.Since(start) < limit; wait = min(2*wait, 2*time.Millisecond) {
		// The kernel's count has no notification to wait on: poll it.
		time.Sleep(wait)
	}
}

// acceptQueue returns how many completed connections wait in a listening
// socket's accept queue (TCP_INFO's tcpi_unacked, for a listener), or 0 when
// the kernel cannot say.
func acceptQueue(rc syscall.RawConn) int {
	var info syscall.TCPInfo
	size := uint32(unsafe.Sizeof(info))
	var errno syscall.Errno
	if rc.Control(func(fd uintptr) {
		_, _, errno = syscall.Syscall6(syscall.SYS_GETSOCKOPT, fd, syscall.IPPROTO_TCP, syscall.TCP_INFO,
			uintptr(unsafe.Pointer(&info)), uintptr(unsafe.Pointer(&size)), 0)
	}) != nil || errno != 0 {
		return 0
	}
	return int(info.Unacked)
}
