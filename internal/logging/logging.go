// Package logging bridges the loggers of Keel's libraries (hashicorp's hclog
// in raft, the standard log package in serf and memberlist, Pebble's) into
// log/slog, so an operator reads one stream with one format.
package logging

import (
	"bytes"
	"context"
	"io"
	"log"
	"log/slog"
	"strings"

	"github.com/hashicorp/go-hclog"
)

// Discard is a logger that drops everything.
func Discard() *slog.Logger { return slog.New(slog.DiscardHandler) }

// HCLog adapts l to hclog.Logger (for hashicorp/raft).
func HCLog(l *slog.Logger, name string) hclog.Logger {
	return &hclogAdapter{l: l.With("component", name), name: name}
}

type hclogAdapter struct {
	l       *slog.Logger
	name    string
	implied []any
}

func hcToSlog(level hclog.Level) slog.Level {
	switch level {
	case hclog.Trace, hclog.Debug:
		return slog.LevelDebug
	case hclog.Warn:
		return slog.LevelWarn
	case hclog.Error:
		return slog.LevelError
	}
	return slog.LevelInfo
}

func (h *hclogAdapter) Log(level hclog.Level, msg string, args ...any) {
	h.l.Log(context.Background(), hcToSlog(level), msg, args...)
}
func (h *hclogAdapter) Trace(msg string, args ...any) { h.Log(hclog.Trace, msg, args...) }
func (h *hclogAdapter) Debug(msg string, args ...any) { h.Log(hclog.Debug, msg, args...) }
func (h *hclogAdapter) Info(msg string, args ...any)  { h.Log(hclog.Info, msg, args...) }
func (h *hclogAdapter) Warn(msg string, args ...any)  { h.Log(hclog.Warn, msg, args...) }
func (h *hclogAdapter) Error(msg string, args ...any) { h.Log(hclog.Error, msg, args...) }
func (h *hclogAdapter) enabled(l slog.Level) bool {
	return h.l.Enabled(context.Background(), l)
}
func (h *hclogAdapter) IsTrace() bool        { return false }
func (h *hclogAdapter) IsDebug() bool        { return h.enabled(slog.LevelDebug) }
func (h *hclogAdapter) IsInfo() bool         { return h.enabled(slog.LevelInfo) }
func (h *hclogAdapter) IsWarn() bool         { return h.enabled(slog.LevelWarn) }
func (h *hclogAdapter) IsError() bool        { return h.enabled(slog.LevelError) }
func (h *hclogAdapter) ImpliedArgs() []any   { return h.implied }
func (h *hclogAdapter) Name() string         { return h.name }
func (h *hclogAdapter) SetLevel(hclog.Level) {}
func (h *hclogAdapter) GetLevel() hclog.Level {
	if h.IsDebug() {
		return hclog.Debug
	}
	return hclog.Info
}
func (h *hclogAdapter) With(args ...any) hclog.Logger {
	return &hclogAdapter{l: h.l.With(args...), name: h.name, implied: append(append([]any{}, h.implied...), args...)}
}
func (h *hclogAdapter) Named(name string) hclog.Logger {
	return &hclogAdapter{l: h.l.With("subsystem", name), name: h.name + "." + name, implied: h.implied}
}
func (h *hclogAdapter) ResetNamed(name string) hclog.Logger {
	return &hclogAdapter{l: h.l, name: name, implied: h.implied}
}
func (h *hclogAdapter) StandardLogger(*hclog.StandardLoggerOptions) *log.Logger {
	return Std(h.l, h.name)
}
func (h *hclogAdapter) StandardWriter(*hclog.StandardLoggerOptions) io.Writer {
	return &stdWriter{l: h.l}
}

// Std returns a *log.Logger (for serf and memberlist) whose lines, written
// as "[LEVEL] subsystem: message", become slog records at that level.
func Std(l *slog.Logger, name string) *log.Logger {
	return log.New(&stdWriter{l: l.With("component", name)}, "", 0)
}

type stdWriter struct{ l *slog.Logger }

func (w *stdWriter) Write(p []byte) (int, error) {
	for _, line := range bytes.Split(bytes.TrimRight(p, "\n"), []byte("\n")) {
		msg := strings.TrimSpace(string(line))
		level := slog.LevelInfo
		for tag, lv := range map[string]slog.Level{"[TRACE]": slog.LevelDebug - 4, "[DEBUG]": slog.LevelDebug, "[INFO]": slog.LevelInfo, "[WARN]": slog.LevelWarn, "[ERR]": slog.LevelError, "[ERROR]": slog.LevelError} {
			if rest, ok := strings.CutPrefix(msg, tag); ok {
				level, msg = lv, strings.TrimSpace(rest)
				break
			}
		}
		w.l.Log(context.Background(), level, msg)
	}
	return len(p), nil
}
