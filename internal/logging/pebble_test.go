package logging

import (
	"context"
	"log/slog"
	"strings"
	"sync"
	"testing"
)

// recordingHandler keeps the records it receives.
type recordingHandler struct {
	mu    sync.Mutex
	level slog.Level
	recs  []string
}

func (h *recordingHandler) Enabled(_ context.Context, l slog.Level) bool { return l >= h.level }
func (h *recordingHandler) WithAttrs([]slog.Attr) slog.Handler           { return h }
func (h *recordingHandler) WithGroup(string) slog.Handler                { return h }
func (h *recordingHandler) Handle(_ context.Context, r slog.Record) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.recs = append(h.recs, r.Level.String()+" "+r.Message)
	return nil
}

func TestPebbleLoggerRoutesToSlog(t *testing.T) {
	h := &recordingHandler{level: slog.LevelDebug}
	l := PebbleLogger(slog.New(h))
	l.Infof("opened %d tables\n", 3)
	l.Errorf("background error: %s", "disk full")
	func() {
		defer func() {
			r := recover()
			if r == nil || !strings.Contains(r.(string), "manifest gone") {
				t.Errorf("Fatalf recovered %v, want a panic naming the message", r)
			}
		}()
		l.Fatalf("manifest %s", "gone")
		t.Error("Fatalf returned")
	}()
	want := []string{"DEBUG opened 3 tables", "ERROR background error: disk full", "ERROR+4 manifest gone"}
	if strings.Join(h.recs, "|") != strings.Join(want, "|") {
		t.Fatalf("records = %q, want %q", h.recs, want)
	}

	// Levels the handler drops are not formatted or emitted.
	h = &recordingHandler{level: slog.LevelError}
	PebbleLogger(slog.New(h)).Infof("noise")
	if len(h.recs) != 0 {
		t.Fatalf("records = %q, want none", h.recs)
	}
}

func TestPebbleLoggerNilDiscards(t *testing.T) {
	l := PebbleLogger(nil)
	l.Infof("dropped")
	l.Errorf("dropped")
	defer func() {
		if recover() == nil {
			t.Error("Fatalf with a nil logger returned instead of panicking")
		}
	}()
	l.Fatalf("still fatal")
}
