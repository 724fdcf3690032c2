package scheduler

import (
	"fmt"
	"slices"
	"testing"
)

// alike returns n empty, alike hosts named h1..hn in zone nova: 4 vCPUs
// (16 with the default ratio), 8 GB, 100 GB.
func alike(n int) []Host {
	hosts := make([]Host, n)
	for i := range hosts {
		hosts[i] = Host{Name: fmt.Sprintf("h%d", i+1), Zone: "nova", Up: true, VCPUs: 4, MemoryMB: 8192, DiskGB: 100}
	}
	return hosts
}

// batch returns n copies of r with server ids s1..sn.
func batch(n int, r Request) []Request {
	reqs := make([]Request, n)
	for i := range reqs {
		reqs[i] = r
		reqs[i].ServerID = fmt.Sprintf("s%d", i+1)
	}
	return reqs
}

var small = Request{VCPUs: 1, MemoryMB: 2048, DiskGB: 10}

// outcome renders placements as host names, "!Filter" for a NoValidHost.
func outcome(ps []Placement) []string {
	out := make([]string, len(ps))
	for i, p := range ps {
		if p.Err != nil {
			out[i] = "!" + p.Err.Filtered
		} else {
			out[i] = p.Host
		}
	}
	return out
}

func TestPlace(t *testing.T) {
	stack := Config{RAMWeightMultiplier: -1, CPUWeightMultiplier: -1, DiskWeightMultiplier: -1}
	group := func(id, policy string, max int, members map[string]int) *Group {
		return &Group{ID: id, Policy: policy, MaxServerPerHost: max, Members: members}
	}
	with := func(r Request, f func(*Request)) Request { f(&r); return r }
	tests := []struct {
		name  string
		cfg   Config
		hosts []Host
		reqs  []Request
		want  []string
	}{
		{
			name: "spread over alike hosts, ties by name", hosts: alike(3),
			reqs: batch(4, small), want: []string{"h1", "h2", "h3", "h1"},
		},
		{
			name: "spread prefers the emptiest host",
			hosts: func() []Host {
				h := alike(3)
				h[0].MemoryMBUsed, h[1].MemoryMBUsed = 4096, 2048
				return h
			}(),
			reqs: batch(3, small), want: []string{"h3", "h2", "h3"},
		},
		{
			name: "stacking fills a host before the next", cfg: stack, hosts: alike(2),
			reqs: batch(5, small), want: []string{"h1", "h1", "h1", "h1", "h2"},
		},
		{
			name: "stacking prefers the fullest host", cfg: stack,
			hosts: func() []Host {
				h := alike(3)
				h[2].VCPUsUsed, h[2].MemoryMBUsed, h[2].DiskGBUsed = 2, 4096, 20
				return h
			}(),
			reqs: batch(3, small), want: []string{"h3", "h3", "h1"},
		},
		{
			name: "the batch runs out of hosts", hosts: alike(1),
			reqs: batch(5, small), want: []string{"h1", "h1", "h1", "h1", "!" + FilterRAM},
		},
		{
			name: "no hosts at all", hosts: nil,
			reqs: batch(1, small), want: []string{"!"},
		},
		{
			name: "zones", hosts: func() []Host {
				h := alike(3)
				h[1].Zone = "az2"
				return h
			}(),
			reqs: []Request{
				with(small, func(r *Request) { r.Zone = "az2" }),
				with(small, func(r *Request) { r.Zone = "az2" }),
				with(small, func(r *Request) { r.Zone = "nova" }),
				with(small, func(r *Request) { r.Zone = "az3" }),
			},
			want: []string{"h2", "h2", "h1", "!" + FilterAvailabilityZone},
		},
		{
			name: "down and disabled hosts get nothing",
			hosts: func() []Host {
				h := alike(3)
				h[0].Up, h[1].Disabled = false, true
				return h
			}(),
			reqs: batch(2, small), want: []string{"h3", "h3"},
		},
		{
			name: "no host up", hosts: func() []Host {
				h := alike(2)
				h[0].Up, h[1].Up = false, false
				return h
			}(),
			reqs: batch(1, small), want: []string{"!" + FilterCompute},
		},
		{
			name: "anti-affinity within the batch", hosts: alike(2),
			reqs: batch(3, with(small, func(r *Request) { r.Group = group("g", PolicyAntiAffinity, 0, nil) })),
			want: []string{"h1", "h2", "!" + FilterServerGroupAntiAffinity},
		},
		{
			name: "anti-affinity with members already placed", hosts: alike(3),
			reqs: batch(2, with(small, func(r *Request) { r.Group = group("g", PolicyAntiAffinity, 0, map[string]int{"h1": 1}) })),
			want: []string{"h2", "h3"},
		},
		{
			name: "anti-affinity max_server_per_host", hosts: alike(2),
			reqs: batch(5, with(small, func(r *Request) { r.Group = group("g", PolicyAntiAffinity, 2, nil) })),
			want: []string{"h1", "h2", "h1", "h2", "!" + FilterServerGroupAntiAffinity},
		},
		{
			name: "two anti-affinity groups do not see each other", hosts: alike(2),
			reqs: []Request{
				with(small, func(r *Request) { r.Group = group("a", PolicyAntiAffinity, 0, nil) }),
				with(small, func(r *Request) { r.Group = group("b", PolicyAntiAffinity, 0, nil) }),
				with(small, func(r *Request) { r.Group = group("a", PolicyAntiAffinity, 0, nil) }),
				with(small, func(r *Request) { r.Group = group("b", PolicyAntiAffinity, 0, nil) }),
			},
			want: []string{"h1", "h2", "h2", "h1"},
		},
		{
			name: "affinity: the first member chooses, the others follow", hosts: alike(3),
			reqs: batch(5, with(small, func(r *Request) { r.Group = group("g", PolicyAffinity, 0, nil) })),
			want: []string{"h1", "h1", "h1", "h1", "!" + FilterServerGroupAffinity},
		},
		{
			name: "affinity with a member placed before", hosts: alike(3),
			reqs: batch(2, with(small, func(r *Request) { r.Group = group("g", PolicyAffinity, 0, map[string]int{"h3": 1}) })),
			want: []string{"h3", "h3"},
		},
		{
			name: "affinity bound to a host outside the view", hosts: alike(3),
			reqs: batch(1, with(small, func(r *Request) { r.Group = group("g", PolicyAffinity, 0, map[string]int{"gone": 1}) })),
			want: []string{"!" + FilterServerGroupAffinity},
		},
		{
			name: "soft affinity stacks the group against the spread", hosts: alike(3),
			cfg:  Config{SoftAffinityWeightMultiplier: 10},
			reqs: batch(3, with(small, func(r *Request) { r.Group = group("g", PolicySoftAffinity, 0, map[string]int{"h2": 1}) })),
			want: []string{"h2", "h2", "h2"},
		},
		{
			name: "soft anti-affinity spreads the group against the stacking", hosts: alike(3),
			cfg:  Config{RAMWeightMultiplier: -1, CPUWeightMultiplier: -1, DiskWeightMultiplier: -1, SoftAntiAffinityWeightMultiplier: 10},
			reqs: batch(4, with(small, func(r *Request) { r.Group = group("g", PolicySoftAntiAffinity, 0, nil) })),
			want: []string{"h1", "h2", "h3", "h1"},
		},
		{
			name: "soft anti-affinity still places when it cannot spread", hosts: alike(1),
			reqs: batch(2, with(small, func(r *Request) { r.Group = group("g", PolicySoftAntiAffinity, 0, nil) })),
			want: []string{"h1", "h1"},
		},
		{
			name: "forced host: zone and specs are skipped", hosts: alike(3),
			reqs: []Request{with(small, func(r *Request) {
				r.ForcedHost, r.Zone = "h3", "elsewhere"
				r.ExtraSpecs = map[string]string{"capabilities:gpu": "true"}
			})},
			want: []string{"h3"},
		},
		{
			name: "forced host: resources are not", hosts: alike(2),
			reqs: batch(5, with(small, func(r *Request) { r.ForcedHost = "h2" })),
			want: []string{"h2", "h2", "h2", "h2", "!" + FilterRAM},
		},
		{
			name: "forced host: neither is the ComputeFilter", hosts: func() []Host {
				h := alike(2)
				h[1].Disabled = true
				return h
			}(),
			reqs: batch(1, with(small, func(r *Request) { r.ForcedHost = "h2" })),
			want: []string{"!" + FilterCompute},
		},
		{
			name: "forced host not in the view", hosts: alike(2),
			reqs: batch(1, with(small, func(r *Request) { r.ForcedHost = "h9" })),
			want: []string{"!" + FilterForcedHost},
		},
		{
			name: "forced host excluded by a retry", hosts: alike(2),
			reqs: batch(1, with(small, func(r *Request) { r.ForcedHost, r.ExcludeHosts = "h2", []string{"h2"} })),
			want: []string{"!" + FilterRetry},
		},
		{
			name: "retries avoid the failed hosts", hosts: alike(3),
			reqs: batch(2, with(small, func(r *Request) { r.ExcludeHosts = []string{"h1", "h2"} })),
			want: []string{"h3", "h3"},
		},
		{
			name: "a requested host still passes the filters", hosts: alike(3),
			reqs: []Request{
				with(small, func(r *Request) { r.RequestedHost = "h2" }),
				with(small, func(r *Request) { r.RequestedHost = "h2"; r.ExcludeHosts = []string{"h2"} }),
				with(small, func(r *Request) { r.RequestedHost = "nowhere" }),
			},
			want: []string{"h2", "!" + FilterRetry, "!" + FilterRequestedHost},
		},
		{
			name: "every host failed before", hosts: alike(2),
			reqs: batch(1, with(small, func(r *Request) { r.ExcludeHosts = []string{"h1", "h2"} })),
			want: []string{"!" + FilterRetry},
		},
		{
			name: "same_host and different_host", hosts: alike(3),
			reqs: []Request{
				with(small, func(r *Request) { r.SameHost = []string{"h3"} }),
				with(small, func(r *Request) { r.DifferentHost = []string{"h1", "h2"} }),
				with(small, func(r *Request) { r.SameHost = []string{""} }),
				with(small, func(r *Request) { r.DifferentHost = []string{"h1", "h2", "h3"} }),
			},
			want: []string{"h3", "h3", "!" + FilterSameHost, "!" + FilterDifferentHost},
		},
		{
			name: "the last filter to remove hosts names the failure",
			hosts: func() []Host {
				h := alike(2)
				h[0].Zone = "az2" // AvailabilityZoneFilter
				h[1].MemoryMBUsed = 8192
				return h
			}(),
			reqs: batch(1, with(small, func(r *Request) { r.Zone = "nova" })),
			want: []string{"!" + FilterRAM},
		},
		{
			name: "specs and image select hosts",
			cfg:  Config{AggregateInstanceExtraSpecs: true},
			hosts: func() []Host {
				h := alike(3)
				h[0].Capabilities = map[string]string{CapArch: "aarch64", CapHypervisorType: "kvm", CapVMMode: "hvm"}
				h[1].Capabilities = map[string]string{CapArch: "x86_64", CapHypervisorType: "kvm", CapVMMode: "hvm"}
				h[2].Aggregates = []Aggregate{{Name: "ssd", Metadata: map[string]string{"ssd": "true"}}}
				return h
			}(),
			reqs: []Request{
				with(small, func(r *Request) { r.ImageProperties = map[string]string{"hw_architecture": "aarch64"} }),
				with(small, func(r *Request) { r.ExtraSpecs = map[string]string{"capabilities:cpu_info:arch": "x86_64"} }),
				with(small, func(r *Request) { r.ExtraSpecs = map[string]string{"aggregate_instance_extra_specs:ssd": "true"} }),
				with(small, func(r *Request) { r.ImageProperties = map[string]string{"hw_architecture": "ppc64le"} }),
			},
			want: []string{"h1", "h2", "h3", "!" + FilterImageProperties},
		},
		{
			name: "many retries", hosts: alike(21),
			reqs: batch(2, with(small, func(r *Request) {
				for i := range 20 {
					r.ExcludeHosts = append(r.ExcludeHosts, fmt.Sprintf("h%d", i+2))
				}
			})),
			want: []string{"h1", "h1"},
		},
		{
			name: "negative sizes are refused", hosts: alike(2),
			reqs: []Request{{MemoryMB: -1024}, small},
			want: []string{"!" + FilterInvalidSize, "h1"},
		},
		{
			name: "zero-sized requests still place", hosts: alike(2),
			reqs: batch(3, Request{}), want: []string{"h1", "h1", "h1"},
		},
	}
	for _, tt := range tests {
		got := outcome(Place(tt.cfg, tt.hosts, tt.reqs))
		if !slices.Equal(got, tt.want) {
			t.Errorf("%s: got %v, want %v", tt.name, got, tt.want)
		}
		// The reference agrees (it is the specification of the rest),
		// except on what it does not know: sizes Place refuses.
		if tt.want[0] == "!"+FilterInvalidSize {
			continue
		}
		if ref := outcome(referencePlace(tt.cfg, tt.hosts, tt.reqs)); !slices.Equal(ref, tt.want) {
			t.Errorf("%s: the reference gives %v, want %v", tt.name, ref, tt.want)
		}
	}
}

