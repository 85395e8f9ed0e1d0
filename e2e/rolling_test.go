package e2e

import (
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/b583c413/lameduck/internal/proctest"
)

// pool is a small load balancer: it health-checks each backend's /readyz
// every interval and sends each request, round-robin, to a backend that
// answered 200 within the last fresh.
type pool struct {
	interval, fresh time.Duration
	transport       *http.Transport // shared by the proxies to every backend

	mu       sync.Mutex
	backends []*backend
	next     int
}

type backend struct {
	p       *proctest.Proc
	proxy   *httputil.ReverseProxy
	lastOK  atomic.Int64 // UnixNano of the last 200 from /readyz
	healthy chan struct{}
	stop    func()
}

func newPool(interval, fresh time.Duration) *pool {
	return &pool{interval: interval, fresh: fresh, transport: &http.Transport{MaxIdleConnsPerHost: 64}}
}

func (pl *pool) add(p *proctest.Proc, addr string) *backend {
	u := &url.URL{Scheme: "http", Host: addr}
	b := &backend{p: p, proxy: httputil.NewSingleHostReverseProxy(u), healthy: make(chan struct{})}
	b.proxy.Transport = pl.transport
	b.proxy.ErrorHandler = func(w http.ResponseWriter, r *http.Request, err error) {
		http.Error(w, "proxy: "+err.Error(), http.StatusBadGateway)
	}
	quit, done := make(chan struct{}), make(chan struct{})
	b.stop = func() { close(quit); <-done }
	go func() {
		defer close(done)
		client := &http.Client{Timeout: time.Second}
		defer client.CloseIdleConnections()
		tick := time.NewTicker(pl.interval)
		defer tick.Stop()
		first := true
		for {
			if resp, err := client.Get(u.String() + "/readyz"); err == nil {
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode == http.StatusOK {
					b.lastOK.Store(time.Now().UnixNano())
					if first {
						first = false
						close(b.healthy)
					}
				}
			}
			select {
			case <-tick.C:
			case <-quit:
				return
			}
		}
	}()
	pl.mu.Lock()
	pl.backends = append(pl.backends, b)
	pl.mu.Unlock()
	return b
}

func (pl *pool) remove(b *backend) {
	b.stop()
	pl.mu.Lock()
	defer pl.mu.Unlock()
	for i, x := range pl.backends {
		if x == b {
			pl.backends = append(pl.backends[:i], pl.backends[i+1:]...)
			break
		}
	}
}

func (pl *pool) pick() *backend {
	pl.mu.Lock()
	defer pl.mu.Unlock()
	now := time.Now().UnixNano()
	for range pl.backends {
		b := pl.backends[pl.next%len(pl.backends)]
		pl.next++
		if now-b.lastOK.Load() <= pl.fresh.Nanoseconds() {
			return b
		}
	}
	return nil
}

func (pl *pool) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	b := pl.pick()
	if b == nil {
		http.Error(w, "proxy: no healthy backend", http.StatusServiceUnavailable)
		return
	}
	b.proxy.ServeHTTP(w, r)
}

// rollingRestart runs three httpserver instances behind a pool, keeps 16
// clients busy through it, and replaces the instances one by one: SIGTERM
// the old one, start a new one, wait until the new one is healthy and the
// old one has exited. It returns the requests sent and failed.
func rollingRestart(t *testing.T, drainDelay time.Duration) (sent, failed int, examples []string) {
	t.Helper()
	const interval, fresh = 50 * time.Millisecond, 100 * time.Millisecond
	pl := newPool(interval, fresh)
	args := []string{"-drain-delay", drainDelay.String(), "-period", "5s"}
	launch := func() *backend {
		p, base := startHTTPServer(t, args...)
		b := pl.add(p, base[len("http://"):])
		select {
		case <-b.healthy:
		case <-time.After(bound):
			t.Fatalf("backend %s never became healthy", base)
		}
		return b
	}
	var live []*backend
	for range 3 {
		live = append(live, launch())
	}
	front := httptest.NewServer(pl)
	l := startLoad(func() string { return front.URL }, 16, 4, 100*time.Millisecond)
	<-l.reached(100)

	for i, old := range live {
		sigAt := old.p.Term()
		live[i] = launch()
		code, exitAt := old.p.Wait()
		pl.remove(old)
		t.Logf("instance %d replaced: old one exited %d after %v", i, code, exitAt.Sub(sigAt).Round(time.Millisecond))
		if code != 0 {
			t.Errorf("instance %d exited with code %d, want 0", i, code)
		}
	}
	<-l.reached(l.count() + 100) // the new instances carry the load
	l.halt()
	sent, failed, _, examples = l.tally(time.Time{})

	front.Close()
	for _, b := range live {
		b.p.Term()
		b.p.Wait()
		pl.remove(b)
	}
	pl.transport.CloseIdleConnections()
	return sent, failed, examples
}

func TestRollingRestart(t *testing.T) {
	const drainDelay = 300 * time.Millisecond // six health-check intervals, three freshness windows
	sent, failed, examples := rollingRestart(t, drainDelay)
	t.Logf("drain-delay %v: %d requests through the proxy, %d failed", drainDelay, sent, failed)
	if failed > 0 {
		t.Errorf("%d of %d requests failed during the rolling restart, e.g. %q", failed, sent, examples)
	}

	// The control: without a drain delay, an instance stops listening while
	// the load balancer still thinks it healthy. Reported, not asserted.
	sent, failed, examples = rollingRestart(t, 0)
	t.Logf("control, drain-delay 0: %d requests through the proxy, %d failed, e.g. %q", sent, failed, examples)
}
