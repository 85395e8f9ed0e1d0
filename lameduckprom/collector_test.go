package lameduckprom

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/b583c413/lameduck"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

// holder is an HTTP handler whose requests stay in flight until the test
// lets them go: each says it has begun on entered, then waits for release
// or for its request's context to end (when Close cuts it).
type holder struct {
	entered chan struct{}
	release chan struct{}
	once    sync.Once
}

func newHolder(t *testing.T) *holder {
	h := &holder{entered: make(chan struct{}), release: make(chan struct{})}
	// A test that fails early must not leave its Run waiting for the
	// whole period.
	t.Cleanup(h.free)
	return h
}

// free lets every held request go.
func (h *holder) free() { h.once.Do(func() { close(h.release) }) }

func (h *holder) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	select {
	case h.entered <- struct{}{}:
	case <-r.Context().Done():
		return
	}
	select {
	case <-h.release:
		fmt.Fprint(w, "released")
	case <-r.Context().Done():
	}
}

// served is a Runner of one FromHTTP server on a loopback port, started.
type served struct {
	r      *lameduck.Runner
	reg    *prometheus.Registry
	cancel context.CancelFunc // begins lame-duck mode
	done   chan error         // gets Run's result
	client *http.Client
	url    string
}

// serve makes a Runner for svr with the collector registered on a pedantic
// registry (which checks each scrape against Describe), runs it, and waits
// until it is ready. hook, when not nil, runs before Run.
func serve(t *testing.T, svr lameduck.Server, addr func() net.Addr, hook func(*served), opts ...lameduck.Option) *served {
	t.Helper()
	opts = append([]lameduck.Option{lameduck.Signals(), lameduck.WithoutLogger()}, opts...)
	r, err := lameduck.NewRunner(svr, opts...)
	if err != nil {
		t.Fatal(err)
	}
	s := &served{r: r, reg: prometheus.NewPedanticRegistry(), done: make(chan error, 1)}
	s.reg.MustRegister(NewCollector(r))
	tr := &http.Transport{}
	s.client = &http.Client{Transport: tr}
	t.Cleanup(tr.CloseIdleConnections)
	if hook != nil {
		hook(s)
	}
	ctx, cancel := context.WithCancel(context.Background())
	s.cancel = cancel
	go func() { s.done <- r.Run(ctx) }()
	// Cleanups run last first: this one, before the holder lets its
	// requests go, so it must not wait for Run.
	t.Cleanup(cancel)
	select {
	case <-r.Ready():
	case err := <-s.done:
		t.Fatalf("Run returned before the server was ready: %v", err)
	}
	s.url = "http://" + addr().String()
	return s
}

// get sends n GET requests to url at once and returns a channel that gets
// each one's status and body, or its error.
func (s *served) get(n int, url string) <-chan string {
	out := make(chan string, n)
	for range n {
		go func() {
			resp, err := s.client.Get(url)
			if err != nil {
				out <- err.Error()
				return
			}
			defer resp.Body.Close()
			b, _ := io.ReadAll(resp.Body)
			out <- fmt.Sprintf("%d %s", resp.StatusCode, b)
		}()
	}
	return out
}

// compare checks the named metrics of a scrape against want, given in the
// text format without HELP and TYPE lines, which it adds.
func (s *served) compare(t *testing.T, want string, names ...string) {
	t.Helper()
	if err := testutil.GatherAndCompare(s.reg, strings.NewReader(withHeaders(t, want, names)), names...); err != nil {
		t.Error(err)
	}
}

// withHeaders puts each metric's HELP and TYPE lines in front of its
// samples, so that the tests can state only the samples.
func withHeaders(t *testing.T, samples string, names []string) string {
	t.Helper()
	var b strings.Builder
	for _, name := range names {
		d := descByName(t, name)
		fmt.Fprintf(&b, "# HELP %s %s\n# TYPE %s gauge\n", name, helpOf(t, d), name)
		for _, line := range strings.Split(samples, "\n") {
			line = strings.TrimSpace(line)
			if line == name || strings.HasPrefix(line, name+"{") || strings.HasPrefix(line, name+" ") {
				b.WriteString(line + "\n")
			}
		}
	}
	return b.String()
}

func descByName(t *testing.T, name string) *prometheus.Desc {
	t.Helper()
	for _, d := range allDescs {
		if strings.Contains(d.String(), `fqName: "`+name+`"`) {
			return d
		}
	}
	t.Fatalf("no metric %s", name)
	return nil
}

