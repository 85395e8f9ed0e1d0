package lameduckotel_test

import (
	"context"
	"io"
	"net/http"
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	"go.opentelemetry.io/otel/sdk/metric/metricdata/metricdatatest"

	"github.com/b583c413/lameduck"
	"github.com/b583c413/lameduck/lameduckotel"
)

// patience bounds every wait on a channel, so that a broken test fails
// instead of hanging; none of them is expected to come near it.
const patience = 10 * time.Second

// wait fails the test when ch yields nothing within patience.
func wait[T any](t *testing.T, ch <-chan T, what string) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(patience):
		t.Fatalf("no %s after %v", what, patience)
		panic("unreachable")
	}
}

// held is an HTTP handler that blocks until release is closed, or until its
// request's context ends (Close), and says on entered when it has begun.
type held struct {
	entered chan struct{}
	release chan struct{}
}

func newHeld() *held {
	return &held{entered: make(chan struct{}, 16), release: make(chan struct{})}
}

func (h *held) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h.entered <- struct{}{}
	select {
	case <-h.release:
		io.WriteString(w, "done")
	case <-r.Context().Done():
	}
}

// setup makes a Runner for svr, an SDK MeterProvider with a manual reader,
// and registers the one with the other.
func setup(t *testing.T, svr lameduck.Server, period time.Duration) (*lameduck.Runner, *sdkmetric.ManualReader) {
	t.Helper()
	r, err := lameduck.NewRunner(svr, lameduck.Period(period), lameduck.Signals(), lameduck.WithoutLogger())
	if err != nil {
		t.Fatal(err)
	}
	reader := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	t.Cleanup(func() { mp.Shutdown(context.Background()) })
	reg, err := lameduckotel.Register(mp.Meter("lameduckotel_test"), r)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { reg.Unregister() })
	return r, reader
}

// start runs r and waits until it is ready; the cancel function begins
// lame-duck mode, and the channel yields Run's error.
func start(t *testing.T, r *lameduck.Runner) (context.CancelFunc, <-chan error) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	select {
	case <-r.Ready():
	case err := <-done:
		t.Fatalf("Run = %v before it was ready", err)
	case <-time.After(patience):
		t.Fatal("Runner not ready")
	}
	return cancel, done
}

// answer is what a client got: the body of an answer read to its end, or
// the error that ended the request.
type answer struct {
	body string
	err  error
}

// get sends n requests to addr over HTTP/1, each on a connection of its
// own, and returns a channel that yields what each one got.
func get(t *testing.T, addr string, n int) <-chan answer {
	t.Helper()
	tr := &http.Transport{}
	t.Cleanup(tr.CloseIdleConnections)
	client := &http.Client{Transport: tr}
	answers := make(chan answer, n)
	for range n {
		go func() {
			var a answer
			resp, err := client.Get("http://" + addr + "/")
			if err == nil {
				var b []byte
				b, err = io.ReadAll(resp.Body)
				resp.Body.Close()
				a.body = string(b)
			}
			a.err = err
			answers <- a
		}()
	}
	return answers
}

func collect(t *testing.T, reader *sdkmetric.ManualReader) metricdata.ResourceMetrics {
	t.Helper()
	var rm metricdata.ResourceMetrics
	if err := reader.Collect(context.Background(), &rm); err != nil {
		t.Fatal(err)
	}
	return rm
}

// find returns the metric named name, if it has any data point.
func find(rm metricdata.ResourceMetrics, name string) (metricdata.Metrics, bool) {
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			if m.Name == name {
				return m, true
			}
		}
	}
	return metricdata.Metrics{}, false
}

// count returns the value of the int64 sum name at exactly attrs, and fails
// the test when there is no such point.
func count(t *testing.T, rm metricdata.ResourceMetrics, name string, attrs ...attribute.KeyValue) int64 {
	t.Helper()
	set := attribute.NewSet(attrs...)
	m, ok := find(rm, name)
	if !ok {
		t.Fatalf("no metric %s", name)
	}
	sum, ok := m.Data.(metricdata.Sum[int64])
	if !ok {
		t.Fatalf("%s is a %T, not an int64 sum", name, m.Data)
	}
	if sum.IsMonotonic {
		t.Errorf("%s is monotonic, want an UpDownCounter", name)
	}
	for _, dp := range sum.DataPoints {
		if dp.Attributes.Equals(&set) {
			return dp.Value
		}
	}
	t.Fatalf("%s has no point at {%s}", name, set.Encoded(attribute.DefaultEncoder()))
	return 0
}

