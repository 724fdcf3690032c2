package api

import (
	"net/http"
	"strings"
	"testing"

	"github.com/keel-cloud/keel/fsm"
)

// wantPolicy is the policy of every route, written out so that a route
// added without thinking about who may call it fails this test.
var wantPolicy = map[string]Rule{
	"GET /compute":                                                              Public,
	"GET /identity":                                                             Public,
	"GET /compute/{$}":                                                          Public,
	"GET /compute/v2.1":                                                         Public,
	"GET /compute/v2.1/{$}":                                                     Public,
	"GET /identity/{$}":                                                         Public,
	"GET /identity/v3":                                                          Public,
	"GET /identity/v3/{$}":                                                      Public,
	"POST /identity/v3/auth/tokens":                                             Public,
	"GET /identity/v3/auth/tokens":                                              Authenticated,
	"HEAD /identity/v3/auth/tokens":                                             Authenticated,
	"DELETE /identity/v3/auth/tokens":                                           Authenticated,
	"GET /identity/v3/auth/catalog":                                             Authenticated,
	"GET /identity/v3/auth/projects":                                            Authenticated,
	"GET /identity/v3/domains":                                                  Admin,
	"GET /identity/v3/domains/{domain_id}":                                      Admin,
	"GET /identity/v3/projects":                                                 Admin,
	"POST /identity/v3/projects":                                                Admin,
	"GET /identity/v3/projects/{project_id}":                                    Authenticated, // handler: admin or a token scoped to it
	"PATCH /identity/v3/projects/{project_id}":                                  Admin,
	"DELETE /identity/v3/projects/{project_id}":                                 Admin,
	"GET /identity/v3/users":                                                    Admin,
	"POST /identity/v3/users":                                                   Admin,
	"GET /identity/v3/users/{user_id}":                                          SelfOrAdmin,
	"PATCH /identity/v3/users/{user_id}":                                        Admin,
	"DELETE /identity/v3/users/{user_id}":                                       Admin,
	"POST /identity/v3/users/{user_id}/password":                                SelfOrAdmin,
	"GET /identity/v3/users/{user_id}/projects":                                 SelfOrAdmin,
	"GET /identity/v3/roles":                                                    Admin,
	"POST /identity/v3/roles":                                                   Admin,
	"GET /identity/v3/roles/{role_id}":                                          Admin,
	"DELETE /identity/v3/roles/{role_id}":                                       Admin,
	"GET /identity/v3/projects/{project_id}/users/{user_id}/roles":              Admin,
	"PUT /identity/v3/projects/{project_id}/users/{user_id}/roles/{role_id}":    Admin,
	"HEAD /identity/v3/projects/{project_id}/users/{user_id}/roles/{role_id}":   Admin,
	"GET /identity/v3/projects/{project_id}/users/{user_id}/roles/{role_id}":    Admin,
	"DELETE /identity/v3/projects/{project_id}/users/{user_id}/roles/{role_id}": Admin,
	"GET /identity/v3/system/users/{user_id}/roles":                             Admin,
	"PUT /identity/v3/system/users/{user_id}/roles/{role_id}":                   Admin,
	"HEAD /identity/v3/system/users/{user_id}/roles/{role_id}":                  Admin,
	"GET /identity/v3/system/users/{user_id}/roles/{role_id}":                   Admin,
	"DELETE /identity/v3/system/users/{user_id}/roles/{role_id}":                Admin,
	"GET /identity/v3/role_assignments":                                         Admin,
}

// persona is a caller of the policy test.
type persona struct {
	name  string
	token string
	auth  *Auth
}

// allowedFor is what each rule means for each persona: the policy table
// the test checks every route against.
func allowedFor(rule Rule, p string, self bool) bool {
	switch rule {
	case Public:
		return true
	case Authenticated:
		return p != "anonymous"
	case ProjectReader:
		return p == "admin" || p == "member" || p == "reader"
	case ProjectMember:
		return p == "admin" || p == "member"
	case Admin:
		return p == "admin"
	case SelfOrAdmin:
		return p == "admin" || self && p != "anonymous"
	}
	panic("no expectation for rule " + rule.String())
}

