package scheduler

import (
	"math"
	"slices"
	"testing"
)

func TestNormalize(t *testing.T) {
	tests := []struct {
		name    string
		in      []float64
		minZero bool
		want    []float64
	}{
		{"empty", nil, false, nil},
		{"min to max", []float64{1, 2, 3}, false, []float64{0, 0.5, 1}},
		{"negative values", []float64{-3, -1, -2}, false, []float64{0, 1, 0.5}},
		{"all equal", []float64{2, 2}, false, []float64{0, 0}},
		{"zero to max", []float64{1, 2, 4}, true, []float64{0.25, 0.5, 1}},
		{"zero to max, all equal", []float64{4, 4}, true, []float64{1, 1}},
		{"zero to max, all zero", []float64{0, 0}, true, []float64{0, 0}},
	}
	for _, tt := range tests {
		got := slices.Clone(tt.in)
		normalize(got, tt.minZero)
		if !slices.Equal(got, tt.want) {
			t.Errorf("%s: normalize(%v, %v) = %v, want %v", tt.name, tt.in, tt.minZero, got, tt.want)
		}
	}
}

// weighHosts returns the weights of all hosts (all candidates) for r.
func weighHosts(cfg Config, hosts []Host, r Request) []float64 {
	p := newPlacer(cfg.withDefaults(), hosts)
	rc := p.reqCtx(&r, parseShape(&r))
	cands := make([]int32, len(hosts))
	for i := range cands {
		cands[i] = int32(i)
	}
	scores := make([]float64, len(hosts))
	p.weigh(cands, &rc, scores)
	return scores
}

func approxEqual(a, b []float64) bool {
	return slices.EqualFunc(a, b, func(x, y float64) bool { return math.Abs(x-y) < 1e-12 })
}

func TestResourceWeighers(t *testing.T) {
	// a: empty. b: half used. c: full (RAM overcommitted beyond physical).
	hosts := []Host{
		{Name: "a", VCPUs: 4, MemoryMB: 8192, DiskGB: 100},
		{Name: "b", VCPUs: 4, MemoryMB: 8192, DiskGB: 100, VCPUsUsed: 8, MemoryMBUsed: 4096, DiskGBUsed: 50},
		{Name: "c", VCPUs: 4, MemoryMB: 8192, DiskGB: 100, VCPUsUsed: 16, MemoryMBUsed: 9000, DiskGBUsed: 100, RAMRatio: 1.5},
	}
	tests := []struct {
		name string
		cfg  Config
		want []float64
	}{
		{"defaults spread", Config{}, []float64{3, 1.5, 0}},
		{"stacking", Config{RAMWeightMultiplier: -1, CPUWeightMultiplier: -1, DiskWeightMultiplier: -1}, []float64{-3, -1.5, 0}},
		{"RAM counts double", Config{RAMWeightMultiplier: 2}, []float64{4, 2, 0}},
		{"CPU stacks, others spread", Config{CPUWeightMultiplier: -1}, []float64{1, 0.5, 0}},
		{"almost only disk", Config{RAMWeightMultiplier: 1e-9, CPUWeightMultiplier: 1e-9, DiskWeightMultiplier: 5},
			[]float64{5 + 2e-9, 2.5 + 1e-9, 0}},
	}
	for _, tt := range tests {
		if got := weighHosts(tt.cfg, hosts, Request{}); !approxEqual(got, tt.want) {
			t.Errorf("%s: weights %v, want %v", tt.name, got, tt.want)
		}
	}
}

