package fsm

import (
	"fmt"
	"maps"
	"slices"
	"strings"
)

// Quota resources (Nova's names) and their built-in defaults, which the
// "default" quota class overrides.
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
}

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
	// TableQuotaClass: limits of a quota class ("default"), QuotaLimits.
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
func keypairUsageKey(user string) string       { return "k/" + user }

func readLimits(r Reader, table, key string) (map[string]int64, error) {
	rec, ok, err := r.Get(table, key)
	if err != nil || !ok {
		return nil, err
	}
	var q QuotaLimits
	if err := rec.Decode(&q); err != nil {
		return nil, err
	}
	return q.Limits, nil
}

// ClassQuotas are the limits of the "default" class: built-ins overridden
// by what os-quota-class-sets stored.
func ClassQuotas(r Reader) (map[string]int64, error) {
	out := maps.Clone(DefaultQuotas)
	set, err := readLimits(r, TableQuotaClass, "default")
	if err != nil {
		return nil, err
	}
	maps.Copy(out, set)
	return out, nil
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
			return nil, err
		}
		if u.Used == nil {
			u.Used = map[string]int64{}
		}
	}
	return u.Used, nil
}

// ProjectUsage is a project's counted usage; key_pairs are the given
// user's (Nova counts key pairs per user).
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
// user, inside Apply. Increases are checked against the project's and the
// user's limits first; if any would be exceeded nothing is written and the
// error is Nova's "Quota exceeded for ..." (KindQuota, a 403). Releases are
// never refused and never go below zero.
func ChargeQuota(tx *Txn, project, user string, deltas map[string]int64) error {
	for res := range deltas {
		if !countedQuotas[res] {
			return fmt.Errorf("fsm: quota resource %q is not counted", res)
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
	userLimits, err := UserQuotas(tx, project, user)
	if err != nil {
		return err
	}
	var over []string
	var req, used, allowed []string
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
