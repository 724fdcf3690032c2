package scheduler

import (
	"fmt"
	"math/rand/v2"
	"reflect"
	"testing"
)

// gen makes random host views, batches and configs from a seed.
type gen struct{ r *rand.Rand }

func newGen(seed uint64) *gen { return &gen{rand.New(rand.NewPCG(seed, 7))} }

func pick[T any](g *gen, vs ...T) T { return vs[g.r.IntN(len(vs))] }

func (g *gen) config() Config {
	mult := func() float64 { return pick(g, 0., 1, 1, -1, 2.5, -0.3, 1e-6, 10) }
	return Config{
		CPUAllocationRatio:               pick(g, 0., 1, 4, 16),
		RAMAllocationRatio:               pick(g, 0., 1, 1.5),
		DiskAllocationRatio:              pick(g, 0., 1, 2),
		RAMWeightMultiplier:              mult(),
		CPUWeightMultiplier:              mult(),
		DiskWeightMultiplier:             mult(),
		SoftAffinityWeightMultiplier:     mult(),
		SoftAntiAffinityWeightMultiplier: mult(),
		HostSubsetSize:                   pick(g, 0, 1, 1, 2, 3),
		AggregateInstanceExtraSpecs:      pick(g, true, false),
		Seed:                             g.r.Uint64(),
	}
}

// hosts returns n hosts named h000.. in a shuffled order, of a few sizes
// (so ties are common), some used, some overcommitted already.
func (g *gen) hosts(n int) []Host {
	hosts := make([]Host, n)
	for i, j := range g.r.Perm(n) {
		h := Host{
			Name:     fmt.Sprintf("h%03d", j),
			Zone:     pick(g, "nova", "nova", "az2"),
			Up:       g.r.IntN(10) > 0,
			Disabled: g.r.IntN(15) == 0,
			VCPUs:    pick(g, 0, 2, 8, 16, 16),
			MemoryMB: pick(g, 0, 2048, 8192, 16384, 16384),
			DiskGB:   pick(g, 0, 20, 100, 100),
			CPURatio: pick(g, 0., 0, 0, 1, 2),
			RAMRatio: pick(g, 0., 0, 0, 1.5),
			Capabilities: map[string]string{
				CapArch:              pick(g, "x86_64", "x86_64", "aarch64"),
				CapHypervisorType:    pick(g, "kvm", "qemu"),
				CapVMMode:            "hvm",
				CapHypervisorVersion: pick(g, "6000000", "8002000", ""),
			},
		}
		if g.r.IntN(3) > 0 {
			h.VCPUsUsed = g.r.IntN(h.VCPUs*3 + 1)
			h.MemoryMBUsed = g.r.IntN(h.MemoryMB + 4096)
			h.DiskGBUsed = g.r.IntN(h.DiskGB + 10)
		}
		switch g.r.IntN(4) {
		case 0:
			h.Aggregates = []Aggregate{{Name: "ssd", Metadata: map[string]string{"ssd": "true", "tier": "gold, silver"}}}
		case 1:
			h.Aggregates = []Aggregate{{Name: "hdd", Metadata: map[string]string{"ssd": "false"}}}
		}
		hosts[i] = h
	}
	return hosts
}

// flavors are a few request shapes; batches repeat them in runs so the
// fast path's selectors live long and many of them at once.
var flavors = []struct{ vcpus, ram, disk int }{{1, 512, 1}, {1, 2048, 20}, {2, 4096, 40}, {4, 8192, 80}, {0, 0, 0}}

func (g *gen) requests(n int, hosts []Host, groups []*Group, plainOnly bool) []Request {
	reqs := make([]Request, 0, n)
	for len(reqs) < n {
		f := pick(g, flavors...)
		base := Request{VCPUs: f.vcpus, MemoryMB: f.ram, DiskGB: f.disk}
		switch g.r.IntN(8) {
		case 0:
			base.ExtraSpecs = map[string]string{"aggregate_instance_extra_specs:ssd": "true"}
		case 1:
			base.ExtraSpecs = map[string]string{"capabilities:hypervisor_type": "s== kvm", "hw:cpu_policy": "dedicated"}
		case 2:
			base.ImageProperties = map[string]string{"hw_architecture": "x86_64", "img_hv_requested_version": ">=7.0"}
		}
		base.Zone = pick(g, "", "", "", "nova", "az2", "nowhere")
		run := 1 + g.r.IntN(12)
		for k := 0; k < run && len(reqs) < n; k++ {
			r := base
			r.ServerID = fmt.Sprintf("s%04d", len(reqs))
			if !plainOnly && len(hosts) > 0 {
				name := func() string { return hosts[g.r.IntN(len(hosts))].Name }
				switch g.r.IntN(12) {
				case 0:
					r.SameHost = []string{name(), name()}
				case 1:
					r.DifferentHost = []string{name()}
				case 2:
					r.ExcludeHosts = []string{name(), name(), name()}
				case 3:
					r.ForcedHost = pick(g, name(), "nosuchhost")
				case 4, 5, 6:
					r.Group = pick(g, groups...)
				}
			}
			reqs = append(reqs, r)
		}
	}
	return reqs
}

