package api

import (
	"encoding/json"
	"fmt"
	"math"
	"math/big"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/keel-cloud/keel/fsm"
	"github.com/keel-cloud/keel/internal/ids"
)

// Server groups (os-server-groups), as Nova serves them from 2.1 to 2.100:
//
//   - 2.1: create takes "policies": [one of affinity, anti-affinity]; the
//     view has "policies" and an always empty "metadata".
//   - 2.13: the view has project_id and user_id.
//   - 2.15: soft-affinity and soft-anti-affinity.
//   - 2.64: create takes "policy" and optional "rules" (max_server_per_host,
//     anti-affinity only); the view has "policy" and "rules" instead of
//     "policies" and "metadata".
//   - 2.75: unknown query parameters of the list are a 400.
//
// A group belongs to its project: another project's group is a 404 (an
// admin sees every group). Admins list every project's groups with
// ?all_projects (any value, as in Nova; others silently get their own).
// Membership is the servers' business: a server joins with the "group"
// scheduler hint and leaves when it is deleted.
func (s *Server) registerServerGroups() {
	const base = "/compute/v2.1/os-server-groups"
	s.handle(Route{Method: "GET", Path: base, Service: ServiceCompute, Policy: ProjectReader, Handle: s.listServerGroups})
	s.handle(Route{Method: "POST", Path: base, Service: ServiceCompute, Policy: ProjectMember, Handle: s.createServerGroup})
	s.handle(Route{Method: "GET", Path: base + "/{server_group_id}", Service: ServiceCompute, Policy: ProjectReader, Handle: s.showServerGroup})
	s.handle(Route{Method: "DELETE", Path: base + "/{server_group_id}", Service: ServiceCompute, Policy: ProjectMember, Handle: s.deleteServerGroup})
}

// serverGroupMaxLimit is Nova's [api]max_limit: the largest page.
const serverGroupMaxLimit = 1000

// serverGroupView renders g in Nova's shape for microversion v.
func serverGroupView(g *fsm.ServerGroup, v Microversion) map[string]any {
	members := g.Members
	if members == nil {
		members = []string{}
	}
	out := map[string]any{"id": g.ID, "name": g.Name, "members": members}
	if v.AtLeast(2, 64) {
		rules := map[string]any{}
		for k, n := range g.Rules {
			rules[k] = n
		}
		out["policy"], out["rules"] = g.Policy, rules
	} else {
		out["policies"], out["metadata"] = []string{g.Policy}, map[string]any{}
	}
	if v.AtLeast(2, 13) {
		out["project_id"], out["user_id"] = g.ProjectID, g.UserID
	}
	return out
}

// serverGroupFor loads a group the caller may see, after a linearizable
// barrier: another project's group is Nova's 404.
func (s *Server) serverGroupFor(c *Call, id string) (*fsm.ServerGroup, error) {
	if err := s.node.Consistent(c.Context()); err != nil {
		return nil, err
	}
	g, _, err := fsm.GetServerGroup(s.node.State(), id)
	if err != nil {
		return nil, err // Nova's InstanceGroupNotFound when missing
	}
	if !c.Auth.CanAccessProject(g.ProjectID) {
		return nil, notFound("Instance group %s could not be found.", id)
	}
	return g, nil
}

// createServerGroup is POST /os-server-groups (200, as in Nova).
func (s *Server) createServerGroup(c *Call) error {
	var body any
	if err := c.Decode(&body); err != nil {
		return err
	}
	req, err := serverGroupCreateSchema(c.Version, body)
	if err != nil {
		return err
	}
	if c.Auth.ProjectID == "" {
		return forbidden("Creating a server group needs a project-scoped token.")
	}
	g := fsm.ServerGroup{
		ID: ids.UUID(), Name: req.name, ProjectID: c.Auth.ProjectID, UserID: c.Auth.UserID,
		Policy: req.policy, Rules: req.rules, CreatedAt: time.Now().UnixMicro(),
	}
	var stored fsm.ServerGroup
	if err := s.apply(c.Context(), &fsm.CreateServerGroup{Group: g}, &stored); err != nil {
		return err
	}
	c.Log.Info("server group created", "server_group_id", stored.ID, "policy", stored.Policy, "project_id", stored.ProjectID)
	return c.JSON(http.StatusOK, map[string]any{"server_group": serverGroupView(&stored, c.Version)})
}

