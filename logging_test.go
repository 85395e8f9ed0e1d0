package lameduck

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"syscall"
	"testing"
	"testing/synctest"
	"time"

	"github.com/google/go-cmp/cmp"
)

// TestLogging covers rule 14: each phase is logged once.
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
			"lameduck: stop report: clean after 1.5s, begun by signal (terminated); phases: Shutdown 1.5s",
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
			"lameduck: lame-duck period of 3s expired during Shutdown (pre-shutdown steps took 0s)",
			"lameduck: server closed",
			"lameduck: stop report: expired after 3s, begun by context (context canceled); phases: pre-shutdown step 1 of 1 0s, Shutdown 3s, Close 0s",
		},
	}, {
		name:  "named steps: a failure and an expiry during a wait",
		setup: func(s *fakeServer) {},
		opts: []Option{WithPreShutdown(
			Named("deregister", func(context.Context) error { return errors.New("consul unreachable") }),
			Delay(time.Second),
			Named("wait for the load balancer", Delay(time.Hour)))},
		act: sendSignal,
		want: []string{
			serving,
			`lameduck: received signal "terminated"; entering lame-duck mode for up to 3s`,
			"lameduck: pre-shutdown step 1 of 3 (deregister) failed: consul unreachable",
			// The Delay's own "context deadline exceeded" is not a failure.
			"lameduck: lame-duck period of 3s expired during pre-shutdown step 3 of 3 (wait for the load balancer)",
			"lameduck: server closed",
			"lameduck: stop report: expired after 3s, begun by signal (terminated); phases: pre-shutdown step 1 of 3 (deregister) 0s, " +
				"pre-shutdown step 2 of 3 1s, pre-shutdown step 3 of 3 (wait for the load balancer) 2s, Close 0s",
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
			`lameduck: received signal "hangup" again after 1s, during Shutdown; ending the lame-duck period now`,
			"lameduck: Close failed: fake: close failed",
			"lameduck: stop report: forced after 1s, begun by signal (hangup); phases: Shutdown 1s, Close 0s",
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
			"lameduck: stop report: failed after 0s, begun by context (context canceled); phases: Shutdown 0s, Close 0s",
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
				h := runInBubble(t, s, c.opts...)
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
		a.Value = a.Value.Resolve()
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
	// slog's way: a constant message, the values in typed attributes.
	const slogServing = "INFO lameduck: serving signals=[interrupt terminated]"
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
			slogServing,
			"INFO lameduck: entering lame-duck mode trigger=signal signal=terminated period=3s",
			"WARN lameduck: step failed stage=pre-shutdown step 1 of 1 step=1 steps=1 error=no registry",
			// The pre-shutdown steps' time apart from the drain's (rule 14).
			"INFO lameduck: drained took=1.5s pre_shutdown=0s shutdown=1.5s",
			"INFO lameduck: stop report report=[state=stopped outcome=clean trigger=signal cause=terminated began=2000-01-01 00:00:00 +0000 UTC period=3s took=1.5s" +
				" phases=[pre_shutdown_1=[name=pre-shutdown step 1 of 1 took=0s error=no registry] shutdown=[name=Shutdown took=1.5s]]]",
		},
	}, {
		name:  "a context trigger and an expiry",
		setup: func(s *fakeServer) { s.drain = time.Hour },
		act:   cancelCtx,
		want: []string{
			slogServing,
			"INFO lameduck: entering lame-duck mode trigger=context cause=context canceled period=3s",
			"WARN lameduck: lame-duck period expired period=3s stage=Shutdown",
			"INFO lameduck: server closed",
			"WARN lameduck: stop report report=[state=failed outcome=expired trigger=context cause=context canceled began=2000-01-01 00:00:00 +0000 UTC period=3s took=3s" +
				" phases=[shutdown=[name=Shutdown took=3s error=context deadline exceeded] close=[name=Close took=0s]]]",
		},
	}}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				rec := newSlogRecorder()
				s := newFakeServer()
				c.setup(s)
				h := runInBubble(t, s, append(c.opts, WithSlog(slog.New(rec)))...)
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
		h := runInBubble(t, s, WithLogger(rec))
		sendSignal(h)
		time.Sleep(time.Second)
		sendSignal(h)
		<-h.done
		want := []string{
			`INFO lameduck: serving; lame-duck mode begins on "interrupt", "terminated", context cancellation`,
			`INFO lameduck: received signal "terminated"; entering lame-duck mode for up to 3s`,
			`WARN lameduck: received signal "terminated" again after 1s, during Shutdown; ending the lame-duck period now`,
			"ERROR lameduck: Close failed: fake: close failed",
			"WARN lameduck: stop report: forced after 1s, begun by signal (terminated); phases: Shutdown 1s, Close 0s",
		}
		if diff := cmp.Diff(want, rec.all()); diff != "" {
			t.Errorf("log lines (-want +got):\n%s", diff)
		}
	})
}

