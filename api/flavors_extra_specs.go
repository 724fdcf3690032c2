package api

import (
	"encoding/json"
	"fmt"
	"math/big"
	"net/http"
	"regexp"
	"slices"
	"strings"

	"github.com/keel-cloud/keel/fsm"
)

// Flavor extra specs: /flavors/{flavor_id}/os-extra_specs[/{key}]. Reads
// are for any project reader (Nova's PROJECT_READER_OR_ADMIN), subject to
// the flavor being visible to the caller; writes are admin only.
//
// From microversion 2.86 Nova validates the extra specs it knows: a known
// key's value must fit (hw:cpu_policy is dedicated, shared or mixed,
// hw:numa_nodes an integer >= 1, ...), and an unknown key in a namespace
// Nova knows (hw:, quota:, resources:, trait:, ...) is refused, while keys
// outside those namespaces are free. flvSpecRules lists what Keel knows,
// after Nova's validators. This validation stays in the API layer (not in
// the FSM's appliers) because it depends on the microversion and grows with
// releases, and an applier must decide the same way on every replay.

type flvSpecKind int

const (
	flvSpecStr flvSpecKind = iota
	flvSpecInt
	flvSpecBool
)

// flvSpecRule is one known extra spec (or a family, when re is set).
type flvSpecRule struct {
	name     string         // exact name, or a description for a family
	re       *regexp.Regexp // full-match of a family's names; nil: exact name
	kind     flvSpecKind
	enum     []string
	pattern  string         // the regular expression of string values, as messages quote it
	valueRe  *regexp.Regexp // pattern, anchored
	min, max *int64
}

func flvI(v int64) *int64 { return &v }

func flvStrSpec(name string) flvSpecRule { return flvSpecRule{name: name} }
func flvEnumSpec(name string, vals ...string) flvSpecRule {
	return flvSpecRule{name: name, enum: vals}
}
func flvPatternSpec(name, pattern string) flvSpecRule {
	return flvSpecRule{name: name, pattern: pattern, valueRe: regexp.MustCompile("^(?:" + pattern + ")$")}
}
func flvIntSpec(name string, min, max *int64) flvSpecRule {
	return flvSpecRule{name: name, kind: flvSpecInt, min: min, max: max}
}
func flvBoolSpec(name string) flvSpecRule { return flvSpecRule{name: name, kind: flvSpecBool} }

// flvFamily turns a rule into a family matching the regular expression re.
func flvFamily(re string, r flvSpecRule) flvSpecRule {
	r.re = regexp.MustCompile("^(?:" + re + ")$")
	return r
}

const (
	flvCPUMask   = `\^?\d+((-\d+)?(,\^?\d+(-\d+)?)?)*`
	flvSpecGroup = `([a-zA-Z0-9_-]{1,64})?`
)

// flvResourceClasses are os-resource-classes' standard classes.
var flvResourceClasses = []string{
	"VCPU", "MEMORY_MB", "DISK_GB", "PCI_DEVICE", "SRIOV_NET_VF", "NUMA_SOCKET", "NUMA_CORE",
	"NUMA_THREAD", "NUMA_MEMORY_MB", "IPV4_ADDRESS", "VGPU", "VGPU_DISPLAY_HEAD",
	"NET_BW_EGR_KILOBIT_PER_SEC", "NET_BW_IGR_KILOBIT_PER_SEC", "PCPU", "MEM_ENCRYPTION_CONTEXT",
	"FPGA", "PGPU", "NET_PACKET_RATE_KILOPACKET_PER_SEC", "NET_PACKET_RATE_EGR_KILOPACKET_PER_SEC",
	"NET_PACKET_RATE_IGR_KILOPACKET_PER_SEC",
}

// flvSpecRules are the extra specs Keel validates at 2.86+ by exact name,
// flvSpecFamilies those matched by a regular expression, and
// flvSpecNamespaces the namespaces (full-match expressions of the part
// before the first ':') in which an unknown key is refused.
var flvSpecRules, flvSpecFamilies, flvSpecNamespaces = flvBuildSpecRules()

