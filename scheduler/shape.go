package scheduler

import (
	"maps"
	"slices"
	"strings"
)

// Extra spec scopes (the part of the key before the first ":").
const (
	scopeCapabilities = "capabilities"
	scopeAggregate    = "aggregate_instance_extra_specs"
)

// shapeSpec is what the static filters need of a request, parsed once for
// every request of the same zone, extra specs and image properties. The
// static filters' verdict on a host depends on nothing else, so it is
// computed once per shape and batch (see staticSet).
type shapeSpec struct {
	zone string
	caps []capSpec // ComputeCapabilitiesFilter
	aggs []aggSpec // AggregateInstanceExtraSpecsFilter
	img  imageReq  // ImagePropertiesFilter
}

// capSpec is one requirement on Host.Capabilities[key].
type capSpec struct {
	key, req string
	// optional: an unscoped extra spec, checked only when the host has the
	// key, as Nova checks an unscoped key only against a HostState
	// attribute that exists.
	optional bool
}

// aggSpec is one requirement on the aggregates' metadata[key].
type aggSpec struct{ key, req string }

// imageReq is what the image asks of the hypervisor, canonicalised.
type imageReq struct {
	arch, hvType, vmMode string
	// version: img_hv_requested_version; versionBad when it is set but is
	// not a version predicate (Nova refuses such an image property
	// earlier; here it fails every host whose version is known).
	version    []versionCond
	versionBad bool
}

// any reports whether the image asks for anything the filter checks.
// Nova ignores the version requirement when none of the three is set.
func (q *imageReq) any() bool {
	return q.arch != "" || q.hvType != "" || q.vmMode != ""
}

// parseShape derives a request's static requirements.
func parseShape(r *Request) *shapeSpec {
	sp := &shapeSpec{zone: r.Zone}
	// Sorted keys: the filters' verdicts do not depend on the order, but
	// stable iteration keeps runs repeatable and debuggable.
	for _, k := range slices.Sorted(maps.Keys(r.ExtraSpecs)) {
		v := r.ExtraSpecs[k]
		sp.addCapability(k, v)
		sp.addAggregate(k, v)
	}
	sp.img = parseImageReq(r.ImageProperties)
	return sp
}

// addCapability applies the ComputeCapabilitiesFilter's reading of one
// extra spec: "capabilities:<key>" is required, an unscoped key (no ":")
// is checked if the host has it, any other scope is not its business.
// hw:maxphysaddr_bits is rewritten to its capability, as Nova does.
func (sp *shapeSpec) addCapability(k, v string) {
	if k == "hw:maxphysaddr_bits" {
		sp.caps = append(sp.caps, capSpec{key: "cpu_info:maxphysaddr:bits", req: ">= " + v})
		return
	}
	scope, rest, scoped := strings.Cut(k, ":")
	switch {
	case !scoped:
		sp.caps = append(sp.caps, capSpec{key: k, req: v, optional: true})
	case scope == scopeCapabilities:
		sp.caps = append(sp.caps, capSpec{key: rest, req: v})
	}
}

// addAggregate applies the AggregateInstanceExtraSpecsFilter's reading:
// "aggregate_instance_extra_specs:<key>" and unscoped keys must match the
// aggregates' metadata; other scopes are ignored.
func (sp *shapeSpec) addAggregate(k, v string) {
	scope, rest, scoped := strings.Cut(k, ":")
	switch {
	case !scoped:
		sp.aggs = append(sp.aggs, aggSpec{key: k, req: v})
	case scope == scopeAggregate:
		sp.aggs = append(sp.aggs, aggSpec{key: rest, req: v})
	}
}

// parseImageReq reads the image properties the ImagePropertiesFilter
// uses; the current names win over the legacy ones (architecture,
// hypervisor_type, vm_mode, hypervisor_version_requires).
func parseImageReq(props map[string]string) imageReq {
	get := func(name, legacy string) string {
		if v, ok := props[name]; ok {
			return v
		}
		return props[legacy]
	}
	q := imageReq{
		arch:   canonicalArch(get("hw_architecture", "architecture")),
		hvType: canonicalHVType(get("img_hv_type", "hypervisor_type")),
		vmMode: canonicalVMMode(get("hw_vm_mode", "vm_mode")),
	}
	if v := get("img_hv_requested_version", "hypervisor_version_requires"); strings.TrimSpace(v) != "" {
		conds, ok := parseVersionPredicate(v)
		q.version, q.versionBad = conds, !ok
	}
	return q
}

// shapeKey is a canonical text of what parseShape reads, so requests with
// equal zone, extra specs and image properties share one staticSet.
func shapeKey(r *Request) string {
	if r.Zone == "" && len(r.ExtraSpecs) == 0 && len(r.ImageProperties) == 0 {
		return ""
	}
	var b strings.Builder
	b.WriteString(r.Zone)
	for _, m := range []map[string]string{r.ExtraSpecs, r.ImageProperties} {
		b.WriteByte(0)
		for _, k := range slices.Sorted(maps.Keys(m)) {
			b.WriteString(k)
			b.WriteByte(1)
			b.WriteString(m[k])
			b.WriteByte(2)
		}
	}
	return b.String()
}

// sameShape reports whether two requests have the same static shape,
// without building keys: consecutive requests of a batch usually do.
func sameShape(a, b *Request) bool {
	return a.Zone == b.Zone && maps.Equal(a.ExtraSpecs, b.ExtraSpecs) &&
		maps.Equal(a.ImageProperties, b.ImageProperties)
}
