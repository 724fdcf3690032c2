package cluster

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/keel-cloud/keel/fsm"
)

// BenchmarkPropose measures small proposals through a 3-node loopback
// cluster with durable (fsynced) Raft logs: ops/s and latency percentiles at
// several concurrencies, proposed on the leader and forwarded from a
// follower. Run: go test -run x -bench Propose -benchtime 20000x ./cluster/
func BenchmarkPropose(b *testing.B) {
	c := NewTestCluster(b, 3, func(cfg *Config) { cfg.Timing = LANTiming() })
	for _, via := range []string{"leader", "follower"} {
		for _, conc := range []int{1, 16, 256} {
			b.Run(fmt.Sprintf("via=%s/c=%d", via, conc), func(b *testing.B) {
				leader := c.WaitLeader(10 * time.Second)
				node := leader.Node
				if via == "follower" {
					node = c.Followers()[0].Node
				}
				benchProposals(b, node, conc)
			})
		}
	}
}

func benchProposals(b *testing.B, node *Node, conc int) {
	var next atomic.Int64
	lat := make([]time.Duration, b.N)
	var errs atomic.Int64
	value := make([]byte, 100)
	var wg sync.WaitGroup
	b.ResetTimer()
	start := time.Now()
	for w := 0; w < conc; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1)) - 1
				if i >= b.N {
					return
				}
				t0 := time.Now()
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				_, err := node.Apply(ctx, &fsm.KVPut{Key: fmt.Sprintf("bench/%d", i%10000), Value: value})
				cancel()
				lat[i] = time.Since(t0)
				if err != nil {
					errs.Add(1)
				}
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	b.StopTimer()
	if e := errs.Load(); e > 0 {
		b.Fatalf("%d of %d proposals failed", e, b.N)
	}
	slices.Sort(lat)
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "proposals/s")
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds())/1000, "p99-ms")
	b.ReportMetric(0, "ns/op")
}

// BenchmarkLeaderFailover kills the leader of a 3-node cluster (as a crash
// would: no leave, no transfer) once per iteration, and measures the time to
// the first write acknowledged afterwards, proposed on a survivor. The
// killed node is restarted before the next trial.
// Run: go test -run x -bench LeaderFailover -benchtime 10x ./cluster/
func BenchmarkLeaderFailover(b *testing.B) {
	c := NewTestCluster(b, 3, func(cfg *Config) { cfg.Timing = LANTiming() })
	var times []time.Duration
	for i := 0; i < b.N; i++ {
		leader := c.WaitLeader(20 * time.Second)
		c.WaitConverged(20 * time.Second)
		idx := slices.Index(c.Nodes, leader)
		survivor := c.Followers()[0]
		killed := time.Now()
		c.Kill(idx)
		for {
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			_, err := survivor.Apply(ctx, &fsm.KVPut{Key: "failover", Value: []byte{byte(i)}})
			cancel()
			if err == nil {
				break
			}
			if time.Since(killed) > 30*time.Second {
				b.Fatalf("no write accepted 30s after the leader kill: %v", err)
			}
		}
		times = append(times, time.Since(killed))
		c.Restart(idx)
	}
	slices.Sort(times)
	b.ReportMetric(float64(times[len(times)/2].Milliseconds()), "p50-ms")
	b.ReportMetric(float64(times[len(times)*99/100].Milliseconds()), "p99-ms")
	b.ReportMetric(float64(times[len(times)-1].Milliseconds()), "max-ms")
	b.ReportMetric(0, "ns/op")
}