func TestResourceWeigherRawValues(t *testing.T) {
	h := Host{VCPUs: 4, MemoryMB: 8192, DiskGB: 100, VCPUsUsed: 6, MemoryMBUsed: 2048, DiskGBUsed: 40, CPURatio: 2, RAMRatio: 1.5}
	p := newPlacer(DefaultConfig(), []Host{h})
	s := &p.hosts[0]
	// RAM and disk are physical (Nova's free_ram_mb, free_disk_mb); vCPUs
	// count the allocation ratio (Nova's CPUWeigher).
	if got := s.freeRAM(); got != 6144 {
		t.Errorf("free RAM %v, want 6144 (physical, not scaled by the ratio)", got)
	}
	if got := s.freeVCPUs(); got != 2 {
		t.Errorf("free vCPUs %v, want 4*2-6 = 2", got)
	}
	if got := s.freeDisk(); got != 60 {
		t.Errorf("free disk %v, want 60", got)
	}
	s.memoryMBUsed, s.vcpusUsed = 9000, 10
	if s.freeRAM() != 0 || s.freeVCPUs() != 0 {
		t.Errorf("overcommitted host: free RAM %v, vCPUs %v, want both clamped to 0", s.freeRAM(), s.freeVCPUs())
	}
}

func TestSoftAffinityWeighers(t *testing.T) {
	hosts := []Host{
		{Name: "a", VCPUs: 4, MemoryMB: 4096, DiskGB: 10},
		{Name: "b", VCPUs: 4, MemoryMB: 4096, DiskGB: 10},
		{Name: "c", VCPUs: 4, MemoryMB: 4096, DiskGB: 10},
	}
	members := map[string]int{"a": 2, "c": 1}
	tests := []struct {
		name   string
		policy string
		cfg    Config
		want   []float64 // the resource weighers add 0: the hosts are alike
	}{
		{"soft affinity prefers members", PolicySoftAffinity, Config{}, []float64{1, 0, 0.5}},
		{"soft anti-affinity avoids them", PolicySoftAntiAffinity, Config{}, []float64{0, 1, 0.5}},
		{"multiplier", PolicySoftAntiAffinity, Config{SoftAntiAffinityWeightMultiplier: 3}, []float64{0, 3, 1.5}},
		{"other multiplier does not count", PolicySoftAffinity, Config{SoftAntiAffinityWeightMultiplier: 3}, []float64{1, 0, 0.5}},
		{"hard policy: no weight", PolicyAntiAffinity, Config{}, []float64{0, 0, 0}},
	}
	for _, tt := range tests {
		r := Request{Group: &Group{ID: "g", Policy: tt.policy, Members: members}}
		// The resource weighers see alike hosts: their terms are 1 each.
		want := slices.Clone(tt.want)
		for i := range want {
			want[i] += 3
		}
		if got := weighHosts(tt.cfg, hosts, r); !approxEqual(got, want) {
			t.Errorf("%s: weights %v, want %v", tt.name, got, want)
		}
	}
}

func TestSingleCandidateWeighsZero(t *testing.T) {
	got := weighHosts(Config{}, []Host{{Name: "a", VCPUs: 4, MemoryMB: 4096, DiskGB: 10}}, Request{})
	if !slices.Equal(got, []float64{0}) {
		t.Errorf("weights %v, want [0] (Nova does not weigh a single host)", got)
	}
}

// TestPlainScoreIsWeigh: the fast path's plainScore gives, bit for bit, the
// weight the full weighing gives (ties must break the same way).
func TestPlainScoreIsWeigh(t *testing.T) {
	g := newGen(99)
	for range 200 {
		cfg := g.config().withDefaults()
		hosts := g.hosts(2 + g.r.IntN(30))
		p := newPlacer(cfg, hosts)
		got := weighHosts(cfg, hosts, Request{})
		var maxv [numPlain]float64
		for i := range hosts {
			for d := range numPlain {
				maxv[d] = max(maxv[d], p.raw[d][i])
			}
		}
		for i := range hosts {
			raw := p.rawOf(int32(i))
			if s := plainScore(&raw, &maxv, &p.mult); s != got[i] {
				t.Fatalf("host %d: plainScore %v, weigh %v", i, s, got[i])
			}
		}
	}
}