// helpOf digs the help text out of a Desc, which has no accessor for it
// but writes it quoted in its String.
func helpOf(t *testing.T, d *prometheus.Desc) string {
	t.Helper()
	m := helpRE.FindStringSubmatch(d.String())
	if m == nil {
		t.Fatalf("no help in %s", d)
	}
	help, err := strconv.Unquote(m[1])
	if err != nil {
		t.Fatal(err)
	}
	return help
}

var helpRE = regexp.MustCompile(`help: ("(?:[^"\\]|\\.)*")`)

// gatherValues scrapes g and returns each sample's value by its name and
// labels, written as in the text format (labels sorted by name).
func gatherValues(t *testing.T, g prometheus.Gatherer) map[string]float64 {
	t.Helper()
	mfs, err := g.Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]float64{}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			var labels []string
			for _, lp := range m.GetLabel() {
				labels = append(labels, fmt.Sprintf("%s=%q", lp.GetName(), lp.GetValue()))
			}
			key := mf.GetName()
			if len(labels) > 0 {
				key += "{" + strings.Join(labels, ",") + "}"
			}
			out[key] = m.GetGauge().GetValue()
		}
	}
	return out
}

// TestThroughAStop follows one HTTP server from before Run to after a
// clean drain, with three requests held in handlers: the state, the
// in-flight gauge while it runs and while it drains, and the stop's
// figures once Run has returned.
func TestThroughAStop(t *testing.T) {
	hold := newHolder(t)
	h := lameduck.FromHTTP(&http.Server{Addr: "127.0.0.1:0", Handler: hold})
	s := serve(t, h, h.Addr, func(s *served) {
		s.compare(t, `
			lameduck_state{state="not_started"} 1
			lameduck_state{state="running"} 0
			lameduck_state{state="lame_duck"} 0
			lameduck_state{state="stopped"} 0
			lameduck_state{state="failed"} 0
			lameduck_period_seconds 30
			lameduck_stop_outcome{outcome="clean"} 0
			lameduck_stop_outcome{outcome="failed"} 0
			lameduck_stop_outcome{outcome="expired"} 0
			lameduck_stop_outcome{outcome="forced"} 0
		`, "lameduck_state", "lameduck_period_seconds", "lameduck_stop_outcome",
			// absent before a stop:
			"lameduck_lame_duck_start_time_seconds", "lameduck_stop_duration_seconds",
			"lameduck_stop_finished", "lameduck_stop_phase_duration_seconds")
	}, lameduck.Period(30*time.Second))

	replies := s.get(3, s.url)
	for range 3 {
		<-hold.entered
	}
	s.compare(t, `
		lameduck_state{state="not_started"} 0
		lameduck_state{state="running"} 1
		lameduck_state{state="lame_duck"} 0
		lameduck_state{state="stopped"} 0
		lameduck_state{state="failed"} 0
		lameduck_in_flight{kind="requests",protocol="HTTP/1",server=""} 3
		lameduck_in_flight{kind="requests",protocol="HTTP/2",server=""} 0
		lameduck_in_flight{kind="connections",protocol="HTTP/1",server=""} 3
		lameduck_in_flight{kind="connections",protocol="HTTP/2",server=""} 0
		lameduck_in_flight{kind="connections",protocol="hijacked",server=""} 0
	`, "lameduck_state", "lameduck_in_flight", "lameduck_stop_at_lame_duck", "lameduck_lame_duck_start_time_seconds")

	s.cancel()
	<-s.r.LameDuck()
	s.compare(t, `
		lameduck_state{state="not_started"} 0
		lameduck_state{state="running"} 0
		lameduck_state{state="lame_duck"} 1
		lameduck_state{state="stopped"} 0
		lameduck_state{state="failed"} 0
		lameduck_in_flight{kind="requests",protocol="HTTP/1",server=""} 3
		lameduck_in_flight{kind="requests",protocol="HTTP/2",server=""} 0
		lameduck_in_flight{kind="connections",protocol="HTTP/1",server=""} 3
		lameduck_in_flight{kind="connections",protocol="HTTP/2",server=""} 0
		lameduck_in_flight{kind="connections",protocol="hijacked",server=""} 0
		lameduck_stop_at_lame_duck{kind="requests",protocol="HTTP/1",server=""} 3
		lameduck_stop_at_lame_duck{kind="requests",protocol="HTTP/2",server=""} 0
		lameduck_stop_at_lame_duck{kind="connections",protocol="HTTP/1",server=""} 3
		lameduck_stop_at_lame_duck{kind="connections",protocol="HTTP/2",server=""} 0
		lameduck_stop_at_lame_duck{kind="connections",protocol="hijacked",server=""} 0
		lameduck_stop_finished{kind="requests",protocol="HTTP/1",server=""} 0
		lameduck_stop_finished{kind="requests",protocol="HTTP/2",server=""} 0
		lameduck_stop_finished{kind="connections",protocol="HTTP/1",server=""} 0
		lameduck_stop_finished{kind="connections",protocol="HTTP/2",server=""} 0
		lameduck_stop_finished{kind="connections",protocol="hijacked",server=""} 0
		lameduck_stop_outcome{outcome="clean"} 0
		lameduck_stop_outcome{outcome="failed"} 0
		lameduck_stop_outcome{outcome="expired"} 0
		lameduck_stop_outcome{outcome="forced"} 0
	`, "lameduck_state", "lameduck_in_flight", "lameduck_stop_at_lame_duck", "lameduck_stop_finished", "lameduck_stop_outcome")
	if n := testutil.CollectAndCount(NewCollector(s.r), "lameduck_lame_duck_start_time_seconds"); n != 1 {
		t.Errorf("lameduck_lame_duck_start_time_seconds has %d series in lame-duck mode, want 1", n)
	}

	hold.free()
	if err := <-s.done; err != nil {
		t.Fatalf("Run: %v", err)
	}
	for range 3 {
		if got := <-replies; got != "200 released" {
			t.Errorf("a held request got %q, want 200 released", got)
		}
	}
	s.compare(t, `
		lameduck_state{state="not_started"} 0
		lameduck_state{state="running"} 0
		lameduck_state{state="lame_duck"} 0
		lameduck_state{state="stopped"} 1
		lameduck_state{state="failed"} 0
		lameduck_in_flight{kind="requests",protocol="HTTP/1",server=""} 0
		lameduck_in_flight{kind="requests",protocol="HTTP/2",server=""} 0
		lameduck_in_flight{kind="connections",protocol="HTTP/1",server=""} 0
		lameduck_in_flight{kind="connections",protocol="HTTP/2",server=""} 0
		lameduck_in_flight{kind="connections",protocol="hijacked",server=""} 0
		lameduck_stop_finished{kind="requests",protocol="HTTP/1",server=""} 3
		lameduck_stop_finished{kind="requests",protocol="HTTP/2",server=""} 0
		lameduck_stop_finished{kind="connections",protocol="HTTP/1",server=""} 3
		lameduck_stop_finished{kind="connections",protocol="HTTP/2",server=""} 0
		lameduck_stop_finished{kind="connections",protocol="hijacked",server=""} 0
		lameduck_stop_cut{kind="requests",protocol="HTTP/1",server=""} 0
		lameduck_stop_cut{kind="requests",protocol="HTTP/2",server=""} 0
		lameduck_stop_cut{kind="connections",protocol="HTTP/1",server=""} 0
		lameduck_stop_cut{kind="connections",protocol="HTTP/2",server=""} 0
		lameduck_stop_cut{kind="connections",protocol="hijacked",server=""} 0
		lameduck_stop_outcome{outcome="clean"} 1
		lameduck_stop_outcome{outcome="failed"} 0
		lameduck_stop_outcome{outcome="expired"} 0
		lameduck_stop_outcome{outcome="forced"} 0
		lameduck_stop_phase_running{phase="Shutdown"} 0
		lameduck_stop_phase_failed{phase="Shutdown"} 0
	`, "lameduck_state", "lameduck_in_flight", "lameduck_stop_finished", "lameduck_stop_cut",
		"lameduck_stop_outcome", "lameduck_stop_phase_running", "lameduck_stop_phase_failed")

	// The timings vary; they must be there and make sense.
	rep := s.r.Report()
	got := gatherValues(t, s.reg)
	if v := got[`lameduck_lame_duck_start_time_seconds{trigger="context"}`]; v != float64(rep.Began.UnixNano())/1e9 {
		t.Errorf("start time %v, want %v", v, float64(rep.Began.UnixNano())/1e9)
	}
	if v := got[`lameduck_stop_duration_seconds`]; v <= 0 || v != rep.Took.Seconds() {
		t.Errorf("stop duration %v, want %v (>0)", v, rep.Took.Seconds())
	}
	if v := got[`lameduck_stop_phase_duration_seconds{phase="Shutdown"}`]; v <= 0 || v > rep.Took.Seconds() {
		t.Errorf("Shutdown took %vs, want more than 0 and no more than the stop's %v", v, rep.Took)
	}
}

