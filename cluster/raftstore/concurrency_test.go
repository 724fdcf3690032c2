package raftstore_test

import (
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/hashicorp/raft"

	"github.com/keel-cloud/keel/cluster/raftstore"
)

// TestConcurrentReadersAndWriter appends and compacts on one goroutine, as
// raft does, while readers check that whatever they observe is consistent.
// Run it with -race.
func TestConcurrentReadersAndWriter(t *testing.T) {
	s, _ := openStore(t, raftstore.Options{NoSync: true})

	const (
		total    = 3000
		batch    = 10
		keep     = 100 // entries kept behind the head on compaction
		compactN = 250 // compact every this many entries
		readers  = 4
	)
	var done atomic.Bool
	var wg sync.WaitGroup

	wg.Add(1)
	go func() { // the writer
		defer wg.Done()
		defer done.Store(true)
		for from := uint64(1); from <= total; from += batch {
			if err := s.StoreLogs(entries(from, from+batch-1, 1)); err != nil {
				t.Errorf("StoreLogs: %v", err)
				return
			}
			last := from + batch - 1
			if last%compactN == 0 {
				first, _ := s.FirstIndex()
				if err := s.DeleteRange(first, last-keep); err != nil {
					t.Errorf("DeleteRange: %v", err)
					return
				}
			}
		}
	}()

	wg.Add(1)
	go func() { // stable store traffic, as raft's term and vote updates
		defer wg.Done()
		for i := uint64(1); !done.Load(); i++ {
			if err := s.SetUint64([]byte("CurrentTerm"), i); err != nil {
				t.Errorf("SetUint64: %v", err)
				return
			}
		}
	}()

	// check reads idx, which the caller saw within the cached bounds. The
	// store narrows its bounds before deleting, so a missing entry must
	// now lie below FirstIndex (compacted meanwhile).
	check := func(idx uint64) bool {
		var l raft.Log
		err := s.GetLog(idx, &l)
		switch {
		case err == raft.ErrLogNotFound:
			if now, _ := s.FirstIndex(); idx >= now {
				t.Errorf("GetLog(%d) not found but first index is %d", idx, now)
				return false
			}
		case err != nil:
			t.Errorf("GetLog(%d): %v", idx, err)
			return false
		case l.Index != idx || string(l.Data) != string(entry(idx, 1).Data):
			t.Errorf("GetLog(%d) returned entry %d with data %q", idx, l.Index, l.Data)
			return false
		}
		return true
	}

	var reads atomic.Int64
	for r := 0; r < readers; r++ {
		wg.Add(1)
		go func(seed uint64) {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(seed, seed))
			var prevFirst, prevLast, prevTerm uint64
			for !done.Load() {
				last, err := s.LastIndex()
				if err != nil {
					t.Errorf("LastIndex: %v", err)
					return
				}
				first, err := s.FirstIndex()
				if err != nil {
					t.Errorf("FirstIndex: %v", err)
					return
				}
				// The writer only appends and compacts the head, so
				// neither bound ever moves backwards.
				if last < prevLast || first < prevFirst {
					t.Errorf("bounds went backwards: [%d, %d] after [%d, %d]", first, last, prevFirst, prevLast)
					return
				}
				prevFirst, prevLast = first, last
				if last == 0 {
					continue
				}
				if !check(last) {
					return
				}
				if first <= last && !check(first+rng.Uint64N(last-first+1)) {
					return
				}
				term, err := s.GetUint64([]byte("CurrentTerm"))
				if err != nil && err.Error() != "not found" {
					t.Errorf("GetUint64: %v", err)
					return
				}
				if term < prevTerm {
					t.Errorf("CurrentTerm went backwards: %d after %d", term, prevTerm)
					return
				}
				prevTerm = term
				reads.Add(1)
			}
		}(uint64(r))
	}
	wg.Wait()
	if t.Failed() {
		return
	}
	if reads.Load() == 0 {
		t.Fatal("readers never overlapped the writer")
	}
	checkBounds(t, s, total/compactN*compactN-keep+1, total)
	t.Logf("%d concurrent reads", reads.Load())
}
