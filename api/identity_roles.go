package api

import (
	"net/http"
	"strconv"

	"github.com/keel-cloud/keel/fsm"
	"github.com/keel-cloud/keel/internal/ids"
)

// Keystone roles (global only) and role assignments of users on projects
// and on the system.

func (s *Server) roleView(c *Call, r *fsm.Role) map[string]any {
	return map[string]any{
		"id":          r.ID,
		"name":        r.Name,
		"domain_id":   nil,
		"description": r.Description,
		"options":     map[string]any{},
		"links":       s.identityLinks(c, "/roles/"+r.ID),
	}
}

// listRoles is GET /v3/roles: filter name. domain_id lists a domain's
// roles, and Keel has none.
func (s *Server) listRoles(c *Call) error {
	q := c.R.URL.Query()
	st, err := s.readState(c)
	if err != nil {
		return err
	}
	out := []any{}
	if q.Get("domain_id") != "" {
		return s.identityList(c, "roles", out)
	}
	rs, err := fsm.ListRoles(st)
	if err != nil {
		return err
	}
	for i := range rs {
		if q.Has("name") && rs[i].Name != q.Get("name") {
			continue
		}
		out = append(out, s.roleView(c, &rs[i]))
	}
	return s.identityList(c, "roles", out)
}

// createRole is POST /v3/roles: {"role": {"name", "description"}}.
func (s *Server) createRole(c *Call) error {
	f, err := decodeIdentityBody(c, "role")
	if err != nil {
		return err
	}
	f.only("name", "description", "domain_id", "options")
	f.required("name")
	name, _ := f.name("name")
	description, _ := f.str("description", true)
	if d, _ := f.str("domain_id", true); d != "" && f.err == nil {
		f.fail("domain_id", "Keel has only global roles; domain_id must be null or left out.")
	}
	f.noOptions()
	if err := f.done(); err != nil {
		return err
	}
	var r fsm.Role
	if err := s.apply(c.Context(), &fsm.CreateRole{Role: fsm.Role{ID: ids.Hex(), Name: name, Description: description}}, &r); err != nil {
		return err
	}
	return c.JSON(http.StatusCreated, map[string]any{"role": s.roleView(c, &r)})
}

// getRole is GET /v3/roles/{role_id}.
func (s *Server) getRole(c *Call) error {
	id := c.Param("role_id")
	st, err := s.readState(c)
	if err != nil {
		return err
	}
	r, _, err := fsm.GetRole(st, id)
	if err != nil {
		return identityMissing(err, "role", id)
	}
	return c.JSON(http.StatusOK, map[string]any{"role": s.roleView(c, r)})
}

// deleteRole is DELETE /v3/roles/{role_id}: its assignments go with it. The
// built-in roles admin, member and reader cannot be deleted (409).
func (s *Server) deleteRole(c *Call) error {
	id := c.Param("role_id")
	st, err := s.readState(c)
	if err != nil {
		return err
	}
	if _, _, err := fsm.GetRole(st, id); err != nil {
		return identityMissing(err, "role", id)
	}
	if err := s.apply(c.Context(), &fsm.DeleteRole{ID: id}, nil); err != nil {
		return identityMissing(err, "role", id)
	}
	return c.NoContent(http.StatusNoContent)
}

// --- assignments on a project or on the system ---------------------------------

// assignmentFromPath resolves the route's project (unless system), user and
// role (when the route has one), answering 404 for the first that is
// missing. It returns the assignment the path names and the state read.
func (s *Server) assignmentFromPath(c *Call, system bool) (fsm.RoleAssignment, *fsm.State, error) {
	a := fsm.RoleAssignment{UserID: c.Param("user_id"), RoleID: c.Param("role_id"), System: system}
	if !system {
		a.ProjectID = c.Param("project_id")
	}
	st, err := s.readState(c)
	if err != nil {
		return a, nil, err
	}
	if !system {
		if _, _, err := fsm.GetProject(st, a.ProjectID); err != nil {
			return a, nil, identityMissing(err, "project", a.ProjectID)
		}
	}
	if _, _, err := fsm.GetUser(st, a.UserID); err != nil {
		return a, nil, identityMissing(err, "user", a.UserID)
	}
	if a.RoleID != "" {
		if _, _, err := fsm.GetRole(st, a.RoleID); err != nil {
			return a, nil, identityMissing(err, "role", a.RoleID)
		}
	}
	return a, st, nil
}