func flvBuildSpecRules() (map[string]flvSpecRule, []flvSpecRule, []*regexp.Regexp) {
	var rules []flvSpecRule
	add := func(r ...flvSpecRule) { rules = append(rules, r...) }
	zero, one := flvI(0), flvI(1)

	// hw:
	add(flvBoolSpec("hw:cpu_realtime"),
		flvPatternSpec("hw:cpu_realtime_mask", `(\^)?\d+((-\d+)?(,\^?\d+(-\d+)?)?)*`),
		flvBoolSpec("hw:hide_hypervisor_id"),
		flvEnumSpec("hw:cpu_policy", "dedicated", "shared", "mixed"),
		flvEnumSpec("hw:cpu_thread_policy", "prefer", "isolate", "require"),
		flvEnumSpec("hw:emulator_threads_policy", "isolate", "share"),
		flvPatternSpec("hw:cpu_dedicated_mask", flvCPUMask),
		flvPatternSpec("hw:mem_page_size", `(large|small|any|\d+([kKMGT]i?)?(b|bit|B)?)`),
		flvBoolSpec("hw:locked_memory"),
		flvIntSpec("hw:numa_nodes", one, nil),
		flvFamily(`hw:numa_cpus.\d+`, flvPatternSpec("hw:numa_cpus.{num}", flvCPUMask)),
		flvFamily(`hw:numa_mem.\d+`, flvIntSpec("hw:numa_mem.{num}", one, nil)),
		flvEnumSpec("hw:pci_numa_affinity_policy", "required", "preferred", "legacy", "socket"),
		flvIntSpec("hw:cpu_sockets", one, nil),
		flvIntSpec("hw:cpu_cores", one, nil),
		flvIntSpec("hw:cpu_threads", one, nil),
		flvIntSpec("hw:cpu_max_sockets", one, nil),
		flvIntSpec("hw:cpu_max_cores", one, nil),
		flvIntSpec("hw:cpu_max_threads", one, nil),
		flvBoolSpec("hw:boot_menu"),
		flvBoolSpec("hw:vif_multiqueue_enabled"),
		flvBoolSpec("hw:mem_encryption"),
		flvEnumSpec("hw:mem_encryption_model", "amd-sev", "amd-sev-es", "amd-sev-snp"),
		flvPatternSpec("hw:pmem", `([a-zA-Z0-9_]+(,)?)+`),
		flvBoolSpec("hw:pmu"),
		flvIntSpec("hw:serial_port_count", zero, nil),
		flvEnumSpec("hw:tpm_model", "tpm-tis", "tpm-crb"),
		flvEnumSpec("hw:tpm_version", "1.2", "2.0"),
		flvEnumSpec("hw:tpm_secret_security", "user", "host", "deployment"),
		flvEnumSpec("hw:watchdog_action", "none", "pause", "poweroff", "reset", "disabled"),
		flvEnumSpec("hw:viommu_model", "intel", "smmuv3", "virtio", "auto"),
		flvBoolSpec("hw:virtio_packed_ring"),
		flvEnumSpec("hw:sound_model", "sb16", "es1370", "pcspk", "ac97", "ich6", "ich9", "usb", "virtio"),
		flvEnumSpec("hw:usb_model", "none", "nec-xhci", "qemu-xhci"),
		flvIntSpec("hw:redirected_usb_ports", zero, flvI(15)),
		flvBoolSpec("hw:ephemeral_encryption"),
		flvEnumSpec("hw:ephemeral_encryption_format", "plain", "luks", "luksv2"),
	)
	// hw_rng:, hw_video:, os:, accel:, vmware:, pci_passthrough:
	add(flvBoolSpec("hw_rng:allowed"),
		flvIntSpec("hw_rng:rate_bytes", zero, nil),
		flvIntSpec("hw_rng:rate_period", zero, nil),
		flvIntSpec("hw_video:ram_max_mb", zero, nil),
		flvEnumSpec("os:secure_boot", "disabled", "required"),
		flvStrSpec("accel:device_profile"),
		flvStrSpec("vmware:hw_version"),
		flvStrSpec("vmware:storage_policy"),
		flvPatternSpec("pci_passthrough:alias", `[^:]+:\d+(?:\s*,\s*[^:]+:\d+)*`),
	)
	// Without a namespace.
	add(flvBoolSpec("hide_hypervisor_id"), flvEnumSpec("group_policy", "isolate", "none"))
	// aggregate_instance_extra_specs: any key, any value.
	add(flvFamily(`aggregate_instance_extra_specs:.+`, flvStrSpec("aggregate_instance_extra_specs:{key}")))
	// capabilities:
	for _, c := range []string{"id", "uuid", "service_id", "host", "vcpus", "memory_mb", "local_gb",
		"vcpus_used", "memory_mb_used", "local_gb_used", "hypervisor_type", "hypervisor_version",
		"hypervisor_hostname", "free_ram_mb", "free_disk_gb", "current_workload", "running_vms",
		"disk_available_least", "host_ip", "mapped", "cpu_allocation_ratio", "ram_allocation_ratio",
		"disk_allocation_ratio", "total_usable_ram_mb", "total_usable_disk_gb", "disk_mb_used",
		"free_disk_mb", "vcpus_total", "num_instances", "num_io_ops", "failed_builds", "aggregates",
		"cell_uuid", "updated"} {
		add(flvStrSpec("capabilities:" + c))
	}
	for _, c := range []string{"cpu_info", "metrics", "stats", "numa_topology", "supported_hv_specs",
		"pci_device_pools", "nodename", "pci_stats", "supported_instances", "limits", "instances"} {
		add(flvFamily(`capabilities:`+c+`(:\w+)*`, flvStrSpec("capabilities:"+c+"{filter}")))
	}
	// quota:
	for _, k := range []string{"cpu", "memory", "disk_io", "vif"} {
		add(flvIntSpec("quota:"+k+"_limit", zero, nil),
			flvIntSpec("quota:"+k+"_reservation", nil, nil),
			flvEnumSpec("quota:"+k+"_shares_level", "custom", "high", "normal", "low"),
			flvIntSpec("quota:"+k+"_shares_share", zero, nil))
	}
	add(flvIntSpec("quota:cpu_shares", zero, nil), flvIntSpec("quota:cpu_period", zero, nil), flvIntSpec("quota:cpu_quota", nil, nil))
	for _, stat := range []string{"read", "write", "total"} {
		for _, m := range []string{"bytes", "iops"} {
			add(flvIntSpec("quota:disk_"+stat+"_"+m+"_sec", zero, nil))
		}
	}
	for _, dir := range []string{"inbound", "outbound"} {
		for _, m := range []string{"average", "peak", "burst"} {
			add(flvIntSpec("quota:vif_"+dir+"_"+m, zero, nil))
		}
	}
	// resources{group}: and trait{group}:. Traits are checked for the shape
	// of os-traits' names (upper case, digits, '_'), not against its list.
	add(flvFamily(`resources`+flvSpecGroup+`:(`+strings.Join(flvResourceClasses, "|")+`)`, flvIntSpec("resources{group}:{resource_class}", nil, nil)),
		flvFamily(`resources`+flvSpecGroup+`:CUSTOM_[A-Z0-9_]+`, flvIntSpec("resources{group}:CUSTOM_{resource}", nil, nil)),
		flvFamily(`trait`+flvSpecGroup+`:[A-Z][A-Z0-9_]*`, flvEnumSpec("trait{group}:{trait}", "required", "forbidden")))

	byName := map[string]flvSpecRule{}
	var families []flvSpecRule
	for _, r := range rules {
		if _, dup := byName[r.name]; dup {
			panic("api: extra spec rule listed twice: " + r.name)
		}
		byName[r.name] = r
		if r.re != nil {
			families = append(families, r)
		}
	}
	var ns []*regexp.Regexp
	for _, n := range []string{"hw", "hw_rng", "hw_video", "os", "accel", "vmware", "pci_passthrough",
		"aggregate_instance_extra_specs", "capabilities", "quota", "resources" + flvSpecGroup, "trait" + flvSpecGroup} {
		ns = append(ns, regexp.MustCompile("^(?:"+n+")$"))
	}
	return byName, families, ns
}

