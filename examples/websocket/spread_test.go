package main

import (
	"flag"
	"fmt"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	gorilla "github.com/gorilla/websocket"
)

// moveResult is what one move of clients from instance A to instance B
// looked like.
type moveResult struct {
	reconnects []time.Duration // when each client was connected to B, after the SIGTERM to A
	codes      map[int]int     // how A ended the clients' connections: close code → clients
	drain      time.Duration   // SIGTERM to A's exit
	exitCode   int
}

// peak returns the most reconnects that fell into one bucket of width w.
func (m moveResult) peak(w time.Duration) int {
	counts := map[time.Duration]int{}
	most := 0
	for _, d := range m.reconnects {
		b := d / w
		counts[b]++
		most = max(most, counts[b])
	}
	return most
}

// span returns the time from the first reconnect to the last.
func (m moveResult) span() time.Duration {
	return slices.Max(m.reconnects) - slices.Min(m.reconnects)
}

// moveClients connects n clients to a new instance A of the program at
// path (run with -spread window), stops A with SIGTERM, and has each client
// connect to instance B once A has closed its connection.
func moveClients(t *testing.T, path string, n int, window time.Duration) moveResult {
	t.Helper()
	args := []string{"-period", "5s", "-spread", window.String()}
	a := startServer(t, path, "a", "127.0.0.1:0", args...)
	b := startServer(t, path, "b", "127.0.0.1:0", args...)

	type client struct {
		a, b *gorilla.Conn
		code int
		at   time.Time // connected to B
	}
	clients := make([]*client, n)
	var dialing sync.WaitGroup
	dialErrs := make(chan error, n)
	sem := make(chan struct{}, 64) // dials in flight
	for i := range clients {
		dialing.Go(func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			c, _, err := gorilla.DefaultDialer.Dial(fmt.Sprintf("ws://%s/echo?client=c%d", a.addr, i), nil)
			if err != nil {
				dialErrs <- err
				return
			}
			// The echo handler answers once it is serving this client.
			if err := c.WriteMessage(gorilla.TextMessage, []byte("1")); err != nil {
				dialErrs <- err
				return
			}
			if _, _, err := c.ReadMessage(); err != nil {
				dialErrs <- err
				return
			}
			clients[i] = &client{a: c}
		})
	}
	dialing.Wait()
	close(dialErrs)
	for err := range dialErrs {
		t.Fatalf("connecting to A: %v", err)
	}

	sigAt := a.Term()
	var moving sync.WaitGroup
	moveErrs := make(chan error, n)
	for i, cl := range clients {
		moving.Go(func() {
			cl.a.SetReadDeadline(time.Now().Add(bound))
			_, _, err := cl.a.ReadMessage()
			cl.code = closeCode(err)
			cl.a.Close()
			c, _, err := gorilla.DefaultDialer.Dial(fmt.Sprintf("ws://%s/echo?client=c%d", b.addr, i), nil)
			if err != nil {
				moveErrs <- err
				return
			}
			cl.b, cl.at = c, time.Now()
		})
	}
	moving.Wait()
	close(moveErrs)
	for err := range moveErrs {
		t.Errorf("connecting to B: %v", err)
	}
	code, exitAt := a.Wait()
	res := moveResult{codes: map[int]int{}, drain: exitAt.Sub(sigAt), exitCode: code}
	for _, cl := range clients {
		res.codes[cl.code]++
		if cl.b != nil {
			res.reconnects = append(res.reconnects, cl.at.Sub(sigAt))
			cl.b.Close()
		}
	}
	b.Term()
	if code, _ := b.Wait(); code != 0 {
		t.Errorf("B: exit code %d, want 0", code)
	}
	return res
}