// assignmentExists reports whether a is granted.
func assignmentExists(st *fsm.State, a fsm.RoleAssignment) (bool, error) {
	sys := a.System
	as, err := fsm.ListAssignments(st, fsm.AssignmentFilter{UserID: a.UserID, ProjectID: a.ProjectID, RoleID: a.RoleID, System: &sys})
	return len(as) > 0, err
}

// assignmentNotFound is Keystone's RoleAssignmentNotFound.
func assignmentNotFound(a fsm.RoleAssignment) *Error {
	target := a.ProjectID
	if a.System {
		target = "all"
	}
	return notFound("Could not find role assignment with role: %s, user or group: %s, project, domain, or system: %s.", a.RoleID, a.UserID, target)
}

// grantRole is PUT .../users/{user_id}/roles/{role_id}: 204, also when the
// role was already granted.
func (s *Server) grantRole(c *Call, system bool) error {
	a, _, err := s.assignmentFromPath(c, system)
	if err != nil {
		return err
	}
	if err := s.apply(c.Context(), &fsm.GrantRole{Assignment: a}, nil); err != nil {
		return err
	}
	return c.NoContent(http.StatusNoContent)
}

// checkRole is HEAD and GET .../users/{user_id}/roles/{role_id}: 204 when
// granted, 404 when not.
func (s *Server) checkRole(c *Call, system bool) error {
	a, st, err := s.assignmentFromPath(c, system)
	if err != nil {
		return err
	}
	ok, err := assignmentExists(st, a)
	if err != nil {
		return err
	}
	if !ok {
		return assignmentNotFound(a)
	}
	return c.NoContent(http.StatusNoContent)
}

// revokeRole is DELETE .../users/{user_id}/roles/{role_id}: 204, or 404
// when the role is not granted.
func (s *Server) revokeRole(c *Call, system bool) error {
	a, st, err := s.assignmentFromPath(c, system)
	if err != nil {
		return err
	}
	ok, err := assignmentExists(st, a)
	if err != nil {
		return err
	}
	if !ok {
		return assignmentNotFound(a)
	}
	if err := s.apply(c.Context(), &fsm.RevokeRole{Assignment: a}, nil); err != nil {
		if fe, isFSM := fsm.AsError(err); isFSM && fe.Kind == fsm.KindNotFound {
			return assignmentNotFound(a) // revoked by someone else meanwhile
		}
		return err
	}
	return c.NoContent(http.StatusNoContent)
}

// listUserRoles is GET .../users/{user_id}/roles: the roles granted there.
func (s *Server) listUserRoles(c *Call, system bool) error {
	a, st, err := s.assignmentFromPath(c, system)
	if err != nil {
		return err
	}
	var rs []fsm.Role
	if system {
		rs, err = fsm.SystemRoles(st, a.UserID)
	} else {
		rs, err = fsm.RolesOnProject(st, a.UserID, a.ProjectID)
	}
	if err != nil {
		return err
	}
	out := make([]any, 0, len(rs))
	for i := range rs {
		out = append(out, s.roleView(c, &rs[i]))
	}
	return s.identityList(c, "roles", out)
}

func (s *Server) grantProjectRole(c *Call) error     { return s.grantRole(c, false) }
func (s *Server) checkProjectRole(c *Call) error     { return s.checkRole(c, false) }
func (s *Server) revokeProjectRole(c *Call) error    { return s.revokeRole(c, false) }
func (s *Server) listProjectUserRoles(c *Call) error { return s.listUserRoles(c, false) }
func (s *Server) grantSystemRole(c *Call) error      { return s.grantRole(c, true) }
func (s *Server) checkSystemRole(c *Call) error      { return s.checkRole(c, true) }
func (s *Server) revokeSystemRole(c *Call) error     { return s.revokeRole(c, true) }
func (s *Server) listSystemUserRoles(c *Call) error  { return s.listUserRoles(c, true) }

