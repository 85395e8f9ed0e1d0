//go:build linux

package main

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// A stop that comes during an upgrade whose new process never serves is
// the service's stop, and the exit status says how it went: 0 when the
// upgrade failed within the period and the old process drained, 2 when the
// period ran out, or a second SIGTERM came, before the upgrade ended (the
// new process is then killed). Meanwhile the old process goes on serving.
// The new process is a stand-in that holds the socket and never serves; it
// exits 1 when the test releases it.
func TestStopDuringFailedUpgrade(t *testing.T) {
	for _, tc := range []struct {
		name   string
		period time.Duration
		end    func(f *family, m *member, release func())
		code   int
		logs   []string
	}{
		{"the new process fails", period, func(_ *family, _ *member, release func()) { release() }, 0,
			[]string{"the upgrade failed; stopping the service", "lameduck: drained in "}},
		{"the period runs out", time.Second, func(*family, *member, func()) {}, 2,
			[]string{"aborting the upgrade, which kills it", "expired during pre-shutdown step 1 of 2 (settle upgrade)"}},
		{"a second SIGTERM", period, func(f *family, m *member, _ func()) { f.signal(m, syscall.SIGTERM) }, 2,
			[]string{"aborting the upgrade, which kills it", "ending the lame-duck period now"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			// tableflip starts the new process from the path this one was
			// started by: a link to the program, replaced by the stand-in
			// once the program runs.
			exe, gate := filepath.Join(dir, "upgrade"), filepath.Join(dir, "gate")
			if err := os.Symlink(bin, exe); err != nil {
				t.Fatal(err)
			}
			if err := syscall.Mkfifo(gate, 0o600); err != nil {
				t.Fatal(err)
			}
			ns := newNotifySocket(t)
			f := newFamily(t)
			cmd := exec.Command(exe, "-addr", "127.0.0.1:0", "-period", tc.period.String(), "-handoff", "1s")
			cmd.Env = append(os.Environ(), "NOTIFY_SOCKET="+ns.path)
			m := f.start(cmd)
			cur := f.waitListening()
			// The stand-in prints a line with its pid, so that the family
			// reaps it at the end if the old process has left it behind.
			standIn := fmt.Sprintf("#!/bin/sh\necho \"stand-in (pid $$)\"\nread x < %q\nexit 1\n", gate)
			if err := os.WriteFile(exe+".new", []byte(standIn), 0o700); err != nil {
				t.Fatal(err)
			}
			if err := os.Rename(exe+".new", exe); err != nil {
				t.Fatal(err)
			}

			f.signal(m, syscall.SIGHUP)
			f.waitLine(func(l line) bool { return strings.HasPrefix(l.text, "stand-in (pid ") })
			f.signal(m, syscall.SIGTERM)
			f.logLine(cur.pid, "stop during an upgrade")
			if pid := get(t, "http://"+cur.addr+"/"); pid != fmt.Sprintf("hello from %d", cur.pid) {
				t.Errorf("while it waits for the upgrade, the old process answered %q", pid)
			}
			tc.end(f, m, func() {
				w, err := os.OpenFile(gate, os.O_WRONLY, 0)
				if err != nil {
					t.Fatal(err)
				}
				w.Close()
			})
			if code, _ := f.wait(m); code != tc.code {
				t.Errorf("old process exited %d, want %d", code, tc.code)
			}
			for _, l := range tc.logs {
				f.logLine(cur.pid, l)
			}
			if stopping := ns.waitCount(t, "STOPPING=1", 1); len(stopping) != 1 {
				t.Errorf("%d STOPPING=1 messages, want 1", len(stopping))
			}
		})
	}
}

// get returns the body of a GET of url, on a connection of its own.
func get(t *testing.T, url string) string {
	t.Helper()
	c := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}, Timeout: bound}
	resp, err := c.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
