package api

import (
	"errors"
	"net/http"
	"net/url"
	"slices"
	"strings"

	"github.com/keel-cloud/keel/fsm"
	"github.com/keel-cloud/keel/internal/ids"
)

// Keystone projects. Keel has no project hierarchy: every project's parent
// is its domain (parent_id = domain_id), and no project acts as a domain.

// projectView renders a project as Keystone does.
func (s *Server) projectView(c *Call, p *fsm.Project) map[string]any {
	tags := p.Tags
	if tags == nil {
		tags = []string{}
	}
	return map[string]any{
		"id":          p.ID,
		"name":        p.Name,
		"domain_id":   p.DomainID,
		"description": p.Description,
		"enabled":     p.Enabled,
		"is_domain":   false,
		"parent_id":   p.DomainID,
		"tags":        tags,
		"options":     map[string]any{},
		"links":       s.identityLinks(c, "/projects/"+p.ID),
	}
}

// listProjects is GET /v3/projects: filters name, domain_id, parent_id,
// enabled, is_domain and the tag filters tags, tags-any, not-tags,
// not-tags-any (comma-separated).
func (s *Server) listProjects(c *Call) error {
	q := c.R.URL.Query()
	enabled, err := identityQueryBool(q, "enabled")
	if err != nil {
		return err
	}
	isDomain, err := identityQueryBool(q, "is_domain")
	if err != nil {
		return err
	}
	st, err := s.readState(c)
	if err != nil {
		return err
	}
	out := []any{}
	if isDomain != nil && *isDomain {
		return s.identityList(c, "projects", out) // no project is a domain
	}
	ps, err := fsm.ListProjects(st, q.Get("domain_id"))
	if err != nil {
		return err
	}
	for i := range ps {
		p := &ps[i]
		switch {
		case q.Has("name") && p.Name != q.Get("name"),
			q.Has("domain_id") && p.DomainID != q.Get("domain_id"),
			q.Has("parent_id") && p.DomainID != q.Get("parent_id"),
			enabled != nil && p.Enabled != *enabled,
			!projectTagsMatch(q, p.Tags):
			continue
		}
		out = append(out, s.projectView(c, p))
	}
	return s.identityList(c, "projects", out)
}

// projectTagsMatch applies Keystone's tag filters: tags (all of), tags-any
// (any of), not-tags (not all of), not-tags-any (none of).
func projectTagsMatch(q url.Values, tags []string) bool {
	list := func(name string) ([]string, bool) {
		if !q.Has(name) {
			return nil, false
		}
		return strings.Split(q.Get(name), ","), true
	}
	has := func(t string) bool { return slices.Contains(tags, t) }
	all := func(want []string, f func(string) bool) bool {
		for _, w := range want {
			if !f(w) {
				return false
			}
		}
		return true
	}
	if want, ok := list("tags"); ok && !all(want, has) {
		return false
	}
	if want, ok := list("tags-any"); ok && !slices.ContainsFunc(want, has) {
		return false
	}
	if want, ok := list("not-tags"); ok && all(want, has) {
		return false
	}
	if want, ok := list("not-tags-any"); ok && slices.ContainsFunc(want, has) {
		return false
	}
	return true
}

