package main

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"
)

// The example runs as a child process and is stopped by a real SIGTERM,
// with real clients of both libraries talking to both endpoints while it
// happens: every client sees status 1001, none 1006; every acknowledged
// message is on record; the process exits 0 soon after the signal.
func TestSIGTERMClosesEveryWebSocketWith1001(t *testing.T) {
	const perLib = 5
	for _, path := range []string{"/echo", "/chat"} {
		t.Run(path[1:], func(t *testing.T) {
			p := startServer(t, bin, "a", "127.0.0.1:0", "-period", "5s")
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			var clients []*ledgerClient
			errs := make(chan error, 2*perLib)
			var running sync.WaitGroup
			for _, lib := range clientLibs {
				for i := range perLib {
					lc := newLedgerClient(fmt.Sprintf("%s%d", lib, i), "ws://"+p.addr+path, lib, false)
					clients = append(clients, lc)
					running.Go(func() { errs <- lc.run(ctx) })
				}
			}
			for _, lc := range clients {
				lc.waitFor(t, "talking", func() bool { return lc.acked >= 3 })
			}
			sigAt := p.Term()
			running.Wait()
			close(errs)
			for err := range errs {
				if err != nil {
					t.Error(err)
				}
			}
			code, exitAt := p.Wait()
			t.Logf("exit %d %v after SIGTERM", code, exitAt.Sub(sigAt).Round(time.Millisecond))
			if code != 0 {
				t.Errorf("exit code %d, want 0", code)
			}
			if d := exitAt.Sub(sigAt); d > 3*time.Second {
				t.Errorf("exited %v after SIGTERM, want a drain that ends once the clients have closed", d)
			}
			for _, lc := range clients {
				if len(lc.closes) != 1 || lc.closes[0] != 1001 {
					t.Errorf("client %s: the server ended its connection with %v, want [1001]", lc.id, lc.closes)
				}
			}
			checkLedger(t, clients, p)
		})
	}
}
