package api

import (
	"encoding/json"
	"fmt"
	"maps"
	"math"
	"math/big"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strconv"

	"github.com/keel-cloud/keel/fsm"
)

// Quota sets (os-quota-sets) and quota class sets (os-quota-class-sets), as
// Nova serves them from 2.1 to 2.100:
//
//   - 2.1: every resource, the nova-network ones (fixed_ips, floating_ips,
//     security_groups, security_group_rules; unlimited, never enforced)
//     included. Quota class sets leave out server_groups and
//     server_group_members (Nova bug 1693168), though they accept them.
//   - 2.36: quota sets drop the nova-network resources (shown and accepted).
//   - 2.50: quota class sets drop them too and show the server group ones.
//   - 2.57: both drop the injected_file* (personality) resources.
//   - 2.75: unknown query parameters are a 400 (quota sets).
//
// Limits and usage are the FSM's (fsm/quota*.go): a limit is checked
// against usage inside Apply, so a racing create cannot slip under a limit
// being lowered. Nova's policy: reading a project's quotas needs a reader of
// that project or an admin, its defaults any token, changing them an admin;
// quota classes are admin-only.
func (s *Server) registerQuotas() {
	const sets = "/compute/v2.1/os-quota-sets/{tenant_id}"
	const classes = "/compute/v2.1/os-quota-class-sets/{class_name}"
	// Reading depends on the target project: quotaCanRead decides.
	s.handle(Route{Method: "GET", Path: sets, Service: ServiceCompute, Policy: Authenticated, Handle: s.showQuotaSet})
	s.handle(Route{Method: "GET", Path: sets + "/detail", Service: ServiceCompute, Policy: Authenticated, Handle: s.showQuotaSetDetail})
	s.handle(Route{Method: "GET", Path: sets + "/defaults", Service: ServiceCompute, Policy: Authenticated, Handle: s.showQuotaDefaults})
	s.handle(Route{Method: "PUT", Path: sets, Service: ServiceCompute, Policy: Admin, Handle: s.updateQuotaSet})
	s.handle(Route{Method: "DELETE", Path: sets, Service: ServiceCompute, Policy: Admin, Handle: s.deleteQuotaSet})
	s.handle(Route{Method: "GET", Path: classes, Service: ServiceCompute, Policy: Admin, Handle: s.showQuotaClassSet})
	s.handle(Route{Method: "PUT", Path: classes, Service: ServiceCompute, Policy: Admin, Handle: s.updateQuotaClassSet})
	s.registerLimits()
}

// Resource groups whose presence depends on the microversion.
var (
	quotaCommon   = []string{"instances", "cores", "ram", "metadata_items", "key_pairs"}
	quotaGroups   = []string{"server_groups", "server_group_members"}
	quotaNetwork  = []string{"fixed_ips", "floating_ips", "security_groups", "security_group_rules"}
	quotaInjected = []string{"injected_files", "injected_file_content_bytes", "injected_file_path_bytes"}
)

// quotaSetFields are the resources os-quota-sets shows and accepts at v.
func quotaSetFields(v Microversion) []string {
	f := slices.Concat(quotaCommon, quotaGroups)
	if !v.AtLeast(2, 36) {
		f = append(f, quotaNetwork...)
	}
	if !v.AtLeast(2, 57) {
		f = append(f, quotaInjected...)
	}
	return f
}

// quotaClassFields are the resources os-quota-class-sets shows at v
// (shown) and accepts (accepted).
func quotaClassFields(v Microversion) (shown, accepted []string) {
	shown = slices.Clone(quotaCommon)
	accepted = slices.Concat(quotaCommon, quotaGroups)
	if v.AtLeast(2, 50) {
		shown = append(shown, quotaGroups...)
	} else {
		shown = append(shown, quotaNetwork...)
		accepted = append(accepted, quotaNetwork...)
	}
	if !v.AtLeast(2, 57) {
		shown = append(shown, quotaInjected...)
		accepted = append(accepted, quotaInjected...)
	}
	return shown, accepted
}