func TestPlacementIdentity(t *testing.T) {
	reqs := batch(2, small)
	reqs[1].ForcedHost = "nowhere"
	got := Place(Config{}, alike(1), reqs)
	if got[0].ServerID != "s1" || got[0].Host != "h1" || got[0].Err != nil {
		t.Errorf("placement 0 = %+v", got[0])
	}
	if got[1].ServerID != "s2" || got[1].Host != "" || got[1].Err == nil {
		t.Fatalf("placement 1 = %+v, want a NoValidHost", got[1])
	}
	if msg := got[1].Err.Error(); msg != "No valid host was found. There are not enough hosts available." {
		t.Errorf("fault message %q", msg)
	}
	if n := len(Place(Config{}, alike(1), nil)); n != 0 {
		t.Errorf("no requests gave %d placements", n)
	}
}

func TestHostSubsetSize(t *testing.T) {
	hosts := alike(10)
	reqs := batch(200, Request{VCPUs: 0, MemoryMB: 1, DiskGB: 0})
	run := func(seed uint64) []string {
		return outcome(Place(Config{HostSubsetSize: 3, Seed: seed}, hosts, reqs))
	}
	a, b, c := run(1), run(1), run(2)
	if !slices.Equal(a, b) {
		t.Errorf("the same seed chose differently")
	}
	if slices.Equal(a, c) {
		t.Errorf("two seeds chose alike over 200 requests: the choice is not random")
	}
	// Each placement is among the 3 best hosts: with alike hosts and tiny
	// requests, the hosts with the fewest servers so far.
	count := map[string]int{}
	for i, h := range a {
		counts := slices.Sorted(func(yield func(int) bool) {
			for _, x := range hosts {
				if !yield(count[x.Name]) {
					return
				}
			}
		})
		if count[h] > counts[2] {
			t.Fatalf("request %d went to %s with %d servers; the 3rd emptiest host had %d", i, h, count[h], counts[2])
		}
		count[h]++
	}
}