// With Spread, A's WebSockets close at moments spread over the window, so
// their clients reach B a few at a time; all are closed with 1001, and A
// exits 0 after about the window.
func TestSpreadSpreadsReconnects(t *testing.T) {
	if bin == "" {
		t.Skip("end-to-end tests send SIGTERM, which this system cannot")
	}
	const n, window = 100, 500 * time.Millisecond
	res := moveClients(t, bin, n, window)
	t.Logf("%d clients reconnected over %v, at most %d in 10 ms; A exited %d after %v",
		len(res.reconnects), res.span().Round(time.Millisecond), res.peak(10*time.Millisecond), res.exitCode, res.drain.Round(time.Millisecond))
	if res.exitCode != 0 {
		t.Errorf("A: exit code %d, want 0", res.exitCode)
	}
	if res.codes[1001] != n {
		t.Errorf("A ended the clients' connections with %v (close code → clients), want 1001 for all %d", res.codes, n)
	}
	if len(res.reconnects) != n {
		t.Fatalf("%d clients reconnected, want %d", len(res.reconnects), n)
	}
	// A hundred moments drawn uniformly from the window all fall into one
	// half of it with a probability of 2⁻⁹⁹.
	if span := res.span(); span < window/2 {
		t.Errorf("the reconnects spanned %v, want them spread over the %v window", span, window)
	}
}

var benchSpread = flag.Bool("spread.bench", false, "measure 1 000 clients reconnecting with and without Spread, and print a table")

// benchBin is the example built without -race, for the measurement.
var benchBin string

// TestSpreadBenchmark measures what Spread does to a move of 1 000 clients
// from A to B (see BENCHMARKS.md): the most reconnects B sees in 10 ms,
// and A's drain, with and without a 1 s window. It runs only with
// -spread.bench:
//
//	go test -run TestSpreadBenchmark -spread.bench -v .
func TestSpreadBenchmark(t *testing.T) {
	if !*benchSpread {
		t.Skip("a measurement; run with -spread.bench")
	}
	const n, reps = 1000, 5
	loadBefore := loadAverage()
	type row struct {
		window      time.Duration
		peaks       []int
		spans       []time.Duration
		drains      []time.Duration
		codes, exit []int
	}
	rows := []*row{{window: 0}, {window: time.Second}}
	for rep := range reps {
		for _, r := range rows {
			res := moveClients(t, benchBin, n, r.window)
			r.peaks = append(r.peaks, res.peak(10*time.Millisecond))
			r.spans = append(r.spans, res.span())
			r.drains = append(r.drains, res.drain)
			r.codes = append(r.codes, res.codes[1001])
			r.exit = append(r.exit, res.exitCode)
			t.Logf("rep %d, window %v: peak %d per 10 ms, reconnects over %v, drain %v, %d of %d closed with 1001, exit %d",
				rep, r.window, res.peak(10*time.Millisecond), res.span().Round(time.Millisecond), res.drain.Round(time.Millisecond), res.codes[1001], n, res.exitCode)
		}
	}
	median := func(xs []time.Duration) time.Duration {
		s := slices.Clone(xs)
		slices.Sort(s)
		return s[len(s)/2]
	}
	medianInt := func(xs []int) int {
		s := slices.Clone(xs)
		slices.Sort(s)
		return s[len(s)/2]
	}
	fmt.Printf("\n%d clients, %d runs each, medians (all runs); load average %s before, %s after\n", n, reps, loadBefore, loadAverage())
	fmt.Printf("| Spread window | peak reconnects per 10 ms | reconnects spread over | drain (SIGTERM to exit) | closed with 1001 | exit |\n")
	fmt.Printf("|---|---|---|---|---|---|\n")
	for _, r := range rows {
		fmt.Printf("| %v | %d (%v) | %v (%v) | %v (%v) | %v | %v |\n", r.window,
			medianInt(r.peaks), r.peaks, median(r.spans).Round(time.Millisecond), roundAll(r.spans),
			median(r.drains).Round(time.Millisecond), roundAll(r.drains), r.codes, r.exit)
	}
	ratio := float64(medianInt(rows[0].peaks)) / float64(medianInt(rows[1].peaks))
	fmt.Printf("peak without / with: %.1f×\n", ratio)
}

// loadAverage returns the first three fields of /proc/loadavg, or "?".
func loadAverage() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "?"
	}
	return strings.Join(f[:3], " ")
}

func roundAll(ds []time.Duration) []time.Duration {
	out := make([]time.Duration, len(ds))
	for i, d := range ds {
		out[i] = d.Round(time.Millisecond)
	}
	return out
}