// flvValidateSpec is Nova's 2.86 validation of one extra spec.
func flvValidateSpec(name, value string) *Error {
	rule, ok := flvSpecRules[name]
	if !ok || rule.re != nil {
		ok = false
		for _, r := range flvSpecFamilies {
			if r.re.MatchString(name) {
				rule, ok = r, true
				break
			}
		}
	}
	if !ok {
		ns, _, found := strings.Cut(name, ":")
		if !found || !slices.ContainsFunc(flvSpecNamespaces, func(re *regexp.Regexp) bool { return re.MatchString(ns) }) {
			return nil // not a namespace Nova knows: anything goes
		}
		return badRequest("Validation failed; extra spec '%s' does not appear to be a valid extra spec.", name)
	}
	switch rule.kind {
	case flvSpecInt:
		n, ok := flvPyInt(value)
		if !ok {
			return badRequest("Validation failed; '%s' is not a valid integer value.", value)
		}
		if rule.max != nil && n.Cmp(big.NewInt(*rule.max)) > 0 {
			return badRequest("Validation failed; '%s' is greater than the max value of '%d'.", value, *rule.max)
		}
		if rule.min != nil && n.Cmp(big.NewInt(*rule.min)) < 0 {
			return badRequest("Validation failed; '%s' is less than the min value of '%d'.", value, *rule.min)
		}
	case flvSpecBool:
		if _, ok := flvPyBool(value); !ok {
			return badRequest("Validation failed; '%s' is not a valid boolean-like value.", value)
		}
	default:
		switch {
		case rule.valueRe != nil:
			if !rule.valueRe.MatchString(value) {
				return badRequest("Validation failed; '%s' is not of the format '%s'.", value, rule.pattern)
			}
		case rule.enum != nil:
			if !slices.Contains(rule.enum, value) {
				return badRequest("Validation failed; '%s' is not one of: %s.", value, strings.Join(rule.enum, ", "))
			}
		}
	}
	return nil
}