// seconds returns the value of the float64 gauge name at exactly attrs, and
// fails the test when there is no such point.
func seconds(t *testing.T, rm metricdata.ResourceMetrics, name string, attrs ...attribute.KeyValue) float64 {
	t.Helper()
	set := attribute.NewSet(attrs...)
	m, ok := find(rm, name)
	if !ok {
		t.Fatalf("no metric %s", name)
	}
	if m.Unit != "s" {
		t.Errorf("%s has unit %q, want s", name, m.Unit)
	}
	g, ok := m.Data.(metricdata.Gauge[float64])
	if !ok {
		t.Fatalf("%s is a %T, not a float64 gauge", name, m.Data)
	}
	for _, dp := range g.DataPoints {
		if dp.Attributes.Equals(&set) {
			return dp.Value
		}
	}
	t.Fatalf("%s has no point at {%s}", name, set.Encoded(attribute.DefaultEncoder()))
	return 0
}

// checkOne checks that the 1/0 metric name (lameduck.status or
// lameduck.stop.outcome) has a point for each of values under key, and is 1
// for want alone ("" for none).
func checkOne(t *testing.T, rm metricdata.ResourceMetrics, name string, key attribute.Key, values []string, want string) {
	t.Helper()
	for _, v := range values {
		got := count(t, rm, name, key.String(v))
		if (v == want) != (got == 1) || got > 1 || got < 0 {
			t.Errorf("%s{%s=%q} = %d; want 1 only for %q", name, key, v, got, want)
		}
	}
}

var (
	allStates   = []string{"not started", "running", "lame duck", "stopped", "failed"}
	allOutcomes = []string{"clean", "failed", "expired", "forced"}
	http1       = attribute.String("lameduck.protocol", "HTTP/1")
)

// TestDrain follows a clean stop through three collections: while the
// server runs with n requests held, during the drain with them still held,
// and once they were released and Run returned.
func TestDrain(t *testing.T) {
	const n = 3
	h := newHeld()
	hs := lameduck.FromHTTP(&http.Server{Addr: "127.0.0.1:0", Handler: h})
	r, reader := setup(t, hs, time.Minute)
	cancel, done := start(t, r)
	answers := get(t, hs.Addr().String(), n)
	for range n {
		wait(t, h.entered, "handler call")
	}

	// Running: the requests in flight, each on its connection.
	rm := collect(t, reader)
	checkOne(t, rm, "lameduck.status", "lameduck.state", allStates, "running")
	checkOne(t, rm, "lameduck.stop.outcome", "lameduck.outcome", allOutcomes, "")
	m, _ := find(rm, "lameduck.requests.in_flight")
	metricdatatest.AssertEqual(t, metricdata.Metrics{
		Name:        "lameduck.requests.in_flight",
		Description: "HTTP requests in flight now.",
		Unit:        "{request}",
		Data: metricdata.Sum[int64]{
			Temporality: metricdata.CumulativeTemporality,
			DataPoints: []metricdata.DataPoint[int64]{
				{Attributes: attribute.NewSet(http1), Value: n},
				{Attributes: attribute.NewSet(attribute.String("lameduck.protocol", "HTTP/2")), Value: 0},
			},
		},
	}, m, metricdatatest.IgnoreTimestamp())
	if got := count(t, rm, "lameduck.connections.in_flight", http1); got != n {
		t.Errorf("HTTP/1 connections in flight = %d, want %d", got, n)
	}
	if got := count(t, rm, "lameduck.stop.requests.at_lame_duck", http1); got != 0 {
		t.Errorf("requests at lame duck = %d before lame-duck mode, want 0", got)
	}
	if _, ok := find(rm, "lameduck.stop.duration"); ok {
		t.Error("lameduck.stop.duration has a point before lame-duck mode")
	}

	// Lame duck: the drain waits for the same requests.
	cancel()
	wait(t, r.LameDuck(), "lame-duck mode")
	rm = collect(t, reader)
	checkOne(t, rm, "lameduck.status", "lameduck.state", allStates, "lame duck")
	checkOne(t, rm, "lameduck.stop.outcome", "lameduck.outcome", allOutcomes, "")
	if got := count(t, rm, "lameduck.requests.in_flight", http1); got != n {
		t.Errorf("requests in flight during the drain = %d, want %d", got, n)
	}
	if got := count(t, rm, "lameduck.stop.requests.at_lame_duck", http1); got != n {
		t.Errorf("requests at lame duck = %d, want %d", got, n)
	}
	if got := seconds(t, rm, "lameduck.stop.duration", attribute.String("lameduck.trigger", "context")); got < 0 {
		t.Errorf("stop duration = %v s during the drain", got)
	}

	// Stopped: every request answered, none cut.
	close(h.release)
	if err := wait(t, done, "return of Run"); err != nil {
		t.Fatalf("Run = %v, want nil", err)
	}
	for range n {
		if a := wait(t, answers, "answer"); a.err != nil || a.body != "done" {
			t.Errorf("request got %q, %v; want the answer \"done\"", a.body, a.err)
		}
	}
	rm = collect(t, reader)
	checkOne(t, rm, "lameduck.status", "lameduck.state", allStates, "stopped")
	checkOne(t, rm, "lameduck.stop.outcome", "lameduck.outcome", allOutcomes, "clean")
	for _, c := range []struct {
		name string
		want int64
	}{
		{"lameduck.requests.in_flight", 0},
		{"lameduck.connections.in_flight", 0},
		{"lameduck.stop.requests.at_lame_duck", n},
		{"lameduck.stop.requests.finished", n},
		{"lameduck.stop.requests.cut", 0},
		{"lameduck.stop.requests.held", 0},
		{"lameduck.stop.connections.cut", 0},
	} {
		if got := count(t, rm, c.name, http1); got != c.want {
			t.Errorf("%s{HTTP/1} = %d once Run returned, want %d", c.name, got, c.want)
		}
	}
	if got := seconds(t, rm, "lameduck.stop.phase.duration", attribute.String("lameduck.phase", "Shutdown")); got <= 0 {
		t.Errorf("Shutdown took %v s, want more than 0", got)
	}
	if got := seconds(t, rm, "lameduck.stop.duration", attribute.String("lameduck.trigger", "context")); got <= 0 {
		t.Errorf("stop duration = %v s, want more than 0", got)
	}
}