// showServerGroup is GET /os-server-groups/{server_group_id}.
func (s *Server) showServerGroup(c *Call) error {
	g, err := s.serverGroupFor(c, c.Param("server_group_id"))
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, map[string]any{"server_group": serverGroupView(g, c.Version)})
}

// deleteServerGroup is DELETE /os-server-groups/{server_group_id} (204).
// Its members stay, outside any group.
func (s *Server) deleteServerGroup(c *Call) error {
	id := c.Param("server_group_id")
	// A missing or hidden group is answered from the state, without a Raft
	// entry; the command checks existence again.
	if _, err := s.serverGroupFor(c, id); err != nil {
		return err
	}
	if err := s.apply(c.Context(), &fsm.DeleteServerGroup{ID: id}, nil); err != nil {
		return err
	}
	c.Log.Info("server group deleted", "server_group_id", id)
	return c.NoContent(http.StatusNoContent)
}

// listServerGroups is GET /os-server-groups: the caller's project's groups,
// or every project's for an admin asking all_projects, oldest first, cut by
// offset and limit.
func (s *Server) listServerGroups(c *Call) error {
	q := c.R.URL.Query()
	for _, p := range []string{"limit", "offset"} {
		for _, val := range q[p] {
			if err := serverGroupQueryInt(p, val); err != nil {
				return err
			}
		}
	}
	if c.Version.AtLeast(2, 75) {
		extras := []string{}
		for k := range q {
			if k != "all_projects" && k != "limit" && k != "offset" {
				extras = append(extras, k)
			}
		}
		if len(extras) > 0 {
			return badRequest("%s", flvAdditional(extras))
		}
	}
	// Nova's pagination also reads page_size, which only the schema of
	// 2.75 refuses.
	if vs := q["page_size"]; len(vs) > 0 {
		n, ok := flvPyInt(vs[len(vs)-1])
		switch {
		case !ok:
			return badRequest("Invalid input received: page_size must be an integer")
		case n.Sign() < 0:
			return badRequest("Invalid input received: page_size must be >= 0")
		}
	}
	limit := serverGroupMaxLimit
	if vs := q["limit"]; len(vs) > 0 {
		if n := serverGroupQueryValue(vs[len(vs)-1]); n > 0 && n < serverGroupMaxLimit {
			limit = int(n)
		}
	}
	offset := int64(0)
	if vs := q["offset"]; len(vs) > 0 {
		offset = serverGroupQueryValue(vs[len(vs)-1])
	}

	project := c.Auth.ProjectID
	if q.Has("all_projects") && c.Auth.IsAdmin() {
		project = "" // every project
	} else if project == "" {
		// A system-scoped token owns no groups.
		return c.JSON(http.StatusOK, map[string]any{"server_groups": []any{}})
	}
	if err := s.node.Consistent(c.Context()); err != nil {
		return err
	}
	items := []any{}
	var skipped int64
	err := fsm.ListServerGroups(s.node.State(), project, func(g *fsm.ServerGroup) bool {
		if skipped < offset {
			skipped++
			return true
		}
		items = append(items, serverGroupView(g, c.Version))
		return len(items) < limit
	})
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, map[string]any{"server_groups": items})
}

// serverGroupQueryInt checks one value of limit or offset against Nova's
// non_negative_integer.
func serverGroupQueryInt(param, val string) error {
	msg := ""
	switch {
	case strings.Trim(val, "0123456789") != "":
		msg = pyRepr(val) + " does not match '^[0-9]*$'"
	case val == "":
		msg = "'' should be non-empty"
	}
	if msg != "" {
		return badRequest("Invalid input for query parameters %s. Value: %s. %s", param, val, msg)
	}
	return nil
}

// serverGroupQueryValue is a checked limit or offset (digits only), capped
// at MaxInt64: any value that large means "everything" or "past the end".
func serverGroupQueryValue(val string) int64 {
	n, err := strconv.ParseInt(val, 10, 64)
	if err != nil {
		return math.MaxInt64
	}
	return n
}

