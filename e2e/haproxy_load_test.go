package e2e

import (
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// A call is one kind of request the mixed load sends, with the answer that
// only the backend gives: HAProxy's own errors (502, 503, 504) carry HTML
// bodies, so a right status and body mean the request reached an instance
// and its answer came back whole.
type call struct {
	method, path string
	wantStatus   int
	wantBody     string
}

var calls = []call{
	{"GET", "/", http.StatusOK, "hello"},
	{"GET", "/slow?d=20ms", http.StatusOK, "slept 20ms"},
	// examples/httpserver serves no POST route; its mux's 405 is an answer
	// from the backend all the same, and a POST is what neither a client
	// nor a proxy may send twice, so a POST lost on a reused connection
	// shows up as lost.
	{"POST", "/", http.StatusMethodNotAllowed, "Method Not Allowed\n"},
}

// outcome is one request's end and whether it was answered as expected.
type outcome struct {
	end      time.Time
	failed   bool
	method   string
	upstream string // the instance that answered, when the front end says (nginx's X-Upstream)
}

// mixedLoad keeps clients busy through a front end until halted: the first
// half send GET / and GET /slow?d=20ms (so that requests are in flight at
// every moment), the second half POST / with a body. Every answer is
// checked.
type mixedLoad struct {
	client *http.Client
	stop   atomic.Bool
	wg     sync.WaitGroup

	mu       sync.Mutex
	outcomes []outcome
	examples []string // the first few failures, described
	waiters  []countWaiter
}

func startMixedLoad(base string, clients int) *mixedLoad {
	l := &mixedLoad{client: &http.Client{
		Transport: &http.Transport{MaxIdleConnsPerHost: clients},
		Timeout:   bound,
	}}
	for i := range clients {
		kinds := calls[:2]
		if i >= clients/2 {
			kinds = calls[2:]
		}
		l.wg.Go(func() {
			for n := 0; !l.stop.Load(); n++ {
				l.record(l.do(base, kinds[n%len(kinds)], i, n))
			}
		})
	}
	return l
}

func (l *mixedLoad) do(base string, c call, client, n int) (outcome, string) {
	var body io.Reader
	if c.method == "POST" {
		body = strings.NewReader(fmt.Sprintf("client %d request %d", client, n))
	}
	req, err := http.NewRequest(c.method, base+c.path, body)
	if err != nil {
		panic(err)
	}
	resp, err := l.client.Do(req)
	var got []byte
	if err == nil {
		got, err = io.ReadAll(resp.Body)
		resp.Body.Close()
	}
	o := outcome{end: time.Now(), method: c.method}
	if resp != nil {
		o.upstream = resp.Header.Get("X-Upstream")
	}
	switch {
	case err != nil:
		o.failed = true
		return o, fmt.Sprintf("%s %s: %v", c.method, c.path, err)
	case resp.StatusCode != c.wantStatus || string(got) != c.wantBody:
		o.failed = true
		return o, fmt.Sprintf("%s %s: %d %.60q", c.method, c.path, resp.StatusCode, got)
	}
	return o, ""
}

func (l *mixedLoad) record(o outcome, failure string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.outcomes = append(l.outcomes, o)
	if o.failed && len(l.examples) < 5 {
		l.examples = append(l.examples, failure)
	}
	kept := l.waiters[:0]
	for _, w := range l.waiters {
		if len(l.outcomes) >= w.n {
			close(w.ch)
		} else {
			kept = append(kept, w)
		}
	}
	l.waiters = kept
}

// reached returns a channel closed once n more requests have completed.
func (l *mixedLoad) reachedMore(n int) <-chan struct{} {
	l.mu.Lock()
	defer l.mu.Unlock()
	ch := make(chan struct{})
	l.waiters = append(l.waiters, countWaiter{len(l.outcomes) + n, ch})
	return ch
}

// halt stops the clients and waits for their last requests.
func (l *mixedLoad) halt() {
	l.stop.Store(true)
	l.wg.Wait()
	l.client.CloseIdleConnections()
}

// tally returns the requests that ended in [from, to) and how many of them
// failed; a zero to means no end.
func (l *mixedLoad) tally(from, to time.Time) (sent, failed int) {
	sent, failedGET, failedPOST := l.tallyByMethod(from, to)
	return sent, failedGET + failedPOST
}

// tallyByMethod is tally with the failures told apart by method (GET
// counts every method but POST).
func (l *mixedLoad) tallyByMethod(from, to time.Time) (sent, failedGET, failedPOST int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, o := range l.outcomes {
		if o.end.Before(from) || (!to.IsZero() && !o.end.Before(to)) {
			continue
		}
		sent++
		switch {
		case !o.failed:
		case o.method == "POST":
			failedPOST++
		default:
			failedGET++
		}
	}
	return sent, failedGET, failedPOST
}

// waitServedBy waits until n requests that ended after since were answered
// by the instance at addr, as the front end's X-Upstream header says.
func (l *mixedLoad) waitServedBy(t *testing.T, addr string, since time.Time, n int) {
	t.Helper()
	deadline := time.Now().Add(bound)
	for {
		l.mu.Lock()
		got := 0
		for i := len(l.outcomes) - 1; i >= 0 && l.outcomes[i].end.After(since); i-- {
			if l.outcomes[i].upstream == addr && !l.outcomes[i].failed {
				got++
			}
		}
		l.mu.Unlock()
		if got >= n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s answered %d requests through the front end within %v, want %d", addr, got, bound, n)
		}
		<-l.reachedMore(1)
	}
}
