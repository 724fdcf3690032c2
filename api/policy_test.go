package api

import (
	"net/http"
	"regexp"
	"strings"
	"testing"

	"github.com/keel-cloud/keel/fsm"
)

// wantPolicy is the policy of every route, written out (one file per area,
// each adding its routes with expectPolicy) so that a route added without
// thinking about who may call it fails this test.
var wantPolicy = map[string]Rule{}

func expectPolicy(m map[string]Rule) {
	for k, v := range m {
		if _, dup := wantPolicy[k]; dup {
			panic("policy table lists " + k + " twice")
		}
		wantPolicy[k] = v
	}
}

// paramRE matches a path parameter of a route pattern.
var paramRE = regexp.MustCompile(`\{[a-z_]+\}`)

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
	// Project rules are about the caller's role on its own project; whether
	// the target belongs to that project is the handler's 404 ("other" is a
	// member of another project, so it passes policy).
	case ProjectReader:
		return p == "admin" || p == "member" || p == "reader" || p == "other"
	case ProjectMember:
		return p == "admin" || p == "member" || p == "other"
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
			path = paramRE.ReplaceAllStringFunc(path, func(param string) string {
				if param == "{user_id}" && r.Policy == SelfOrAdmin {
					return users["member"]
				}
				return "00000000000000000000000000000099"
			})
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
