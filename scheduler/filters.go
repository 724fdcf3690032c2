package scheduler

// Filter names, as Nova's filter classes are named. NoValidHost.Filtered
// holds one of them: the filter that removed the last hosts.
const (
	FilterCompute                     = "ComputeFilter"
	FilterAvailabilityZone            = "AvailabilityZoneFilter"
	FilterComputeCapabilities         = "ComputeCapabilitiesFilter"
	FilterImageProperties             = "ImagePropertiesFilter"
	FilterAggregateInstanceExtraSpecs = "AggregateInstanceExtraSpecsFilter"
	FilterRetry                       = "RetryFilter" // Request.ExcludeHosts
	FilterRAM                         = "RamFilter"
	FilterCore                        = "CoreFilter"
	FilterDisk                        = "DiskFilter"
	FilterSameHost                    = "SameHostFilter"
	FilterDifferentHost               = "DifferentHostFilter"
	FilterServerGroupAntiAffinity     = "ServerGroupAntiAffinityFilter"
	FilterServerGroupAffinity         = "ServerGroupAffinityFilter"
	// FilterForcedHost: the forced host is not in the host view.
	FilterForcedHost = "ForcedHost"
	// FilterRequestedHost: the requested destination (an evacuation's host
	// without force) is not this host; Nova restricts the hosts to it
	// before filtering.
	FilterRequestedHost = "RequestedHost"
	// FilterInvalidSize: the request asks for a negative amount.
	FilterInvalidSize = "InvalidSize"
)

// reqCtx is one request as the filters see it.
type reqCtx struct {
	r    *Request
	spec *shapeSpec
	// The hosts of the hints and retries.
	exclude, sameHost, differentHost, requested hostSet
	group                                       *groupState // nil without a group
}

// filter is one of Nova's host filters: a pure predicate on a host (with
// this batch's claims) and a request.
type filter struct {
	name   string
	passes func(h *hostState, rc *reqCtx) bool
	// applies, when set, says whether the filter can remove any host for
	// rc; the host-by-host path skips it when not.
	applies func(rc *reqCtx) bool
}

// staticFilters depend only on the host and the request's shape, never on
// claims, so Place evaluates them once per shape and batch. They run
// before requestFilters: a host's first failing filter, in this order,
// names the NoValidHost.
var staticFilters = []filter{
	{FilterCompute, computeFilter, nil},
	{FilterAvailabilityZone, availabilityZoneFilter, nil},
	{FilterComputeCapabilities, computeCapabilitiesFilter, nil},
	{FilterImageProperties, imagePropertiesFilter, nil},
	{FilterAggregateInstanceExtraSpecs, aggregateInstanceExtraSpecsFilter, nil},
}

// requestFilters depend on the claims made so far or on one request's
// hints, retries and group.
var requestFilters = []filter{
	{FilterRequestedHost, func(h *hostState, rc *reqCtx) bool { return !rc.requested.given || rc.requested.has(h.idx) },
		func(rc *reqCtx) bool { return rc.requested.given }},
	{FilterRetry, retryFilter, func(rc *reqCtx) bool { return rc.exclude.given }},
	{FilterRAM, ramFilter, nil},
	{FilterCore, coreFilter, nil},
	{FilterDisk, diskFilter, nil},
	{FilterSameHost, sameHostFilter, func(rc *reqCtx) bool { return rc.sameHost.given }},
	{FilterDifferentHost, differentHostFilter, func(rc *reqCtx) bool { return rc.differentHost.given }},
	{FilterServerGroupAntiAffinity, serverGroupAntiAffinityFilter, func(rc *reqCtx) bool {
		return rc.group != nil && rc.group.policy == PolicyAntiAffinity
	}},
	{FilterServerGroupAffinity, serverGroupAffinityFilter, func(rc *reqCtx) bool {
		return rc.group != nil && rc.group.policy == PolicyAffinity
	}},
}

// forcedFilters are all a forced host goes through, as Nova skips the
// filters for a forced host but still claims its resources. Retries still
// apply: Nova strips ignored hosts before matching forced ones.
var forcedFilters = []filter{
	{FilterRetry, retryFilter, nil},
	{FilterCompute, computeFilter, nil},
	{FilterRAM, ramFilter, nil},
	{FilterCore, coreFilter, nil},
	{FilterDisk, diskFilter, nil},
}

// computeFilter passes a host whose compute service is up and enabled
// (the view builder folds forced_down into Up).
func computeFilter(h *hostState, _ *reqCtx) bool {
	return h.h.Up && !h.h.Disabled
}

// availabilityZoneFilter passes any host when the request names no zone,
// else the hosts of that zone.
func availabilityZoneFilter(h *hostState, rc *reqCtx) bool {
	return rc.spec.zone == "" || h.h.Zone == rc.spec.zone
}

