package api

import "fmt"

// Rule says who may call a route. Every route has exactly one; Check is the
// one place that evaluates them. Ownership of project resources (another
// project's server is a 404, not a 403) is checked by the handler with
// Auth.CanAccessProject, because it depends on the resource.
type Rule int

const (
	// Public: no token needed (version documents, issuing a token).
	Public Rule = iota + 1
	// Authenticated: any valid token, scoped or not.
	Authenticated
	// ProjectReader: a project-scoped token with reader, member or admin on
	// that project, or any admin.
	ProjectReader
	// ProjectMember: a project-scoped token with member or admin on that
	// project, or any admin. Writes to project resources.
	ProjectMember
	// Admin: the admin role, on a project or on the system.
	Admin
	// SelfOrAdmin: the route's {user_id} is the caller, or the caller is
	// an admin.
	SelfOrAdmin
)

var ruleNames = map[Rule]string{
	Public: "public", Authenticated: "authenticated", ProjectReader: "project_reader",
	ProjectMember: "project_member", Admin: "admin", SelfOrAdmin: "self_or_admin",
}

func (r Rule) String() string {
	if n, ok := ruleNames[r]; ok {
		return n
	}
	return fmt.Sprintf("rule(%d)", int(r))
}

// Check evaluates rule for the caller a (nil when no token was given) on a
// route whose {user_id} parameter is userParam. It returns nil, a 401 (no or
// bad credentials) or a 403 (valid credentials, not allowed).
func Check(rule Rule, a *Auth, userParam string) *Error {
	if rule == Public {
		return nil
	}
	if a == nil {
		return unauthorized("")
	}
	allowed := false
	switch rule {
	case Authenticated:
		allowed = true
	case ProjectReader:
		allowed = a.IsAdmin() || a.ProjectID != "" && (a.HasRole("reader") || a.HasRole("member"))
	case ProjectMember:
		allowed = a.IsAdmin() || a.ProjectID != "" && a.HasRole("member")
	case Admin:
		allowed = a.IsAdmin()
	case SelfOrAdmin:
		allowed = a.IsAdmin() || userParam != "" && userParam == a.UserID
	default:
		panic(fmt.Sprintf("api: no evaluation for policy rule %v", rule))
	}
	if !allowed {
		return forbidden("Policy doesn't allow this operation to be performed (rule %s).", rule)
	}
	return nil
}
