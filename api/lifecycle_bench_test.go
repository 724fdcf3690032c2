package api

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/keel-cloud/keel/agent"
	"github.com/keel-cloud/keel/agent/driver"
	"github.com/keel-cloud/keel/agent/driver/fake"
	"github.com/keel-cloud/keel/cluster"
	"github.com/keel-cloud/keel/fsm"
)

// BenchmarkBootToActive: servers per second from the create request to
// ACTIVE, on a 3-controller cluster with N simulated hosts (keel-agents
// with the fake driver, in this process), 16 clients creating through the
// three controllers in requests of 50 servers. Each server's
// create-to-ACTIVE latency is its launched_at minus its created_at, both
// stamped by the controllers. One op is one server.
// Run: go test -run '^$' -bench BootToActive -benchtime 5000x ./api/
func BenchmarkBootToActive(b *testing.B) {
	for _, hosts := range []int{10, 100, 1000} {
		b.Run(fmt.Sprintf("hosts=%d", hosts), func(b *testing.B) { benchBootToActive(b, hosts) })
	}
}

func benchBootToActive(b *testing.B, nhosts int) {
	// Production timing: the test timing's short heartbeat timeout would
	// call elections when a thousand agents in this process starve the
	// controllers of CPU.
	cc := newComputeCloudWith(b, 3, true, func(c *cluster.Config) { c.Timing = cluster.LANTiming() })
	proj := cc.projectID(b, "admin")
	apply(b, cc.apiCluster, &fsm.SetQuota{ProjectID: proj, Limits: map[string]int64{"instances": -1, "cores": -1, "ram": -1}, Force: true})
	var urls []string
	for i := range cc.Nodes {
		urls = append(urls, cc.url(i))
	}
	// The simulated hosts share one transport and one listener's address
	// (console output is not exercised here), as keel-agent --fake-hosts does.
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConns, tr.MaxIdleConnsPerHost = 0, 2*nhosts+8 // no total cap: no redials
	// Hosts large enough for every server of the run: this measures the
	// flow, not a full cloud (which ends in "No valid host").
	big := fake.Config{Capacity: driver.Capacity{VCPUs: 1024, MemoryMB: 4 << 20, DiskGB: 1 << 20}}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	for i := range nhosts {
		a, err := agent.New(agent.Config{
			Name: fmt.Sprintf("sim-%04d", i+1), Controllers: []string{urls[i%3], urls[(i+1)%3], urls[(i+2)%3]},
			ClusterKey: cc.Key, AdvertiseAddr: "127.0.0.1:1", Driver: fake.New(big), Transport: tr,
		})
		if err != nil {
			b.Fatal(err)
		}
		wg.Add(1)
		go func() { defer wg.Done(); a.Run(ctx) }()
	}
	b.Cleanup(func() { cancel(); wg.Wait() })
	st := cc.Nodes[0].State()
	cluster.WaitFor(b, 60*time.Second, "hosts registered", func() bool {
		hs, _ := fsm.ListHosts(st)
		return len(hs) == nhosts
	})

	const perRequest = 50
	b.ResetTimer()
	start := time.Now()
	var next atomic.Int64
	var cwg sync.WaitGroup
	for w := range 16 {
		cwg.Add(1)
		go func() {
			defer cwg.Done()
			for {
				first := int(next.Add(perRequest)) - perRequest
				if first >= b.N {
					return
				}
				n := min(perRequest, b.N-first)
				body := map[string]any{"name": "boot-" + strconv.Itoa(first), "min_count": n, "max_count": n}
				if r := cc.createServer(b, w%3, cc.admin, body); r.Status != 202 {
					b.Errorf("create: %d %s", r.Status, r.Body)
					return
				}
			}
		}()
	}
	cwg.Wait()
	accepted := time.Since(start)
	var lat []time.Duration
	cluster.WaitFor(b, 10*time.Minute, "every server ACTIVE", func() bool {
		lat = lat[:0]
		done := true
		fsm.ListServers(st, fsm.ServerListing{}, func(s *fsm.Server) bool {
			if s.Status == fsm.StatusError {
				b.Fatalf("server %s in ERROR: %+v", s.ID, s.Fault)
			}
			if s.Status != fsm.StatusActive {
				done = false
				return false
			}
			lat = append(lat, time.Duration(s.LaunchedAt-s.CreatedAt)*time.Microsecond)
			return true
		})
		return done && len(lat) == b.N
	})
	elapsed := time.Since(start)
	b.StopTimer()
	slices.Sort(lat)
	b.ReportMetric(float64(b.N)/accepted.Seconds(), "accepted/s")
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "active/s")
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds())/1000, "p99-ms")
	b.ReportMetric(0, "ns/op")
}
