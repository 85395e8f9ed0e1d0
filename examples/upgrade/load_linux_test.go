//go:build linux

package main

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// load keeps keep-alive clients busy against one address until halted, and
// checks every response: GET / and GET /slow must name the pid that
// answered, POST /echo must return exactly the body sent.
type load struct {
	base   string
	client *http.Client
	stop   atomic.Bool
	quit   chan struct{} // closed by haltOnce
	halted sync.Once
	wg     sync.WaitGroup

	mu      sync.Mutex
	results []result
	waiters []pidWaiter
}

type result struct {
	kind       string
	pid        int // the process that answered, or 0
	start, end time.Time
	err        error // nil when the response was right
}

type pidWaiter struct {
	pid, n int
	ch     chan struct{}
}

const (
	// maxPerClient bounds each client's loop whatever the test does.
	maxPerClient = 200_000
	// retryAfter is how long a client waits after a failed request, as a
	// real client backs off; without it a refused client spins and starves
	// the very process that is starting up.
	retryAfter = 2 * time.Millisecond
	slowFor    = 20 * time.Millisecond
)

// startLoad starts clients against base: a quarter send GET /slow (so that
// requests are in flight whenever a process begins to drain), half POST
// /echo, the rest GET /.
func startLoad(base string, clients int) *load {
	l := &load{
		base: base,
		quit: make(chan struct{}),
		client: &http.Client{
			Transport: &http.Transport{MaxIdleConnsPerHost: clients},
			Timeout:   bound,
		},
	}
	for i := range clients {
		kind := [...]string{"slow", "post", "get", "post"}[i%4]
		l.wg.Go(func() {
			for n := 0; n < maxPerClient && !l.stop.Load(); n++ {
				r := l.send(kind, fmt.Sprintf("client %d request %d %s", i, n, strings.Repeat("x", n%512)))
				l.record(r)
				if r.err != nil {
					select {
					case <-time.After(retryAfter):
					case <-l.quit:
					}
				}
			}
		})
	}
	return l
}

func (l *load) send(kind, body string) (r result) {
	r = result{kind: kind, start: time.Now()}
	defer func() { r.end = time.Now() }()
	var resp *http.Response
	var err error
	switch kind {
	case "slow":
		resp, err = l.client.Get(l.base + "/slow?d=" + slowFor.String())
	case "get":
		resp, err = l.client.Get(l.base + "/")
	case "post":
		resp, err = l.client.Post(l.base+"/echo", "text/plain", strings.NewReader(body))
	}
	if err != nil {
		r.err = err
		return r
	}
	got, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	switch {
	case err != nil:
		r.err = err
	case resp.StatusCode != http.StatusOK:
		r.err = fmt.Errorf("status %d: %q", resp.StatusCode, got)
	case kind == "post":
		r.pid, _ = strconv.Atoi(resp.Header.Get("X-Pid"))
		if !bytes.Equal(got, []byte(body)) {
			r.err = fmt.Errorf("echo returned %d bytes, sent %d", len(got), len(body))
		}
	default:
		want := "hello from "
		if kind == "slow" {
			want = fmt.Sprintf("slept %v in ", slowFor)
		}
		pid, ok := strings.CutPrefix(string(got), want)
		r.pid, _ = strconv.Atoi(pid)
		if !ok {
			r.err = fmt.Errorf("body %q", got)
		}
	}
	if r.err == nil && r.pid == 0 {
		r.err = fmt.Errorf("no pid in the response")
	}
	return r
}

func (l *load) record(r result) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.results = append(l.results, r)
	if r.err != nil {
		return
	}
	kept := l.waiters[:0]
	for _, w := range l.waiters {
		if w.pid == r.pid {
			w.n--
		}
		if w.n <= 0 {
			close(w.ch)
		} else {
			kept = append(kept, w)
		}
	}
	l.waiters = kept
}

// answeredBy returns a channel closed once pid has answered n more
// requests correctly.
func (l *load) answeredBy(pid, n int) <-chan struct{} {
	l.mu.Lock()
	defer l.mu.Unlock()
	ch := make(chan struct{})
	l.waiters = append(l.waiters, pidWaiter{pid, n, ch})
	return ch
}

// haltOnce stops the clients and waits for their last requests; calls
// after the first do nothing.
func (l *load) haltOnce() {
	l.halted.Do(func() {
		l.stop.Store(true)
		close(l.quit)
		l.wg.Wait()
		l.client.CloseIdleConnections()
	})
}

// tally counts the requests, the failed ones (describing at most five),
// and per kind.
type tally struct {
	sent, failed int
	kinds        map[string]int
	examples     []string
}

func (l *load) tally() tally {
	l.mu.Lock()
	defer l.mu.Unlock()
	t := tally{kinds: map[string]int{}}
	for _, r := range l.results {
		t.sent++
		t.kinds[r.kind]++
		if r.err != nil {
			t.failed++
			if len(t.examples) < 5 {
				t.examples = append(t.examples, fmt.Sprintf("%s: %v", r.kind, r.err))
			}
		}
	}
	return t
}

// answeredAfter counts the requests pid answered that ended after at: for
// an old process, those it finished after its successor was ready.
func (l *load) answeredAfter(pid int, at time.Time) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for _, r := range l.results {
		if r.pid == pid && r.err == nil && r.end.After(at) {
			n++
		}
	}
	return n
}

// mark returns how many requests have ended so far, for failedSince.
func (l *load) mark() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.results)
}

// failedSince counts the failed requests among those that ended after
// mark returned n, and those of them reset by the server, and describes at
// most three.
func (l *load) failedSince(n int) (failed, reset int, examples []string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, r := range l.results[n:] {
		if r.err != nil {
			failed++
			if errors.Is(r.err, syscall.ECONNRESET) {
				reset++
			}
			if len(examples) < 3 {
				examples = append(examples, fmt.Sprintf("%s: %v", r.kind, r.err))
			}
		}
	}
	return failed, reset, examples
}
