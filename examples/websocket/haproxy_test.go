package main

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/b583c413/lameduck/internal/proctest"
)

// The HAProxy in front of the instances, started as the repository's e2e
// tests start it (e2e/haproxy_lb_test.go): the Debian package, in the
// foreground, on 127.0.0.1, checking /readyz every 100 ms (one failure
// takes a server out, one success brings it back), with no retries and no
// redispatch. A WebSocket is a tunnel once upgraded; `timeout tunnel`
// bounds its idle time.
const haproxyConfig = `global
    stats timeout 30s

defaults
    mode http
    timeout connect 1s
    timeout client 20s
    timeout server 20s
    timeout tunnel 60s
    timeout check 1s
    retries 0

frontend fe
    bind {{front}}
    default_backend be

backend be
    balance roundrobin
    option httpchk GET /readyz
    default-server inter 100ms fall 1 rise 1
{{servers}}
`

// haproxy is a running HAProxy whose backend has a fixed set of server
// slots, each an address on which an instance may or may not listen.
type haproxy struct {
	t     *testing.T
	p     *proctest.Proc
	front string // "127.0.0.1:PORT"
}

// haproxyPath returns where haproxy is installed, or skips the test.
func haproxyPath(t *testing.T) string {
	t.Helper()
	path, err := exec.LookPath("haproxy")
	if err != nil {
		t.Skip("haproxy is not installed: `apt-get install haproxy`, or run `bash .ci/test`, which installs what apt-packages lists")
	}
	return path
}

// freeAddrs returns n loopback addresses with ports that were free a moment
// ago: HAProxy needs the instances' addresses before they exist.
func freeAddrs(t *testing.T, n int) []string {
	t.Helper()
	var addrs []string
	var lns []net.Listener
	for range n {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		lns = append(lns, ln)
		addrs = append(addrs, ln.Addr().String())
	}
	for _, ln := range lns {
		ln.Close()
	}
	return addrs
}

// startHAProxy starts HAProxy in front of slots; listening says which slots
// have an instance already. It returns once every empty slot is DOWN.
func startHAProxy(t *testing.T, path string, slots []string, listening map[int]bool) *haproxy {
	t.Helper()
	front := freeAddrs(t, 1)[0]
	var servers strings.Builder
	for k, addr := range slots {
		fmt.Fprintf(&servers, "    server s%d %s check\n", k, addr)
	}
	cfg := strings.NewReplacer("{{front}}", front, "{{servers}}", servers.String()).Replace(haproxyConfig)
	file := filepath.Join(t.TempDir(), "haproxy.cfg")
	if err := os.WriteFile(file, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	// -db: stay in the foreground and write state changes to stderr.
	h := &haproxy{t: t, p: proctest.Start(t, path, "-db", "-f", file), front: front}
	for k := range slots {
		if !listening[k] {
			h.waitState(k, "DOWN", 0)
		}
	}
	return h
}

// mark returns a position in HAProxy's stderr, for waitState.
func (h *haproxy) mark() int { return len(h.p.Lines(true)) }

// waitState waits until HAProxy reports slot k in state ("UP" or "DOWN")
// in a line after mark, and returns when the test saw it.
func (h *haproxy) waitState(k int, state string, mark int) time.Time {
	h.t.Helper()
	h.p.WaitAfter(true, mark, fmt.Sprintf("Server be/s%d is %s", k, state))
	return time.Now()
}

func (h *haproxy) stop() {
	h.p.Term()
	h.p.Wait()
}
