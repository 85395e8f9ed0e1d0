package lameduck

import (
	"context"
	"log/slog"

	"github.com/golang/glog"
)

// note records one phase of the run: as a record with attributes when the
// Runner has a *slog.Logger, and otherwise as a line through its Logger.
func (ru *run) note(level slog.Level, msg string, attrs []slog.Attr, format string, args ...any) {
	if ru.cfg.slog != nil {
		ru.cfg.slog.LogAttrs(context.Background(), level, msg, attrs...)
		return
	}
	if l, ok := ru.cfg.logger.(leveledLogger); ok {
		l.logAt(level, format, args...)
		return
	}
	ru.cfg.logger.Infof(format, args...)
}

func (ru *run) logServing() {
	ru.note(slog.LevelInfo, "lameduck: serving", []slog.Attr{slog.Any("signals", ru.signalNames())},
		"lameduck: serving; lame-duck mode begins on %s", ru.triggers())
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
	// Depth 2 skips this adapter and the Runner's note, so the file:line
	// in the log points at the phase that logged.
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
