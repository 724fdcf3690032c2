package raftstore

import (
	"context"
	"log/slog"
	"path/filepath"
	"sync/atomic"
	"testing"
)

// TestWritesAreSyncedByDefault guards the durability contract: the zero
// Options must fsync every write, and only NoSync may turn that off.
func TestWritesAreSyncedByDefault(t *testing.T) {
	for _, tc := range []struct {
		opts     Options
		wantSync bool
	}{
		{Options{}, true},
		{Options{NoSync: true}, false},
	} {
		s, err := Open(filepath.Join(t.TempDir(), "raft"), tc.opts)
		if err != nil {
			t.Fatal(err)
		}
		if s.writeOpts.Sync != tc.wantSync {
			t.Errorf("Options%+v: write Sync = %v, want %v", tc.opts, s.writeOpts.Sync, tc.wantSync)
		}
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
	}
}

// countingHandler counts the records it receives.
type countingHandler struct{ n atomic.Int64 }

func (h *countingHandler) Enabled(context.Context, slog.Level) bool  { return true }
func (h *countingHandler) WithAttrs([]slog.Attr) slog.Handler        { return h }
func (h *countingHandler) WithGroup(string) slog.Handler             { return h }
func (h *countingHandler) Handle(context.Context, slog.Record) error { h.n.Add(1); return nil }

// TestOpenUsesLogger checks Pebble's lines reach the given logger rather
// than the standard library's log package.
func TestOpenUsesLogger(t *testing.T) {
	h := &countingHandler{}
	s, err := Open(t.TempDir(), Options{Logger: slog.New(h)})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if h.n.Load() == 0 {
		t.Fatal("no Pebble log lines reached the slog logger")
	}
}