// flvSpecKeyPattern is Nova's extra spec key pattern, as its schema errors
// quote it.
const flvSpecKeyPattern = "^[a-zA-Z0-9-_:. ]{1,255}$"

// flvCheckSpecsObject validates a metadata object of extra specs (keys of
// flvSpecKeyPattern, values strings of at most 255 characters or numbers).
// field is the object's field name ("" at the top of the body). It returns
// the specs as stored (numbers as Python's str() renders them).
func flvCheckSpecsObject(field string, v any) (map[string]string, *Error) {
	fail := func(msg string) *Error {
		if field == "" {
			return badRequest("%s", msg)
		}
		return flvFieldErr(field, v, msg)
	}
	m, ok := v.(map[string]any)
	if !ok {
		return nil, fail(flvTypeMsg(v, "object"))
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	var extras []string
	out := make(map[string]string, len(m))
	for _, k := range keys {
		if !fsm.FlavorSpecKeyOK(k) {
			extras = append(extras, k)
			continue
		}
		switch x := m[k].(type) {
		case string:
			if flvLen(x) > fsm.FlavorMaxSpecValueLen {
				return nil, flvFieldErr(k, x, pyRepr(x)+" is too long")
			}
			out[k] = x
		case json.Number:
			out[k] = pyNumStr(x)
		default:
			return nil, flvFieldErr(k, x, flvTypeMsg(x, "string", "number"))
		}
	}
	if len(extras) > 0 {
		q := make([]string, len(extras))
		for i, e := range extras {
			q[i] = pyRepr(e)
		}
		verb := "does"
		if len(extras) > 1 {
			verb = "do"
		}
		return nil, fail(fmt.Sprintf("%s %s not match any of the regexes: '%s'", strings.Join(q, ", "), verb, flvSpecKeyPattern))
	}
	return out, nil
}

// flvCheckSpecValues is Nova's check of the values after the schema: a
// number's text at most 255 characters, and the 2.86 validation.
func flvCheckSpecValues(c *Call, raw map[string]any, specs map[string]string) *Error {
	keys := make([]string, 0, len(specs))
	for k := range specs {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		if _, isNum := raw[k].(json.Number); isNum && flvLen(specs[k]) > fsm.FlavorMaxSpecValueLen {
			return flvInvalidInput("extra_specs value has more than %d characters.", fsm.FlavorMaxSpecValueLen)
		}
		if c.Version.AtLeast(2, 86) {
			if err := flvValidateSpec(k, specs[k]); err != nil {
				return err
			}
		}
	}
	return nil
}

// listFlavorExtraSpecs is GET /flavors/{flavor_id}/os-extra_specs.
func (s *Server) listFlavorExtraSpecs(c *Call) error {
	st, err := s.readState(c)
	if err != nil {
		return err
	}
	f, err := s.flavorVisible(c, st, c.Param("flavor_id"))
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, map[string]any{"extra_specs": flvSpecsView(f)})
}