// computeCapabilitiesFilter matches the flavor's "capabilities:" extra
// specs (and its unscoped ones the host has) against Host.Capabilities.
func computeCapabilitiesFilter(h *hostState, rc *reqCtx) bool {
	for _, c := range rc.spec.caps {
		v, ok := h.h.Capabilities[c.key]
		if !ok {
			if c.optional {
				continue
			}
			return false
		}
		if !matchExtraSpec(v, c.req) {
			return false
		}
	}
	return true
}

// imagePropertiesFilter passes a host whose hypervisor supports the
// architecture, hypervisor type and VM mode the image asks for, and whose
// version meets img_hv_requested_version. An image that asks for none of
// the three passes everywhere; a host that reports none of them supports
// no image that asks.
func imagePropertiesFilter(h *hostState, rc *reqCtx) bool {
	q := &rc.spec.img
	if !q.any() {
		return true
	}
	h.imageFacts()
	if h.arch == "" && h.hvType == "" && h.vmM == "" {
		return false
	}
	if (q.arch != "" && q.arch != h.arch) || (q.hvType != "" && q.hvType != h.hvType) ||
		(q.vmMode != "" && q.vmMode != h.vmM) {
		return false
	}
	if h.hvVersion == nil || (q.version == nil && !q.versionBad) {
		return true // Nova checks the version only when both are known
	}
	return !q.versionBad && satisfies(h.hvVersion, q.version)
}

// aggregateInstanceExtraSpecsFilter matches the flavor's
// "aggregate_instance_extra_specs:" and unscoped extra specs against the
// metadata of the host's aggregates: every key must be there, and one of
// its values must match.
func aggregateInstanceExtraSpecsFilter(h *hostState, rc *reqCtx) bool {
	if len(rc.spec.aggs) == 0 {
		return true
	}
	meta := h.aggregateMetadata()
	for _, a := range rc.spec.aggs {
		vals := meta[a.key]
		if len(vals) == 0 {
			return false
		}
		ok := false
		for _, v := range vals {
			if matchExtraSpec(v, a.req) {
				ok = true
				break
			}
		}
		if !ok {
			return false
		}
	}
	return true
}

// retryFilter removes the hosts a previous attempt failed on.
func retryFilter(h *hostState, rc *reqCtx) bool {
	return !rc.exclude.has(h.idx)
}

func ramFilter(h *hostState, rc *reqCtx) bool  { return h.fitsMemory(rc.r.MemoryMB) }
func coreFilter(h *hostState, rc *reqCtx) bool { return h.fitsVCPUs(rc.r.VCPUs) }
func diskFilter(h *hostState, rc *reqCtx) bool { return h.fitsDisk(rc.r.DiskGB) }

// sameHostFilter: with a same_host hint, only the hosts of those servers.
func sameHostFilter(h *hostState, rc *reqCtx) bool {
	return !rc.sameHost.given || rc.sameHost.has(h.idx)
}

// differentHostFilter: with a different_host hint, none of their hosts.
func differentHostFilter(h *hostState, rc *reqCtx) bool {
	return !rc.differentHost.has(h.idx)
}

// serverGroupAntiAffinityFilter: for an anti-affinity group, a host with
// fewer than max_server_per_host members of the group.
func serverGroupAntiAffinityFilter(h *hostState, rc *reqCtx) bool {
	g := rc.group
	if g == nil || g.policy != PolicyAntiAffinity {
		return true
	}
	return g.members[h.idx] < g.maxPerHost
}

// serverGroupAffinityFilter: for an affinity group that has members, only
// the hosts they are on; the first member goes anywhere.
func serverGroupAffinityFilter(h *hostState, rc *reqCtx) bool {
	g := rc.group
	if g == nil || g.policy != PolicyAffinity || !g.hasMembers() {
		return true
	}
	return g.members[h.idx] > 0
}

// hostSet is a set of hosts of the view, by index. given tells "the hint
// named hosts, none of them in the view" (a same_host hint then passes no
// host) from "no hint".
type hostSet struct {
	given bool
	idx   []int32        // up to hostSetScan hosts
	big   map[int32]bool // beyond
}

// hostSetScan: hint lists are short, and scanning a few int32s beats
// hashing for each of thousands of hosts.
const hostSetScan = 16

func (s *hostSet) has(i int32) bool {
	if s.big != nil {
		return s.big[i]
	}
	for _, x := range s.idx {
		if x == i {
			return true
		}
	}
	return false
}

// makeHostSet resolves host names to indices; names not in the view are
// dropped.
func makeHostSet(names []string, lookup func(string) (int32, bool)) hostSet {
	s := hostSet{given: len(names) > 0}
	for _, n := range names {
		if i, ok := lookup(n); ok && !s.has(i) {
			s.idx = append(s.idx, i)
		}
	}
	if len(s.idx) > hostSetScan {
		s.big = make(map[int32]bool, len(s.idx))
		for _, i := range s.idx {
			s.big[i] = true
		}
	}
	return s
}
