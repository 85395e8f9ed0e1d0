package lameduck

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/google/go-cmp/cmp"
)

// eventLog records what members did, in order, with the fake time.
type eventLog struct {
	mu     sync.Mutex
	begin  time.Time
	events []string
}

func (l *eventLog) add(format string, args ...any) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.events = append(l.events, fmt.Sprintf("%v ", time.Since(l.begin))+fmt.Sprintf(format, args...))
}

func (l *eventLog) all() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]string(nil), l.events...)
}

// member is a Server whose Shutdown takes work (or until its ctx ends).
type member struct {
	name        string
	log         *eventLog
	work        time.Duration
	serveErr    error         // returned by Serve at failAt, when set
	failAt      time.Duration // from the start of Serve
	shutdownErr error
	panicOn     string // "Serve" or "Shutdown"
	stopped     chan struct{}
	once        sync.Once
}

func newMember(name string, log *eventLog) *member {
	return &member{name: name, log: log, stopped: make(chan struct{})}
}

func (m *member) stop() { m.once.Do(func() { close(m.stopped) }) }

func (m *member) Serve(ctx context.Context) error {
	if m.panicOn == "Serve" {
		panic(m.name + " cannot serve")
	}
	if m.serveErr != nil {
		select {
		case <-time.After(m.failAt):
			m.log.add("%s Serve failed", m.name)
			return m.serveErr
		case <-m.stopped:
			return nil
		}
	}
	<-m.stopped
	return nil
}

func (m *member) Shutdown(ctx context.Context) error {
	m.log.add("%s Shutdown begins", m.name)
	if m.panicOn == "Shutdown" {
		panic(m.name + " cannot shut down")
	}
	defer m.stop()
	select {
	case <-time.After(m.work):
		m.log.add("%s drained", m.name)
		return m.shutdownErr
	case <-ctx.Done():
		m.log.add("%s gave up", m.name)
		return ctx.Err()
	}
}

func (m *member) Close() error {
	m.log.add("%s Close", m.name)
	m.stop()
	return nil
}

func TestGroupShutdown(t *testing.T) {
	errFlush := errors.New("worker: flush failed")
	cases := []struct {
		name     string
		parallel bool
		budget   time.Duration
		setup    func(front, worker *member)
		want     []string
		wantErrs []error
	}{{
		name:   "members shut down in reverse order, one after the other",
		budget: time.Hour,
		setup:  func(front, worker *member) { front.work, worker.work = time.Second, 2*time.Second },
		want: []string{
			"0s front Shutdown begins", "1s front drained",
			"1s worker Shutdown begins", "3s worker drained",
		},
	}, {
		name:   "the members share one deadline",
		budget: 1500 * time.Millisecond,
		setup:  func(front, worker *member) { front.work, worker.work = time.Second, time.Second },
		want: []string{
			"0s front Shutdown begins", "1s front drained",
			"1s worker Shutdown begins", "1.5s worker gave up",
		},
		wantErrs: []error{context.DeadlineExceeded},
	}, {
		name:   "an error does not stop the rest, and errors are joined",
		budget: time.Hour,
		setup: func(front, worker *member) {
			front.shutdownErr = errors.New("front: deregister failed")
			worker.shutdownErr = errFlush
		},
		want: []string{
			"0s front Shutdown begins", "0s front drained",
			"0s worker Shutdown begins", "0s worker drained",
		},
		wantErrs: []error{errFlush},
	}, {
		name:   "a panic in one member's Shutdown is an error and the others still shut down",
		budget: time.Hour,
		setup:  func(front, worker *member) { front.panicOn = "Shutdown" },
		want: []string{
			"0s front Shutdown begins",
			"0s worker Shutdown begins", "0s worker drained",
		},
	}, {
		name:     "ParallelGroup shuts every member down at once",
		parallel: true,
		budget:   time.Hour,
		setup:    func(front, worker *member) { front.work, worker.work = time.Second, 2*time.Second },
		want: []string{
			"0s front Shutdown begins", "0s worker Shutdown begins",
			"1s front drained", "2s worker drained",
		},
	}}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				log := &eventLog{begin: time.Now()}
				front, worker := newMember("front", log), newMember("worker", log)
				c.setup(front, worker)
				g := Group(worker, front)
				if c.parallel {
					g = ParallelGroup(worker, front)
				}
				ctx, cancel := context.WithTimeout(context.Background(), c.budget)
				defer cancel()
				err := g.Shutdown(ctx)
				got := log.all()
				if c.parallel {
					// Events at the same instant may come in either order.
					got = sortedWithin(got)
				}
				if diff := cmp.Diff(c.want, got); diff != "" {
					t.Errorf("events (-want +got):\n%s", diff)
				}
				for _, want := range c.wantErrs {
					if !errors.Is(err, want) {
						t.Errorf("Shutdown = %v, want it to wrap %v", err, want)
					}
				}
				if c.wantErrs == nil && c.setup != nil && front.shutdownErr == nil && front.panicOn == "" && err != nil {
					t.Errorf("Shutdown = %v, want nil", err)
				}
				if front.panicOn != "" && (err == nil || !strings.Contains(err.Error(), "panicked: front cannot shut down")) {
					t.Errorf("Shutdown = %v, want the front's panic as an error", err)
				}
			})
		})
	}
}

