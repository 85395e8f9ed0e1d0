//go:build unix

package lameduck

import (
	"bufio"
	"context"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"runtime"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// BenchmarkScale measures the drain with many connections open, for
// lameduck and, as the peer in the same round, plain net/http (Serve, then
// Shutdown when the context ends; see handWritten).
//
// A round, for N connections in all: the server starts (in this process);
// a child process (this test binary, re-run as TestScaleClientHelper, so
// that the clients' file descriptors do not count against this process's
// limit) opens N-scaleActive keep-alive HTTP/1.1 connections, each of which
// completes one request and stays open and idle, then scaleActive more,
// each sending a request whose handler blocks. Once every handler has
// begun, the trigger: the context given to Run (or to the hand-written
// loop) is cancelled, and -scale.hold (200 ms) later every blocked handler writes "ok"
// and returns. The child reads each response, and closes each connection
// when the server ends it.
//
// Reported, per N:
//
//   - lag-p50-ms, lag-p99-ms: the time from the return of the last handler
//     to the return of Run, over the rounds (nethttp-lag-…: to the return
//     of the hand-written loop, which returns when Shutdown does;
//     stopped-lag-…, with -scale.stopped: lameduck with the drain's first
//     stage skipped, as after a FailUntilSeen step with Seen.Sole);
//   - B/conn: the live heap (HeapAlloc after runtime.GC) with the N
//     connections open and the handlers blocked, minus the live heap once
//     the server was ready and before the first connection, divided by N;
//     the median over the rounds (nethttp-B/conn for net/http);
//   - load1: the 1-minute load average when the benchmark began (the
//     machine is shared; the lags are sensitive to it).
//
// N above -scale.max is skipped, as is N the file limit cannot take.
func BenchmarkScale(b *testing.B) {
	for _, n := range []int{100, 1000, 10000} {
		b.Run(fmt.Sprintf("conns=%d", n), func(b *testing.B) {
			if n > *scaleMax {
				b.Skipf("%d connections: above -scale.max=%d", n, *scaleMax)
			}
			if err := raiseFileLimit(n + scaleFDSlack); err != nil {
				b.Skip(err)
			}
			load := loadAverage()
			warmGoroutines(2*n + 2*scaleActive)
			var lags, httpLags, stoppedLags samples
			var bytes, httpBytes []float64
			for range b.N {
				lag, by := scaleOnce(b, "lameduck", n)
				lags, bytes = append(lags, lag), append(bytes, by)
				if *scaleStopped {
					lag, _ = scaleOnce(b, "lameduck-stopped", n)
					stoppedLags = append(stoppedLags, lag)
				}
				lag, by = scaleOnce(b, "net/http", n)
				httpLags, httpBytes = append(httpLags, lag), append(httpBytes, by)
			}
			reportLag(b, "lag", lags)
			reportLag(b, "nethttp-lag", httpLags)
			if *scaleStopped {
				reportLag(b, "stopped-lag", stoppedLags)
			}
			b.ReportMetric(median(bytes), "B/conn")
			b.ReportMetric(median(httpBytes), "nethttp-B/conn")
			if load >= 0 {
				b.ReportMetric(load, "load1")
			}
		})
	}
}

var (
	scaleMax     = flag.Int("scale.max", 10000, "BenchmarkScale: the most connections to open")
	scaleHold    = flag.Duration("scale.hold", 200*time.Millisecond, "BenchmarkScale: how long after the trigger the handlers of the requests in flight return")
	scaleStopped = flag.Bool("scale.stopped", false, "BenchmarkScale: also run lameduck as after a FailUntilSeen step with Seen.Sole (the drain's first stage skipped, so idle connections close at the trigger), reported as stopped-lag-…")
	scaleProfile = flag.String("scale.profile", "", "BenchmarkScale: write a CPU profile of each lameduck drain, from the trigger to Run's return, to `prefix`-N.pprof (the last round's)")
)

const (
	scaleActive   = 100 // requests in flight at the trigger
	scaleFDSlack  = 64  // file descriptors beyond the connections
	scaleAddrEnv  = "LAMEDUCK_SCALE_ADDR"
	scaleIdleEnv  = "LAMEDUCK_SCALE_IDLE"
	scaleActivEnv = "LAMEDUCK_SCALE_ACTIVE"
)

func reportLag(b *testing.B, name string, s samples) {
	sorted := slices.Clone(s)
	slices.Sort(sorted)
	at := func(q float64) float64 {
		i := int(q*float64(len(sorted))+0.5) - 1
		return float64(sorted[max(0, min(i, len(sorted)-1))]) / float64(time.Millisecond)
	}
	b.ReportMetric(at(0.50), name+"-p50-ms")
	b.ReportMetric(at(0.99), name+"-p99-ms")
}

func median(v []float64) float64 {
	s := slices.Clone(v)
	slices.Sort(s)
	return s[(len(s)-1)/2]
}

// raiseFileLimit raises this process's soft limit on open files to its
// hard limit, and reports an error if that is below need.
func raiseFileLimit(need int) error {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		return fmt.Errorf("RLIMIT_NOFILE: %v", err)
	}
	if lim.Cur < lim.Max {
		lim.Cur = lim.Max
		if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
			return fmt.Errorf("raising RLIMIT_NOFILE to %d: %v", lim.Max, err)
		}
	}
	if lim.Cur < uint64(need) {
		return fmt.Errorf("needs %d open files, the limit is %d (hard %d)", need, lim.Cur, lim.Max)
	}
	return nil
}