func (g *gen) groups(hosts []Host) []*Group {
	var out []*Group
	for i, pol := range []string{PolicyAffinity, PolicyAntiAffinity, PolicySoftAffinity, PolicySoftAntiAffinity, PolicyAntiAffinity} {
		gr := &Group{ID: fmt.Sprintf("g%d", i), Policy: pol, Members: map[string]int{}}
		if i == 4 {
			gr.MaxServerPerHost = 3
		}
		for range g.r.IntN(3) {
			if len(hosts) > 0 {
				gr.Members[hosts[g.r.IntN(len(hosts))].Name]++
			}
		}
		out = append(out, gr)
	}
	return out
}

// checkCapacity replays placements on the hosts and fails if any host
// that received a server ends above total*ratio on vCPU, RAM or disk.
func checkCapacity(t *testing.T, cfg Config, hosts []Host, reqs []Request, got []Placement) {
	t.Helper()
	cfg = cfg.withDefaults()
	byName := map[string]*Host{}
	used := map[string]*[3]int{}
	for i := range hosts {
		h := &hosts[i]
		byName[h.Name] = h
		used[h.Name] = &[3]int{h.VCPUsUsed, h.MemoryMBUsed, h.DiskGBUsed}
	}
	ratio := func(own, def float64) float64 {
		if own > 0 {
			return own
		}
		return def
	}
	for i, p := range got {
		if p.Host == "" {
			continue
		}
		h, u := byName[p.Host], used[p.Host]
		u[0] += reqs[i].VCPUs
		u[1] += reqs[i].MemoryMB
		u[2] += reqs[i].DiskGB
		if float64(u[0]) > float64(h.VCPUs)*ratio(h.CPURatio, cfg.CPUAllocationRatio) ||
			float64(u[1]) > float64(h.MemoryMB)*ratio(h.RAMRatio, cfg.RAMAllocationRatio) ||
			float64(u[2]) > float64(h.DiskGB)*ratio(h.DiskRatio, cfg.DiskAllocationRatio) {
			t.Fatalf("request %d on %s: used %v exceeds capacity (%d vCPU, %d MB, %d GB)",
				i, p.Host, *u, h.VCPUs, h.MemoryMB, h.DiskGB)
		}
	}
}

func diffPlacements(t *testing.T, want, got []Placement) {
	t.Helper()
	if len(want) != len(got) {
		t.Fatalf("got %d placements, want %d", len(got), len(want))
	}
	for i := range want {
		if !reflect.DeepEqual(want[i], got[i]) {
			t.Fatalf("request %d: Place gave %+v (err %+v), the reference %+v (err %+v)",
				i, got[i], got[i].Err, want[i], want[i].Err)
		}
	}
}

// TestPlaceMatchesReference: over many random views, batches and configs,
// Place (fast path, caches, host-by-host path) gives exactly the
// reference's placements and NoValidHost filters, and never overfills a
// host. It also checks that Place leaves its inputs alone.
func TestPlaceMatchesReference(t *testing.T) {
	for seed := range uint64(400) {
		g := newGen(seed)
		cfg := g.config()
		hosts := g.hosts(g.r.IntN(40))
		reqs := g.requests(1+g.r.IntN(80), hosts, g.groups(hosts), false)
		before := fmt.Sprintf("%+v %+v", hosts, reqs)

		got := Place(cfg, hosts, reqs)
		if after := fmt.Sprintf("%+v %+v", hosts, reqs); after != before {
			t.Fatalf("seed %d: Place modified its inputs", seed)
		}
		want := referencePlace(cfg, hosts, reqs)
		t.Run(fmt.Sprint(seed), func(t *testing.T) {
			diffPlacements(t, want, got)
			checkCapacity(t, cfg, hosts, reqs, got)
		})
	}
}

// TestFastPathMatchesReference drives the fast path hard: larger plain
// batches over alike and unlike hosts, so that the maxima move, walks run
// and selectors rebuild, and still every placement is the reference's.
func TestFastPathMatchesReference(t *testing.T) {
	var stats fastStats
	for seed := range uint64(40) {
		g := newGen(1000 + seed)
		cfg := g.config()
		hosts := g.hosts(50 + g.r.IntN(150))
		if seed%2 == 0 { // alike hosts: ties everywhere
			for i := range hosts {
				hosts[i].Up, hosts[i].Disabled = true, false
				hosts[i].VCPUs, hosts[i].MemoryMB, hosts[i].DiskGB = 16, 32768, 400
				hosts[i].VCPUsUsed, hosts[i].MemoryMBUsed, hosts[i].DiskGBUsed = 0, 0, 0
			}
		}
		reqs := g.requests(300+g.r.IntN(700), hosts, nil, true)

		p := newPlacer(cfg.withDefaults(), hosts)
		got := make([]Placement, len(reqs))
		for i := range reqs {
			got[i] = p.place(&reqs[i])
		}
		stats.placements += p.stats.placements
		stats.walks += p.stats.walks
		stats.rebuilds += p.stats.rebuilds
		want := referencePlace(cfg, hosts, reqs)
		t.Run(fmt.Sprint(seed), func(t *testing.T) {
			diffPlacements(t, want, got)
			checkCapacity(t, cfg, hosts, reqs, got)
		})
	}
	t.Logf("fast path: %+v", stats)
	if stats.walks == 0 || stats.rebuilds == 0 {
		t.Errorf("the batches never moved the maxima (walks %d, rebuilds %d): the test does not test the walk", stats.walks, stats.rebuilds)
	}
}