// --- GET /v3/role_assignments --------------------------------------------------

// impliedRoles is Keel's fixed role hierarchy (see Auth.HasRole): admin
// implies member, member implies reader.
var impliedRoles = map[string]string{fsm.RoleAdmin: fsm.RoleMember, fsm.RoleMember: fsm.RoleReader}

// listedAssignment is one entry of a role_assignments answer: a stored
// assignment, or with effective one a stored one implies (Prior set).
type listedAssignment struct {
	fsm.RoleAssignment
	Prior string // the role id actually granted, for implied entries
}

// listRoleAssignments is GET /v3/role_assignments. Filters: user.id,
// role.id, scope.project.id, scope.system=all; include_names adds names
// (and the domains of users and projects); effective adds the roles the
// granted ones imply. Keel has no groups, domain or inherited assignments,
// so filters on those select nothing.
func (s *Server) listRoleAssignments(c *Call) error {
	q := c.R.URL.Query()
	names, err := identityQueryFlag(q, "include_names")
	if err != nil {
		return err
	}
	effective, err := identityQueryFlag(q, "effective")
	if err != nil {
		return err
	}
	if q.Has("scope.system") && q.Get("scope.system") != "all" {
		return badRequest("Invalid value for query parameter 'scope.system': %q; the only system scope is \"all\".", q.Get("scope.system"))
	}
	if q.Has("scope.project.id") && q.Has("scope.domain.id") {
		return badRequest("Specify a domain or project, not both.")
	}
	if effective && q.Has("group.id") {
		return badRequest("Combining effective and group filter will always result in an empty list.")
	}
	st, err := s.readState(c)
	if err != nil {
		return err
	}
	out := []any{}
	for _, p := range []string{"user.id", "role.id", "scope.project.id"} {
		if q.Has(p) && q.Get(p) == "" {
			return s.identityList(c, "role_assignments", out)
		}
	}
	for _, p := range []string{"group.id", "scope.domain.id", "scope.OS-INHERIT:inherited_to"} {
		if q.Has(p) {
			return s.identityList(c, "role_assignments", out)
		}
	}
	f := fsm.AssignmentFilter{UserID: q.Get("user.id"), ProjectID: q.Get("scope.project.id")}
	if q.Has("scope.system") {
		sys := true
		f.System = &sys
	}
	roleID := q.Get("role.id")
	if !effective {
		f.RoleID = roleID // with effective, filter after the expansion
	}
	as, err := fsm.ListAssignments(st, f)
	if err != nil {
		return err
	}
	list := make([]listedAssignment, 0, len(as))
	for _, a := range as {
		list = append(list, listedAssignment{RoleAssignment: a})
	}
	if effective {
		list = expandImplied(st, list)
	}
	nm := &assignmentNames{st: st}
	for _, a := range list {
		if roleID != "" && a.RoleID != roleID {
			continue
		}
		out = append(out, s.assignmentView(c, a, nm, names))
	}
	return s.identityList(c, "role_assignments", out)
}

