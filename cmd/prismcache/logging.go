package main

import (
	"io"
	"log/slog"
	"os"
)

// newLogger logs at level in format: text, json, or auto — text when w is
// a terminal, JSON otherwise (for log collectors). In JSON, durations are
// seconds as a number (0.25), which log processors can compare and sum;
// text keeps Go's "250ms". docs/logging.md lists the fields.
func newLogger(w io.Writer, level, format string) *slog.Logger {
	var l slog.Level
	_ = l.UnmarshalText([]byte(level))
	opts := &slog.HandlerOptions{Level: l}
	if jsonLogs(w, format) {
		opts.ReplaceAttr = secondsForDurations
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

// jsonLogs reports whether logs in format written to w are JSON.
func jsonLogs(w io.Writer, format string) bool {
	return format == "json" || (format != "text" && !isTerminal(w))
}

// secondsForDurations writes a time.Duration as float seconds.
func secondsForDurations(_ []string, a slog.Attr) slog.Attr {
	if a.Value.Kind() == slog.KindDuration {
		a.Value = slog.Float64Value(a.Value.Duration().Seconds())
	}
	return a
}

func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}
