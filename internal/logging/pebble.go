package logging

import (
	"context"
	"fmt"
	"log/slog"
	"strings"

	"github.com/cockroachdb/pebble/v2"
)

// pebbleLog adapts Pebble's printf-style Logger interface to log/slog.
// A nil slog.Logger discards Info and Error lines. Fatal lines are always
// fatal: Pebble calls Fatalf only for conditions it cannot continue from
// (and does not expect the call to return), so after logging the message
// the adapter panics rather than let the database run in an unknown state.
type pebbleLog struct {
	l *slog.Logger // nil = discard
}

var _ pebble.Logger = pebbleLog{}

// PebbleLogger adapts l (nil discards) to Pebble's Logger interface.
func PebbleLogger(l *slog.Logger) pebble.Logger {
	if l != nil {
		l = l.With(slog.String("component", "pebble"))
	}
	return pebbleLog{l: l}
}

func formatLine(format string, args []any) string {
	return strings.TrimRight(fmt.Sprintf(format, args...), "\n")
}

func (p pebbleLog) log(level slog.Level, format string, args []any) {
	ctx := context.Background()
	if p.l == nil || !p.l.Enabled(ctx, level) {
		return // skip the formatting cost too
	}
	p.l.Log(ctx, level, formatLine(format, args))
}

// Infof implements pebble.Logger.
// Pebble's info lines are routine (WAL replay, flushes): debug level.
func (p pebbleLog) Infof(format string, args ...any) {
	p.log(slog.LevelDebug, format, args)
}

// Errorf implements pebble.Logger.
func (p pebbleLog) Errorf(format string, args ...any) {
	p.log(slog.LevelError, format, args)
}

// Fatalf implements pebble.Logger. It logs at a level above Error and then
// panics; it never returns.
func (p pebbleLog) Fatalf(format string, args ...any) {
	msg := formatLine(format, args)
	if p.l != nil {
		p.l.Log(context.Background(), levelFatal, msg)
	}
	panic("pebble fatal error: " + msg)
}

// levelFatal is the slog level used for Pebble's fatal messages.
const levelFatal = slog.LevelError + 4

// PebbleEvents surfaces the Pebble events an operator needs to see (a
// failing background job, a slow disk, write stalls) without logging every
// flush and compaction.
func PebbleEvents(l *slog.Logger) *pebble.EventListener {
	if l == nil {
		return &pebble.EventListener{}
	}
	l = l.With(slog.String("component", "pebble"))
	ctx := context.Background()
	return &pebble.EventListener{
		BackgroundError: func(err error) {
			l.ErrorContext(ctx, "background error", slog.Any("error", err))
		},
		DiskSlow: func(info pebble.DiskSlowInfo) {
			l.WarnContext(ctx, "disk slow", slog.String("info", info.String()))
		},
		WriteStallBegin: func(info pebble.WriteStallBeginInfo) {
			l.WarnContext(ctx, "write stall begin", slog.String("reason", info.Reason))
		},
		WriteStallEnd: func() {
			l.InfoContext(ctx, "write stall end")
		},
	}
}
