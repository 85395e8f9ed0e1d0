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

// BenchmarkIdleClose measures what closing one idle keep-alive connection
// costs on loopback, the way the drain closes it (close=gentle: lingerClose,
// which half-closes, finds everything acknowledged and closes) and the way
// net/http does (close=plain). One op is one connection; the pairs are
// opened, and each client has read nothing, outside the timer. Loopback
// delivers the FIN to the client's socket in the closing thread, so the
// figure counts both ends' kernel work: BENCHMARKS.md §13 uses it to tell
// what 9 900 closes cost on this machine.
func BenchmarkIdleClose(b *testing.B) {
	for _, mode := range []string{"gentle", "plain"} {
		b.Run("close="+mode, func(b *testing.B) {
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				b.Fatal(err)
			}
			defer ln.Close()
			const batch = 512
			for done := 0; done < b.N; done += batch {
				n := min(batch, b.N-done)
				b.StopTimer()
				servers, clients := make([]net.Conn, n), make([]net.Conn, n)
				for i := range n {
					if clients[i], err = net.Dial("tcp", ln.Addr().String()); err != nil {
						b.Fatal(err)
					}
					if servers[i], err = ln.Accept(); err != nil {
						b.Fatal(err)
					}
				}
				b.StartTimer()
				for _, s := range servers {
					if mode == "gentle" {
						lingerClose(s)
					} else {
						s.Close()
					}
				}
				b.StopTimer()
				for _, c := range clients {
					c.Close()
				}
				b.StartTimer()
			}
		})
	}
}