// --- the create schema ------------------------------------------------------

// serverGroupCreateRequest is a validated POST /os-server-groups body.
type serverGroupCreateRequest struct {
	name   string
	policy string
	rules  map[string]int
}

// Policy enums as Nova's schemas list them (in its messages, too).
var (
	serverGroupPolicies    = []any{"anti-affinity", "affinity"}
	serverGroupPolicies215 = []any{"anti-affinity", "affinity", "soft-anti-affinity", "soft-affinity"}
)

// serverGroupCreateSchema checks body against Nova's create schema of the
// microversion v (create, create_v215, create_v264), in the schema's order,
// so the first fault is the one Nova reports. The rules-only-for-anti-
// affinity check comes later, in the command, after the quota, as in Nova.
func serverGroupCreateSchema(v Microversion, body any) (*serverGroupCreateRequest, error) {
	doc, ok := body.(map[string]any)
	if !ok {
		return nil, badRequest("%s", flvTypeMsg(body, "object"))
	}
	req := &serverGroupCreateRequest{}
	if raw, present := doc["server_group"]; present {
		sg, ok := raw.(map[string]any)
		if !ok {
			return nil, flvFieldErr("server_group", raw, flvTypeMsg(raw, "object"))
		}
		props := []string{"name", "policies"}
		if v.AtLeast(2, 64) {
			props = []string{"name", "policy", "rules"}
		}
		for _, p := range props {
			val, present := sg[p]
			if !present {
				continue
			}
			var err error
			switch p {
			case "name":
				req.name, err = serverGroupNameSchema(val)
			case "policies":
				req.policy, err = serverGroupPoliciesSchema(v, val)
			case "policy":
				req.policy, err = serverGroupPolicySchema(val)
			case "rules":
				req.rules, err = serverGroupRulesSchema(val)
			}
			if err != nil {
				return nil, err
			}
		}
		for _, p := range props[:2] { // name and the policy are required
			if _, present := sg[p]; !present {
				return nil, flvFieldErr("server_group", raw, fmt.Sprintf("'%s' is a required property", p))
			}
		}
		if extras := flvExtras(sg, props...); len(extras) > 0 {
			return nil, flvFieldErr("server_group", raw, flvAdditional(extras))
		}
	}
	if _, present := doc["server_group"]; !present {
		return nil, badRequest("'server_group' is a required property")
	}
	if extras := flvExtras(doc, "server_group"); len(extras) > 0 {
		return nil, badRequest("%s", flvAdditional(extras))
	}
	return req, nil
}

// serverGroupNameSchema is parameter_types.name.
func serverGroupNameSchema(val any) (string, error) {
	s, ok := val.(string)
	switch {
	case !ok:
		return "", flvFieldErr("name", val, flvTypeMsg(val, "string"))
	case !flvNameOK(s):
		return "", badRequest(flvNameErr)
	case s == "":
		return "", flvFieldErr("name", val, "'' should be non-empty")
	case flvLen(s) > fsm.ServerGroupMaxNameLen:
		return "", flvFieldErr("name", val, pyRepr(s)+" is too long")
	}
	return s, nil
}

// serverGroupPoliciesSchema is the "policies" array before 2.64: its first
// item a known policy, unique, exactly one item. jsonschema names an item's
// error by its index, so Nova's message says "field/attribute 0".
func serverGroupPoliciesSchema(v Microversion, val any) (string, error) {
	list, ok := val.([]any)
	if !ok {
		return "", flvFieldErr("policies", val, flvTypeMsg(val, "array"))
	}
	enum := serverGroupPolicies
	if v.AtLeast(2, 15) {
		enum = serverGroupPolicies215
	}
	if len(list) > 0 {
		first, ok := list[0].(string)
		if !ok {
			return "", flvFieldErr("0", list[0], flvTypeMsg(list[0], "string"))
		}
		if !slices.Contains(enum, any(first)) {
			return "", flvFieldErr("0", first, pyRepr(first)+" is not one of "+pyRepr(enum))
		}
	}
	for i := range list {
		for j := range i {
			if serverGroupSameJSON(list[i], list[j]) {
				return "", flvFieldErr("policies", val, pyRepr(val)+" has non-unique elements")
			}
		}
	}
	switch {
	case len(list) == 0:
		return "", flvFieldErr("policies", val, "[] should be non-empty")
	case len(list) > 1:
		return "", flvFieldErr("policies", val, pyRepr(val)+" is too long")
	}
	return list[0].(string), nil
}