// Acceptance 6: every registered route is in the policy table, and over
// HTTP every route lets exactly the personas its rule allows past policy.
func TestPolicyOfEveryRoute(t *testing.T) {
	ac := newAPICluster(t, 1)
	s := ac.servers[ac.Nodes[0].Cfg.Name]
	base := ac.url(0)
	st := ac.Nodes[0].State()
	adminProject, _ := fsm.ProjectByName(st, "default", "admin")
	roles := map[string]string{}
	for _, n := range []string{"member", "reader"} {
		r, _ := fsm.RoleByName(st, n)
		roles[n] = r.ID
	}
	apply(t, ac, &fsm.CreateProject{Project: fsm.Project{ID: "00000000000000000000000000000002", Name: "other", DomainID: "default", Enabled: true}})
	users := map[string]string{}
	for _, u := range []struct{ name, role, project string }{
		{"member", "member", adminProject.ID}, {"reader", "reader", adminProject.ID}, {"other", "member", "00000000000000000000000000000002"},
	} {
		id := strings.Repeat(string(u.name[0]), 32)
		hash, _ := HashPassword(u.name + "-pw")
		apply(t, ac, &fsm.CreateUser{User: fsm.User{ID: id, Name: u.name, DomainID: "default", PasswordHash: hash, Enabled: true}})
		apply(t, ac, &fsm.GrantRole{Assignment: fsm.RoleAssignment{UserID: id, RoleID: roles[u.role], ProjectID: u.project}})
		users[u.name] = id
	}
	personas := []persona{
		{name: "anonymous"},
		{name: "admin", token: login(t, base, "admin", testAdminPassword, projectScope("admin"))},
		{name: "member", token: login(t, base, "member", "member-pw", projectScope("admin"))},
		{name: "reader", token: login(t, base, "reader", "reader-pw", projectScope("admin"))},
		{name: "other", token: login(t, base, "other", "other-pw", projectScope("other"))},
	}

	routes := s.Routes()
	seen := map[string]bool{}
	for _, r := range routes {
		seen[r.pattern()] = true
		want, ok := wantPolicy[r.pattern()]
		if !ok {
			t.Errorf("route %s (rule %s) is not in the policy table of this test: decide who may call it and add it", r.pattern(), r.Policy)
			continue
		}
		if r.Policy != want {
			t.Errorf("route %s has rule %s, the table says %s", r.pattern(), r.Policy, want)
		}
	}
	for p := range wantPolicy {
		if !seen[p] {
			t.Errorf("policy table names %s, which is not a route", p)
		}
	}

	for _, r := range routes {
		for _, p := range personas {
			// {user_id} is the member's own id on SelfOrAdmin routes, so
			// "self" is exercised; any other parameter is a dummy.
			self := r.Policy == SelfOrAdmin && p.name == "member"
			path := strings.TrimSuffix(r.Path, "{$}")
			for _, param := range []string{"{domain_id}", "{project_id}", "{role_id}", "{user_id}"} {
				v := "00000000000000000000000000000099"
				if param == "{user_id}" && r.Policy == SelfOrAdmin {
					v = users["member"]
				}
				path = strings.ReplaceAll(path, param, v)
			}
			res := do(t, r.Method, base+path, p.token, nil)
			// A HEAD answer has no body to tell a policy 403 from another.
			denied := res.Status == http.StatusUnauthorized ||
				res.Status == http.StatusForbidden && (r.Method == "HEAD" || strings.Contains(string(res.Body), "Policy doesn't allow"))
			if want := allowedFor(r.Policy, p.name, self); denied == want {
				t.Errorf("%s as %s: HTTP %d %s; policy should have %s it", r.pattern(), p.name, res.Status, res.Body,
					map[bool]string{true: "allowed", false: "denied"}[want])
			}
		}
	}
}