// quotaView renders limits (or any per-resource values) of fields, with
// the id when it is not "".
func quotaView(id string, fields []string, value func(res string) any) map[string]any {
	out := make(map[string]any, len(fields)+1)
	if id != "" {
		out["id"] = id
	}
	for _, f := range fields {
		out[f] = value(f)
	}
	return out
}

func quotaLimitsOf(m map[string]int64) func(string) any {
	return func(res string) any { return m[res] }
}

// --- query parameters and checks ----------------------------------------------

// quotaQueryUser checks the query of a quota set call (from 2.75 only
// user_id is allowed) and returns its user_id: the first non-empty one, as
// Nova's parse_qs reads it; "" means the project itself.
func quotaQueryUser(c *Call) (string, error) {
	q := c.R.URL.Query()
	if err := quotaStrictQuery(c, q, "user_id"); err != nil {
		return "", err
	}
	for _, u := range q["user_id"] {
		if u == "" {
			continue
		}
		if !fsm.QuotaIDOK(u) {
			return "", flvQueryErr("user_id", u, "A user ID is 1 to 255 bytes without '/' or NUL.")
		}
		return u, nil
	}
	return "", nil
}

// quotaStrictQuery refuses, from microversion 2.75 on, query parameters other
// than allowed, with the message of Nova's query schema.
func quotaStrictQuery(c *Call, q url.Values, allowed ...string) error {
	if !c.Version.AtLeast(2, 75) {
		return nil
	}
	var extras []string
	for k := range q {
		if !slices.Contains(allowed, k) {
			extras = append(extras, k)
		}
	}
	if len(extras) > 0 {
		return badRequest("%s", flvAdditional(extras))
	}
	return nil
}

// quotaCanRead is Nova's PROJECT_READER_OR_ADMIN on the target project: an
// admin, or a reader (member and admin imply it) of that very project.
func quotaCanRead(c *Call, project, action string) error {
	if c.Auth.IsAdmin() || c.Auth.ProjectID == project && c.Auth.HasRole(fsm.RoleReader) {
		return nil
	}
	return forbidden("Only an admin or a reader of project %s may read its quotas (os_compute_api:os-quota-sets:%s).", project, action)
}

// quotaProject checks that the project exists (Nova asks Keystone: a
// missing project is a 400).
func quotaProject(st *fsm.State, id string) error {
	if _, _, err := fsm.GetProject(st, id); err != nil {
		if fe, ok := fsm.AsError(err); ok && fe.Kind == fsm.KindNotFound {
			return badRequest("Project ID %s is not a valid project.", id)
		}
		return err
	}
	return nil
}

// --- os-quota-sets ------------------------------------------------------------

// quotaSetRead does what show and detail share: checks, then the project's
// or the user's limits, and the in-use counts Nova reports (instances,
// cores, ram, server_groups; key pairs are counted per user across
// projects, and Nova reports them, like every uncounted resource, as 0).
func (s *Server) quotaSetRead(c *Call, action string) (id string, limits, used map[string]int64, err error) {
	id = c.Param("tenant_id")
	user, err := quotaQueryUser(c)
	if err != nil {
		return "", nil, nil, err
	}
	if err := quotaCanRead(c, id, action); err != nil {
		return "", nil, nil, err
	}
	st, err := s.readState(c)
	if err != nil {
		return "", nil, nil, err
	}
	if err := quotaProject(st, id); err != nil {
		return "", nil, nil, err
	}
	if user == "" {
		limits, err = fsm.ProjectQuotas(st, id)
		if err == nil {
			used, err = fsm.ProjectUsage(st, id, "")
		}
	} else {
		limits, err = fsm.UserQuotas(st, id, user)
		if err == nil {
			used, err = fsm.UserUsage(st, id, user)
		}
	}
	if err != nil {
		return "", nil, nil, err
	}
	delete(used, "key_pairs")
	return id, limits, used, nil
}

// showQuotaSet is GET /os-quota-sets/{tenant_id}[?user_id=].
func (s *Server) showQuotaSet(c *Call) error {
	id, limits, _, err := s.quotaSetRead(c, "show")
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, map[string]any{"quota_set": quotaView(id, quotaSetFields(c.Version), quotaLimitsOf(limits))})
}

