package scheduler

import "testing"

// kvmHost is an up, enabled, empty x86_64 KVM host in zone nova.
func kvmHost() Host {
	return Host{
		Name: "node1", Zone: "nova", Up: true,
		VCPUs: 4, MemoryMB: 8192, DiskGB: 100,
		Capabilities: map[string]string{
			CapArch: "x86_64", CapHypervisorType: "QEMU", CapVMMode: "hvm", CapHypervisorVersion: "8002000",
			"cpu_info:maxphysaddr:bits": "46", "hypervisor_hostname": "node1.example",
		},
	}
}

type filterCase struct {
	name string
	host func(h *Host)
	req  Request
	want bool
}

// runFilter evaluates one filter for one host and request, as Place would
// (the host is alone in the view).
func runFilter(t *testing.T, f func(*hostState, *reqCtx) bool, cases []filterCase) {
	t.Helper()
	for _, c := range cases {
		h := kvmHost()
		if c.host != nil {
			c.host(&h)
		}
		p := newPlacer(DefaultConfig(), []Host{h})
		rc := p.reqCtx(&c.req, parseShape(&c.req))
		if got := f(&p.hosts[0], &rc); got != c.want {
			t.Errorf("%s: passes = %v, want %v", c.name, got, c.want)
		}
	}
}

func TestComputeFilter(t *testing.T) {
	runFilter(t, computeFilter, []filterCase{
		{"up and enabled", nil, Request{}, true},
		{"down", func(h *Host) { h.Up = false }, Request{}, false},
		{"disabled", func(h *Host) { h.Disabled = true }, Request{}, false},
		{"down and disabled", func(h *Host) { h.Up, h.Disabled = false, true }, Request{}, false},
	})
}

func TestAvailabilityZoneFilter(t *testing.T) {
	runFilter(t, availabilityZoneFilter, []filterCase{
		{"no zone asked", nil, Request{}, true},
		{"same zone", nil, Request{Zone: "nova"}, true},
		{"other zone", nil, Request{Zone: "az2"}, false},
		{"host without zone", func(h *Host) { h.Zone = "" }, Request{Zone: "nova"}, false},
	})
}

func TestResourceFilters(t *testing.T) {
	// Default ratios: 4.0 vCPU, 1.0 RAM, 1.0 disk. kvmHost: 4 vCPUs, 8 GB, 100 GB.
	runFilter(t, coreFilter, []filterCase{
		{"fits in the ratio", func(h *Host) { h.VCPUsUsed = 15 }, Request{VCPUs: 1}, true},
		{"beyond the ratio", func(h *Host) { h.VCPUsUsed = 15 }, Request{VCPUs: 2}, false},
		{"the host's own ratio", func(h *Host) { h.CPURatio, h.VCPUsUsed = 1, 3 }, Request{VCPUs: 2}, false},
		{"the host's own larger ratio", func(h *Host) { h.CPURatio, h.VCPUsUsed = 16, 60 }, Request{VCPUs: 4}, true},
		{"no vCPUs", func(h *Host) { h.VCPUs = 0 }, Request{VCPUs: 1}, false},
		{"zero asked", func(h *Host) { h.VCPUs = 0 }, Request{}, true},
	})
	runFilter(t, ramFilter, []filterCase{
		{"exactly full", func(h *Host) { h.MemoryMBUsed = 4096 }, Request{MemoryMB: 4096}, true},
		{"one MB over", func(h *Host) { h.MemoryMBUsed = 4097 }, Request{MemoryMB: 4096}, false},
		{"overcommit ratio", func(h *Host) { h.RAMRatio, h.MemoryMBUsed = 1.5, 8192 }, Request{MemoryMB: 4096}, true},
		{"overcommit ratio exceeded", func(h *Host) { h.RAMRatio, h.MemoryMBUsed = 1.5, 8193 }, Request{MemoryMB: 4096}, false},
		{"already overcommitted", func(h *Host) { h.MemoryMBUsed = 9000 }, Request{MemoryMB: 1}, false},
	})
	runFilter(t, diskFilter, []filterCase{
		{"fits", func(h *Host) { h.DiskGBUsed = 80 }, Request{DiskGB: 20}, true},
		{"does not fit", func(h *Host) { h.DiskGBUsed = 81 }, Request{DiskGB: 20}, false},
		{"disk ratio", func(h *Host) { h.DiskRatio, h.DiskGBUsed = 2, 180 }, Request{DiskGB: 20}, true},
	})
}

