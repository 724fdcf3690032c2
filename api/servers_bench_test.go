package api

import (
	"fmt"
	"os"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/keel-cloud/keel/fsm"
)

// BenchmarkServerCreate: server creates accepted per second through the
// HTTP API of a 3-controller cluster, 64 concurrent clients spread over
// the three. Run: go test -run '^$' -bench ServerCreate -benchtime 5000x ./api/
func BenchmarkServerCreate(b *testing.B) {
	cc := newComputeCloud(b, 3)
	st := cc.Nodes[0].State()
	proj, _ := fsm.ProjectByName(st, "default", "admin")
	apply(b, cc.apiCluster, &fsm.SetQuota{ProjectID: proj.ID, Limits: map[string]int64{"instances": -1, "cores": -1, "ram": -1}, Force: true})
	var next atomic.Int64
	lat := make([]time.Duration, b.N)
	var wg sync.WaitGroup
	b.ResetTimer()
	start := time.Now()
	for w := 0; w < 64; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1)) - 1
				if i >= b.N {
					return
				}
				t0 := time.Now()
				r := cc.createServer(b, i%3, cc.admin, map[string]any{"name": "bench-" + strconv.Itoa(i)})
				lat[i] = time.Since(t0)
				if r.Status != 202 {
					b.Errorf("create: %d %s", r.Status, r.Body)
					return
				}
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	b.StopTimer()
	slices.Sort(lat)
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "creates/s")
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds())/1000, "p99-ms")
	b.ReportMetric(0, "ns/op")
}

// BenchmarkServerDetailPage: latency of GET /servers/detail?limit=1000 with
// KEEL_BENCH_SERVERS servers stored (default 10000), on one controller.
// Run: KEEL_BENCH_SERVERS=100000 go test -run '^$' -bench ServerDetailPage -benchtime 50x ./api/
func BenchmarkServerDetailPage(b *testing.B) {
	n := 10000
	if v, err := strconv.Atoi(os.Getenv("KEEL_BENCH_SERVERS")); err == nil && v > 0 {
		n = v
	}
	cc := newComputeCloud(b, 1)
	st := cc.Nodes[0].State()
	proj, _ := fsm.ProjectByName(st, "default", "admin")
	apply(b, cc.apiCluster, &fsm.SetQuota{ProjectID: proj.ID, Limits: map[string]int64{"instances": -1, "cores": -1, "ram": -1}, Force: true})
	for made := 0; made < n; made += 1000 {
		if r := cc.createServer(b, 0, cc.admin, map[string]any{"name": fmt.Sprintf("b%d", made), "min_count": 1000, "max_count": 1000}); r.Status != 202 {
			b.Fatalf("seed: %d %s", r.Status, r.Body)
		}
	}
	url := cc.url(0) + "/compute/v2.1/servers/detail?limit=1000"
	lat := make([]time.Duration, b.N)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		t0 := time.Now()
		r := do(b, "GET", url, cc.admin, nil)
		lat[i] = time.Since(t0)
		if r.Status != 200 {
			b.Fatalf("list: %d", r.Status)
		}
	}
	b.StopTimer()
	slices.Sort(lat)
	b.ReportMetric(float64(n), "servers")
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds())/1000, "p99-ms")
	b.ReportMetric(0, "ns/op")
}
