package raftstore_test

import (
	"path/filepath"
	"testing"

	"github.com/hashicorp/raft"

	"github.com/keel-cloud/keel/cluster/raftstore"
)

// TestDurableAcrossReopen closes and reopens a store several times and
// checks logs, cached bounds and stable values all come back.
func TestDurableAcrossReopen(t *testing.T) {
	for _, tc := range []struct {
		name string
		opts raftstore.Options
	}{
		{"sync", raftstore.Options{}},
		{"nosync", raftstore.Options{NoSync: true}}, // a clean Close must still persist
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "raft")
			reopen := func(s *raftstore.Store) *raftstore.Store {
				t.Helper()
				if s != nil {
					if err := s.Close(); err != nil {
						t.Fatalf("Close: %v", err)
					}
				}
				s, err := raftstore.Open(dir, tc.opts)
				if err != nil {
					t.Fatalf("Open: %v", err)
				}
				return s
			}

			s := reopen(nil)
			for from := uint64(1); from <= 300; from += 50 {
				mustStore(t, s, entries(from, from+49, from/100+1))
			}
			if err := s.DeleteRange(1, 50); err != nil { // compaction
				t.Fatal(err)
			}
			if err := s.DeleteRange(281, 300); err != nil { // conflicting suffix
				t.Fatal(err)
			}
			if err := s.SetUint64([]byte("CurrentTerm"), 42); err != nil {
				t.Fatal(err)
			}
			if err := s.Set([]byte("LastVoteCand"), []byte("node-7")); err != nil {
				t.Fatal(err)
			}

			s = reopen(s)
			checkBounds(t, s, 51, 280)
			for i := uint64(1); i <= 300; i++ {
				var l raft.Log
				err := s.GetLog(i, &l)
				if i < 51 || i > 280 {
					if err != raft.ErrLogNotFound {
						t.Fatalf("GetLog(%d) after reopen = %v, want ErrLogNotFound", i, err)
					}
					continue
				}
				if err != nil {
					t.Fatalf("GetLog(%d) after reopen: %v", i, err)
				}
				sameLog(t, &l, entry(i, (i-1)/100+1))
			}
			if v, err := s.GetUint64([]byte("CurrentTerm")); err != nil || v != 42 {
				t.Fatalf("GetUint64 after reopen = %d, %v; want 42", v, err)
			}
			if v, err := s.Get([]byte("LastVoteCand")); err != nil || string(v) != "node-7" {
				t.Fatalf("Get after reopen = %q, %v; want node-7", v, err)
			}

			mustStore(t, s, entries(281, 290, 9))
			s = reopen(s)
			checkBounds(t, s, 51, 290)

			if err := s.DeleteRange(51, 290); err != nil {
				t.Fatal(err)
			}
			s = reopen(s)
			checkBounds(t, s, 0, 0)
			if v, err := s.GetUint64([]byte("CurrentTerm")); err != nil || v != 42 {
				t.Fatalf("GetUint64 after deleting all logs = %d, %v; want 42", v, err)
			}
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
		})
	}
}