// TestExpiredStop holds two requests past a short period: Close cuts them,
// and the stop's figures say what held the drain and what was cut.
func TestExpiredStop(t *testing.T) {
	hold := newHolder(t)
	h := lameduck.FromHTTP(&http.Server{Addr: "127.0.0.1:0", Handler: hold})
	s := serve(t, h, h.Addr, nil, lameduck.Period(50*time.Millisecond))
	replies := s.get(2, s.url)
	for range 2 {
		<-hold.entered
	}
	s.cancel()
	// The handlers are never released: they return when Close cuts them.
	err := <-s.done
	var lde *lameduck.LameDuckError
	if !errors.As(err, &lde) || !lde.Expired {
		t.Fatalf("Run: %v, want an expired lame-duck period", err)
	}
	for range 2 {
		<-replies // errors: the connections were closed under them
	}
	s.compare(t, `
		lameduck_state{state="not_started"} 0
		lameduck_state{state="running"} 0
		lameduck_state{state="lame_duck"} 0
		lameduck_state{state="stopped"} 0
		lameduck_state{state="failed"} 1
		lameduck_period_seconds 0.05
		lameduck_stop_at_lame_duck{kind="requests",protocol="HTTP/1",server=""} 2
		lameduck_stop_at_lame_duck{kind="requests",protocol="HTTP/2",server=""} 0
		lameduck_stop_at_lame_duck{kind="connections",protocol="HTTP/1",server=""} 2
		lameduck_stop_at_lame_duck{kind="connections",protocol="HTTP/2",server=""} 0
		lameduck_stop_at_lame_duck{kind="connections",protocol="hijacked",server=""} 0
		lameduck_stop_finished{kind="requests",protocol="HTTP/1",server=""} 0
		lameduck_stop_finished{kind="requests",protocol="HTTP/2",server=""} 0
		lameduck_stop_finished{kind="connections",protocol="HTTP/1",server=""} 0
		lameduck_stop_finished{kind="connections",protocol="HTTP/2",server=""} 0
		lameduck_stop_finished{kind="connections",protocol="hijacked",server=""} 0
		lameduck_stop_cut{kind="requests",protocol="HTTP/1",server=""} 2
		lameduck_stop_cut{kind="requests",protocol="HTTP/2",server=""} 0
		lameduck_stop_cut{kind="connections",protocol="HTTP/1",server=""} 2
		lameduck_stop_cut{kind="connections",protocol="HTTP/2",server=""} 0
		lameduck_stop_cut{kind="connections",protocol="hijacked",server=""} 0
		lameduck_stop_held{kind="requests",protocol="HTTP/1",server=""} 2
		lameduck_stop_held{kind="requests",protocol="HTTP/2",server=""} 0
		lameduck_stop_held{kind="connections",protocol="HTTP/1",server=""} 2
		lameduck_stop_held{kind="connections",protocol="HTTP/2",server=""} 0
		lameduck_stop_held{kind="connections",protocol="hijacked",server=""} 0
		lameduck_stop_outcome{outcome="clean"} 0
		lameduck_stop_outcome{outcome="failed"} 0
		lameduck_stop_outcome{outcome="expired"} 1
		lameduck_stop_outcome{outcome="forced"} 0
		lameduck_stop_phase_failed{phase="Shutdown"} 1
		lameduck_stop_phase_failed{phase="Close"} 0
		lameduck_stop_phase_running{phase="Shutdown"} 0
		lameduck_stop_phase_running{phase="Close"} 0
	`, "lameduck_state", "lameduck_period_seconds", "lameduck_stop_at_lame_duck", "lameduck_stop_finished",
		"lameduck_stop_cut", "lameduck_stop_held", "lameduck_stop_outcome",
		"lameduck_stop_phase_failed", "lameduck_stop_phase_running")
}