// showFlavorExtraSpec is GET /flavors/{flavor_id}/os-extra_specs/{key}.
func (s *Server) showFlavorExtraSpec(c *Call) error {
	id, key := c.Param("flavor_id"), c.Param("key")
	st, err := s.readState(c)
	if err != nil {
		return err
	}
	f, err := s.flavorVisible(c, st, id)
	if err != nil {
		return err
	}
	v, ok := f.ExtraSpecs[key]
	if !ok {
		return notFound("Flavor %s has no extra specs with key %s.", id, key)
	}
	return c.JSON(http.StatusOK, map[string]any{key: v})
}

// createFlavorExtraSpecs is POST /flavors/{flavor_id}/os-extra_specs: the
// given specs are merged into the flavor's. The answer echoes the request.
func (s *Server) createFlavorExtraSpecs(c *Call) error {
	var body any
	if err := c.Decode(&body); err != nil {
		return err
	}
	top, ok := body.(map[string]any)
	if !ok {
		return badRequest("%s", flvTypeMsg(body, "object"))
	}
	raw, has := top["extra_specs"]
	var specs map[string]string
	if has {
		var verr *Error
		if specs, verr = flvCheckSpecsObject("extra_specs", raw); verr != nil {
			return verr
		}
	} else {
		return badRequest("'extra_specs' is a required property")
	}
	if extras := flvExtras(top, "extra_specs"); len(extras) > 0 {
		return badRequest("%s", flvAdditional(extras))
	}
	if verr := flvCheckSpecValues(c, raw.(map[string]any), specs); verr != nil {
		return verr
	}
	if err := s.apply(c.Context(), &fsm.SetFlavorExtraSpecs{ID: c.Param("flavor_id"), Specs: specs}, nil); err != nil {
		return err
	}
	return c.JSON(http.StatusOK, map[string]any{"extra_specs": raw})
}

// updateFlavorExtraSpec is PUT /flavors/{flavor_id}/os-extra_specs/{key}
// with {key: value}. The answer echoes the request.
func (s *Server) updateFlavorExtraSpec(c *Call) error {
	key := c.Param("key")
	var body any
	if err := c.Decode(&body); err != nil {
		return err
	}
	specs, verr := flvCheckSpecsObject("", body)
	if verr != nil {
		return verr
	}
	raw := body.(map[string]any)
	switch {
	case len(raw) < 1:
		return badRequest("%s does not have enough properties", pyRepr(raw))
	case len(raw) > 1:
		return badRequest("%s has too many properties", pyRepr(raw))
	}
	if verr := flvCheckSpecValues(c, raw, specs); verr != nil {
		return verr
	}
	if _, ok := raw[key]; !ok {
		return badRequest("Request body and URI mismatch")
	}
	if err := s.apply(c.Context(), &fsm.SetFlavorExtraSpecs{ID: c.Param("flavor_id"), Specs: specs}, nil); err != nil {
		return err
	}
	return c.JSON(http.StatusOK, raw)
}

// deleteFlavorExtraSpec is DELETE /flavors/{flavor_id}/os-extra_specs/{key}:
// 200 with no body, as Nova answers.
func (s *Server) deleteFlavorExtraSpec(c *Call) error {
	if err := s.apply(c.Context(), &fsm.DeleteFlavorExtraSpec{ID: c.Param("flavor_id"), Key: c.Param("key")}, nil); err != nil {
		return err
	}
	return c.NoContent(http.StatusOK)
}

// flvSpecsView is a flavor's extra specs for a response: never null.
func flvSpecsView(f *fsm.Flavor) map[string]string {
	if f.ExtraSpecs == nil {
		return map[string]string{}
	}
	return f.ExtraSpecs
}
