package main

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// ledgerClient sends numbered messages ("1", "2", …), each once the one
// before is acknowledged, at most one every pace. When a server ends its
// connection, it records the close code and, if it reconnects, sends the
// unacknowledged message again on the new connection.
type ledgerClient struct {
	id, url   string
	lib       clientLib
	reconnect bool
	pace      time.Duration

	mu       sync.Mutex
	acked    int   // messages 1 … acked are acknowledged
	closes   []int // the close code of every connection a server ended
	redials  int   // dials that failed and were tried again
	sessions []time.Time
	changed  chan struct{} // closed and replaced on every change
}

func newLedgerClient(id, url string, lib clientLib, reconnect bool) *ledgerClient {
	return &ledgerClient{id: id, url: url + "?client=" + id, lib: lib, reconnect: reconnect, pace: 5 * time.Millisecond, changed: make(chan struct{})}
}

// maxRedials bounds the dials a client tries in a row (about 5 s of them:
// HAProxy short of CPU may take every server out for a moment); a failed
// dial waits redialGap before the next.
const (
	maxRedials = 250
	redialGap  = 20 * time.Millisecond
)

// run talks until ctx ends (then it closes its connection normally), or
// until a server ends the connection and it does not reconnect.
func (lc *ledgerClient) run(ctx context.Context) error {
	for {
		c, err := lc.dial(ctx)
		if err != nil || c == nil {
			return err
		}
		ended, err := lc.talk(ctx, c)
		switch {
		case err != nil:
			c.abort()
			return err
		case !ended:
			c.finish()
			return nil
		}
		c.abort()
		if !lc.reconnect {
			return nil
		}
	}
}

// dial connects, trying again after a failure (the balancer may not have
// noticed yet that an instance went away); it returns nil, nil when ctx ends.
func (lc *ledgerClient) dial(ctx context.Context) (wsConn, error) {
	for i := 0; ; i++ {
		dctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		c, err := dialWS(dctx, lc.lib, lc.url)
		cancel()
		switch {
		case ctx.Err() != nil:
			if c != nil {
				c.abort()
			}
			return nil, nil
		case err == nil:
			lc.update(func() { lc.sessions = append(lc.sessions, time.Now()) })
			return c, nil
		case i == maxRedials:
			return nil, fmt.Errorf("client %s: %d dials failed, the last with %v", lc.id, i+1, err)
		}
		lc.update(func() { lc.redials++ })
		select {
		case <-time.After(redialGap):
		case <-ctx.Done():
			return nil, nil
		}
	}
}

// talk sends and waits for acknowledgements on c until ctx ends (ended is
// false) or the server ends the connection (ended is true).
func (lc *ledgerClient) talk(ctx context.Context, c wsConn) (ended bool, err error) {
	tick := time.NewTicker(lc.pace)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return false, nil
		case <-tick.C:
		}
		lc.mu.Lock()
		n := lc.acked + 1
		lc.mu.Unlock()
		var reply string
		err := c.send(strconv.Itoa(n))
		if err == nil {
			reply, err = recvAck(c, bound)
		} else {
			// The server may have closed already; its close frame waits.
			_, err = c.recv(time.Second)
		}
		if err != nil {
			lc.update(func() { lc.closes = append(lc.closes, closeCode(err)) })
			return true, nil
		}
		if want := "ack " + strconv.Itoa(n); reply != want {
			return false, fmt.Errorf("client %s: got %q, want %q", lc.id, reply, want)
		}
		lc.update(func() { lc.acked = n })
	}
}

func (lc *ledgerClient) update(f func()) {
	lc.mu.Lock()
	defer lc.mu.Unlock()
	f()
	close(lc.changed)
	lc.changed = make(chan struct{})
}

// waitFor waits until cond, called under the client's lock, holds.
func (lc *ledgerClient) waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.After(bound)
	for {
		lc.mu.Lock()
		ok, changed := cond(), lc.changed
		lc.mu.Unlock()
		if ok {
			return
		}
		select {
		case <-changed:
		case <-deadline:
			t.Fatalf("client %s: not %s within %v", lc.id, what, bound)
		}
	}
}

// ackedCount returns how many messages are acknowledged.
func (lc *ledgerClient) ackedCount() int {
	lc.mu.Lock()
	defer lc.mu.Unlock()
	return lc.acked
}

// records reads the ledger lines of the servers' stdout: for each client,
// the set of messages a server took.
func records(t *testing.T, servers ...*server) map[string]map[string]bool {
	t.Helper()
	got := map[string]map[string]bool{}
	for _, p := range servers {
		for _, l := range p.Lines(false) {
			rest, ok := strings.CutPrefix(l, "ledger ")
			if !ok {
				continue
			}
			var name, client, msg string
			if _, err := fmt.Sscanf(rest, "%s %q %q", &name, &client, &msg); err != nil {
				t.Fatalf("%s: a ledger line %q: %v", p.Name, l, err)
			}
			if got[client] == nil {
				got[client] = map[string]bool{}
			}
			got[client][msg] = true
		}
	}
	return got
}

// checkLedger compares what each client holds acknowledgements for with
// what the servers recorded: every acknowledged message must be on record
// (none lost), and nothing else may be but the one message a client may
// have sent without getting its acknowledgement (none invented).
func checkLedger(t *testing.T, clients []*ledgerClient, servers ...*server) {
	t.Helper()
	recs := records(t, servers...)
	for _, lc := range clients {
		lc.mu.Lock()
		acked := lc.acked
		lc.mu.Unlock()
		var lost []int
		for n := 1; n <= acked; n++ {
			if !recs[lc.id][strconv.Itoa(n)] {
				lost = append(lost, n)
			}
		}
		if len(lost) > 0 {
			t.Errorf("client %s: messages %v were acknowledged but no server recorded them", lc.id, lost)
		}
		for msg := range recs[lc.id] {
			if n, err := strconv.Atoi(msg); err != nil || n < 1 || n > acked+1 {
				t.Errorf("client %s: a server recorded %q, which the client never sent (it holds acknowledgements for 1 to %d)", lc.id, msg, acked)
			}
		}
	}
	if len(recs) != len(clients) {
		t.Errorf("the servers recorded messages from %d clients, want %d", len(recs), len(clients))
	}
}
