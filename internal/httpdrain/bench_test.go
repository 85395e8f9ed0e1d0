package httpdrain

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"testing"
)

// BenchmarkRequestBookkeeping isolates what the Tracker adds to one keep-alive
// HTTP/1 request: two ConnState events (active, idle) and the handler's
// enter and leave, each one lock acquisition on the Tracker's mutex. Run it
// with -cpu 1,2,4,8 to see the lock under contention; compare with the
// ~35 µs a whole request costs (lameduck's BenchmarkRequestCost).
func BenchmarkRequestBookkeeping(b *testing.B) {
	t := New(&http.Server{}, func(ctx context.Context) context.Context { return ctx }, func() {})
	t.Install(context.Background(), false)
	r := httptest.NewRequest("GET", "/", nil)
	b.RunParallel(func(pb *testing.PB) {
		a, peer := net.Pipe()
		defer a.Close()
		defer peer.Close()
		c := &conn{Conn: a, t: t}
		t.mu.Lock()
		t.conns[c] = struct{}{}
		t.mu.Unlock()
		w := httptest.NewRecorder()
		for pb.Next() {
			t.connState(c, http.StateActive)
			t.leave(t.enter(w, r))
			t.connState(c, http.StateIdle)
		}
	})
}
