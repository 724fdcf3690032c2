// Package scheduler places servers on hosts as Nova's filter scheduler
// does: a pure pipeline of filters and weighers over a view of the hosts
// (no I/O, table tested), plus the leader loop (leader.go) that batches
// pending servers, places them and proposes the claims, which the FSM
// re-checks in Apply.
package scheduler

// Host is the scheduler's view of one compute host. Place never changes the
// caller's hosts: it copies what it consumes.
type Host struct {
	Name string
	Zone string // availability zone
	// Up and Disabled feed the ComputeFilter: only a host whose service is
	// up and enabled (and not forced down) gets servers.
	Up       bool
	Disabled bool

	VCPUs, MemoryMB, DiskGB             int // total
	VCPUsUsed, MemoryMBUsed, DiskGBUsed int // claimed by servers on the host
	// Allocation ratios of the host; 0 = Config's.
	CPURatio, RAMRatio, DiskRatio float64
	// Servers is how many servers the host runs (for the IoOpsFilter-free
	// tie breaks and for reports); not a capacity.
	Servers int

	// Capabilities are facts for the ComputeCapabilitiesFilter and
	// ImagePropertiesFilter: "cpu_info:arch", "hypervisor_type",
	// "hypervisor_version" (libvirt encoding, as text), "vm_mode".
	Capabilities map[string]string
	// Aggregates the host belongs to (AggregateInstanceExtraSpecsFilter).
	Aggregates []Aggregate
}

// Aggregate is a host aggregate's metadata as the filters see it.
type Aggregate struct {
	Name     string
	Metadata map[string]string
}

// Group is the server group a request belongs to.
type Group struct {
	ID string
	// Policy: "affinity", "anti-affinity", "soft-affinity",
	// "soft-anti-affinity".
	Policy string
	// MaxServerPerHost is the anti-affinity rule of 2.64 (0 = 1).
	MaxServerPerHost int
	// Members counts the group's other members already placed, by host.
	// Place adds the requests it places in the same call.
	Members map[string]int
}

// Request is one server to place.
type Request struct {
	ServerID string

	VCPUs    int
	MemoryMB int
	DiskGB   int // root + ephemeral + swap (rounded up to GB)
	// ExtraSpecs of the flavor (ComputeCapabilitiesFilter with the
	// "capabilities:" scope, AggregateInstanceExtraSpecsFilter with the
	// "aggregate_instance_extra_specs:" scope or none).
	ExtraSpecs map[string]string
	// ImageProperties of the image (ImagePropertiesFilter:
	// hw_architecture / architecture, img_hv_type / hypervisor_type,
	// img_hv_requested_version, hw_vm_mode / vm_mode).
	ImageProperties map[string]string

	Zone string // requested availability zone; "" = any
	// ForcedHost pins the server to one host (availability_zone "az:host",
	// or 2.74's host): filters other than the ComputeFilter and the
	// resource fit are skipped for it, as Nova does for forced hosts.
	ForcedHost string
	// RequestedHost restricts the hosts to one, which must still pass
	// every filter (an evacuation's destination without force, 2.29+).
	RequestedHost string
	// SameHost / DifferentHost are the hosts of the servers named in the
	// same_host / different_host scheduler hints.
	SameHost, DifferentHost []string
	Group                   *Group
	// ExcludeHosts are hosts a previous build attempt failed on (and the
	// host an evacuated server leaves).
	ExcludeHosts []string
}

// Placement is the outcome for one request: a host, or why none fits.
type Placement struct {
	ServerID string
	Host     string // "" when Err is set
	Err      *NoValidHost
}

// NoValidHost says why no host fits a request, as Nova's fault does.
type NoValidHost struct {
	// Reason is appended to "No valid host was found. ", e.g. "There are
	// not enough hosts available."
	Reason string
	// Filtered says which filter removed the last hosts (for logs).
	Filtered string
}

func (e *NoValidHost) Error() string { return "No valid host was found. " + e.Reason }

// Config holds the scheduler's tunables, Nova's names in comments.
type Config struct {
	CPUAllocationRatio  float64 // cpu_allocation_ratio, default 4.0
	RAMAllocationRatio  float64 // ram_allocation_ratio, default 1.0
	DiskAllocationRatio float64 // disk_allocation_ratio, default 1.0

	// Weigher multipliers: positive spreads (prefer the emptiest host),
	// negative stacks. Defaults 1.0.
	RAMWeightMultiplier  float64 // ram_weight_multiplier
	CPUWeightMultiplier  float64 // cpu_weight_multiplier
	DiskWeightMultiplier float64 // disk_weight_multiplier
	// Soft (anti-)affinity weighers, defaults 1.0.
	SoftAffinityWeightMultiplier     float64
	SoftAntiAffinityWeightMultiplier float64

	// AggregateInstanceExtraSpecs enables the
	// AggregateInstanceExtraSpecsFilter. Off by default, as in Nova's
	// enabled_filters: it refuses every host whose aggregates lack a key of
	// any unscoped flavor extra spec, so it suits clouds whose flavors are
	// written for it.
	AggregateInstanceExtraSpecs bool

	// HostSubsetSize: choose at random among the best N hosts
	// (host_subset_size, default 1).
	HostSubsetSize int
	// Seed makes the random choice of HostSubsetSize repeatable (tests).
	Seed uint64
}
