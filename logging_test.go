package lameduck

import (
	"context"
	"errors"
	"log/slog"
	"sync"
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

// slogRecorder is a slog.Handler that keeps each record's message and
// attributes (times left out, so they compare).
type slogRecorder struct {
	mu      *sync.Mutex
	records *[]string
}

func newSlogRecorder() slogRecorder {
	return slogRecorder{mu: &sync.Mutex{}, records: new([]string)}
}

func (h slogRecorder) Enabled(context.Context, slog.Level) bool { return true }
func (h slogRecorder) WithAttrs([]slog.Attr) slog.Handler       { return h }
func (h slogRecorder) WithGroup(string) slog.Handler            { return h }
func (h slogRecorder) Handle(_ context.Context, r slog.Record) error {
	line := r.Level.String() + " " + r.Message
	r.Attrs(func(a slog.Attr) bool {
		line += " " + a.String()
		return true
	})
	h.mu.Lock()
	defer h.mu.Unlock()
	*h.records = append(*h.records, line)
	return nil
}

func (h slogRecorder) all() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]string(nil), *h.records...)
}

func TestWithSlog(t *testing.T) {
	cases := []struct {
		name  string
		setup func(s *fakeServer)
		opts  []Option
		act   func(h *harness)
		want  []string
	}{{
		name:  "a signal, a failing step and a clean drain",
		setup: func(s *fakeServer) { s.drain = 1500 * time.Millisecond },
		opts:  []Option{WithPreShutdown(func(context.Context) error { return errors.New("no registry") })},
		act:   sendSignal,
		want: []string{
			"INFO lameduck: serving signals=[interrupt terminated]",
			"INFO lameduck: entering lame-duck mode trigger=signal signal=terminated period=3s",
			"WARN lameduck: pre-shutdown step failed step=1 steps=1 error=no registry",
			// SPEC v2 rule 14: pre-shutdown time apart from drain time.
			"INFO lameduck: drained took=1.5s pre_shutdown=0s",
		},
	}, {
		name:  "a context trigger and an expiry",
		setup: func(s *fakeServer) { s.drain = time.Hour },
		act:   cancelCtx,
		want: []string{
			"INFO lameduck: serving signals=[interrupt terminated]",
			"INFO lameduck: entering lame-duck mode trigger=context cause=context canceled period=3s",
			"WARN lameduck: lame-duck period expired period=3s",
			"INFO lameduck: server closed",
		},
	}}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				rec := newSlogRecorder()
				s := newFakeServer()
				c.setup(s)
				h := start(t, s, append(c.opts, WithSlog(slog.New(rec)))...)
				c.act(h)
				<-h.done
				if diff := cmp.Diff(c.want, rec.all()); diff != "" {
					t.Errorf("records (-want +got):\n%s", diff)
				}
				if lines := h.log.all(); len(lines) != 0 {
					t.Errorf("the Logger got %q as well; WithSlog should replace it", lines)
				}
			})
		})
	}
	t.Run("nil is an error", func(t *testing.T) {
		if _, err := NewRunner(newFakeServer(), WithSlog(nil)); err == nil {
			t.Error("NewRunner accepted WithSlog(nil)")
		}
	})
}

// leveledRecorder records each line with its level, as the default glog
// Logger receives them.
type leveledRecorder struct {
	recLogger
}

func (l *leveledRecorder) logAt(level slog.Level, format string, args ...any) {
	l.Infof(level.String()+" "+format, args...)
}

// TestSeverities covers rule 14's severities: failures and forced stops
// reach the default glog Logger at a level that glog's default flags send
// to stderr (glogLogger.logAt maps Warn and above to ERROR).
func TestSeverities(t *testing.T) {
	var _ leveledLogger = glogLogger{}
	synctest.Test(t, func(t *testing.T) {
		s := newFakeServer()
		s.drain, s.closeErr = time.Minute, errClose
		rec := &leveledRecorder{}
		h := start(t, s, WithLogger(rec))
		sendSignal(h)
		time.Sleep(time.Second)
		sendSignal(h)
		<-h.done
		want := []string{
			`INFO lameduck: serving; lame-duck mode begins on "interrupt", "terminated", context cancellation`,
			`INFO lameduck: received signal "terminated"; entering lame-duck mode for up to 3s`,
			`WARN lameduck: received signal "terminated" again; ending the lame-duck period now`,
			"ERROR lameduck: Close failed: fake: close failed",
		}
		if diff := cmp.Diff(want, rec.all()); diff != "" {
			t.Errorf("log lines (-want +got):\n%s", diff)
		}
	})
}
