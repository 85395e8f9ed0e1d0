package e2e

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

// The HAProxy the tests put in front of examples/httpserver: the Debian
// package, run in the foreground as a child process on 127.0.0.1, with the
// settings of a careful production set-up (active HTTP checks of /readyz
// every 100 ms, one failure takes a server out, one success brings it back,
// server connections shared between clients) and none of the settings that
// would hide a lost request: no retries, no redispatch to another server.
const haproxyConfig = `global
    stats timeout 30s

defaults
    mode http
    timeout connect 1s
    timeout client 20s
    timeout server 20s
    retries 0
    option http-keep-alive
    # Without it a check may take no longer than inter: HAProxy short of
    # CPU then marks healthy servers DOWN, all at once, and answers 503
    # "no server available", which is no instance's doing.
    timeout check 1s

frontend fe
    bind {{front}}
    default_backend be

backend be
    balance roundrobin
    option httpchk GET /readyz
    http-reuse always
    default-server inter 100ms fall 1 rise 1
{{servers}}
`

// haproxy is a running HAProxy whose backend has a fixed set of server
// slots, each an address on which an instance may or may not listen. A
// rolling restart starts the new instance on a free slot, so that no
// reload is needed; HAProxy's checks find it.
type haproxy struct {
	t     *testing.T
	p     *proctest.Proc
	front string   // "http://127.0.0.1:PORT"
	slots []string // slot k is server be/sk at this address
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
// ago. HAProxy needs the servers' addresses in its configuration before the
// servers exist; another process could take a port in between, in which
// case an instance fails to bind and says so.
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

// startHAProxy starts HAProxy with the given number of server slots and
// waits until it has marked every slot on which nothing listens DOWN.
// listening says which slots have an instance already.
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
	h := &haproxy{t: t, front: "http://" + front, slots: slots}
	// -db: stay in the foreground and write state changes to stderr.
	h.p = proctest.Start(t, path, "-db", "-f", file)
	// HAProxy starts with every server UP; its first check takes the empty
	// slots out.
	for k := range slots {
		if !listening[k] {
			h.waitDown(k, 0)
		}
	}
	return h
}

// mark returns a position in HAProxy's stderr, for waitUp and waitDown.
func (h *haproxy) mark() int {
	return len(h.p.Lines(true))
}

// waitUp waits until HAProxy marks slot k UP in a line after mark, and
// returns when the test saw the line.
func (h *haproxy) waitUp(k, mark int) time.Time {
	h.t.Helper()
	return h.waitAfter(mark, fmt.Sprintf("Server be/s%d is UP", k))
}

// waitDown waits until HAProxy marks slot k DOWN in a line after mark, and
// returns when the test saw the line.
func (h *haproxy) waitDown(k, mark int) time.Time {
	h.t.Helper()
	return h.waitAfter(mark, fmt.Sprintf("Server be/s%d is DOWN", k))
}

// stop ends HAProxy.
func (h *haproxy) stop() {
	h.p.Term()
	h.p.Wait()
}

// waitAfter waits for a line of stderr after the first mark lines that
// contains substr, and returns when it saw it: HAProxy logs each server
// state change there, so a change can be waited for without polling, and
// timed as it happens.
func (h *haproxy) waitAfter(mark int, substr string) time.Time {
	h.t.Helper()
	h.p.WaitAfter(true, mark, substr)
	return time.Now()
}
