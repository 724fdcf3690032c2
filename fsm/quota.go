package fsm

import (
	"fmt"
	"maps"
	"slices"
	"strings"
)

// Quotas as Nova keeps them: limits set per project, per user of a project
// and per quota class, over built-in defaults; and counted usage, kept here
// in Apply (Nova counts rows instead, which races: two creates on two
// controllers could both see room for one more). The commands that set
// limits are in quota_apply.go.

// DefaultQuotas are the built-in limits of every quota resource (Nova's
// names and its [quota] defaults), which the "default" quota class
// overrides. The four nova-network resources are neither counted nor
// enforced: Nova keeps them, unlimited, in the responses of microversions
// before 2.36 (2.50 for quota classes).
var DefaultQuotas = map[string]int64{
	"instances":                   10,
	"cores":                       20,
	"ram":                         51200,
	"metadata_items":              128,
	"key_pairs":                   100,
	"server_groups":               10,
	"server_group_members":        10,
	"injected_files":              5,
	"injected_file_content_bytes": 10240,
	"injected_file_path_bytes":    255,
	"fixed_ips":                   -1,
	"floating_ips":                -1,
	"security_groups":             -1,
	"security_group_rules":        -1,
}

// MaxQuotaLimit is the largest limit Nova accepts (its database's MAX_INT);
// -1 is unlimited.
const MaxQuotaLimit int64 = 0x7FFFFFFF

// DefaultQuotaClass is the quota class whose limits replace the built-in
// defaults for every project.
const DefaultQuotaClass = "default"

// QuotaResources lists the resources in a stable order.
func QuotaResources() []string { return slices.Sorted(maps.Keys(DefaultQuotas)) }

// Counted resources: usage kept in Apply. key_pairs are counted per user
// (across projects), the others per project and per project user.
var countedQuotas = map[string]bool{"instances": true, "cores": true, "ram": true, "key_pairs": true, "server_groups": true}

// Tables of quota state.
const (
	// TableQuota: limits set for a project ("p/<project>") or a user of a
	// project ("u/<project>/<user>"), a QuotaLimits each.
	TableQuota = "quota"
	// TableQuotaClass: limits of a quota class, by class name, QuotaLimits.
	TableQuotaClass = "quota_class"
	// TableQuotaUsage: counted usage of a project ("p/<project>"), a user
	// of a project ("u/<project>/<user>") or a user's key pairs
	// ("k/<user>"), a QuotaUsage each.
	TableQuotaUsage = "quota_usage"
)

// QuotaLimits are limits by resource; -1 is unlimited. A missing resource
// falls back to the next level (user → project → class → built-in).
type QuotaLimits struct {
	Limits map[string]int64 `json:"limits"`
}

// QuotaUsage is counted usage by resource.
type QuotaUsage struct {
	Used map[string]int64 `json:"used"`
}

func projectQuotaKey(project string) string    { return "p/" + project }
func userQuotaKey(project, user string) string { return "u/" + project + "/" + user }
func userQuotaPrefix(project string) string    { return "u/" + project + "/" }
func keypairUsageKey(user string) string       { return "k/" + user }

// readLimits returns the limits stored at table/key (nil when none are).
func readLimits(r Reader, table, key string) (map[string]int64, error) {
	rec, ok, err := r.Get(table, key)
	if err != nil || !ok {
		return nil, err
	}
	var q QuotaLimits
	if err := rec.Decode(&q); err != nil {
		return nil, fmt.Errorf("fsm: decode %s/%s: %w", table, key, err)
	}
	return q.Limits, nil
}

// overlay returns base with the limits of set replacing its own.
func overlay(base, set map[string]int64) map[string]int64 {
	out := make(map[string]int64, len(base)+len(set))
	maps.Copy(out, base)
	maps.Copy(out, set)
	return out
}

// QuotaClassLimits are the limits of a quota class: the built-in defaults
// overridden by what os-quota-class-sets stored for it (Nova's
// get_class_quotas). Only the "default" class applies to projects.
func QuotaClassLimits(r Reader, class string) (map[string]int64, error) {
	set, err := readLimits(r, TableQuotaClass, class)
	if err != nil {
		return nil, err
	}
	return overlay(DefaultQuotas, set), nil
}

// ClassQuotas are the limits of the "default" class: built-ins overridden
// by what os-quota-class-sets stored. They are every project's defaults.
func ClassQuotas(r Reader) (map[string]int64, error) {
	return QuotaClassLimits(r, DefaultQuotaClass)
}

// ProjectQuotas are the effective limits of a project.
func ProjectQuotas(r Reader, project string) (map[string]int64, error) {
	out, err := ClassQuotas(r)
	if err != nil {
		return nil, err
	}
	set, err := readLimits(r, TableQuota, projectQuotaKey(project))
	if err != nil {
		return nil, err
	}
	maps.Copy(out, set)
	return out, nil
}

// UserQuotas are the effective limits of a user within a project: the
// project's, overridden by any set for the user.
func UserQuotas(r Reader, project, user string) (map[string]int64, error) {
	out, err := ProjectQuotas(r, project)
	if err != nil {
		return nil, err
	}
	set, err := readLimits(r, TableQuota, userQuotaKey(project, user))
	if err != nil {
		return nil, err
	}
	maps.Copy(out, set)
	return out, nil
}

