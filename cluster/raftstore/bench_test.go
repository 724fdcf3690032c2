package raftstore_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/hashicorp/raft"

	"github.com/keel-cloud/keel/cluster/raftstore"
)

func benchLogs(from uint64, n int, data []byte) []*raft.Log {
	logs := make([]*raft.Log, n)
	now := time.Now()
	for i := range logs {
		logs[i] = &raft.Log{Index: from + uint64(i), Term: 1, Type: raft.LogCommand, Data: data, AppendedAt: now}
	}
	return logs
}

// BenchmarkStoreLogs measures synced appends of 128-byte entries, as raft
// issues them: one StoreLogs call per batch.
func BenchmarkStoreLogs(b *testing.B) {
	data := make([]byte, 128)
	for _, size := range []int{1, 64, 512} {
		b.Run(fmt.Sprintf("batch=%d", size), func(b *testing.B) {
			s, _ := openStore(b, raftstore.Options{}) // synced, as in production
			logs := benchLogs(1, size, data)
			b.SetBytes(int64(size * len(data)))
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				// Renumbering in place is negligible next to the fsync and
				// makes every call append fresh indexes.
				for j, l := range logs {
					l.Index = uint64(i*size+j) + 1
				}
				if err := s.StoreLogs(logs); err != nil {
					b.Fatal(err)
				}
			}
			b.StopTimer()
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*size), "ns/entry")
		})
	}
}

// BenchmarkGetLog measures random point reads over 10,000 stored entries.
func BenchmarkGetLog(b *testing.B) {
	const stored = 10_000
	s, _ := openStore(b, raftstore.Options{NoSync: true}) // the load is not what is measured
	data := make([]byte, 128)
	for from := uint64(1); from <= stored; from += 500 {
		if err := s.StoreLogs(benchLogs(from, 500, data)); err != nil {
			b.Fatal(err)
		}
	}
	var l raft.Log
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		// A fixed odd stride visits indexes in a scattered order.
		idx := uint64(i)*7919%stored + 1
		if err := s.GetLog(idx, &l); err != nil {
			b.Fatal(err)
		}
	}
}
