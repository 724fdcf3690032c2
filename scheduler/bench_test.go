package scheduler

import (
	"fmt"
	"math/rand/v2"
	"testing"
)

// benchHosts returns n enabled hosts. uniform: all alike and empty (every
// weight ties). Otherwise three hardware generations, each host already
// carrying a random load, so weights differ and the maxima move.
func benchHosts(n int, uniform bool, seed uint64) []Host {
	r := rand.New(rand.NewPCG(seed, 1))
	sizes := []struct{ vcpus, ram, disk int }{{32, 131072, 1000}, {64, 262144, 2000}, {96, 393216, 4000}}
	hosts := make([]Host, n)
	for i := range hosts {
		s := sizes[1]
		if !uniform {
			s = sizes[r.IntN(len(sizes))]
		}
		h := Host{
			Name: fmt.Sprintf("compute-%05d", i), Zone: "nova", Up: true,
			VCPUs: s.vcpus, MemoryMB: s.ram, DiskGB: s.disk,
			Capabilities: map[string]string{CapArch: "x86_64", CapHypervisorType: "kvm", CapVMMode: "hvm", CapHypervisorVersion: "8002000"},
		}
		if !uniform {
			h.VCPUsUsed = r.IntN(s.vcpus * 2)
			h.MemoryMBUsed = r.IntN(s.ram / 2)
			h.DiskGBUsed = r.IntN(s.disk / 2)
			h.Zone = []string{"nova", "az2"}[i%2]
			if i%4 == 0 {
				h.Aggregates = []Aggregate{{Name: "ssd", Metadata: map[string]string{"ssd": "true"}}}
			}
		}
		hosts[i] = h
	}
	return hosts
}

// smallRequests returns n m1.small-like requests (1 vCPU, 2 GB, 20 GB).
func smallRequests(n int) []Request {
	reqs := make([]Request, n)
	for i := range reqs {
		reqs[i] = Request{ServerID: fmt.Sprintf("server-%05d", i), VCPUs: 1, MemoryMB: 2048, DiskGB: 20}
	}
	return reqs
}

func benchPlace(b *testing.B, cfg Config, hosts []Host, reqs []Request) {
	b.Helper()
	b.ReportAllocs()
	var placed int
	for b.Loop() {
		placed = 0
		for _, p := range Place(cfg, hosts, reqs) {
			if p.Err == nil {
				placed++
			}
		}
	}
	if placed < len(reqs)*9/10 {
		b.Fatalf("only %d of %d requests placed", placed, len(reqs))
	}
	b.ReportMetric(float64(len(reqs))*float64(b.N)/b.Elapsed().Seconds(), "placements/s")
}

// BenchmarkPlace10kHosts places a batch of 10,000 identical m1.small-like
// requests over 10,000 hosts (target: 10,000 placements/s).
func BenchmarkPlace10kHosts(b *testing.B) {
	stack := DefaultConfig()
	stack.RAMWeightMultiplier, stack.CPUWeightMultiplier, stack.DiskWeightMultiplier = -1, -1, -1
	for _, c := range []struct {
		name    string
		uniform bool
		cfg     Config
	}{
		{"uniform/spread", true, DefaultConfig()},
		{"varied/spread", false, DefaultConfig()},
		{"varied/stack", false, stack},
		{"varied/subset5", false, Config{HostSubsetSize: 5, Seed: 1}},
	} {
		b.Run(c.name, func(b *testing.B) {
			benchPlace(b, c.cfg, benchHosts(10000, c.uniform, 1), smallRequests(10000))
		})
	}
}

// BenchmarkPlaceMixed places 10,000 requests over 10,000 varied hosts:
// five flavors in runs, a quarter with a zone, some with extra specs or
// image properties, and 2% with a server group or hints (the host-by-host
// path).
func BenchmarkPlaceMixed(b *testing.B) {
	hosts := benchHosts(10000, false, 2)
	r := rand.New(rand.NewPCG(3, 3))
	flavors := []struct{ vcpus, ram, disk int }{{1, 512, 1}, {1, 2048, 20}, {2, 4096, 40}, {4, 8192, 80}, {8, 16384, 160}}
	groups := []*Group{
		{ID: "web", Policy: PolicyAntiAffinity},
		{ID: "db", Policy: PolicySoftAntiAffinity},
		{ID: "cache", Policy: PolicyAffinity},
	}
	const n = 10000
	reqs := make([]Request, 0, n+20)
	for len(reqs) < n {
		f := flavors[r.IntN(len(flavors))]
		base := Request{VCPUs: f.vcpus, MemoryMB: f.ram, DiskGB: f.disk}
		switch r.IntN(8) {
		case 0:
			base.ExtraSpecs = map[string]string{"aggregate_instance_extra_specs:ssd": "true"}
		case 1:
			base.ImageProperties = map[string]string{"hw_architecture": "x86_64", "img_hv_type": "kvm"}
		}
		if r.IntN(4) == 0 {
			base.Zone = "az2"
		}
		for range 1 + r.IntN(20) {
			q := base
			q.ServerID = fmt.Sprintf("server-%05d", len(reqs))
			switch n := r.IntN(100); {
			case n < 1:
				q.Group = groups[r.IntN(len(groups))]
			case n < 2:
				q.DifferentHost = []string{hosts[r.IntN(len(hosts))].Name}
			}
			reqs = append(reqs, q)
		}
	}
	reqs = reqs[:n]
	benchPlace(b, DefaultConfig(), hosts, reqs)
}