// TestGroupMembers runs an HTTP front end and a worker in a Group: each
// member's work is labelled with its name, and the worker's items have a
// kind of their own and no protocol.
func TestGroupMembers(t *testing.T) {
	hold := newHolder(t)
	h := lameduck.FromHTTP(&http.Server{Addr: "127.0.0.1:0", Handler: hold})
	jobs := make(chan int, 1)
	handling := make(chan struct{})
	w := lameduck.FromWorker(lameduck.ChanSource(jobs), func(ctx context.Context, _ int) error {
		close(handling)
		<-hold.release
		return nil
	})
	s := serve(t, lameduck.Group(lameduck.Member("jobs", w), lameduck.Member("api", h)), h.Addr, nil,
		lameduck.Period(30*time.Second))
	replies := s.get(1, s.url)
	<-hold.entered
	jobs <- 1
	<-handling
	s.compare(t, `
		lameduck_in_flight{kind="items",protocol="",server="jobs"} 1
		lameduck_in_flight{kind="requests",protocol="HTTP/1",server="api"} 1
		lameduck_in_flight{kind="requests",protocol="HTTP/2",server="api"} 0
		lameduck_in_flight{kind="connections",protocol="HTTP/1",server="api"} 1
		lameduck_in_flight{kind="connections",protocol="HTTP/2",server="api"} 0
		lameduck_in_flight{kind="connections",protocol="hijacked",server="api"} 0
	`, "lameduck_in_flight")
	s.cancel()
	<-s.r.LameDuck() // so that both were in flight when it began
	hold.free()
	if err := <-s.done; err != nil {
		t.Fatalf("Run: %v", err)
	}
	if got := <-replies; got != "200 released" {
		t.Errorf("the held request got %q, want 200 released", got)
	}
	s.compare(t, `
		lameduck_in_flight{kind="items",protocol="",server="jobs"} 0
		lameduck_in_flight{kind="requests",protocol="HTTP/1",server="api"} 0
		lameduck_in_flight{kind="requests",protocol="HTTP/2",server="api"} 0
		lameduck_in_flight{kind="connections",protocol="HTTP/1",server="api"} 0
		lameduck_in_flight{kind="connections",protocol="HTTP/2",server="api"} 0
		lameduck_in_flight{kind="connections",protocol="hijacked",server="api"} 0
		lameduck_stop_finished{kind="items",protocol="",server="jobs"} 1
		lameduck_stop_finished{kind="requests",protocol="HTTP/1",server="api"} 1
		lameduck_stop_finished{kind="requests",protocol="HTTP/2",server="api"} 0
		lameduck_stop_finished{kind="connections",protocol="HTTP/1",server="api"} 1
		lameduck_stop_finished{kind="connections",protocol="HTTP/2",server="api"} 0
		lameduck_stop_finished{kind="connections",protocol="hijacked",server="api"} 0
	`, "lameduck_in_flight", "lameduck_stop_finished")
}

