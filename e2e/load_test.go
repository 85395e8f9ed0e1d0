package e2e

import (
	"fmt"
	"io"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

// result is the outcome of one request.
type result struct {
	path       string
	start, end time.Time
	status     int
	err        error
}

func (r result) failed() bool { return r.err != nil || r.status != http.StatusOK }

// load keeps clients busy sending requests to a server until halted. Most
// clients send GET /; slowClients send GET /slow?d=slow back to back, so that
// some slow requests are always in flight.
type load struct {
	base   func() string // where to send; called per request
	client *http.Client
	stop   atomic.Bool
	wg     sync.WaitGroup

	mu      sync.Mutex
	results []result
	waiters []countWaiter
}

type countWaiter struct {
	n  int
	ch chan struct{}
}

func startLoad(base func() string, clients, slowClients int, slow time.Duration) *load {
	l := &load{
		base: base,
		client: &http.Client{
			Transport: &http.Transport{MaxIdleConnsPerHost: clients},
			Timeout:   bound,
		},
	}
	for i := range clients {
		path := "/"
		if i < slowClients {
			path = fmt.Sprintf("/slow?d=%v", slow)
		}
		l.wg.Go(func() {
			for !l.stop.Load() {
				l.record(l.get(path))
			}
		})
	}
	return l
}

func (l *load) get(path string) result {
	r := result{path: path, start: time.Now()}
	resp, err := l.client.Get(l.base() + path)
	if err == nil {
		_, err = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		r.status = resp.StatusCode
	}
	r.err, r.end = err, time.Now()
	return r
}

func (l *load) record(r result) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.results = append(l.results, r)
	kept := l.waiters[:0]
	for _, w := range l.waiters {
		if len(l.results) >= w.n {
			close(w.ch)
		} else {
			kept = append(kept, w)
		}
	}
	l.waiters = kept
}

// reached returns a channel closed once n requests have completed.
func (l *load) reached(n int) <-chan struct{} {
	l.mu.Lock()
	defer l.mu.Unlock()
	ch := make(chan struct{})
	if len(l.results) >= n {
		close(ch)
	} else {
		l.waiters = append(l.waiters, countWaiter{n, ch})
	}
	return ch
}

// count returns how many requests have completed.
func (l *load) count() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.results)
}

// halt stops the clients from sending and waits for their last requests.
func (l *load) halt() {
	l.stop.Store(true)
	l.wg.Wait()
	l.client.CloseIdleConnections()
}

// tally reports the requests sent, the failed ones (at most five described),
// and how many slow requests were in flight at the instant at.
func (l *load) tally(at time.Time) (sent, failed, slowInFlight int, examples []string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, r := range l.results {
		if r.failed() {
			failed++
			if len(examples) < 5 {
				examples = append(examples, fmt.Sprintf("%s: status %d, err %v", r.path, r.status, r.err))
			}
		}
		if r.path != "/" && r.start.Before(at) && r.end.After(at) {
			slowInFlight++
		}
	}
	return len(l.results), failed, slowInFlight, examples
}

// watchReadiness polls base/readyz every interval and halts the load's
// sending as soon as it answers anything but 200: the client side of a
// drain delay, as a load balancer would do it.
func watchReadiness(base string, interval time.Duration, l *load) (stop func()) {
	client := &http.Client{Timeout: bound}
	done := make(chan struct{})
	quit := make(chan struct{})
	go func() {
		defer close(done)
		defer client.CloseIdleConnections()
		tick := time.NewTicker(interval)
		defer tick.Stop()
		for {
			resp, err := client.Get(base + "/readyz")
			if err == nil {
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
			}
			if err != nil || resp.StatusCode != http.StatusOK {
				l.stop.Store(true)
				return
			}
			select {
			case <-tick.C:
			case <-quit:
				return
			}
		}
	}()
	return func() { close(quit); <-done }
}
