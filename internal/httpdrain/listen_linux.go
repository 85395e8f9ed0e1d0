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
// has accepted them, and stops it listening in the same moment as it sees
// the queue empty: a connection that completes between the two system
// calls is the one left to chance. (A socket filter that drops new SYNs first
// would close that gap too; the kernels this is tested on refuse socket
// filters, so it is not done.)

// quiesce returns once ln's accept queue is empty, so that closing ln
// resets no connection the kernel has completed, or after limit. In the
// same moment as it sees the queue empty it shuts the socket down, which
// stops it listening (a connection attempt from then on is refused) two
// system calls after the look, where Close would take a wake-up of the
// accepting goroutine. It does nothing when the kernel cannot say.
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
	for wait := 50 * time.Microsecond; ; wait = min(2*wait, 2*time.Millisecond) {
		known, shut, late := true, false, time.Since(start) >= limit
		if rc.Control(func(fd uintptr) {
			n, ok := acceptQueue(fd)
			known = ok
			if ok && (n == 0 || late) {
				shut = syscall.Shutdown(int(fd), syscall.SHUT_RD) == nil
			}
		}) != nil || !known || shut || late {
			return
		}
		// The kernel's count has no notification to wait on: poll it.
		time.Sleep(wait)
	}
}

// acceptQueue returns how many completed connections wait in the accept
// queue of the listening socket fd (TCP_INFO's tcpi_unacked, for a
// listener); ok is false when the kernel cannot say.
func acceptQueue(fd uintptr) (n int, ok bool) {
	var info syscall.TCPInfo
	size := uint32(unsafe.Sizeof(info))
	_, _, errno := syscall.Syscall6(syscall.SYS_GETSOCKOPT, fd, syscall.IPPROTO_TCP, syscall.TCP_INFO,
		uintptr(unsafe.Pointer(&info)), uintptr(unsafe.Pointer(&size)), 0)
	return int(info.Unacked), errno == 0
}
