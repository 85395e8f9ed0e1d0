package lameduck

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/golang/glog"
)

// Each thing a Runner logs is said once, as an event: a severity, a
// constant message, a sentence template and attributes. The template's
// {placeholders} name attributes, such as
//
//	lameduck: drained in {took} (pre-shutdown steps {pre_shutdown}, Shutdown {shutdown})
//
// A Logger gets the sentence with each placeholder filled in, in the units a
// person reads (durations rounded: "1.41s"). WithSlog gets a record as slog
// would have it: the constant message ("lameduck: drained"), the same for
// every run and so easy to search for, and the values as attributes that
// keep their types (a duration stays a slog.Duration). Attributes that the
// template does not name (such as "trigger") are for machines and left out
// of the sentence, except a panic's "stack", which follows it on lines of
// its own.

// log records one event through whichever sink the Runner has. tmpl is ""
// when the sentence is msg itself.
func (ru *run) log(level slog.Level, msg, tmpl string, attrs ...slog.Attr) {
	if !ru.logging() {
		return
	}
	if ru.cfg.slog != nil {
		ru.cfg.slog.LogAttrs(context.Background(), level, msg, attrs...)
		return
	}
	if tmpl == "" {
		tmpl = msg
	}
	text := render(tmpl, attrs)
	if l, ok := ru.cfg.logger.(leveledLogger); ok {
		l.logAt(level, "%s", text)
		return
	}
	ru.cfg.logger.Infof("%s", text)
}

// logging reports whether the Runner logs at all: WithoutLogger says not.
func (ru *run) logging() bool {
	_, off := ru.cfg.logger.(nopLogger)
	return ru.cfg.slog != nil || !off
}

// logReport logs the stop's Report as Run's last line: at Warn when the
// period ran out, so that glog's default flags put it on stderr. Without a
// logger it builds nothing: the Report, its text and the ReportWork calls
// behind it would only delay Run's return (by ~40 µs, a tenth of an HTTP
// drain; issue #21).
func (ru *run) logReport() {
	if !ru.logging() {
		return
	}
	rep := ru.r.Report()
	level := slog.LevelInfo
	switch rep.Outcome {
	case "expired", "forced":
		level = slog.LevelWarn
	case "failed":
		level = slog.LevelError
	}
	if ru.cfg.slog != nil {
		ru.cfg.slog.LogAttrs(context.Background(), level, "lameduck: stop report", slog.Any("report", rep))
		return
	}
	ru.log(level, "lameduck: stop report: "+rep.String(), "")
}

// render fills in tmpl's placeholders from attrs.
func render(tmpl string, attrs []slog.Attr) string {
	var b strings.Builder
	rest := tmpl
	for {
		open := strings.IndexByte(rest, '{')
		if open < 0 {
			break
		}
		end := strings.IndexByte(rest[open:], '}')
		if end < 0 {
			break
		}
		b.WriteString(rest[:open])
		key := rest[open+1 : open+end]
		if v, ok := lookup(attrs, key); ok {
			b.WriteString(human(v))
		} else {
			b.WriteString(rest[open : open+end+1])
		}
		rest = rest[open+end+1:]
	}
	b.WriteString(rest)
	if stack, ok := lookup(attrs, "stack"); ok {
		b.WriteString("\n")
		b.WriteString(stack.String())
	}
	return b.String()
}

func lookup(attrs []slog.Attr, key string) (slog.Value, bool) {
	for _, a := range attrs {
		if a.Key == key {
			return a.Value.Resolve(), true
		}
	}
	return slog.Value{}, false
}

// human writes v the way a person reads it quickly.
func human(v slog.Value) string {
	switch v.Kind() {
	case slog.KindDuration:
		return roundDuration(v.Duration()).String()
	case slog.KindAny:
		switch x := v.Any().(type) {
		case error:
			return message(x) // every sentence already begins "lameduck: "
		case []string:
			quoted := make([]string, len(x))
			for i, s := range x {
				quoted[i] = fmt.Sprintf("%q", s)
			}
			return strings.Join(quoted, ", ")
		}
	}
	return v.String()
}

// roundDuration keeps about three significant figures: 1.41s, 412ms, 1.5ms.
func roundDuration(d time.Duration) time.Duration {
	switch {
	case d >= time.Second:
		return d.Round(10 * time.Millisecond)
	case d >= 10*time.Millisecond:
		return d.Round(time.Millisecond)
	case d >= time.Millisecond:
		return d.Round(100 * time.Microsecond)
	}
	return d.Round(time.Microsecond)
}

func (ru *run) logServing() {
	if len(ru.cfg.signals) == 0 {
		ru.log(slog.LevelInfo, "lameduck: serving", "lameduck: serving; lame-duck mode begins on context cancellation")
		return
	}
	ru.log(slog.LevelInfo, "lameduck: serving", "lameduck: serving; lame-duck mode begins on {signals}, context cancellation",
		slog.Any("signals", ru.signalNames()))
}

// flushLog writes out what the default logger buffers, so that the lines
// of a stop are on disk before main calls os.Exit.
func (ru *run) flushLog() {
	if _, ok := ru.cfg.logger.(glogLogger); ok && ru.cfg.slog == nil {
		glog.Flush()
	}
}

// leveledLogger is a Logger that also knows severities; the default glog
// Logger is one, so that failures reach stderr.
type leveledLogger interface {
	logAt(level slog.Level, format string, args ...any)
}

// glogLogger is the default Logger.
type glogLogger struct{}

func (glogLogger) Infof(format string, args ...any) {
	// Depth 2 skips this adapter and the Runner's log method, so the
	// file:line in the log points at the phase that logged.
	glog.InfoDepthf(2, format, args...)
}

// logAt logs failures and forced stops (slog's Warn and above) at glog's
// ERROR severity: with glog's default flags (-stderrthreshold=ERROR) only
// that severity reaches stderr, where an operator looks first.
func (glogLogger) logAt(level slog.Level, format string, args ...any) {
	if level >= slog.LevelWarn {
		glog.ErrorDepthf(2, format, args...)
		return
	}
	glog.InfoDepthf(2, format, args...)
}