// loadAverage returns the 1-minute load average, or -1 where there is no
// /proc/loadavg.
func loadAverage() float64 {
	data, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return -1
	}
	f, err := strconv.ParseFloat(strings.Fields(string(data))[0], 64)
	if err != nil {
		return -1
	}
	return f
}

// warmGoroutines starts n goroutines and lets them end. The runtime keeps
// what it allocated for them (on the heap) and reuses it, so that the first
// round of a process, lameduck's, is not charged ~400 B per connection for
// its connections' goroutines that the rounds after it are not.
func warmGoroutines(n int) {
	var wg sync.WaitGroup
	stop := make(chan struct{})
	for range n {
		wg.Go(func() { <-stop })
	}
	close(stop)
	wg.Wait()
}

// liveHeap returns the live heap. The second GC empties what sync.Pools
// kept from the first (net/http's bufio readers and writers of the last
// round's connections), which would otherwise be counted before and
// reused by the connections measured.
func liveHeap() uint64 {
	runtime.GC()
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}

// scaleOnce runs one round under impl ("lameduck" or "net/http") with n
// connections, and returns the lag and the heap per connection.
func scaleOnce(b *testing.B, impl string, n int) (time.Duration, float64) {
	entered := make(chan struct{}, scaleActive)
	release := make(chan struct{})
	var lastMu sync.Mutex
	var last time.Time // the last return of a blocked handler
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/hold" {
			io.WriteString(w, "ok")
			return
		}
		entered <- struct{}{}
		<-release
		io.WriteString(w, "ok")
		now := time.Now()
		lastMu.Lock()
		if now.After(last) {
			last = now
		}
		lastMu.Unlock()
	})}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	var addr string
	switch impl {
	case "lameduck", "lameduck-stopped":
		srv.Addr = "127.0.0.1:0"
		h := FromHTTP(srv)
		opts := []Option{Signals(), WithoutLogger(), Period(time.Minute)}
		if impl == "lameduck-stopped" {
			opts = append(opts, WithPreShutdown(func(ctx context.Context) error {
				noteBalancerStopped(ctx, true)
				return nil
			}))
		}
		go func() { done <- Run(ctx, h, opts...) }()
		select {
		case <-h.Ready():
		case err := <-done:
			b.Fatal(err)
		}
		addr = h.Addr().String()
	default:
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			b.Fatal(err)
		}
		go func() { done <- handWritten(ctx, srv, ln, time.Minute) }()
		addr = ln.Addr().String()
	}
	before := liveHeap()

	child, lines := startScaleClients(b, addr, n-scaleActive, scaleActive)
	expect := func(prefix string) {
		select {
		case line, ok := <-lines:
			if !ok || !strings.HasPrefix(line, prefix) {
				b.Fatalf("%s, %d connections: the clients said %q, expected %q", impl, n, line, prefix)
			}
		case <-time.After(time.Minute):
			b.Fatalf("%s, %d connections: no %q from the clients", impl, n, prefix)
		}
	}
	expect("idle ")
	for range scaleActive {
		select {
		case <-entered:
		case <-time.After(time.Minute):
			b.Fatalf("%s, %d connections: the requests in flight did not reach their handlers", impl, n)
		}
	}
	expect("active ")
	perConn := float64(int64(liveHeap())-int64(before)) / float64(n)

	stopProfile := func() {}
	if *scaleProfile != "" && impl == "lameduck" {
		stopProfile = startDrainProfile(b, fmt.Sprintf("%s-%d.pprof", *scaleProfile, n))
	}
	cancel()
	timer := time.AfterFunc(*scaleHold, func() { close(release) })
	defer timer.Stop()
	if err := <-done; err != nil {
		b.Fatalf("%s returned %v", impl, err)
	}
	returned := time.Now()
	stopProfile()

	lastMu.Lock()
	lag := returned.Sub(last)
	lastMu.Unlock()

	expect(fmt.Sprintf("done answered=%d ", scaleActive))
	if err := child.Wait(); err != nil {
		b.Fatalf("%s: the clients' process: %v", impl, err)
	}
	return lag, perConn
}