// showQuotaSetDetail is GET /os-quota-sets/{tenant_id}/detail: limit,
// in_use and reserved (always 0: Nova no longer reserves) per resource.
func (s *Server) showQuotaSetDetail(c *Call) error {
	id, limits, used, err := s.quotaSetRead(c, "detail")
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, map[string]any{"quota_set": quotaView(id, quotaSetFields(c.Version), func(res string) any {
		return map[string]int64{"limit": limits[res], "in_use": used[res], "reserved": 0}
	})})
}

// showQuotaDefaults is GET /os-quota-sets/{tenant_id}/defaults: the limits
// of the default quota class, for any existing project.
func (s *Server) showQuotaDefaults(c *Call) error {
	id := c.Param("tenant_id")
	st, err := s.readState(c)
	if err != nil {
		return err
	}
	if err := quotaProject(st, id); err != nil {
		return err
	}
	limits, err := fsm.ClassQuotas(st)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, map[string]any{"quota_set": quotaView(id, quotaSetFields(c.Version), quotaLimitsOf(limits))})
}

// updateQuotaSet is PUT /os-quota-sets/{tenant_id}[?user_id=]: body
// {"quota_set": {resource: limit, ..., "force": bool}}. The answer has the
// new limits and, as in Nova, no id.
func (s *Server) updateQuotaSet(c *Call) error {
	id := c.Param("tenant_id")
	fields := quotaSetFields(c.Version)
	limits, force, err := decodeQuotaBody(c, "quota_set", fields, true)
	if err != nil {
		return err
	}
	user, err := quotaQueryUser(c)
	if err != nil {
		return err
	}
	if err := s.apply(c.Context(), &fsm.SetQuota{ProjectID: id, UserID: user, Limits: limits, Force: force}, nil); err != nil {
		return err
	}
	var cur map[string]int64
	if user == "" {
		cur, err = fsm.ProjectQuotas(s.node.State(), id)
	} else {
		cur, err = fsm.UserQuotas(s.node.State(), id, user)
	}
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, map[string]any{"quota_set": quotaView("", fields, quotaLimitsOf(cur))})
}

// deleteQuotaSet is DELETE /os-quota-sets/{tenant_id}[?user_id=]: back to
// the defaults (a project's reset takes its users' limits with it). 202
// with no body, as Nova answers; the project is not checked, as in Nova.
func (s *Server) deleteQuotaSet(c *Call) error {
	user, err := quotaQueryUser(c)
	if err != nil {
		return err
	}
	if err := s.apply(c.Context(), &fsm.DeleteQuota{ProjectID: c.Param("tenant_id"), UserID: user}, nil); err != nil {
		return err
	}
	return c.NoContent(http.StatusAccepted)
}

// --- os-quota-class-sets ------------------------------------------------------

// showQuotaClassSet is GET /os-quota-class-sets/{class_name}: the built-in
// defaults overridden by what the class sets (any name; only "default"
// applies to projects).
func (s *Server) showQuotaClassSet(c *Call) error {
	class := c.Param("class_name")
	st, err := s.readState(c)
	if err != nil {
		return err
	}
	limits, err := fsm.QuotaClassLimits(st, class)
	if err != nil {
		return err
	}
	shown, _ := quotaClassFields(c.Version)
	return c.JSON(http.StatusOK, map[string]any{"quota_class_set": quotaView(class, shown, quotaLimitsOf(limits))})
}

// updateQuotaClassSet is PUT /os-quota-class-sets/{class_name}: body
// {"quota_class_set": {resource: limit, ...}}; the answer has no id.
func (s *Server) updateQuotaClassSet(c *Call) error {
	class := c.Param("class_name")
	shown, accepted := quotaClassFields(c.Version)
	limits, _, err := decodeQuotaBody(c, "quota_class_set", accepted, false)
	if err != nil {
		return err
	}
	if err := fsm.ValidQuotaClassName(class); err != nil {
		return err
	}
	if err := s.apply(c.Context(), &fsm.SetQuotaClass{Class: class, Limits: limits}, nil); err != nil {
		return err
	}
	cur, err := fsm.QuotaClassLimits(s.node.State(), class)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, map[string]any{"quota_class_set": quotaView("", shown, quotaLimitsOf(cur))})
}

