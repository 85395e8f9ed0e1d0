package lameduck

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"testing"
	"testing/synctest"
	"time"

	"github.com/google/go-cmp/cmp"
)

func probe(t *testing.T, r *Readiness) (int, string) {
	t.Helper()
	return probeFrom(t, r, "192.0.2.1:1234")
}

// probeFrom asks r as the client at remoteAddr would, one that hangs up
// as soon as it has the answer.
func probeFrom(t *testing.T, r *Readiness, remoteAddr string) (int, string) {
	t.Helper()
	return probeHangingUp(t, r, remoteAddr, 0)
}

// probeHangingUp asks r as a client that hangs up hangUp after it asked,
// or never if hangUp is negative (it keeps its connection for the next
// check).
func probeHangingUp(t *testing.T, r *Readiness, remoteAddr string, hangUp time.Duration) (int, string) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	switch {
	case hangUp == 0:
		cancel()
	case hangUp > 0:
		stop := time.AfterFunc(hangUp, cancel)
		defer stop.Stop()
	}
	rec := httptest.NewRecorder()
	req := httptest.NewRequestWithContext(ctx, "GET", "/readyz", nil)
	req.RemoteAddr = remoteAddr
	r.ServeHTTP(rec, req)
	body, _ := io.ReadAll(rec.Result().Body)
	return rec.Code, string(body)
}

func TestReadiness(t *testing.T) {
	var r Readiness
	if code, body := probe(t, &r); code != 200 || body != "ok" {
		t.Errorf("before Fail: %d %q, want 200 \"ok\"", code, body)
	}
	if err := r.Fail(context.Background()); err != nil {
		t.Fatalf("Fail = %v", err)
	}
	if code, body := probe(t, &r); code != 503 || body != "lame duck\n" {
		t.Errorf("after Fail: %d %q, want 503 \"lame duck\\n\"", code, body)
	}
}

// A probe's life: what it answers after each call, in order.
func TestReadinessStates(t *testing.T) {
	type answer struct {
		Code int
		Body string
	}
	var (
		ok       = answer{200, "ok"}
		warming  = answer{503, "warming up\n"}
		lameDuck = answer{503, "lame duck\n"}
	)
	fail := func(r *Readiness) { _ = r.Fail(context.Background()) }
	warmed := (*Readiness).Warmed
	cases := []struct {
		name  string
		probe func() *Readiness
		calls []func(*Readiness)
		want  []answer // the first before any call, then one after each
	}{
		{"the zero value is ready until Fail", func() *Readiness { return new(Readiness) },
			[]func(*Readiness){fail}, []answer{ok, lameDuck}},
		{"Warmed on a ready probe changes nothing", func() *Readiness { return new(Readiness) },
			[]func(*Readiness){warmed}, []answer{ok, ok}},
		{"Warming is not ready until Warmed", Warming,
			[]func(*Readiness){warmed, warmed, fail}, []answer{warming, ok, ok, lameDuck}},
		{"Fail while warming up is final", Warming,
			[]func(*Readiness){fail, warmed}, []answer{warming, lameDuck, lameDuck}},
		{"Warmed after Fail does not bring the probe back", func() *Readiness { return new(Readiness) },
			[]func(*Readiness){fail, warmed}, []answer{ok, lameDuck, lameDuck}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := c.probe()
			var got []answer
			code, body := probe(t, r)
			got = append(got, answer{code, body})
			for _, call := range c.calls {
				call(r)
				code, body := probe(t, r)
				got = append(got, answer{code, body})
			}
			if diff := cmp.Diff(c.want, got); diff != "" {
				t.Errorf("answers (-want +got):\n%s", diff)
			}
		})
	}
}