// TestExpired: handlers that never end hold the drain until the period runs
// out; the last stop says they held it and that Close cut them.
func TestExpired(t *testing.T) {
	const n = 2
	h := newHeld()
	hs := lameduck.FromHTTP(&http.Server{Addr: "127.0.0.1:0", Handler: h})
	r, reader := setup(t, hs, 100*time.Millisecond)
	cancel, done := start(t, r)
	answers := get(t, hs.Addr().String(), n)
	for range n {
		wait(t, h.entered, "handler call")
	}
	cancel()
	if err := wait(t, done, "return of Run"); err == nil {
		t.Fatal("Run = nil, want an expired stop")
	}
	// Close cuts the handlers: they never write "done". (A client may still
	// read an empty answer: the handler returns as Serve's context ends,
	// which can be just before Close closes its connection.)
	for range n {
		if a := wait(t, answers, "end of request"); a.body == "done" {
			t.Error("a request was answered in full, though its handler was cut")
		}
	}

	rm := collect(t, reader)
	checkOne(t, rm, "lameduck.status", "lameduck.state", allStates, "failed")
	checkOne(t, rm, "lameduck.stop.outcome", "lameduck.outcome", allOutcomes, "expired")
	for _, c := range []struct {
		name string
		want int64
	}{
		{"lameduck.requests.in_flight", 0},
		{"lameduck.stop.requests.at_lame_duck", n},
		{"lameduck.stop.requests.finished", 0},
		{"lameduck.stop.requests.cut", n},
		{"lameduck.stop.requests.held", n},
		{"lameduck.stop.connections.held", n},
	} {
		if got := count(t, rm, c.name, http1); got != c.want {
			t.Errorf("%s{HTTP/1} = %d, want %d", c.name, got, c.want)
		}
	}
	if got := seconds(t, rm, "lameduck.stop.phase.duration", attribute.String("lameduck.phase", "Close")); got < 0 {
		t.Errorf("Close took %v s", got)
	}
	if got := seconds(t, rm, "lameduck.stop.duration", attribute.String("lameduck.trigger", "context")); got < 0.1 {
		t.Errorf("stop duration = %v s, want at least the 0.1 s period", got)
	}
}

