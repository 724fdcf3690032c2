package api

import (
	"slices"

	"github.com/keel-cloud/keel/api/token"
	"github.com/keel-cloud/keel/fsm"
)

// Auth is the identity behind a validated token.
type Auth struct {
	Token  string
	Claims token.Claims

	UserID   string
	UserName string
	DomainID string
	// ProjectID is the token's project scope ("" for system or unscoped).
	ProjectID   string
	ProjectName string
	System      bool
	// Roles are the caller's current roles on the token's scope, resolved
	// at validation (a revoked assignment takes effect at once).
	Roles []fsm.Role
}

// HasRole reports whether the caller holds the role name on its scope.
// admin implies member and member implies reader, as in Keystone's
// default role hierarchy.
func (a *Auth) HasRole(name string) bool {
	for _, r := range a.Roles {
		switch {
		case r.Name == name,
			r.Name == "admin" && (name == "member" || name == "reader"),
			r.Name == "member" && name == "reader":
			return true
		}
	}
	return false
}

// IsAdmin reports whether the caller has the admin role on its scope.
func (a *Auth) IsAdmin() bool {
	return slices.ContainsFunc(a.Roles, func(r fsm.Role) bool { return r.Name == "admin" })
}

// CanAccessProject reports whether the caller may see resources of project:
// its own project's, or any as an admin. Handlers answer 404 when not, so
// that other projects' resources are indistinguishable from missing ones.
func (a *Auth) CanAccessProject(project string) bool {
	return a != nil && (a.IsAdmin() || a.ProjectID != "" && a.ProjectID == project)
}