// FailUntilSeen returns Margin after the count is reached, within [Floor,
// Ceiling] of its start, at the exact instants synctest's clock gives.
func TestFailUntilSeen(t *testing.T) {
	const ms = time.Millisecond
	type check struct {
		at     time.Duration // since the test began
		from   string        // the checker's IP address
		hangUp time.Duration // after the answer; 0: at once, -1: never
	}
	cases := []struct {
		name    string
		seen    Seen
		warming bool // the probe is made by Warming and never warms up
		early   bool // Fail is called when the test begins
		stepAt  time.Duration
		checks  []check
		budget  time.Duration // the step's context's timeout, from stepAt
		want    time.Duration // when the step returns, since the test began
		wantErr error
	}{
		{name: "one answer, then the margin",
			seen:   Seen{Margin: 50 * ms, Ceiling: time.Second},
			checks: []check{{30 * ms, "10.0.0.1", 0}}, want: 80 * ms},
		{name: "an answer counts when the checker hangs up",
			seen:   Seen{Margin: 50 * ms, Ceiling: time.Second},
			checks: []check{{30 * ms, "10.0.0.1", 70 * ms}}, want: 150 * ms},
		{name: "a checker that keeps its connection is counted hangUpWait after the answer",
			seen:   Seen{Margin: 50 * ms, Ceiling: time.Second},
			checks: []check{{30 * ms, "10.0.0.1", -1}}, want: 30*ms + hangUpWait + 50*ms},
		{name: "no checker comes: the ceiling, and no error",
			seen: Seen{Margin: 50 * ms, Ceiling: time.Second}, want: time.Second},
		{name: "the floor holds a quick answer back",
			seen:   Seen{Margin: 50 * ms, Floor: 200 * ms, Ceiling: time.Second},
			checks: []check{{30 * ms, "10.0.0.1", 0}}, want: 200 * ms},
		{name: "the ceiling cuts the margin short",
			seen:   Seen{Margin: 50 * ms, Ceiling: 100 * ms},
			checks: []check{{70 * ms, "10.0.0.1", 0}}, want: 100 * ms},
		{name: "an answer after the ceiling is too late",
			seen:   Seen{Ceiling: 100 * ms},
			checks: []check{{150 * ms, "10.0.0.1", 0}}, want: 100 * ms},
		{name: "three answers, as for HAProxy's fall 3",
			seen:   Seen{Answers: 3, Margin: 50 * ms, Ceiling: time.Second},
			checks: []check{{100 * ms, "10.0.0.1", 0}, {200 * ms, "10.0.0.1", 0}, {300 * ms, "10.0.0.1", 0}}, want: 350 * ms},
		{name: "two checkers: a second answer from the first does not count as the second checker",
			seen:   Seen{Checkers: 2, Margin: 50 * ms, Ceiling: time.Second},
			checks: []check{{10 * ms, "10.0.0.1", 0}, {20 * ms, "10.0.0.1", 0}, {40 * ms, "10.0.0.2", 0}}, want: 90 * ms},
		{name: "checkers are told apart by address, not port",
			seen:   Seen{Checkers: 2, Ceiling: time.Second},
			checks: []check{{10 * ms, "10.0.0.1:1", 0}, {20 * ms, "10.0.0.1:2", 0}, {40 * ms, "[2001:db8::1]:3", 0}}, want: 40 * ms},
		{name: "answers since an earlier Fail count; the margin is over: no wait",
			seen:  Seen{Margin: 50 * ms, Ceiling: time.Second},
			early: true, stepAt: 100 * ms, checks: []check{{10 * ms, "10.0.0.1", 0}}, want: 100 * ms},
		{name: "answers since an earlier Fail count; the rest of the margin",
			seen:  Seen{Margin: 50 * ms, Ceiling: time.Second},
			early: true, stepAt: 30 * ms, checks: []check{{10 * ms, "10.0.0.1", 0}}, want: 60 * ms},
		{name: "a 503 while warming up does not count",
			seen: Seen{Ceiling: 100 * ms}, warming: true, stepAt: 20 * ms,
			checks: []check{{10 * ms, "10.0.0.1", 0}}, want: 120 * ms},
		{name: "the context ends first",
			seen: Seen{Ceiling: time.Second}, budget: 300 * ms, want: 300 * ms, wantErr: context.DeadlineExceeded},
		{name: "no ceiling is a mistake, reported at once",
			seen: Seen{Margin: 50 * ms}, checks: []check{{10 * ms, "10.0.0.1", 0}}, want: 0, wantErr: errNoCeiling},
		{name: "a ceiling below the floor is the floor",
			seen: Seen{Floor: 200 * ms, Ceiling: 100 * ms}, want: 200 * ms},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				begin := time.Now()
				r := new(Readiness)
				if c.warming {
					r = Warming()
				}
				if c.early {
					_ = r.Fail(context.Background())
				}
				checked := make(chan struct{})
				go func() {
					defer close(checked)
					for _, ch := range c.checks {
						time.Sleep(time.Until(begin.Add(ch.at)))
						addr := ch.from
						if _, _, err := net.SplitHostPort(addr); err != nil {
							addr = net.JoinHostPort(addr, "40000")
						}
						probeHangingUp(t, r, addr, ch.hangUp)
					}
				}()
				time.Sleep(c.stepAt)
				budget := c.budget
				if budget == 0 {
					budget = time.Hour
				}
				ctx, cancel := context.WithTimeout(context.Background(), budget)
				defer cancel()
				err := r.FailUntilSeen(c.seen)(ctx)
				if got := time.Since(begin); got != c.want || !errors.Is(err, c.wantErr) {
					t.Errorf("returned at %v with %v; want %v with %v", got, err, c.want, c.wantErr)
				}
				if code, _ := probe(t, r); code != http.StatusServiceUnavailable {
					t.Errorf("the probe answers %d after the step, want 503", code)
				}
				<-checked // the checks still to come, after the step
			})
		})
	}
}

