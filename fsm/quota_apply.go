package fsm

import (
	"fmt"
	"maps"
	"math"
	"slices"
	"strings"
	"unicode/utf8"
)

// Commands that set quota limits (os-quota-sets, os-quota-class-sets).
// Usage is not theirs: it moves with the resources, through ChargeQuota.

// Quota command types. Persisted in the Raft log: append only, never
// renumber. 90–99 are reserved for quotas.
const (
	CmdSetQuota      CommandType = 90
	CmdDeleteQuota   CommandType = 91
	CmdSetQuotaClass CommandType = 92
)

// Limits of quota names: Nova's columns are 255 characters.
const (
	quotaMaxIDLen        = 255
	quotaMaxClassNameLen = 255
)

// SetQuota sets limits of a project (UserID "") or of one user within a
// project, as PUT /os-quota-sets/{project}[?user_id=] does. Resources not
// named keep their limits. The project must exist. Unless Force is set,
// every limit must be at least what is in use (for a project, also the sum
// of its users' limits) and a user's limit at most the project's limit less
// the other users' limits; -1 (unlimited) counts as infinite in both
// checks. No response value.
type SetQuota struct {
	ProjectID string           `json:"project_id"`
	UserID    string           `json:"user_id,omitempty"`
	Limits    map[string]int64 `json:"limits"`
	Force     bool             `json:"force,omitempty"`
}

func (*SetQuota) CommandType() CommandType { return CmdSetQuota }
func (*SetQuota) CommandVersion() uint8    { return 1 }

// DeleteQuota reverts a user's limits within a project (UserID set), or a
// project's limits and those of all its users (UserID ""), to the defaults,
// as DELETE /os-quota-sets/{project}[?user_id=] does. Deleting limits that
// were never set succeeds. Usage is kept. No response value.
type DeleteQuota struct {
	ProjectID string `json:"project_id"`
	UserID    string `json:"user_id,omitempty"`
}

func (*DeleteQuota) CommandType() CommandType { return CmdDeleteQuota }
func (*DeleteQuota) CommandVersion() uint8    { return 1 }

// SetQuotaClass sets limits of a quota class (PUT /os-quota-class-sets/
// {class}). The "default" class replaces the built-in defaults of every
// project; other classes are stored and shown but apply to no project, as
// in Nova. No response value.
type SetQuotaClass struct {
	Class  string           `json:"class"`
	Limits map[string]int64 `json:"limits"`
}

func (*SetQuotaClass) CommandType() CommandType { return CmdSetQuotaClass }
func (*SetQuotaClass) CommandVersion() uint8    { return 1 }

func init() {
	register("SetQuota", applySetQuota)
	register("DeleteQuota", applyDeleteQuota)
	register("SetQuotaClass", applySetQuotaClass)
}

// --- validation -------------------------------------------------------------

// QuotaIDOK reports whether id can name a project or user in quota keys:
// 1 to 255 bytes without NUL or '/' ('/' separates the parts of a key).
func QuotaIDOK(id string) bool {
	return id != "" && len(id) <= quotaMaxIDLen && !strings.ContainsAny(id, "\x00/")
}

func quotaCheckID(what, id string) error {
	if !QuotaIDOK(id) {
		return Errorf(KindInvalid, "Invalid %s ID %s: want 1 to %d bytes without NUL or '/'.", what, identShow(id), quotaMaxIDLen)
	}
	return nil
}

// ValidQuotaClassName checks a quota class name as Nova does: 1 to 255
// characters (here also valid UTF-8 without NUL, as a key must be).
func ValidQuotaClassName(name string) error {
	switch {
	case name == "":
		return Errorf(KindInvalid, "quota_class_name has a minimum character requirement of 1.")
	case !utf8.ValidString(name) || strings.ContainsRune(name, 0):
		return Errorf(KindInvalid, "quota_class_name %s is not valid UTF-8 without NUL.", identShow(name))
	case utf8.RuneCountInString(name) > quotaMaxClassNameLen:
		return Errorf(KindInvalid, "quota_class_name has more than %d characters.", quotaMaxClassNameLen)
	}
	return nil
}

// ValidQuotaLimits checks that every resource is known and every limit is
// -1 (unlimited) or between 0 and MaxQuotaLimit, with Nova's wording.
func ValidQuotaLimits(limits map[string]int64) error {
	for _, res := range slices.Sorted(maps.Keys(limits)) {
		v := limits[res]
		if _, ok := DefaultQuotas[res]; !ok {
			return Errorf(KindInvalid, "%s is not a quota resource.", identShow(res))
		}
		if v < -1 {
			return Errorf(KindInvalid, "Invalid input for field/attribute %s. Value: %d. %d is less than the minimum of -1", res, v, v)
		}
		if v > MaxQuotaLimit {
			return Errorf(KindInvalid, "Invalid input for field/attribute %s. Value: %d. %d is greater than the maximum of %d", res, v, v, MaxQuotaLimit)
		}
	}
	return nil
}

// quotaInf orders limits with -1 (unlimited) above every other value.
func quotaInf(v int64) float64 {
	if v == -1 {
		return math.Inf(1)
	}
	return float64(v)
}

// userLimitSums adds up, by resource, the limits set for the users of
// project other than except. Unlimited (-1) user limits add nothing: they
// are bounded by the project's limit alone.
func userLimitSums(r Reader, project, except string) (map[string]int64, error) {
	prefix := userQuotaPrefix(project)
	sums := map[string]int64{}
	var derr error
	err := r.Scan(TableQuota, prefix, func(rec Record) bool {
		if rec.Key == prefix+except {
			return true
		}
		var q QuotaLimits
		if derr = rec.Decode(&q); derr != nil {
			derr = fmt.Errorf("fsm: decode %s/%s: %w", TableQuota, rec.Key, derr)
			return false
		}
		for res, v := range q.Limits {
			if v > 0 {
				sums[res] += v
			}
		}
		return true
	})
	if err == nil {
		err = derr
	}
	return sums, err
}