func TestImagePropertiesFilter(t *testing.T) {
	img := func(kv ...string) Request {
		props := map[string]string{}
		for i := 0; i < len(kv); i += 2 {
			props[kv[i]] = kv[i+1]
		}
		return Request{ImageProperties: props}
	}
	noFacts := func(h *Host) { h.Capabilities = map[string]string{"other": "x"} }
	runFilter(t, imagePropertiesFilter, []filterCase{
		{"no properties", nil, img(), true},
		{"unrelated properties", nil, img("os_distro", "ubuntu"), true},
		{"architecture", nil, img("hw_architecture", "x86_64"), true},
		{"architecture alias", nil, img("hw_architecture", "AMD64"), true},
		{"legacy architecture name", nil, img("architecture", "x86_64"), true},
		{"current name wins", nil, img("hw_architecture", "aarch64", "architecture", "x86_64"), false},
		{"other architecture", nil, img("hw_architecture", "aarch64"), false},
		{"hypervisor type, case-insensitive", nil, img("img_hv_type", "qemu"), true},
		{"legacy hypervisor type name", nil, img("hypervisor_type", "qemu"), true},
		{"other hypervisor type", nil, img("img_hv_type", "kvm"), false},
		{"xapi is xen", func(h *Host) { h.Capabilities[CapHypervisorType] = "xen" }, img("img_hv_type", "xapi"), true},
		{"vm mode", nil, img("hw_vm_mode", "hvm"), true},
		{"vm mode alias hv", nil, img("vm_mode", "hv"), true},
		{"other vm mode", nil, img("hw_vm_mode", "exe"), false},
		{"everything", nil, img("hw_architecture", "x86_64", "img_hv_type", "qemu", "hw_vm_mode", "hvm"), true},
		{"one of three wrong", nil, img("hw_architecture", "x86_64", "img_hv_type", "qemu", "hw_vm_mode", "xen"), false},
		{"host reports nothing", noFacts, img("hw_architecture", "x86_64"), false},
		{"host reports nothing, image asks nothing", noFacts, img(), true},
		{"version met", nil, img("hw_architecture", "x86_64", "img_hv_requested_version", ">=6.0"), true},
		{"version range met", nil, img("img_hv_type", "qemu", "img_hv_requested_version", ">=8.0,<8.3"), true},
		{"version not met", nil, img("hw_architecture", "x86_64", "img_hv_requested_version", ">=9.0"), false},
		{"legacy version name", nil, img("hw_architecture", "x86_64", "hypervisor_version_requires", ">=9.0"), false},
		{"version alone is ignored", nil, img("img_hv_requested_version", ">=9.0"), true},
		{"host version unknown", func(h *Host) { delete(h.Capabilities, CapHypervisorVersion) },
			img("hw_architecture", "x86_64", "img_hv_requested_version", ">=9.0"), true},
		{"unparseable version requirement", nil, img("hw_architecture", "x86_64", "img_hv_requested_version", "9.0"), false},
	})
}

func TestComputeCapabilitiesFilter(t *testing.T) {
	specs := func(kv ...string) Request {
		m := map[string]string{}
		for i := 0; i < len(kv); i += 2 {
			m[kv[i]] = kv[i+1]
		}
		return Request{ExtraSpecs: m}
	}
	runFilter(t, computeCapabilitiesFilter, []filterCase{
		{"no specs", nil, specs(), true},
		{"scoped, equal", nil, specs("capabilities:hypervisor_type", "QEMU"), true},
		{"scoped, different", nil, specs("capabilities:hypervisor_type", "kvm"), false},
		{"scoped s==", nil, specs("capabilities:hypervisor_type", "s== QEMU"), true},
		{"scoped s!=", nil, specs("capabilities:hypervisor_type", "s!= QEMU"), false},
		{"nested key", nil, specs("capabilities:cpu_info:arch", "x86_64"), true},
		{"numeric at least", nil, specs("capabilities:hypervisor_version", "= 8000000"), true},
		{"numeric at least, not met", nil, specs("capabilities:hypervisor_version", "= 9000000"), false},
		{"numeric <=", nil, specs("capabilities:cpu_info:maxphysaddr:bits", "<= 40"), false},
		{"<in>", nil, specs("capabilities:hypervisor_hostname", "<in> example"), true},
		{"<or>", nil, specs("capabilities:cpu_info:arch", "<or> aarch64 <or> x86_64"), true},
		{"<or>, none", nil, specs("capabilities:cpu_info:arch", "<or> aarch64 <or> ppc64le"), false},
		{"scoped, host lacks it", nil, specs("capabilities:gpu", "true"), false},
		{"unscoped, host has it", nil, specs("hypervisor_type", "kvm"), false},
		{"unscoped, host has it, matches", nil, specs("hypervisor_type", "QEMU"), true},
		{"unscoped, host lacks it: ignored", nil, specs("gpu", "true"), true},
		{"other scope: ignored", nil, specs("hw:cpu_policy", "dedicated", "quota:cpu_shares", "1024"), true},
		{"aggregate scope: ignored", nil, specs("aggregate_instance_extra_specs:ssd", "true"), true},
		{"hw:maxphysaddr_bits met", nil, specs("hw:maxphysaddr_bits", "42"), true},
		{"hw:maxphysaddr_bits not met", nil, specs("hw:maxphysaddr_bits", "48"), false},
		{"all must match", nil, specs("capabilities:hypervisor_type", "QEMU", "capabilities:cpu_info:arch", "aarch64"), false},
	})
}