func readUsage(r Reader, key string) (map[string]int64, error) {
	rec, ok, err := r.Get(TableQuotaUsage, key)
	if err != nil {
		return nil, err
	}
	u := QuotaUsage{Used: map[string]int64{}}
	if ok {
		if err := rec.Decode(&u); err != nil {
			return nil, fmt.Errorf("fsm: decode %s/%s: %w", TableQuotaUsage, key, err)
		}
		if u.Used == nil {
			u.Used = map[string]int64{}
		}
	}
	return u.Used, nil
}

// ProjectUsage is a project's counted usage; key_pairs are the given
// user's (Nova counts key pairs per user), absent when user is "".
func ProjectUsage(r Reader, project, user string) (map[string]int64, error) {
	used, err := readUsage(r, projectQuotaKey(project))
	if err != nil {
		return nil, err
	}
	if user != "" {
		kp, err := readUsage(r, keypairUsageKey(user))
		if err != nil {
			return nil, err
		}
		used["key_pairs"] = kp["key_pairs"]
	}
	return used, nil
}

// UserUsage is the counted usage of a user within a project (key_pairs:
// the user's, in every project).
func UserUsage(r Reader, project, user string) (map[string]int64, error) {
	used, err := readUsage(r, userQuotaKey(project, user))
	if err != nil {
		return nil, err
	}
	kp, err := readUsage(r, keypairUsageKey(user))
	if err != nil {
		return nil, err
	}
	used["key_pairs"] = kp["key_pairs"]
	return used, nil
}

// ChargeQuota adds deltas (negative to release) to the usage of project and
// user, inside Apply. Resources are the counted ones: instances, cores, ram
// and server_groups (per project and per user of the project) and key_pairs
// (per user, across projects, against the user's limit in project).
// Increases are checked against the project's and the user's limits first;
// if any would be exceeded nothing is written and the error is Nova's
// "Quota exceeded for ..." (KindQuota, a 403). Releases are never refused
// and never go below zero. An applier may try several charges in one Txn:
// a refused one leaves no trace.
func ChargeQuota(tx *Txn, project, user string, deltas map[string]int64) error {
	for _, res := range slices.Sorted(maps.Keys(deltas)) {
		if !countedQuotas[res] {
			// A caller's bug, the same on every node: refuse the
			// command rather than stop the controller.
			return Errorf(KindInternal, "quota resource %q is not counted", res)
		}
	}
	projUsed, err := readUsage(tx, projectQuotaKey(project))
	if err != nil {
		return err
	}
	userUsed, err := readUsage(tx, userQuotaKey(project, user))
	if err != nil {
		return err
	}
	kpUsed, err := readUsage(tx, keypairUsageKey(user))
	if err != nil {
		return err
	}
	projLimits, err := ProjectQuotas(tx, project)
	if err != nil {
		return err
	}
	userSet, err := readLimits(tx, TableQuota, userQuotaKey(project, user))
	if err != nil {
		return err
	}
	userLimits := overlay(projLimits, userSet)

	var over, req, used, allowed []string
	for _, res := range slices.Sorted(maps.Keys(deltas)) {
		d := deltas[res]
		if d <= 0 {
			continue
		}
		check := func(limit, cur int64) bool {
			if limit >= 0 && cur+d > limit {
				over = append(over, res)
				req = append(req, fmt.Sprint(d))
				used = append(used, fmt.Sprint(cur))
				allowed = append(allowed, fmt.Sprint(limit))
				return false
			}
			return true
		}
		if res == "key_pairs" {
			check(userLimits[res], kpUsed[res])
			continue
		}
		if check(projLimits[res], projUsed[res]) {
			check(userLimits[res], userUsed[res])
		}
	}
	if len(over) > 0 {
		return Errorf(KindQuota, "Quota exceeded for %s: Requested %s, but already used %s of %s %s",
			strings.Join(over, ", "), strings.Join(req, ", "), strings.Join(used, ", "), strings.Join(allowed, ", "), strings.Join(over, ", "))
	}
	add := func(m map[string]int64, res string, d int64) {
		m[res] = max(0, m[res]+d)
	}
	touchedKP, touchedPU := false, false
	for res, d := range deltas {
		if res == "key_pairs" {
			add(kpUsed, res, d)
			touchedKP = true
			continue
		}
		add(projUsed, res, d)
		add(userUsed, res, d)
		touchedPU = true
	}
	if touchedKP {
		if err := tx.Put(TableQuotaUsage, keypairUsageKey(user), &QuotaUsage{Used: kpUsed}); err != nil {
			return err
		}
	}
	if touchedPU {
		if err := tx.Put(TableQuotaUsage, projectQuotaKey(project), &QuotaUsage{Used: projUsed}); err != nil {
			return err
		}
		if err := tx.Put(TableQuotaUsage, userQuotaKey(project, user), &QuotaUsage{Used: userUsed}); err != nil {
			return err
		}
	}
	return nil
}