// --- appliers ---------------------------------------------------------------

func applySetQuota(tx *Txn, c *SetQuota) (any, error) {
	if err := quotaCheckID("project", c.ProjectID); err != nil {
		return nil, err
	}
	if c.UserID != "" {
		if err := quotaCheckID("user", c.UserID); err != nil {
			return nil, err
		}
	}
	if err := ValidQuotaLimits(c.Limits); err != nil {
		return nil, err
	}
	if ok, err := identExists(tx, TableProject, c.ProjectID); err != nil {
		return nil, err
	} else if !ok {
		return nil, Errorf(KindInvalid, "Project ID %s is not a valid project.", c.ProjectID)
	}
	key := projectQuotaKey(c.ProjectID)
	if c.UserID != "" {
		key = userQuotaKey(c.ProjectID, c.UserID)
	}
	old, err := readLimits(tx, TableQuota, key)
	if err != nil {
		return nil, err
	}
	if !c.Force {
		if err := checkSettable(tx, c); err != nil {
			return nil, err
		}
	}
	if !quotaChanges(old, c.Limits) {
		return nil, nil // no write, no new modify index
	}
	return nil, tx.Put(TableQuota, key, &QuotaLimits{Limits: overlay(old, c.Limits)})
}

// quotaChanges reports whether setting limits over old changes anything.
func quotaChanges(old, limits map[string]int64) bool {
	for res, v := range limits {
		if cur, ok := old[res]; !ok || cur != v {
			return true
		}
	}
	return false
}

// checkSettable applies Nova's settable range to each new limit (its
// get_settable_quotas): at least what is in use (and, for a project, the
// sum of its users' limits); for a user, at most the project's limit less
// the other users' limits. In-use counts are what Nova reports: instances,
// cores, ram and server_groups; key pairs (counted per user, across
// projects) and the uncounted resources count as 0.
func checkSettable(tx *Txn, c *SetQuota) error {
	// maximum holds the bounded resources only.
	minimum, maximum := map[string]int64{}, map[string]int64{}
	if c.UserID == "" {
		used, err := readUsage(tx, projectQuotaKey(c.ProjectID))
		if err != nil {
			return err
		}
		users, err := userLimitSums(tx, c.ProjectID, "")
		if err != nil {
			return err
		}
		for res := range c.Limits {
			minimum[res] = max(used[res], users[res])
		}
	} else {
		used, err := readUsage(tx, userQuotaKey(c.ProjectID, c.UserID))
		if err != nil {
			return err
		}
		proj, err := ProjectQuotas(tx, c.ProjectID)
		if err != nil {
			return err
		}
		others, err := userLimitSums(tx, c.ProjectID, c.UserID)
		if err != nil {
			return err
		}
		for res := range c.Limits {
			minimum[res] = used[res]
			if p := proj[res]; p != -1 {
				maximum[res] = p - others[res]
			}
		}
	}
	for _, res := range slices.Sorted(maps.Keys(c.Limits)) {
		v := c.Limits[res]
		if quotaInf(v) < float64(minimum[res]) {
			return Errorf(KindInvalid, "Quota limit %d for %s must be greater than or equal to already used and reserved %d.", v, res, minimum[res])
		}
		if hi, bounded := maximum[res]; bounded && quotaInf(v) > float64(hi) {
			return Errorf(KindInvalid, "Quota limit %d for %s must be less than or equal to %d.", v, res, hi)
		}
	}
	return nil
}

func applyDeleteQuota(tx *Txn, c *DeleteQuota) (any, error) {
	if err := quotaCheckID("project", c.ProjectID); err != nil {
		return nil, err
	}
	if c.UserID != "" {
		if err := quotaCheckID("user", c.UserID); err != nil {
			return nil, err
		}
		return nil, quotaDeleteIfSet(tx, userQuotaKey(c.ProjectID, c.UserID))
	}
	var keys []string
	if err := tx.Scan(TableQuota, userQuotaPrefix(c.ProjectID), func(rec Record) bool {
		keys = append(keys, rec.Key)
		return true
	}); err != nil {
		return nil, err
	}
	keys = append(keys, projectQuotaKey(c.ProjectID))
	for _, k := range keys {
		if err := quotaDeleteIfSet(tx, k); err != nil {
			return nil, err
		}
	}
	return nil, nil
}

// quotaDeleteIfSet deletes TableQuota/key if it exists, so that deleting
// nothing marks no table as changed.
func quotaDeleteIfSet(tx *Txn, key string) error {
	if _, ok, err := tx.Get(TableQuota, key); err != nil || !ok {
		return err
	}
	return tx.Delete(TableQuota, key)
}

func applySetQuotaClass(tx *Txn, c *SetQuotaClass) (any, error) {
	if err := ValidQuotaClassName(c.Class); err != nil {
		return nil, err
	}
	if err := ValidQuotaLimits(c.Limits); err != nil {
		return nil, err
	}
	old, err := readLimits(tx, TableQuotaClass, c.Class)
	if err != nil {
		return nil, err
	}
	if !quotaChanges(old, c.Limits) {
		return nil, nil
	}
	return nil, tx.Put(TableQuotaClass, c.Class, &QuotaLimits{Limits: overlay(old, c.Limits)})
}
