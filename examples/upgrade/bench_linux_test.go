//go:build linux

package main

import (
	"io"
	"net"
	"os/exec"
	"slices"
	"sync"
	"syscall"
	"testing"
	"time"
)

// BenchmarkUpgradeGap measures what a new connection sees while the server
// is restarted in place: one iteration is one restart, under the same 16
// keep-alive clients as the tests, while two probes open a new connection
// after another and time connect → first byte of the response. It reports
// the probes' connections that failed (refused or reset) per restart, the
// load's failed requests per restart, and the p50/p99 of connect → first
// byte for probes started during a restart (signal → new process ready and
// old one gone) and for those started in the steady state between
// restarts. The program is built without -race here.
//
//	impl=tableflip   SIGHUP: the new process inherits the socket, then the old one drains
//	impl=activation  SIGTERM, exit, start: the socket stays with the caller (systemd's part)
//	impl=stop-start  SIGTERM, exit, start: each process binds the port itself (the control)
func BenchmarkUpgradeGap(b *testing.B) {
	for _, impl := range []string{"tableflip", "activation", "stop-start"} {
		b.Run("impl="+impl, func(b *testing.B) { benchGap(b, impl) })
	}
}

type probeSample struct {
	start time.Time
	d     time.Duration
	err   error
}

func benchGap(b *testing.B, impl string) {
	f := newFamily(b)
	var (
		m    *member
		cur  listening
		seen []int
		ln   *net.TCPListener
	)
	launch := func(addr string) {
		var cmd *exec.Cmd
		if impl == "activation" {
			m = startActivated(f, plainBin, ln)
		} else {
			cmd = exec.Command(plainBin, append([]string{"-addr", addr}, serverArgs...)...)
			m = f.start(cmd)
		}
		cur = f.waitListening(seen...)
		seen = append(seen, cur.pid)
	}
	addr := "127.0.0.1:0"
	if impl == "activation" {
		l, err := net.Listen("tcp", addr)
		if err != nil {
			b.Fatal(err)
		}
		defer l.Close()
		ln = l.(*net.TCPListener)
		addr = ln.Addr().String()
	}
	launch(addr)
	addr = cur.addr

	l := startLoad("http://"+addr, clients)
	defer l.haltOnce()
	pr := startProbes(addr, 2)
	defer pr.halt()
	await(b, l.answeredBy(cur.pid, 200), "first process under load")

	type window struct{ from, to time.Time }
	var windows []window
	b.ResetTimer()
	for range b.N {
		var from time.Time
		switch impl {
		case "tableflip":
			from = f.signal(m, syscall.SIGHUP)
			next := f.waitListening(seen...)
			seen = append(seen, next.pid)
			_, exitAt := f.wait(m)
			m, cur = f.adopt(next.pid), next
			windows = append(windows, window{from, later(exitAt, next.at)})
		default:
			from = f.signal(m, syscall.SIGTERM)
			f.wait(m)
			launch(addr)
			windows = append(windows, window{from, cur.at})
		}
		await(b, l.answeredBy(cur.pid, 200), "the new process under load")
	}
	b.StopTimer()
	l.haltOnce()
	pr.halt()
	f.signal(m, syscall.SIGTERM)
	f.wait(m)

	var during, steady []time.Duration
	failed := 0
	for _, s := range pr.samples() {
		// A probe belongs to a restart when any part of it overlaps one: a
		// connection made just before the signal can wait in the queue
		// through the whole restart.
		end := s.start.Add(s.d)
		in := slices.ContainsFunc(windows, func(w window) bool { return !end.Before(w.from) && !s.start.After(w.to) })
		switch {
		case s.err != nil:
			failed++
		case in:
			during = append(during, s.d)
		default:
			steady = append(steady, s.d)
		}
	}
	b.ReportMetric(float64(failed)/float64(b.N), "refused/op")
	b.ReportMetric(float64(l.tally().failed)/float64(b.N), "failed-requests/op")
	b.ReportMetric(ms(percentile(during, 50)), "restart-p50-ms")
	b.ReportMetric(ms(percentile(during, 99)), "restart-p99-ms")
	b.ReportMetric(ms(percentile(steady, 50)), "steady-p50-ms")
	b.ReportMetric(ms(percentile(steady, 99)), "steady-p99-ms")
}

func later(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

func percentile(ds []time.Duration, p int) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[(len(s)-1)*p/100]
}

// probes open one new connection after another, send a request with
// Connection: close, and time connect → first byte of the response.
type probes struct {
	quit chan struct{}
	wg   sync.WaitGroup
	once sync.Once

	mu sync.Mutex
	s  []probeSample
}

func startProbes(addr string, n int) *probes {
	pr := &probes{quit: make(chan struct{})}
	for range n {
		pr.wg.Go(func() {
			for i := 0; i < maxPerClient; i++ {
				select {
				case <-pr.quit:
					return
				default:
				}
				s := probe(addr)
				pr.mu.Lock()
				pr.s = append(pr.s, s)
				pr.mu.Unlock()
				if s.err != nil {
					select {
					case <-time.After(retryAfter):
					case <-pr.quit:
						return
					}
				}
			}
		})
	}
	return pr
}

func probe(addr string) probeSample {
	s := probeSample{start: time.Now()}
	c, err := net.DialTimeout("tcp", addr, bound)
	if err != nil {
		s.err = err
		return s
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(bound))
	if _, err := io.WriteString(c, "GET / HTTP/1.1\r\nHost: probe\r\nConnection: close\r\n\r\n"); err != nil {
		s.err = err
		return s
	}
	var first [1]byte
	if _, err := io.ReadFull(c, first[:]); err != nil {
		s.err = err
		return s
	}
	s.d = time.Since(s.start)
	_, s.err = io.Copy(io.Discard, c)
	return s
}

func (pr *probes) halt() {
	pr.once.Do(func() { close(pr.quit); pr.wg.Wait() })
}

func (pr *probes) samples() []probeSample {
	pr.mu.Lock()
	defer pr.mu.Unlock()
	return slices.Clone(pr.s)
}