func TestDefaultConfig(t *testing.T) {
	d := DefaultConfig()
	if d.CPUAllocationRatio != 4 || d.RAMAllocationRatio != 1 || d.DiskAllocationRatio != 1 {
		t.Errorf("ratios %v/%v/%v, want 4/1/1", d.CPUAllocationRatio, d.RAMAllocationRatio, d.DiskAllocationRatio)
	}
	for name, m := range map[string]float64{
		"ram": d.RAMWeightMultiplier, "cpu": d.CPUWeightMultiplier, "disk": d.DiskWeightMultiplier,
		"soft affinity": d.SoftAffinityWeightMultiplier, "soft anti-affinity": d.SoftAntiAffinityWeightMultiplier,
	} {
		if m != 1 {
			t.Errorf("%s multiplier %v, want 1", name, m)
		}
	}
	if d.HostSubsetSize != 1 {
		t.Errorf("HostSubsetSize %d, want 1", d.HostSubsetSize)
	}
	if (Config{}).withDefaults() != d {
		t.Errorf("the zero Config does not take the defaults")
	}
	own := Config{CPUAllocationRatio: 16, RAMWeightMultiplier: -1, HostSubsetSize: 3, Seed: 9}.withDefaults()
	if own.CPUAllocationRatio != 16 || own.RAMWeightMultiplier != -1 || own.HostSubsetSize != 3 || own.Seed != 9 ||
		own.RAMAllocationRatio != 1 || own.CPUWeightMultiplier != 1 {
		t.Errorf("withDefaults changed set fields or missed zero ones: %+v", own)
	}
}

