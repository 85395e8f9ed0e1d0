package lameduck

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/google/go-cmp/cmp"
)

// TestGroupNamesTheMember checks that whatever way a member fails, Run's
// error says which member it was: by its position, and by the name given
// with Member.
func TestGroupNamesTheMember(t *testing.T) {
	boom := errors.New("boom")
	idle := func() Server { return ServerFuncs{ServeFunc: blockUntilDone, CloseFunc: func() error { return nil }} }
	waitForStop := func(stopped chan struct{}) Server {
		return ServerFuncs{
			ServeFunc:    func(context.Context) error { <-stopped; return nil },
			ShutdownFunc: func(context.Context) error { close(stopped); return nil },
		}
	}
	cases := []struct {
		name    string
		members func() []Server
		want    string
	}{{
		name: "a worker whose handle panics",
		members: func() []Server {
			handle := func(context.Context, int) error { panic("boom") }
			return []Server{FromWorker(ChanSource(chanOf(1)), handle), waitForStop(make(chan struct{}))}
		},
		want: "lameduck: Group: server 0: handle panicked: boom",
	}, {
		name: "a nested Group whose worker's next panics",
		members: func() []Server {
			next := func(context.Context) (int, error) { panic("boom") }
			inner := Group(waitForStop(make(chan struct{})), FromWorker(next, func(context.Context, int) error { return nil }))
			return []Server{inner, waitForStop(make(chan struct{}))}
		},
		want: "lameduck: Group: server 0: Group: server 1: next panicked: boom",
	}, {
		name: "a member that calls Stop with a cause and then returns nil",
		members: func() []Server {
			stopped := make(chan struct{})
			return []Server{waitForStop(make(chan struct{})), ServerFuncs{
				ServeFunc: func(ctx context.Context) error {
					Stop(ctx, boom)
					<-stopped
					return nil
				},
				ShutdownFunc: func(context.Context) error { close(stopped); return nil },
			}}
		},
		want: "lameduck: Group: server 1: boom",
	}, {
		name: "a named member whose Serve fails",
		members: func() []Server {
			failing := ServerFuncs{ServeFunc: func(context.Context) error { return boom }}
			return []Server{Member("jobs", waitForStop(make(chan struct{}))), Member("api", failing)}
		},
		want: "lameduck: Group: server 1 (api): boom",
	}, {
		name: "a named member whose Serve panics",
		members: func() []Server {
			failing := ServerFuncs{ServeFunc: func(context.Context) error { panic("boom") }}
			return []Server{Member("api", failing), waitForStop(make(chan struct{}))}
		},
		want: "lameduck: Group: server 0 (api): Serve panicked: boom",
	}, {
		name: "a named member that is bad input",
		members: func() []Server {
			return []Server{idle(), Member("api", ServerFuncs{})}
		},
		want: "lameduck: Group: server 1 (api): ServerFuncs has a nil ServeFunc",
	}}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			err := Run(context.Background(), Group(c.members()...), Signals(), WithoutLogger())
			if err == nil || err.Error() != c.want {
				t.Errorf("Run = %v\nwant %s", err, c.want)
			}
		})
	}
}

func TestMember(t *testing.T) {
	t.Run("outside a Group a member is its Server", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			s := newFakeServer()
			h := runInBubble(t, Member("api", s))
			h.cancel()
			if _, err := h.wait(); err != nil {
				t.Errorf("Run = %v, want nil", err)
			}
			if got, want := strings.Join(s.Calls(), ","), "Serve,Shutdown"; got != want {
				t.Errorf("calls %s, want %s", got, want)
			}
		})
	})
	t.Run("a named HTTP server keeps its Ready", func(t *testing.T) {
		srv := FromHTTP(&http.Server{Addr: "127.0.0.1:0", Handler: http.NotFoundHandler()})
		h := runUntilReady(t, Group(Member("api", srv)))
		if srv.Addr() == nil {
			t.Error("the Runner was ready before the named server was bound")
		}
		h.cancel()
		if err := <-h.done; err != nil {
			t.Errorf("Run = %v, want nil", err)
		}
	})
	t.Run("a nil Server given a name is bad input", func(t *testing.T) {
		_, err := NewRunner(Member("api", nil))
		if want := `lameduck: Member "api": nil Server`; err == nil || err.Error() != want {
			t.Errorf("NewRunner = %v, want %q", err, want)
		}
	})
}

// TestNoDoublePrefix checks that an error of this package, told inside a
// sentence of this package, does not repeat "lameduck: ".
func TestNoDoublePrefix(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		failing := ServerFuncs{ServeFunc: func(context.Context) error { return errors.New("boom") }}
		h := runInBubble(t, Group(Member("api", failing)))
		if _, err := h.wait(); err == nil {
			t.Fatal("Run = nil, want the member's failure")
		}
		want := "lameduck: stop requested: Group: server 0 (api): boom"
		if !containsLine(h.log.all(), want) {
			t.Errorf("log lacks %q:\n%s", want, joinLines(h.log.all()))
		}
		for _, l := range h.log.all() {
			if strings.Count(l, "lameduck: ") > 1 {
				t.Errorf("line repeats the prefix: %s", l)
			}
		}
	})
}

// TestPanicLoggedOnce: a panic's stack is logged once, naming the member
// it happened in, however many guards it passes on its way to Run.
func TestPanicLoggedOnce(t *testing.T) {
	panicky := func() Server {
		return ServerFuncs{ServeFunc: blockUntilDone, ShutdownFunc: func(context.Context) error { panic("shutdown boom") }}
	}
	handlePanics := func() Server {
		return FromWorker(ChanSource(chanOf(1)), func(context.Context, int) error { panic("handle boom") })
	}
	cases := []struct {
		name string
		svr  Server
		want string
	}{
		{"a Server's Shutdown", panicky(), "lameduck: Shutdown panicked: shutdown boom"},
		{"a member's Shutdown", Group(Member("api", panicky())), "lameduck: Group: server 0 (api): Shutdown panicked: shutdown boom"},
		{"a worker member's handle", Group(newFakeServer(), handlePanics()), "lameduck: Group: server 1: handle panicked: handle boom"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				h := runInBubble(t, c.svr, Period(time.Second))
				h.cancel()
				h.wait()
				var lines []string
				for _, l := range h.log.all() {
					if strings.Contains(l, "panicked") && strings.Contains(l, "\n") { // a line with its stack
						lines = append(lines, strings.SplitN(l, "\n", 2)[0])
					}
				}
				if diff := cmp.Diff([]string{c.want}, lines); diff != "" {
					t.Errorf("panic lines (-want +got):\n%s", diff)
				}
			})
		})
	}
}