// --- request bodies -------------------------------------------------------------

// decodeQuotaBody validates {wrapper: {resource: limit, ...}} as Nova's
// schema does: only the resources allowed at this microversion (and
// "force", a boolean, when withForce), each an integer or a string of one,
// from -1 to 2147483647. It returns the limits and force.
func decodeQuotaBody(c *Call, wrapper string, allowed []string, withForce bool) (map[string]int64, bool, error) {
	var body any
	if err := c.Decode(&body); err != nil {
		return nil, false, err
	}
	top, ok := body.(map[string]any)
	if !ok {
		return nil, false, badRequest("%s", flvTypeMsg(body, "object"))
	}
	set, ok := top[wrapper]
	if !ok {
		return nil, false, badRequest("'%s' is a required property", wrapper)
	}
	if extras := flvExtras(top, wrapper); len(extras) > 0 {
		return nil, false, badRequest("%s", flvAdditional(extras))
	}
	m, ok := set.(map[string]any)
	if !ok {
		return nil, false, flvFieldErr(wrapper, set, flvTypeMsg(set, "object"))
	}
	keys := allowed
	if withForce {
		keys = append(slices.Clip(allowed), "force")
	}
	if extras := flvExtras(m, keys...); len(extras) > 0 {
		return nil, false, flvFieldErr(wrapper, m, flvAdditional(extras))
	}
	limits := make(map[string]int64, len(m))
	force := false
	for _, k := range slices.Sorted(maps.Keys(m)) {
		v := m[k]
		if k == "force" {
			if err := flvCheckBoolean(k, v); err != nil {
				return nil, false, err
			}
			force, _ = flvPyBool(v)
			continue
		}
		n, err := quotaLimitValue(k, v)
		if err != nil {
			return nil, false, err
		}
		limits[k] = n
	}
	return limits, force, nil
}

// quotaLimitPattern is the pattern Nova's schema gives a limit sent as a
// string.
var quotaLimitPattern = regexp.MustCompile(`^-?[0-9]+$`)

// quotaLimitValue checks one limit as Nova's schema does: an integer (a
// float with an integral value passes, as in JSON Schema 2020-12) or a
// string matching ^-?[0-9]+$, from -1 to 2147483647.
func quotaLimitValue(field string, v any) (int64, *Error) {
	const lo, hi = -1, math.MaxInt32
	var n *big.Int
	switch x := v.(type) {
	case json.Number:
		if quotaLimitPattern.MatchString(string(x)) {
			n, _ = new(big.Int).SetString(string(x), 10)
			break
		}
		f, err := strconv.ParseFloat(string(x), 64)
		if err != nil || f != math.Trunc(f) || math.IsInf(f, 0) {
			return 0, flvFieldErr(field, v, flvTypeMsg(v, "integer", "string"))
		}
		if f < lo {
			return 0, flvFieldErr(field, v, fmt.Sprintf("%s is less than the minimum of %d", pyFloatRepr(f), lo))
		}
		if f > hi {
			return 0, flvFieldErr(field, v, fmt.Sprintf("%s is greater than the maximum of %d", pyFloatRepr(f), hi))
		}
		return int64(f), nil
	case string:
		if !quotaLimitPattern.MatchString(x) {
			return 0, flvFieldErr(field, v, fmt.Sprintf("%s does not match '^-?[0-9]+$'", pyRepr(x)))
		}
		n, _ = new(big.Int).SetString(x, 10)
	default:
		return 0, flvFieldErr(field, v, flvTypeMsg(v, "integer", "string"))
	}
	if n.Cmp(big.NewInt(lo)) < 0 {
		return 0, flvFieldErr(field, v, fmt.Sprintf("%s is less than the minimum of %d", n, lo))
	}
	if n.Cmp(big.NewInt(hi)) > 0 {
		return 0, flvFieldErr(field, v, fmt.Sprintf("%s is greater than the maximum of %d", n, hi))
	}
	return n.Int64(), nil
}
