package api

import (
	"net/http"

	"github.com/keel-cloud/keel/fsm"
)

// Keystone domains, read only: Keel has the Default domain that bootstrap
// creates and offers no domain management.

func (s *Server) domainView(c *Call, d *fsm.Domain) map[string]any {
	return map[string]any{
		"id":          d.ID,
		"name":        d.Name,
		"description": d.Description,
		"enabled":     d.Enabled,
		"tags":        []string{},
		"options":     map[string]any{},
		"links":       s.identityLinks(c, "/domains/"+d.ID),
	}
}

// listDomains is GET /v3/domains: filters name and enabled.
func (s *Server) listDomains(c *Call) error {
	q := c.R.URL.Query()
	enabled, err := identityQueryBool(q, "enabled")
	if err != nil {
		return err
	}
	st, err := s.readState(c)
	if err != nil {
		return err
	}
	ds, err := fsm.ListDomains(st)
	if err != nil {
		return err
	}
	out := []any{}
	for i := range ds {
		d := &ds[i]
		if q.Has("name") && d.Name != q.Get("name") || enabled != nil && d.Enabled != *enabled {
			continue
		}
		out = append(out, s.domainView(c, d))
	}
	return s.identityList(c, "domains", out)
}

// getDomain is GET /v3/domains/{domain_id}.
func (s *Server) getDomain(c *Call) error {
	st, err := s.readState(c)
	if err != nil {
		return err
	}
	id := c.Param("domain_id")
	// Keystone's rule: admins, or a token scoped to a project of the domain.
	if !c.Auth.IsAdmin() {
		p, _, perr := fsm.GetProject(st, c.Auth.ProjectID)
		if c.Auth.ProjectID == "" || perr != nil || p.DomainID != id {
			return forbidden("You are not authorized to perform the requested action: identity:get_domain.")
		}
	}
	d, _, err := fsm.GetDomain(st, id)
	if err != nil {
		return identityMissing(err, "domain", id)
	}
	return c.JSON(http.StatusOK, map[string]any{"domain": s.domainView(c, d)})
}