func TestAggregateInstanceExtraSpecsFilter(t *testing.T) {
	specs := func(kv ...string) Request {
		m := map[string]string{}
		for i := 0; i < len(kv); i += 2 {
			m[kv[i]] = kv[i+1]
		}
		return Request{ExtraSpecs: m}
	}
	inAggs := func(h *Host) {
		h.Aggregates = []Aggregate{
			{Name: "fast", Metadata: map[string]string{"ssd": "true", "tier": "gold, silver"}},
			{Name: "gpu", Metadata: map[string]string{"gpus": "2", "tier": "bronze"}},
		}
	}
	runFilter(t, aggregateInstanceExtraSpecsFilter, []filterCase{
		{"no specs", nil, specs(), true},
		{"no specs of its scope", nil, specs("hw:cpu_policy", "dedicated", "capabilities:x", "y"), true},
		{"scoped, matches", inAggs, specs("aggregate_instance_extra_specs:ssd", "true"), true},
		{"scoped, differs", inAggs, specs("aggregate_instance_extra_specs:ssd", "false"), false},
		{"unscoped, matches", inAggs, specs("ssd", "true"), true},
		{"unscoped, key in no aggregate", inAggs, specs("fpga", "true"), false},
		{"host in no aggregate", nil, specs("aggregate_instance_extra_specs:ssd", "true"), false},
		{"one of the listed values", inAggs, specs("aggregate_instance_extra_specs:tier", "silver"), true},
		{"a value of another aggregate", inAggs, specs("aggregate_instance_extra_specs:tier", "bronze"), true},
		{"no value matches", inAggs, specs("aggregate_instance_extra_specs:tier", "platinum"), false},
		{"operator", inAggs, specs("aggregate_instance_extra_specs:gpus", ">= 2"), true},
		{"operator, not met", inAggs, specs("aggregate_instance_extra_specs:gpus", ">= 4"), false},
		{"<or>", inAggs, specs("aggregate_instance_extra_specs:tier", "<or> platinum <or> gold"), true},
		{"all must match", inAggs, specs("aggregate_instance_extra_specs:ssd", "true", "gpus", "1"), false},
	})
}

func TestRetryFilter(t *testing.T) {
	runFilter(t, retryFilter, []filterCase{
		{"no retries", nil, Request{}, true},
		{"excluded", nil, Request{ExcludeHosts: []string{"node0", "node1"}}, false},
		{"others excluded", nil, Request{ExcludeHosts: []string{"node2"}}, true},
	})
}

func TestSameAndDifferentHostFilters(t *testing.T) {
	runFilter(t, sameHostFilter, []filterCase{
		{"no hint", nil, Request{}, true},
		{"on this host", nil, Request{SameHost: []string{"node9", "node1"}}, true},
		{"on another host", nil, Request{SameHost: []string{"node9"}}, false},
		{"on no host of the view", nil, Request{SameHost: []string{""}}, false},
	})
	runFilter(t, differentHostFilter, []filterCase{
		{"no hint", nil, Request{}, true},
		{"on this host", nil, Request{DifferentHost: []string{"node9", "node1"}}, false},
		{"on another host", nil, Request{DifferentHost: []string{"node9"}}, true},
	})
}

func TestServerGroupFilters(t *testing.T) {
	group := func(policy string, max int, members map[string]int) Request {
		return Request{Group: &Group{ID: "g", Policy: policy, MaxServerPerHost: max, Members: members}}
	}
	runFilter(t, serverGroupAntiAffinityFilter, []filterCase{
		{"no group", nil, Request{}, true},
		{"no member here", nil, group(PolicyAntiAffinity, 0, map[string]int{"node2": 3}), true},
		{"a member here", nil, group(PolicyAntiAffinity, 0, map[string]int{"node1": 1}), false},
		{"below max_server_per_host", nil, group(PolicyAntiAffinity, 2, map[string]int{"node1": 1}), true},
		{"at max_server_per_host", nil, group(PolicyAntiAffinity, 2, map[string]int{"node1": 2}), false},
		{"affinity group: not its business", nil, group(PolicyAffinity, 0, map[string]int{"node1": 1}), true},
		{"soft anti-affinity: not its business", nil, group(PolicySoftAntiAffinity, 0, map[string]int{"node1": 5}), true},
	})
	runFilter(t, serverGroupAffinityFilter, []filterCase{
		{"no group", nil, Request{}, true},
		{"no members yet", nil, group(PolicyAffinity, 0, nil), true},
		{"members here", nil, group(PolicyAffinity, 0, map[string]int{"node1": 1}), true},
		{"members elsewhere", nil, group(PolicyAffinity, 0, map[string]int{"node2": 1}), false},
		{"zero counts are no members", nil, group(PolicyAffinity, 0, map[string]int{"node2": 0}), true},
		{"anti-affinity group: not its business", nil, group(PolicyAntiAffinity, 0, map[string]int{"node2": 1}), true},
		{"soft affinity: not its business", nil, group(PolicySoftAffinity, 0, map[string]int{"node2": 1}), true},
	})
}
