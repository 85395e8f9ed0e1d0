package lameduck

import (
	"context"
	"errors"
	"syscall"
	"testing"
	"testing/synctest"
	"time"

	"github.com/google/go-cmp/cmp"
)

// TestLogging covers semantic 14: each phase is logged once.
func TestLogging(t *testing.T) {
	const serving = `lameduck: serving; lame-duck mode begins on "interrupt", "terminated", context cancellation`
	cases := []struct {
		name  string
		setup func(s *fakeServer)
		opts  []Option
		act   func(h *harness)
		want  []string
	}{{
		name:  "a clean drain",
		setup: func(s *fakeServer) { s.drain = 1500 * time.Millisecond },
		act:   sendSignal,
		want: []string{
			serving,
			`lameduck: received signal "terminated"; entering lame-duck mode for up to 3s`,
			"lameduck: drained in 1.5s",
		},
	}, {
		name:  "a context trigger, a failing step and an expiry",
		setup: func(s *fakeServer) { s.drain = time.Minute },
		opts:  []Option{WithPreShutdown(func(context.Context) error { return errors.New("no registry") })},
		act:   cancelCtx,
		want: []string{
			serving,
			"lameduck: context done (context canceled); entering lame-duck mode for up to 3s",
			"lameduck: pre-shutdown step 1 of 1 failed: no registry",
			"lameduck: lame-duck period of 3s expired",
			"lameduck: server closed",
		},
	}, {
		name:  "a second signal and a failing Close",
		setup: func(s *fakeServer) { s.drain, s.closeErr = time.Minute, errClose },
		opts:  []Option{Signals(syscall.SIGHUP)},
		act: func(h *harness) {
			h.sig.send(syscall.SIGHUP)
			time.Sleep(time.Second)
			h.sig.send(syscall.SIGHUP)
		},
		want: []string{
			`lameduck: serving; lame-duck mode begins on "hangup", context cancellation`,
			`lameduck: received signal "hangup"; entering lame-duck mode for up to 3s`,
			`lameduck: received signal "hangup" again; ending the lame-duck period now`,
			"lameduck: Close failed: fake: close failed",
		},
	}, {
		name:  "a failing Shutdown",
		setup: func(s *fakeServer) { s.shutdownErr = errShutdown },
		opts:  []Option{Signals()},
		act:   cancelCtx,
		want: []string{
			"lameduck: serving; lame-duck mode begins on context cancellation",
			"lameduck: context done (context canceled); entering lame-duck mode for up to 3s",
			"lameduck: Shutdown failed: fake: shutdown failed",
			"lameduck: server closed",
		},
	}, {
		name:  "WithoutLogger logs nothing",
		setup: func(s *fakeServer) { s.drain = time.Minute },
		opts:  []Option{WithoutLogger()},
		act:   sendSignal,
		want:  nil,
	}}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				s := newFakeServer()
				c.setup(s)
				h := start(t, s, c.opts...)
				c.act(h)
				<-h.done
				if diff := cmp.Diff(c.want, h.log.all()); diff != "" {
					t.Errorf("log lines (-want +got):\n%s", diff)
				}
			})
		})
	}
}

func TestDefaultLoggerIsGlog(t *testing.T) {
	r, err := NewRunner(ServerFuncs{ServeFunc: okServe})
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := r.cfg.logger.(glogLogger); !ok {
		t.Errorf("default logger is %T, want glogLogger", r.cfg.logger)
	}
}