// createProject is POST /v3/projects.
func (s *Server) createProject(c *Call) error {
	f, err := decodeIdentityBody(c, "project")
	if err != nil {
		return err
	}
	f.only("name", "domain_id", "description", "enabled", "tags", "is_domain", "parent_id", "options")
	f.required("name")
	name, _ := f.name("name")
	domainID, domainSet := f.str("domain_id", false)
	description, _ := f.str("description", true)
	enabled, enabledSet := f.boolean("enabled")
	tags, _ := f.stringList("tags")
	f.notTrue("is_domain", "Keel has no projects acting as domains; is_domain must be false.")
	parentID, _ := f.str("parent_id", true)
	f.noOptions()
	if err := f.done(); err != nil {
		return err
	}
	if !enabledSet {
		enabled = true
	}
	st, err := s.readState(c)
	if err != nil {
		return err
	}
	if !domainSet {
		domainID = "default"
		if parentID != "" {
			// Keystone takes the domain from the parent. Here the parent
			// can only be a domain; name what else it is, if anything.
			if _, _, err := fsm.GetDomain(st, parentID); errors.Is(err, fsm.ErrNotFound) {
				if _, _, err := fsm.GetProject(st, parentID); err != nil {
					return identityMissing(err, "project", parentID)
				}
			} else if err != nil {
				return err
			} else {
				domainID = parentID
			}
		}
	}
	if parentID != "" && parentID != domainID {
		return badRequest("Invalid input for field 'parent_id': Keel has no project hierarchy; a project's parent is its domain, so parent_id must be %q or left out.", domainID)
	}
	if _, _, err := fsm.GetDomain(st, domainID); err != nil {
		return identityMissing(err, "domain", domainID)
	}
	var p fsm.Project
	err = s.apply(c.Context(), &fsm.CreateProject{Project: fsm.Project{
		ID: ids.Hex(), Name: name, DomainID: domainID, Description: description, Enabled: enabled, Tags: tags,
	}}, &p)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusCreated, map[string]any{"project": s.projectView(c, &p)})
}

// getProject is GET /v3/projects/{project_id}: for admins, and for a token
// scoped to the project itself. Others get a 403 whether or not the project
// exists.
func (s *Server) getProject(c *Call) error {
	id := c.Param("project_id")
	if !c.Auth.IsAdmin() && c.Auth.ProjectID != id {
		return identityForbidden("get_project")
	}
	st, err := s.readState(c)
	if err != nil {
		return err
	}
	p, _, err := fsm.GetProject(st, id)
	if err != nil {
		return identityMissing(err, "project", id)
	}
	return c.JSON(http.StatusOK, map[string]any{"project": s.projectView(c, p)})
}

// updateProject is PATCH /v3/projects/{project_id}: name, description,
// enabled, tags. A client may send back the read-only attributes it read
// (id, domain_id, parent_id, is_domain false, options {}, links) as long as
// they do not change.
func (s *Server) updateProject(c *Call) error {
	id := c.Param("project_id")
	f, err := decodeIdentityBody(c, "project")
	if err != nil {
		return err
	}
	f.only("name", "description", "enabled", "tags", "id", "domain_id", "parent_id", "is_domain", "options", "links")
	cmd := &fsm.UpdateProject{ID: id}
	if v, set := f.name("name"); set {
		cmd.Name = &v
	}
	if v, set := f.str("description", true); set {
		cmd.Description = &v
	}
	if v, set := f.boolean("enabled"); set {
		cmd.Enabled = &v
	}
	if v, set := f.stringList("tags"); set {
		cmd.Tags = &v // never a nil slice: [] clears the tags
	}
	f.notTrue("is_domain", "a project cannot become a domain.")
	f.noOptions()
	if err := f.done(); err != nil {
		return err
	}
	st, err := s.readState(c)
	if err != nil {
		return err
	}
	old, _, err := fsm.GetProject(st, id)
	if err != nil {
		return identityMissing(err, "project", id)
	}
	f.sameAs("id", old.ID)
	f.sameAs("domain_id", old.DomainID)
	f.sameAs("parent_id", old.DomainID)
	if err := f.done(); err != nil {
		return err
	}
	var p fsm.Project
	if err := s.apply(c.Context(), cmd, &p); err != nil {
		return identityMissing(err, "project", id)
	}
	return c.JSON(http.StatusOK, map[string]any{"project": s.projectView(c, &p)})
}

// deleteProject is DELETE /v3/projects/{project_id}: the project's role
// assignments go with it, so tokens scoped to it stop working.
func (s *Server) deleteProject(c *Call) error {
	id := c.Param("project_id")
	st, err := s.readState(c)
	if err != nil {
		return err
	}
	if _, _, err := fsm.GetProject(st, id); err != nil {
		return identityMissing(err, "project", id)
	}
	if err := s.apply(c.Context(), &fsm.DeleteProject{ID: id}, nil); err != nil {
		return identityMissing(err, "project", id)
	}
	return c.NoContent(http.StatusNoContent)
}
