//go:build linux

package main

import (
	"net"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// notifySocket stands in for systemd's notification socket: it collects
// every datagram the processes send to NOTIFY_SOCKET.
type notifySocket struct {
	path string
	conn *net.UnixConn
	done chan struct{}

	mu      sync.Mutex
	msgs    []string
	changed chan struct{}
}

func newNotifySocket(t testing.TB) *notifySocket {
	t.Helper()
	ns := &notifySocket{path: filepath.Join(t.TempDir(), "notify"), done: make(chan struct{}), changed: make(chan struct{})}
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: ns.path, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	ns.conn = conn
	go func() {
		defer close(ns.done)
		buf := make([]byte, 4096)
		for {
			n, err := conn.Read(buf)
			if err != nil {
				return
			}
			ns.mu.Lock()
			ns.msgs = append(ns.msgs, string(buf[:n]))
			close(ns.changed)
			ns.changed = make(chan struct{})
			ns.mu.Unlock()
		}
	}()
	t.Cleanup(func() { conn.Close(); <-ns.done })
	return ns
}

// waitCount waits until n messages containing substr have arrived, and
// returns every message that contains substr.
func (ns *notifySocket) waitCount(t testing.TB, substr string, n int) []string {
	t.Helper()
	deadline := time.After(bound)
	for {
		ns.mu.Lock()
		var got []string
		for _, m := range ns.msgs {
			if strings.Contains(m, substr) {
				got = append(got, m)
			}
		}
		changed := ns.changed
		ns.mu.Unlock()
		if len(got) >= n {
			return got
		}
		select {
		case <-changed:
		case <-deadline:
			t.Fatalf("%d messages with %q after %v, want %d: %q", len(got), substr, bound, n, got)
		}
	}
}

// all returns every message so far.
func (ns *notifySocket) all() []string {
	ns.mu.Lock()
	defer ns.mu.Unlock()
	return append([]string(nil), ns.msgs...)
}