// expandImplied adds, after each assignment, the roles its role implies,
// leaving out any the user also holds directly on the same target.
func expandImplied(st *fsm.State, list []listedAssignment) []listedAssignment {
	byName := map[string]*fsm.Role{}
	for _, n := range []string{fsm.RoleAdmin, fsm.RoleMember, fsm.RoleReader} {
		r, err := fsm.RoleByName(st, n)
		if err == nil {
			byName[n] = r
		}
	}
	nameOf := map[string]string{}
	for n, r := range byName {
		nameOf[r.ID] = n
	}
	key := func(a fsm.RoleAssignment) string {
		return a.UserID + "/" + a.ProjectID + "/" + strconv.FormatBool(a.System) + "/" + a.RoleID
	}
	seen := map[string]bool{}
	for _, a := range list {
		seen[key(a.RoleAssignment)] = true
	}
	out := make([]listedAssignment, 0, len(list))
	for _, a := range list {
		out = append(out, a)
		for n := nameOf[a.RoleID]; impliedRoles[n] != ""; n = impliedRoles[n] {
			r := byName[impliedRoles[n]]
			if r == nil {
				break
			}
			implied := a.RoleAssignment
			implied.RoleID = r.ID
			if seen[key(implied)] {
				continue
			}
			seen[key(implied)] = true
			out = append(out, listedAssignment{RoleAssignment: implied, Prior: a.RoleID})
		}
	}
	return out
}

// assignmentNames looks up and caches the names include_names shows.
type assignmentNames struct {
	st       *fsm.State
	domains  map[string]map[string]any
	users    map[string]*fsm.User
	projects map[string]*fsm.Project
	roles    map[string]*fsm.Role
}

func (n *assignmentNames) domain(id string) map[string]any {
	if d, ok := n.domains[id]; ok {
		return d
	}
	d := map[string]any{"id": id}
	if rec, _, err := fsm.GetDomain(n.st, id); err == nil {
		d["name"] = rec.Name
	}
	if n.domains == nil {
		n.domains = map[string]map[string]any{}
	}
	n.domains[id] = d
	return d
}

func identCachedLookup[T any](cache *map[string]*T, id string, get func() (*T, error)) *T {
	if v, ok := (*cache)[id]; ok {
		return v
	}
	v, err := get()
	if err != nil {
		v = nil // deleted since the list was read: no name to show
	}
	if *cache == nil {
		*cache = map[string]*T{}
	}
	(*cache)[id] = v
	return v
}

func (n *assignmentNames) user(id string) *fsm.User {
	return identCachedLookup(&n.users, id, func() (*fsm.User, error) { u, _, err := fsm.GetUser(n.st, id); return u, err })
}

func (n *assignmentNames) project(id string) *fsm.Project {
	return identCachedLookup(&n.projects, id, func() (*fsm.Project, error) { p, _, err := fsm.GetProject(n.st, id); return p, err })
}

func (n *assignmentNames) role(id string) *fsm.Role {
	return identCachedLookup(&n.roles, id, func() (*fsm.Role, error) { r, _, err := fsm.GetRole(n.st, id); return r, err })
}

// assignmentView renders one role_assignments entry.
func (s *Server) assignmentView(c *Call, a listedAssignment, nm *assignmentNames, names bool) map[string]any {
	role := map[string]any{"id": a.RoleID}
	user := map[string]any{"id": a.UserID}
	var scope map[string]any
	granted := a.RoleID
	if a.Prior != "" {
		granted = a.Prior
	}
	var link string
	if a.System {
		scope = map[string]any{"system": map[string]any{"all": true}}
		link = s.identityURL(c, "/system/users/"+a.UserID+"/roles/"+granted)
	} else {
		project := map[string]any{"id": a.ProjectID}
		if names {
			if p := nm.project(a.ProjectID); p != nil {
				project["name"] = p.Name
				project["domain"] = nm.domain(p.DomainID)
			}
		}
		scope = map[string]any{"project": project}
		link = s.identityURL(c, "/projects/"+a.ProjectID+"/users/"+a.UserID+"/roles/"+granted)
	}
	if names {
		// Roles are global: Keystone shows a role's domain only for
		// domain-specific roles, which Keel does not have.
		if r := nm.role(a.RoleID); r != nil {
			role["name"] = r.Name
		}
		if u := nm.user(a.UserID); u != nil {
			user["name"] = u.Name
			user["domain"] = nm.domain(u.DomainID)
		}
	}
	links := map[string]any{"assignment": link}
	if a.Prior != "" {
		links["prior_role"] = s.identityURL(c, "/roles/"+a.Prior)
	}
	return map[string]any{"role": role, "user": user, "scope": scope, "links": links}
}