// TestEachEventSaidOnce: one event feeds both sinks. A run logged through
// a Logger and the same run through WithSlog say the same events, at the
// same levels, in the same order, one line and one record per event; each
// slog message is a constant (no placeholder, no value in it).
func TestEachEventSaidOnce(t *testing.T) {
	run := func(opts ...Option) {
		synctest.Test(t, func(t *testing.T) {
			s := newFakeServer()
			s.drain, s.closeErr = time.Minute, errClose
			h := runInBubble(t, s, append([]Option{WithPreShutdown(
				Named("deregister", func(context.Context) error { return errors.New("consul unreachable") }),
				Delay(500*time.Millisecond))}, opts...)...)
			sendSignal(h)
			time.Sleep(2 * time.Second)
			sendSignal(h)
			<-h.done
		})
	}
	rec := &leveledRecorder{}
	run(WithLogger(rec))
	srec := newSlogRecorder()
	run(WithSlog(slog.New(srec)))
	var textLevels, slogLevels []string
	for _, l := range rec.all() {
		level, _, _ := strings.Cut(l, " ")
		textLevels = append(textLevels, level)
	}
	for _, r := range srec.all() {
		level, rest, _ := strings.Cut(r, " ")
		slogLevels = append(slogLevels, level)
		msg, _, _ := strings.Cut(rest, "=")
		if strings.ContainsAny(msg, "{}") || strings.Contains(msg, "consul") || strings.Contains(msg, "terminated") {
			t.Errorf("slog message %q is not a constant", rest)
		}
	}
	if diff := cmp.Diff(textLevels, slogLevels); diff != "" {
		t.Errorf("Logger levels vs slog levels (-Logger +slog):\n%s", diff)
	}
	if len(textLevels) != 6 {
		t.Errorf("got %d lines, want 6 (serving, trigger, step failure, second signal, Close failed, report, and none twice):\n%s",
			len(textLevels), strings.Join(rec.all(), "\n"))
	}
}

// TestSlogJSONDurations: a JSON record keeps each duration as a number
// (slog.Duration, in nanoseconds) and carries the sentence with the
// durations a person reads at a glance.
func TestSlogJSONDurations(t *testing.T) {
	var out bytes.Buffer
	synctest.Test(t, func(t *testing.T) {
		s := newFakeServer()
		s.drain = 412 * time.Millisecond
		h := runInBubble(t, s, WithSlog(slog.New(slog.NewJSONHandler(&out, nil))),
			WithPreShutdown(Delay(time.Second)))
		sendSignal(h)
		<-h.done
	})
	var drained map[string]any
	for line := range strings.Lines(out.String()) {
		var rec map[string]any
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			t.Fatalf("a record is not JSON: %v\n%s", err, line)
		}
		if strings.HasPrefix(rec["msg"].(string), "lameduck: drained") {
			drained = rec
		}
	}
	if drained == nil {
		t.Fatalf("no drained record in:\n%s", &out)
	}
	want := map[string]any{
		"level":        "INFO",
		"msg":          "lameduck: drained",
		"took":         float64(1412 * time.Millisecond),
		"pre_shutdown": float64(time.Second),
		"shutdown":     float64(412 * time.Millisecond),
	}
	delete(drained, "time")
	if diff := cmp.Diff(want, drained); diff != "" {
		t.Errorf("drained record (-want +got):\n%s", diff)
	}
}

func TestRender(t *testing.T) {
	cases := []struct {
		name  string
		tmpl  string
		attrs []slog.Attr
		want  string
	}{
		{"no placeholders", "lameduck: server closed", nil, "lameduck: server closed"},
		{"a duration of seconds keeps two decimals", "in {d}", []slog.Attr{slog.Duration("d", 1412122344)}, "in 1.41s"},
		{"milliseconds are whole", "in {d}", []slog.Attr{slog.Duration("d", 412122344)}, "in 412ms"},
		{"a few milliseconds keep one decimal", "in {d}", []slog.Attr{slog.Duration("d", 1512344)}, "in 1.5ms"},
		{"an error is its message", "failed: {error}", []slog.Attr{slog.Any("error", errClose)}, "failed: fake: close failed"},
		{"a list of names is quoted", "on {s}", []slog.Attr{slog.Any("s", []string{"interrupt", "terminated"})}, `on "interrupt", "terminated"`},
		{"an unknown placeholder stays", "{nope} and {n}", []slog.Attr{slog.Int("n", 3)}, "{nope} and 3"},
		{"attributes it does not name are left out", "stop", []slog.Attr{slog.String("trigger", "stop")}, "stop"},
		{"a stack follows on its own lines", "{what} panicked", []slog.Attr{slog.String("what", "Close"), slog.String("stack", "goroutine 1\nmain()")},
			"Close panicked\ngoroutine 1\nmain()"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := render(c.tmpl, c.attrs); got != c.want {
				t.Errorf("render(%q) = %q, want %q", c.tmpl, got, c.want)
			}
		})
	}
}
