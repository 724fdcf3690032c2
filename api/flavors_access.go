package api

import (
	"net/http"

	"github.com/keel-cloud/keel/fsm"
)

// Flavor access (private flavors): GET /flavors/{flavor_id}/os-flavor-access
// and the addTenantAccess / removeTenantAccess actions. Admin only.

// flvAccessView is Nova's flavor_access document.
func flvAccessView(flavorID string, projects []string) map[string]any {
	out := make([]map[string]string, 0, len(projects))
	for _, p := range projects {
		out = append(out, map[string]string{"flavor_id": flavorID, "tenant_id": p})
	}
	return map[string]any{"flavor_access": out}
}

// listFlavorAccess is GET /flavors/{flavor_id}/os-flavor-access. A public
// flavor has no access list: Nova answers 404.
func (s *Server) listFlavorAccess(c *Call) error {
	id := c.Param("flavor_id")
	st, err := s.readState(c)
	if err != nil {
		return err
	}
	f, err := s.flavorVisible(c, st, id)
	if err != nil {
		return err
	}
	if f.IsPublic {
		return notFound("Access list not available for public flavors.")
	}
	projects, err := fsm.FlavorAccess(st, f.ID)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, flvAccessView(f.ID, projects))
}

// flavorAction is POST /flavors/{flavor_id}/action: {"addTenantAccess":
// {"tenant": <project id>}} or {"removeTenantAccess": {...}}. Both answer
// the access list afterwards.
func (s *Server) flavorAction(c *Call) error {
	id := c.Param("flavor_id")
	var body any
	if err := c.Decode(&body); err != nil {
		return err
	}
	top, ok := body.(map[string]any)
	if !ok || len(top) != 1 {
		return badRequest("Malformed request body")
	}
	var action string
	for k := range top {
		action = k
	}
	switch action {
	case "addTenantAccess", "removeTenantAccess":
	default:
		return badRequest("There is no such action: %s", action)
	}
	tenant, verr := flvCheckTenantBody(action, top[action])
	if verr != nil {
		return verr
	}
	var cmd fsm.Command
	if action == "addTenantAccess" {
		// Since 2.7 a public flavor refuses access entries (409).
		cmd = &fsm.AddFlavorAccess{FlavorID: id, ProjectID: tenant, RefusePublic: c.Version.AtLeast(2, 7)}
	} else {
		cmd = &fsm.RemoveFlavorAccess{FlavorID: id, ProjectID: tenant}
	}
	var projects []string
	if err := s.apply(c.Context(), cmd, &projects); err != nil {
		return err
	}
	return c.JSON(http.StatusOK, flvAccessView(id, projects))
}

// flvCheckTenantBody validates {"tenant": <1 to 255 characters>}.
func flvCheckTenantBody(action string, v any) (string, *Error) {
	m, ok := v.(map[string]any)
	if !ok {
		return "", flvFieldErr(action, v, flvTypeMsg(v, "object"))
	}
	t, has := m["tenant"]
	if has {
		s, ok := t.(string)
		switch {
		case !ok:
			return "", flvFieldErr("tenant", t, flvTypeMsg(t, "string"))
		case s == "":
			return "", flvFieldErr("tenant", t, "'' is too short")
		case flvLen(s) > fsm.FlavorMaxProjectIDLen:
			return "", flvFieldErr("tenant", t, pyRepr(s)+" is too long")
		}
	} else {
		return "", flvFieldErr(action, v, "'tenant' is a required property")
	}
	if extras := flvExtras(m, "tenant"); len(extras) > 0 {
		return "", flvFieldErr(action, v, flvAdditional(extras))
	}
	return t.(string), nil
}