// TestSelectorEviction: a batch of more shapes than live selectors still
// places exactly as the reference does.
func TestSelectorEviction(t *testing.T) {
	hosts := alike(40)
	var reqs []Request
	for round := range 3 {
		for shape := range maxSelectors + 8 {
			r := Request{ServerID: fmt.Sprintf("s%d-%d", round, shape), VCPUs: 1, MemoryMB: 64 + shape, DiskGB: 1}
			reqs = append(reqs, r, r)
		}
	}
	p := newPlacer(Config{}.withDefaults(), hosts)
	got := make([]Placement, len(reqs))
	for i := range reqs {
		got[i] = p.place(&reqs[i])
	}
	if p.stats.builds <= maxSelectors {
		t.Fatalf("%d selectors built: no eviction happened", p.stats.builds)
	}
	diffPlacements(t, referencePlace(Config{}, hosts, reqs), got)
}

// Off by default (Nova's enabled_filters): a flavor's unscoped extra spec
// does not make every host without aggregates fail.
func TestAggregateInstanceExtraSpecsIsOptIn(t *testing.T) {
	hosts := alike(2)
	r := Request{ServerID: "s", VCPUs: 1, MemoryMB: 512, DiskGB: 1, ExtraSpecs: map[string]string{"hw_rng_allowed": "true"}}
	if got := outcome(Place(Config{}, hosts, []Request{r})); got[0] == "!"+FilterAggregateInstanceExtraSpecs {
		t.Fatalf("default config: %v", got)
	}
	if got := outcome(Place(Config{AggregateInstanceExtraSpecs: true}, hosts, []Request{r})); got[0] != "!"+FilterAggregateInstanceExtraSpecs {
		t.Fatalf("enabled: %v, want refused by %s", got, FilterAggregateInstanceExtraSpecs)
	}
}