// sortedWithin sorts events that happened at the same instant by name.
func sortedWithin(events []string) []string {
	out := append([]string(nil), events...)
	for i := 1; i < len(out); i++ {
		for j := i; j > 0; j-- {
			ti, _, _ := strings.Cut(out[j], " ")
			tj, _, _ := strings.Cut(out[j-1], " ")
			if ti == tj && out[j] < out[j-1] {
				out[j], out[j-1] = out[j-1], out[j]
			}
		}
	}
	return out
}

func TestGroupServe(t *testing.T) {
	// A member's failure is a graceful stop of the rest, with the
	// pre-shutdown steps, and Run names the member (rule 8 and the Group
	// helper).
	t.Run("a member's failure drains the others after the pre-shutdown steps and Run names it", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			log := &eventLog{begin: time.Now()}
			errBind := errors.New("listen: address in use")
			a, b, c := newMember("a", log), newMember("b", log), newMember("c", log)
			b.serveErr = errBind
			c.work = 500 * time.Millisecond
			step := func(ctx context.Context) error { log.add("readiness fails"); return Delay(time.Second)(ctx) }
			err := Run(context.Background(), Group(a, b, c), withSignalSource(&fakeSignals{}), WithoutLogger(), WithPreShutdown(step))
			if !errors.Is(err, errBind) || err.Error() != "lameduck: Group: server 1: listen: address in use" {
				t.Errorf("Run = %v, want %q wrapping %v", err, "lameduck: Group: server 1: listen: address in use", errBind)
			}
			var lde *LameDuckError
			if errors.As(err, &lde) {
				t.Errorf("Run = %#v, want a plain error: the drain was clean", err)
			}
			want := []string{
				"0s b Serve failed", "0s readiness fails",
				"1s c Shutdown begins", "1.5s c drained",
				"1.5s b Shutdown begins", "1.5s b drained",
				"1.5s a Shutdown begins", "1.5s a drained",
			}
			if diff := cmp.Diff(want, log.all()); diff != "" {
				t.Errorf("events (-want +got):\n%s", diff)
			}
		})
	})
	t.Run("without a Runner a member's failure closes the others", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			log := &eventLog{begin: time.Now()}
			errBind := errors.New("listen: address in use")
			a, b, c := newMember("a", log), newMember("b", log), newMember("c", log)
			b.serveErr = errBind
			err := Group(a, b, c).Serve(context.Background())
			if !errors.Is(err, errBind) || err.Error() != "lameduck: Group: server 1: listen: address in use" {
				t.Errorf("Serve = %v, want it to name server 1 and wrap %v", err, errBind)
			}
			want := []string{"0s b Serve failed", "0s a Close", "0s c Close"}
			if diff := cmp.Diff(want, log.all()); diff != "" {
				t.Errorf("events (-want +got):\n%s", diff)
			}
		})
	})
	t.Run("a member failing during the drain does not cut the others' drain short", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			log := &eventLog{begin: time.Now()}
			errJob := errors.New("worker: job failed")
			front, worker := newMember("front", log), newMember("worker", log)
			front.work = 2 * time.Second
			worker.serveErr, worker.failAt = errJob, 3*time.Second/2
			g := Group(worker, front)
			served := make(chan error, 1)
			go func() { served <- g.Serve(context.Background()) }()
			time.Sleep(time.Second)
			if err := g.Shutdown(context.Background()); err != nil {
				t.Errorf("Shutdown = %v", err)
			}
			if err := <-served; !errors.Is(err, errJob) || err.Error() != "lameduck: Group: server 0: worker: job failed" {
				t.Errorf("Serve = %v, want %v named as server 0's", err, errJob)
			}
			want := []string{
				"1s front Shutdown begins", "1.5s worker Serve failed", "3s front drained",
				"3s worker Shutdown begins", "3s worker drained",
			}
			if diff := cmp.Diff(want, log.all()); diff != "" {
				t.Errorf("events (-want +got):\n%s", diff)
			}
		})
	})
	t.Run("Serve returns nil once every member's Serve has", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			var first, second sync.WaitGroup
			first.Add(1)
			second.Add(1)
			done := make(chan error, 1)
			g := Group(
				ServerFuncs{ServeFunc: func(context.Context) error { first.Wait(); return nil }},
				ServerFuncs{ServeFunc: func(context.Context) error { second.Wait(); return nil }},
			)
			go func() { done <- g.Serve(context.Background()) }()
			first.Done()
			synctest.Wait()
			select {
			case err := <-done:
				t.Fatalf("Serve returned %v while a member still served", err)
			default:
			}
			second.Done()
			if err := <-done; err != nil {
				t.Errorf("Serve = %v, want nil", err)
			}
		})
	})
	t.Run("a panic in a member's Serve is an error", func(t *testing.T) {
		log := &eventLog{begin: time.Now()}
		a, b := newMember("a", log), newMember("b", log)
		b.panicOn = "Serve"
		err := Group(a, b).Serve(context.Background())
		if err == nil || err.Error() != "lameduck: Group: server 1: Serve panicked: b cannot serve" {
			t.Errorf("Serve = %v", err)
		}
	})
	t.Run("Serve twice is an error", func(t *testing.T) {
		g := Group(ServerFuncs{ServeFunc: okServe})
		if err := g.Serve(context.Background()); err != nil {
			t.Fatalf("first Serve = %v, want nil", err)
		}
		if err := g.Serve(context.Background()); err == nil {
			t.Error("second Serve returned nil")
		}
	})
}