// serverGroupSameJSON is jsonschema's equality of two decoded JSON values
// (numbers by value: 1 and 1.0 are equal).
func serverGroupSameJSON(a, b any) bool {
	na, aNum := a.(json.Number)
	nb, bNum := b.(json.Number)
	if aNum && bNum {
		fa, _ := new(big.Float).SetString(string(na))
		fb, _ := new(big.Float).SetString(string(nb))
		return fa != nil && fb != nil && fa.Cmp(fb) == 0
	}
	ja, _ := json.Marshal(a)
	jb, _ := json.Marshal(b)
	return string(ja) == string(jb)
}

// serverGroupPolicySchema is the "policy" string of 2.64.
func serverGroupPolicySchema(val any) (string, error) {
	s, ok := val.(string)
	if !ok {
		return "", flvFieldErr("policy", val, flvTypeMsg(val, "string"))
	}
	if !slices.Contains(serverGroupPolicies215, any(s)) {
		return "", flvFieldErr("policy", val, pyRepr(s)+" is not one of "+pyRepr(serverGroupPolicies215))
	}
	return s, nil
}

// serverGroupRulesSchema is the "rules" object of 2.64: only
// max_server_per_host, a positive integer (or a string of digits, which
// Nova stores as a string and reads back as a number).
func serverGroupRulesSchema(val any) (map[string]int, error) {
	obj, ok := val.(map[string]any)
	if !ok {
		return nil, flvFieldErr("rules", val, flvTypeMsg(val, "object"))
	}
	rules := map[string]int{}
	if raw, present := obj[fsm.RuleMaxServerPerHost]; present {
		n, err := serverGroupPositiveInt(fsm.RuleMaxServerPerHost, raw)
		if err != nil {
			return nil, err
		}
		rules[fsm.RuleMaxServerPerHost] = n
	}
	if extras := flvExtras(obj, fsm.RuleMaxServerPerHost); len(extras) > 0 {
		return nil, flvFieldErr("rules", val, flvAdditional(extras))
	}
	return rules, nil
}

// serverGroupPositiveInt is parameter_types.positive_integer (type integer
// or string, pattern ^[0-9]*$, minimum 1 also of strings, minLength 1),
// bounded by Nova's MAX_INT.
func serverGroupPositiveInt(field string, val any) (int, error) {
	const max = math.MaxInt32
	var n *big.Float
	shown := "" // the number as Nova's message shows it
	switch x := val.(type) {
	case json.Number:
		f, ok := new(big.Float).SetString(string(x))
		if !ok || !f.IsInt() {
			return 0, flvFieldErr(field, val, flvTypeMsg(val, "integer", "string"))
		}
		n, shown = f, pyRepr(x)
	case string:
		if strings.Trim(x, "0123456789") != "" {
			return 0, flvFieldErr(field, val, pyRepr(x)+" does not match '^[0-9]*$'")
		}
		if x == "" {
			return 0, flvFieldErr(field, val, "'' should be non-empty")
		}
		n, _ = new(big.Float).SetString(x)
	default:
		return 0, flvFieldErr(field, val, flvTypeMsg(val, "integer", "string"))
	}
	i, _ := n.Int(nil)
	if shown == "" {
		shown = i.String() // Nova compares int(the string)
	}
	switch {
	case i.Cmp(big.NewInt(1)) < 0:
		return 0, flvFieldErr(field, val, shown+" is less than the minimum of 1")
	case i.Cmp(big.NewInt(max)) > 0:
		return 0, flvFieldErr(field, val, fmt.Sprintf("%s is greater than the maximum of %d", shown, max))
	}
	return int(i.Int64()), nil
}
