package scheduler

import (
	"slices"
	"strconv"
	"strings"
)

// Capability keys the filters read from Host.Capabilities. The view builder
// fills them from what the agent registered.
const (
	CapArch              = "cpu_info:arch"      // e.g. "x86_64"
	CapHypervisorType    = "hypervisor_type"    // e.g. "kvm", "qemu"
	CapHypervisorVersion = "hypervisor_version" // libvirt encoding, e.g. "8000000"
	CapVMMode            = "vm_mode"            // e.g. "hvm"
)

// hostState is Place's private copy of one Host: the caller's host, read
// only, plus what the requests of this batch have claimed on it so far and
// facts derived from the host once (lazily) for the filters.
type hostState struct {
	h    *Host
	idx  int32
	rank int32 // position of the host in name order: the tie break

	vcpusUsed, memoryMBUsed, diskGBUsed int

	// Effective allocation ratios: the host's, else the Config's.
	cpuRatio, ramRatio, diskRatio float64

	// What the ImagePropertiesFilter compares (derived on first use).
	imgReady          bool
	arch, hvType, vmM string
	hvVersion         []int // nil when unknown

	// The union of the host's aggregates' metadata, values split on ","
	// (derived on first use).
	aggReady bool
	aggMeta  map[string][]string
}

func newHostState(h *Host, idx int, cfg *Config) hostState {
	ratio := func(own, def float64) float64 {
		if own > 0 {
			return own
		}
		return def
	}
	return hostState{
		h:            h,
		idx:          int32(idx),
		vcpusUsed:    h.VCPUsUsed,
		memoryMBUsed: h.MemoryMBUsed,
		diskGBUsed:   h.DiskGBUsed,
		cpuRatio:     ratio(h.CPURatio, cfg.CPUAllocationRatio),
		ramRatio:     ratio(h.RAMRatio, cfg.RAMAllocationRatio),
		diskRatio:    ratio(h.DiskRatio, cfg.DiskAllocationRatio),
	}
}

// The resource fit is the FSM's (fsm.Host.Fits): used plus requested must
// stay within total times the allocation ratio. The scheduler must never be
// more generous than Apply, or its claims would be refused.

func (s *hostState) fitsVCPUs(n int) bool {
	return float64(s.vcpusUsed+n) <= float64(s.h.VCPUs)*s.cpuRatio
}

func (s *hostState) fitsMemory(mb int) bool {
	return float64(s.memoryMBUsed+mb) <= float64(s.h.MemoryMB)*s.ramRatio
}

func (s *hostState) fitsDisk(gb int) bool {
	return float64(s.diskGBUsed+gb) <= float64(s.h.DiskGB)*s.diskRatio
}

func (s *hostState) fits(vcpus, memoryMB, diskGB int) bool {
	return s.fitsVCPUs(vcpus) && s.fitsMemory(memoryMB) && s.fitsDisk(diskGB)
}

func (s *hostState) consume(r *Request) {
	s.vcpusUsed += r.VCPUs
	s.memoryMBUsed += r.MemoryMB
	s.diskGBUsed += r.DiskGB
}

// The weighers' raw values, as Nova's HostState has them: free RAM and free
// disk are physical (total - used, not scaled by the ratio), free vCPUs are
// total*ratio - used. Each is clamped at 0 (the weighers' minval), so an
// overcommitted host weighs as an empty one would not.

func (s *hostState) freeRAM() float64 {
	return max(float64(s.h.MemoryMB-s.memoryMBUsed), 0)
}

func (s *hostState) freeVCPUs() float64 {
	return max(float64(s.h.VCPUs)*s.cpuRatio-float64(s.vcpusUsed), 0)
}

func (s *hostState) freeDisk() float64 {
	return max(float64(s.h.DiskGB-s.diskGBUsed), 0)
}

// imageFacts derives the host's supported instance (architecture,
// hypervisor type, VM mode) and hypervisor version from its capabilities,
// canonicalised as the image's are.
func (s *hostState) imageFacts() {
	if s.imgReady {
		return
	}
	s.imgReady = true
	caps := s.h.Capabilities
	s.arch = canonicalArch(caps[CapArch])
	s.hvType = canonicalHVType(caps[CapHypervisorType])
	s.vmM = canonicalVMMode(caps[CapVMMode])
	if v, err := strconv.ParseInt(strings.TrimSpace(caps[CapHypervisorVersion]), 10, 64); err == nil && v > 0 {
		s.hvVersion = intVersion(v)
	}
}

// aggregateMetadata returns the union of the metadata of the host's
// aggregates, each value split on "," and trimmed, as Nova's
// aggregate_metadata_get_by_host does.
func (s *hostState) aggregateMetadata() map[string][]string {
	if s.aggReady {
		return s.aggMeta
	}
	s.aggReady = true
	for _, a := range s.h.Aggregates {
		for k, v := range a.Metadata {
			if s.aggMeta == nil {
				s.aggMeta = make(map[string][]string)
			}
			for part := range strings.SplitSeq(v, ",") {
				part = strings.TrimSpace(part)
				if !slices.Contains(s.aggMeta[k], part) {
					s.aggMeta[k] = append(s.aggMeta[k], part)
				}
			}
		}
	}
	return s.aggMeta
}

// canonicalArch, canonicalHVType and canonicalVMMode map the aliases Nova
// accepts to its canonical names (nova.objects.fields canonicalize).
func canonicalArch(a string) string {
	a = strings.ToLower(strings.TrimSpace(a))
	switch a {
	case "i386", "i486", "i586", "x86_32", "x86_32p":
		return "i686"
	case "amd64":
		return "x86_64"
	}
	return a
}

func canonicalHVType(t string) string {
	t = strings.ToLower(strings.TrimSpace(t))
	if t == "xapi" {
		return "xen"
	}
	return t
}

func canonicalVMMode(m string) string {
	m = strings.ToLower(strings.TrimSpace(m))
	switch m {
	case "pv":
		return "xen"
	case "hv", "baremetal":
		return "hvm"
	}
	return m
}