func TestGroupBadInput(t *testing.T) {
	var nilHTTP *HTTPServer
	cases := []struct {
		name    string
		members []Server
		want    string
	}{
		{"a nil member", []Server{ServerFuncs{ServeFunc: okServe}, nil}, "lameduck: Group: server 1: nil Server"},
		{"a typed nil member", []Server{nilHTTP}, "lameduck: Group: server 0: nil *lameduck.HTTPServer Server"},
		{"a member built from bad input", []Server{ServerFuncs{}}, "lameduck: Group: server 0: ServerFuncs has a nil ServeFunc"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := NewRunner(Group(c.members...))
			if err == nil || err.Error() != c.want {
				t.Errorf("NewRunner = %v, want %q", err, c.want)
			}
			if err := Group(c.members...).Serve(context.Background()); err == nil || err.Error() != c.want {
				t.Errorf("Serve = %v, want %q", err, c.want)
			}
		})
	}
}

// A Group of HTTP servers is ready when all of them are bound, and one
// signal drains them all.
func TestGroupOfHTTPServers(t *testing.T) {
	ok := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("ok")) })
	a := FromHTTP(&http.Server{Addr: "127.0.0.1:0", Handler: ok})
	b := FromHTTP(&http.Server{Addr: "127.0.0.1:0", Handler: ok})
	h := runUntilReady(t, Group(a, b))
	if a.Addr() == nil || b.Addr() == nil {
		t.Fatalf("the Runner was ready before both servers were bound: %v, %v", a.Addr(), b.Addr())
	}
	client := &http.Client{}
	defer client.CloseIdleConnections()
	for _, s := range []*HTTPServer{a, b} {
		if code, _, err := get(client, "http://"+s.Addr().String()); err != nil || code != 200 {
			t.Errorf("GET %v: %d, %v", s.Addr(), code, err)
		}
	}
	sendSignal(h)
	if err := <-h.done; err != nil {
		t.Errorf("Run = %v", err)
	}
}