// An answer held while waiting for its checker to hang up is let go when
// the step returns, so that the drain does not wait for it; and once no
// step waits, answers are not held at all.
func TestFailUntilSeenReleasesHeldAnswers(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		begin := time.Now()
		r := new(Readiness)
		answered := make(chan time.Duration)
		go func() {
			probeHangingUp(t, r, "10.0.0.1:1", -1) // keeps its connection
			answered <- time.Since(begin)
		}()
		synctest.Wait() // the probe has answered 200, before the step
		go func() {
			time.Sleep(10 * time.Millisecond)
			probeHangingUp(t, r, "10.0.0.1:1", -1)
			answered <- time.Since(begin)
		}()
		if err := r.FailUntilSeen(Seen{Ceiling: 100 * time.Millisecond})(context.Background()); err != nil {
			t.Errorf("step = %v", err)
		}
		want := []time.Duration{0, 100 * time.Millisecond}
		for _, w := range want {
			if got := <-answered; got != w {
				t.Errorf("a probe returned at %v, want %v", got, w)
			}
		}
		// No step waits: a 503 goes at once, even to a checker that stays.
		probeHangingUp(t, r, "10.0.0.1:1", -1)
		if got := time.Since(begin); got != 100*time.Millisecond {
			t.Errorf("the probe after the step returned at %v, want at once (100ms)", got)
		}
	})
}

func TestDelay(t *testing.T) {
	cases := []struct {
		name    string
		d       time.Duration
		budget  time.Duration
		want    time.Duration
		wantErr error
	}{
		{"waits d", 5 * time.Second, time.Hour, 5 * time.Second, nil},
		{"gives up when the context ends", 5 * time.Second, 2 * time.Second, 2 * time.Second, context.DeadlineExceeded},
		{"zero does not wait", 0, time.Hour, 0, nil},
		{"negative does not wait", -time.Second, time.Hour, 0, nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				ctx, cancel := context.WithTimeout(context.Background(), c.budget)
				defer cancel()
				begin := time.Now()
				err := Delay(c.d)(ctx)
				if got := time.Since(begin); got != c.want || err != c.wantErr {
					t.Errorf("took %v and returned %v; want %v and %v", got, err, c.want, c.wantErr)
				}
			})
		})
	}
}

// The Kubernetes wiring in one line: during the delay the server still
// answers requests, but the probe says 503; then the drain.
func TestReadinessWiring(t *testing.T) {
	var ready Readiness
	mux := http.NewServeMux()
	mux.Handle("/readyz", &ready)
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("hello")) })
	hs := FromHTTP(&http.Server{Addr: "127.0.0.1:0", Handler: mux})
	inDelay := make(chan struct{})
	leaveDelay := make(chan struct{})
	// A Delay the test controls: it stands for Delay(5*time.Second).
	delay := func(ctx context.Context) error {
		close(inDelay)
		<-leaveDelay
		return nil
	}
	h := runUntilReady(t, hs, WithPreShutdown(Chain(ready.Fail, delay)))
	base := "http://" + hs.Addr().String()
	client := &http.Client{}
	defer client.CloseIdleConnections()
	if code, _, err := get(client, base+"/readyz"); err != nil || code != 200 {
		t.Fatalf("probe before the signal: %d, %v", code, err)
	}
	sendSignal(h)
	<-inDelay
	if code, _, err := get(client, base+"/readyz"); err != nil || code != 503 {
		t.Errorf("probe during the delay: %d, %v; want 503", code, err)
	}
	if code, body, err := get(client, base+"/"); err != nil || code != 200 || body != "hello" {
		t.Errorf("request during the delay: %d %q, %v; want 200 \"hello\"", code, body, err)
	}
	close(leaveDelay)
	if err := <-h.done; err != nil {
		t.Errorf("Run = %v", err)
	}
}