func startDrainProfile(b *testing.B, name string) (stop func()) {
	f, err := os.Create(name)
	if err != nil {
		b.Fatal(err)
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		b.Fatal(err)
	}
	return func() {
		pprof.StopCPUProfile()
		f.Close()
	}
}

// startScaleClients starts the child process that opens idle idle
// connections and active requests to addr, and returns it with the lines
// it writes.
func startScaleClients(b *testing.B, addr string, idle, active int) (*exec.Cmd, <-chan string) {
	cmd := exec.Command(os.Args[0], "-test.run=^TestScaleClientHelper$", "-test.timeout=5m")
	cmd.Env = append(os.Environ(),
		scaleAddrEnv+"="+addr,
		scaleIdleEnv+"="+strconv.Itoa(idle),
		scaleActivEnv+"="+strconv.Itoa(active))
	cmd.Stderr = os.Stderr
	cmd.WaitDelay = time.Second
	out, err := cmd.StdoutPipe()
	if err != nil {
		b.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	lines := make(chan string, 16)
	go func() {
		defer close(lines)
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			lines <- sc.Text()
		}
	}()
	b.Cleanup(func() {
		if cmd.ProcessState == nil {
			cmd.Process.Kill()
			cmd.Wait()
		}
		for range lines {
		}
	})
	return cmd, lines
}

// TestScaleClientHelper is BenchmarkScale's client process; it does
// nothing unless BenchmarkScale started it. It opens $LAMEDUCK_SCALE_IDLE
// connections to $LAMEDUCK_SCALE_ADDR, each of which completes a request and
// stays open, and says "idle N"; then $LAMEDUCK_SCALE_ACTIVE connections
// that each send a request that the server holds, and says "active N". It
// reads every response, closes each connection when the server ends it,
// and says "done answered=A failed=F" once all are closed.
func TestScaleClientHelper(t *testing.T) {
	addr := os.Getenv(scaleAddrEnv)
	if addr == "" {
		t.Skip("BenchmarkScale's client process")
	}
	idle, _ := strconv.Atoi(os.Getenv(scaleIdleEnv))
	active, _ := strconv.Atoi(os.Getenv(scaleActivEnv))
	if err := raiseFileLimit(idle + active + scaleFDSlack); err != nil {
		fmt.Printf("error %v\n", err)
		return
	}
	var wg sync.WaitGroup
	var answered, failed atomic.Int64
	var firstErr atomic.Value
	fail := func(err error) {
		failed.Add(1)
		firstErr.CompareAndSwap(nil, err.Error())
	}
	// open dials addr and sends a request on the new connection; its
	// response is read by read, on the caller's goroutine or another.
	open := func(path string) (net.Conn, *bufio.Reader, error) {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			return nil, nil, err
		}
		if _, err := fmt.Fprintf(c, "GET %s HTTP/1.1\r\nHost: scale\r\n\r\n", path); err != nil {
			c.Close()
			return nil, nil, err
		}
		return c, bufio.NewReaderSize(c, 512), nil
	}
	read := func(r *bufio.Reader) error {
		resp, err := http.ReadResponse(r, nil)
		if err != nil {
			return err
		}
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err == nil && (resp.StatusCode != http.StatusOK || string(body) != "ok") {
			err = fmt.Errorf("%s %q", resp.Status, body)
		}
		return err
	}
	// untilClosed waits for the server to end c, then closes it.
	untilClosed := func(c net.Conn, r *bufio.Reader) {
		io.Copy(io.Discard, r)
		c.Close()
	}

	// Idle connections, a few dialling at once so as not to overrun the
	// listener's backlog.
	next := make(chan struct{}, idle)
	for range idle {
		next <- struct{}{}
	}
	close(next)
	var dialers sync.WaitGroup
	var dialErr atomic.Value
	for range 16 {
		dialers.Go(func() {
			for range next {
				c, r, err := open("/")
				if err == nil {
					if err = read(r); err != nil {
						c.Close()
					}
				}
				if err != nil {
					dialErr.CompareAndSwap(nil, err.Error())
					return
				}
				wg.Go(func() { untilClosed(c, r) })
			}
		})
	}
	dialers.Wait()
	if err := dialErr.Load(); err != nil {
		fmt.Printf("error opening the idle connections: %v\n", err)
		os.Stdout.Sync()
		// The server ends the ones opened when it stops.
	}
	fmt.Printf("idle %d\n", idle)

	for range active {
		c, r, err := open("/hold")
		if err != nil {
			fmt.Printf("error opening a request in flight: %v\n", err)
			break
		}
		wg.Go(func() {
			if err := read(r); err != nil {
				fail(err)
			} else {
				answered.Add(1)
			}
			untilClosed(c, r)
		})
	}
	fmt.Printf("active %d\n", active)
	wg.Wait()
	msg, _ := firstErr.Load().(string)
	fmt.Printf("done answered=%d failed=%d %s\n", answered.Load(), failed.Load(), msg)
}