// TestGroupMembers: in a Group, each row carries its member's name, and a
// Worker's items have an instrument of their own with no protocol.
func TestGroupMembers(t *testing.T) {
	h := newHeld()
	hs := lameduck.FromHTTP(&http.Server{Addr: "127.0.0.1:0", Handler: h})
	items := make(chan int, 1)
	handling, finish := make(chan struct{}, 1), make(chan struct{})
	worker := lameduck.FromWorker(lameduck.ChanSource(items), func(context.Context, int) error {
		handling <- struct{}{}
		<-finish
		return nil
	})
	r, reader := setup(t, lameduck.Group(lameduck.Member("jobs", worker), lameduck.Member("api", hs)), time.Minute)
	cancel, done := start(t, r)
	answers := get(t, hs.Addr().String(), 1)
	wait(t, h.entered, "handler call")
	items <- 1
	wait(t, handling, "handle call")

	rm := collect(t, reader)
	api := attribute.String("lameduck.server", "api")
	if got := count(t, rm, "lameduck.requests.in_flight", api, http1); got != 1 {
		t.Errorf(`requests in flight on "api" = %d, want 1`, got)
	}
	if got := count(t, rm, "lameduck.items.in_flight", attribute.String("lameduck.server", "jobs")); got != 1 {
		t.Errorf(`items in flight on "jobs" = %d, want 1`, got)
	}
	if m, _ := find(rm, "lameduck.items.in_flight"); m.Unit != "{item}" {
		t.Errorf("lameduck.items.in_flight has unit %q, want {item}", m.Unit)
	}

	cancel()
	close(h.release)
	close(finish)
	if err := wait(t, done, "return of Run"); err != nil {
		t.Fatalf("Run = %v, want nil", err)
	}
	if a := wait(t, answers, "answer"); a.err != nil || a.body != "done" {
		t.Errorf("request got %q, %v; want the answer \"done\"", a.body, a.err)
	}
}

// TestUnregister: once the Registration is unregistered, a collection
// holds no data from the Runner.
func TestUnregister(t *testing.T) {
	r, err := lameduck.NewRunner(lameduck.ServerFuncs{ServeFunc: func(context.Context) error { return nil }})
	if err != nil {
		t.Fatal(err)
	}
	reader := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	defer mp.Shutdown(context.Background())
	reg, err := lameduckotel.Register(mp.Meter("lameduckotel_test"), r)
	if err != nil {
		t.Fatal(err)
	}

	rm := collect(t, reader)
	checkOne(t, rm, "lameduck.status", "lameduck.state", allStates, "not started")
	if err := reg.Unregister(); err != nil {
		t.Fatal(err)
	}
	rm = collect(t, reader)
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			t.Errorf("after Unregister, %s still has data: %+v", m.Name, m.Data)
		}
	}
}

// TestRegisterNil: a nil Meter or Runner is refused, not a panic at the
// first collection.
func TestRegisterNil(t *testing.T) {
	mp := sdkmetric.NewMeterProvider()
	defer mp.Shutdown(context.Background())
	r, err := lameduck.NewRunner(lameduck.ServerFuncs{ServeFunc: func(context.Context) error { return nil }})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := lameduckotel.Register(nil, r); err == nil {
		t.Error("Register(nil, r) succeeded")
	}
	if _, err := lameduckotel.Register(mp.Meter("x"), nil); err == nil {
		t.Error("Register(meter, nil) succeeded")
	}
}

// streamServer is a Server of its own that reports gRPC-like streams
// through ReportWork, as lameduckgrpc's does.
type streamServer struct{ stop chan struct{} }

func (s streamServer) Serve(context.Context) error    { <-s.stop; return nil }
func (s streamServer) Shutdown(context.Context) error { close(s.stop); return nil }
func (s streamServer) Close() error                   { return nil }
func (s streamServer) ReportWork(add func(kind, protocol string, inFlight, done, cut int)) {
	add("streams", "gRPC", 4, 0, 0)
}

// TestStreams: streams a Server reports are exported with their own unit.
func TestStreams(t *testing.T) {
	r, reader := setup(t, lameduck.Member("feed", streamServer{stop: make(chan struct{})}), time.Second)
	start(t, r)
	rm := collect(t, reader)
	if got := count(t, rm, "lameduck.streams.in_flight", attribute.String("lameduck.server", "feed"), attribute.String("lameduck.protocol", "gRPC")); got != 4 {
		t.Errorf("streams in flight = %d, want 4", got)
	}
	if m, _ := find(rm, "lameduck.streams.in_flight"); m.Unit != "{stream}" {
		t.Errorf("unit %q, want {stream}", m.Unit)
	}
}
