package main

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"
)

// A rolling restart of two instances behind a real HAProxy, with clients of
// both libraries on both endpoints sending numbered messages the whole
// time. Each instance in turn is stopped by SIGTERM (it fails /readyz, so
// HAProxy takes it out, then closes its WebSockets with 1001) and replaced
// by a new one on the same address. The clients reconnect through HAProxy
// to the instance that is up and send again what was not acknowledged.
// Every connection a server ended was closed with 1001, every instance
// exits 0, and no acknowledged message is missing from the servers'
// records.
func TestRollingRestartBehindHAProxy(t *testing.T) {
	path := haproxyPath(t)
	if bin == "" {
		t.Skip("end-to-end tests send SIGTERM, which this system cannot")
	}
	const progress = 20 // messages each client must get acknowledged between steps
	args := []string{"-drain-delay", "300ms", "-period", "3s"}
	slots := freeAddrs(t, 2)
	// HAProxy first: once it has marked the empty slots DOWN, it listens,
	// and its UP lines then say when it sends traffic to an instance.
	lb := startHAProxy(t, path, slots, nil)
	mark := lb.mark()
	current := []*server{ // the instance on each slot
		startServer(t, bin, "a1", slots[0], args...),
		startServer(t, bin, "b1", slots[1], args...),
	}
	all := append([]*server{}, current...)
	lb.waitState(0, "UP", mark)
	lb.waitState(1, "UP", mark)

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var clients []*ledgerClient
	errs := make(chan error, 8)
	var running sync.WaitGroup
	for _, endpoint := range []string{"/echo", "/chat"} {
		for _, lib := range clientLibs {
			for i := range 2 {
				lc := newLedgerClient(fmt.Sprintf("%s-%s%d", endpoint[1:], lib, i), "ws://"+lb.front+endpoint, lib, true)
				clients = append(clients, lc)
				running.Go(func() { errs <- lc.run(ctx) })
			}
		}
	}
	waitProgress := func(what string) {
		t.Helper()
		for _, lc := range clients {
			target := lc.ackedCount() + progress
			lc.waitFor(t, what, func() bool { return lc.acked >= target })
		}
	}
	waitProgress("talking through HAProxy")

	for slot, name := range []string{"a2", "b2"} {
		old := current[slot]
		sigAt := old.Term()
		code, exitAt := old.Wait()
		t.Logf("%s: exit %d %v after SIGTERM", old.Name, code, exitAt.Sub(sigAt).Round(time.Millisecond))
		if code != 0 {
			t.Errorf("%s: exit code %d, want 0", old.Name, code)
		}
		waitProgress(fmt.Sprintf("talking again after %s stopped", old.Name))
		mark := lb.mark()
		current[slot] = startServer(t, bin, name, slots[slot], args...)
		all = append(all, current[slot])
		lb.waitState(slot, "UP", mark)
	}
	waitProgress("talking after the restarts")
	cancel()
	running.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
	for _, p := range current {
		sigAt := p.Term()
		if code, exitAt := p.Wait(); code != 0 {
			t.Errorf("%s: exit code %d %v after SIGTERM, want 0", p.Name, code, exitAt.Sub(sigAt))
		}
	}
	lb.stop()

	total, redials := 0, 0
	for _, lc := range clients {
		total += lc.acked
		redials += lc.redials
		if len(lc.closes) == 0 {
			t.Errorf("client %s: no server ended its connection, want at least one move (all were on b1 when it stopped)", lc.id)
		}
		for _, code := range lc.closes {
			if code != 1001 {
				t.Errorf("client %s: a server ended its connection with %d, want 1001 every time (all: %v)", lc.id, code, lc.closes)
				break
			}
		}
	}
	checkLedger(t, clients, all...)
	t.Logf("%d clients, %d messages acknowledged, %d dials tried again", len(clients), total, redials)
}