// TestNamesPassLint runs Prometheus's own linter over every metric the
// collector sends after a stop that had phases and work.
func TestNamesPassLint(t *testing.T) {
	hold := newHolder(t)
	h := lameduck.FromHTTP(&http.Server{Addr: "127.0.0.1:0", Handler: hold})
	s := serve(t, h, h.Addr, nil, lameduck.Period(30*time.Second),
		lameduck.WithPreShutdown(lameduck.Named("announce", func(context.Context) error { return nil })))
	s.cancel()
	if err := <-s.done; err != nil {
		t.Fatalf("Run: %v", err)
	}
	c := NewCollector(s.r)
	if n := testutil.CollectAndCount(c); n < len(allDescs) {
		t.Fatalf("%d series after a stop, want every metric there (at least %d)", n, len(allDescs))
	}
	problems, err := testutil.CollectAndLint(c)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Errorf("%s: %s", p.Metric, p.Text)
	}
}

// TestNilRunner: a collector of no Runner reports one that has not started.
func TestNilRunner(t *testing.T) {
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(NewCollector(nil))
	got := gatherValues(t, reg)
	if got[`lameduck_state{state="not_started"}`] != 1 || len(got) != len(states)+len(outcomes)+1 {
		t.Errorf("a nil Runner's scrape: %v", got)
	}
}

// TestSameNameTwice gives two Group members one name: their rows are added
// up, since a registry refuses a scrape that has one series twice.
func TestSameNameTwice(t *testing.T) {
	hold := newHolder(t)
	a := lameduck.FromHTTP(&http.Server{Addr: "127.0.0.1:0", Handler: hold})
	b := lameduck.FromHTTP(&http.Server{Addr: "127.0.0.1:0", Handler: hold})
	s := serve(t, lameduck.Group(lameduck.Member("api", a), lameduck.Member("api", b)), a.Addr, nil,
		lameduck.Period(30*time.Second))
	replies := s.get(1, s.url)
	replies2 := s.get(1, "http://"+b.Addr().String())
	<-hold.entered
	<-hold.entered
	s.compare(t, `
		lameduck_in_flight{kind="requests",protocol="HTTP/1",server="api"} 2
		lameduck_in_flight{kind="requests",protocol="HTTP/2",server="api"} 0
		lameduck_in_flight{kind="connections",protocol="HTTP/1",server="api"} 2
		lameduck_in_flight{kind="connections",protocol="HTTP/2",server="api"} 0
		lameduck_in_flight{kind="connections",protocol="hijacked",server="api"} 0
	`, "lameduck_in_flight")
	hold.free()
	for _, c := range []<-chan string{replies, replies2} {
		if got := <-c; got != "200 released" {
			t.Errorf("a held request got %q, want 200 released", got)
		}
	}
}
