package api

import (
	"net/http"
	"slices"
	"strings"
	"testing"
)

// idaFault checks that r is a Keystone error document with status and a
// message containing every one of parts.
func idaFault(t testing.TB, what string, r resp, status int, parts ...string) {
	t.Helper()
	if r.Status != status {
		t.Fatalf("%s: HTTP %d, want %d: %s", what, r.Status, status, r.Body)
	}
	e, ok := r.json(t)["error"].(map[string]any)
	if !ok {
		t.Fatalf("%s: no Keystone error document: %s", what, r.Body)
	}
	if code, _ := e["code"].(float64); int(code) != status || e["title"] != http.StatusText(status) {
		t.Fatalf("%s: error code/title %v/%v, want %d/%s", what, e["code"], e["title"], status, http.StatusText(status))
	}
	msg, _ := e["message"].(string)
	for _, p := range parts {
		if !strings.Contains(msg, p) {
			t.Fatalf("%s: message %q does not mention %q", what, msg, p)
		}
	}
}

// idaWant checks r's status and returns its JSON body (nil for no body).
func idaWant(t testing.TB, what string, r resp, status int) map[string]any {
	t.Helper()
	if r.Status != status {
		t.Fatalf("%s: HTTP %d, want %d: %s", what, r.Status, status, r.Body)
	}
	if len(r.Body) == 0 {
		return nil
	}
	return r.json(t)
}

// idaObj returns body[key] as an object.
func idaObj(t testing.TB, body map[string]any, key string) map[string]any {
	t.Helper()
	m, ok := body[key].(map[string]any)
	if !ok {
		t.Fatalf("no object %q in %v", key, body)
	}
	return m
}

// idaList returns body[key] as a list of objects.
func idaList(t testing.TB, body map[string]any, key string) []map[string]any {
	t.Helper()
	l, ok := body[key].([]any)
	if !ok {
		t.Fatalf("no list %q in %v", key, body)
	}
	out := make([]map[string]any, len(l))
	for i, v := range l {
		out[i] = v.(map[string]any)
	}
	return out
}

func idaIDs(items []map[string]any) []string {
	var ids []string
	for _, it := range items {
		ids = append(ids, it["id"].(string))
	}
	return ids
}

// idaRoleID looks a role up by name through the API.
func idaRoleID(t testing.TB, base, tok, name string) string {
	t.Helper()
	roles := idaList(t, idaWant(t, "list roles", do(t, "GET", base+"/identity/v3/roles?name="+name, tok, nil), 200), "roles")
	if len(roles) != 1 {
		t.Fatalf("roles named %s: %v", name, roles)
	}
	return roles[0]["id"].(string)
}

// The admin manages projects, users and assignments through any controller
// and every other controller sees the result at once; the member role lets
// a user in, and only into what it was given; password changes and project
// deletion end the tokens they should.
func TestIdentityAdminAcrossControllers(t *testing.T) {
	ac := newAPICluster(t, 3)
	u0, u1, u2 := ac.url(0), ac.url(1), ac.url(2)
	admin := login(t, u0, "admin", testAdminPassword, projectScope("admin"))

	// A project created on node 0 is readable on nodes 1 and 2 at once.
	created := idaWant(t, "create project", do(t, "POST", u0+"/identity/v3/projects", admin, map[string]any{
		"project": map[string]any{"name": "tenant1", "description": "first tenant", "tags": []string{"blue"}},
	}), 201)
	p := idaObj(t, created, "project")
	pid, _ := p["id"].(string)
	if len(pid) != 32 || p["domain_id"] != "default" || p["parent_id"] != "default" || p["is_domain"] != false ||
		p["enabled"] != true || p["description"] != "first tenant" || idaObj(t, p, "links")["self"] != u0+"/identity/v3/projects/"+pid {
		t.Fatalf("created project: %v", p)
	}
	for _, base := range []string{u1, u2} {
		got := idaObj(t, idaWant(t, "get project on another node", do(t, "GET", base+"/identity/v3/projects/"+pid, admin, nil), 200), "project")
		if got["name"] != "tenant1" || !slices.Equal(got["tags"].([]any), []any{"blue"}) {
			t.Fatalf("project on %s: %v", base, got)
		}
	}

	// A user with a password and the member role on it logs in on node 2.
	const pw1, pw2 = "alice-password-1", "alice-password-2"
	r := do(t, "POST", u1+"/identity/v3/users", admin, map[string]any{
		"user": map[string]any{"name": "alice", "password": pw1, "email": "alice@example.com", "default_project_id": pid},
	})
	user := idaObj(t, idaWant(t, "create user", r, 201), "user")
	if strings.Contains(string(r.Body), pw1) || strings.Contains(string(r.Body), "$2a$") || user["password"] != nil {
		t.Fatalf("the user's password or its hash is in the response: %s", r.Body)
	}
	uid := user["id"].(string)
	if user["default_project_id"] != pid || user["email"] != "alice@example.com" || user["enabled"] != true || user["domain_id"] != "default" {
		t.Fatalf("created user: %v", user)
	}
	member := idaRoleID(t, u0, admin, "member")
	grant := "/identity/v3/projects/" + pid + "/users/" + uid + "/roles/" + member
	idaWant(t, "grant member", do(t, "PUT", u1+grant, admin, nil), 204)
	idaWant(t, "grant again", do(t, "PUT", u0+grant, admin, nil), 204)
	idaWant(t, "linearizable check on node 2", do(t, "HEAD", u2+grant, admin, nil), 204)
	alice := login(t, u2, "alice", pw1, projectScope("tenant1"))

	// The member: 403 on admin routes, its own user and project only.
	for _, rt := range [][2]string{
		{"GET", "/identity/v3/projects"}, {"GET", "/identity/v3/users"}, {"GET", "/identity/v3/roles"},
		{"GET", "/identity/v3/domains"}, {"GET", "/identity/v3/role_assignments"}, {"PUT", grant},
		{"DELETE", "/identity/v3/projects/" + pid}, {"PATCH", "/identity/v3/users/" + uid},
	} {
		idaFault(t, "member "+rt[0]+" "+rt[1], do(t, rt[0], u2+rt[1], alice, map[string]any{"user": map[string]any{}}), 403)
	}
	idaFault(t, "member creates a project", do(t, "POST", u2+"/identity/v3/projects", alice, map[string]any{"project": map[string]any{"name": "x"}}), 403)
	if got := idaObj(t, idaWant(t, "own user", do(t, "GET", u2+"/identity/v3/users/"+uid, alice, nil), 200), "user"); got["name"] != "alice" {
		t.Fatalf("own user: %v", got)
	}
	if got := idaObj(t, idaWant(t, "own project", do(t, "GET", u2+"/identity/v3/projects/"+pid, alice, nil), 200), "project"); got["id"] != pid {
		t.Fatalf("own project: %v", got)
	}
	adminProject := idaList(t, idaWant(t, "admin project", do(t, "GET", u0+"/identity/v3/projects?name=admin", admin, nil), 200), "projects")[0]["id"].(string)
	idaFault(t, "another project", do(t, "GET", u2+"/identity/v3/projects/"+adminProject, alice, nil), 403)
	idaFault(t, "a missing project, for a member", do(t, "GET", u2+"/identity/v3/projects/nosuch", alice, nil), 403)
	adminID := idaList(t, idaWant(t, "admin user", do(t, "GET", u0+"/identity/v3/users?name=admin", admin, nil), 200), "users")[0]["id"].(string)
	idaFault(t, "another user", do(t, "GET", u2+"/identity/v3/users/"+adminID, alice, nil), 403)
	if got := idaIDs(idaList(t, idaWant(t, "own projects", do(t, "GET", u2+"/identity/v3/users/"+uid+"/projects", alice, nil), 200), "projects")); !slices.Equal(got, []string{pid}) {
		t.Fatalf("alice's projects: %v", got)
	}

	// Password change: a wrong original is a 401; then the old token fails
	// on every controller and only the new password logs in.
	pwPath := "/identity/v3/users/" + uid + "/password"
	idaFault(t, "wrong original password", do(t, "POST", u1+pwPath, alice, map[string]any{"user": map[string]any{"password": pw2, "original_password": "nope"}}), 401)
	idaFault(t, "password change without original", do(t, "POST", u1+pwPath, alice, map[string]any{"user": map[string]any{"password": pw2}}), 400, "original_password")
	idaWant(t, "change password", do(t, "POST", u1+pwPath, alice, map[string]any{"user": map[string]any{"password": pw2, "original_password": pw1}}), 204)
	idaFault(t, "old token on the node that changed it", do(t, "GET", u1+"/identity/v3/users/"+uid, alice, nil), 401)
	for _, base := range []string{u0, u2} {
		idaWant(t, "catch up", do(t, "GET", base+"/identity/v3/users/"+uid, admin, nil), 200) // a linearizable read
		idaFault(t, "old token on "+base, do(t, "GET", base+"/identity/v3/projects/"+pid, alice, nil), 401)
	}
	if r := do(t, "POST", u0+"/identity/v3/auth/tokens", "", passwordAuth("alice", pw1, projectScope("tenant1"))); r.Status != 401 {
		t.Fatalf("the old password still logs in: %d", r.Status)
	}
	alice = login(t, u0, "alice", pw2, projectScope("tenant1"))
	idaWant(t, "new token", do(t, "GET", u0+"/identity/v3/projects/"+pid, alice, nil), 200)

	// Deleting the project removes its assignments: the token scoped to it
	// stops working, and the assignment is gone.
	idaWant(t, "delete project", do(t, "DELETE", u2+"/identity/v3/projects/"+pid, admin, nil), 204)
	idaFault(t, "token scoped to a deleted project", do(t, "GET", u2+"/identity/v3/users/"+uid, alice, nil), 401)
	idaFault(t, "deleted project on node 0", do(t, "GET", u0+"/identity/v3/projects/"+pid, admin, nil), 404, "Could not find project: "+pid+".")
	as := idaList(t, idaWant(t, "assignments of alice", do(t, "GET", u1+"/identity/v3/role_assignments?user.id="+uid, admin, nil), 200), "role_assignments")
	if len(as) != 0 {
		t.Fatalf("assignments survive the project: %v", as)
	}
	if got := idaObj(t, idaWant(t, "user after", do(t, "GET", u1+"/identity/v3/users/"+uid, admin, nil), 200), "user"); got["default_project_id"] != nil {
		t.Fatalf("the deleted project is still alice's default: %v", got)
	}
	idaFault(t, "delete it again", do(t, "DELETE", u0+"/identity/v3/projects/"+pid, admin, nil), 404, "Could not find project: "+pid+".")
}

// Request validation, conflicts, missing records, roles, assignment status
// codes and role_assignments filters, on one controller.
func TestIdentityAdminRequests(t *testing.T) {
	ac := newAPICluster(t, 1)
	base := ac.url(0)
	v3 := base + "/identity/v3"
	admin := login(t, base, "admin", testAdminPassword, projectScope("admin"))

	idaFault(t, "no token", do(t, "GET", v3+"/projects", "", nil), 401)

	// Projects: validation.
	for name, tc := range map[string]struct {
		body  any
		parts []string
	}{
		"missing name":       {map[string]any{"project": map[string]any{"description": "x"}}, []string{"'name'", "required"}},
		"name not a string":  {map[string]any{"project": map[string]any{"name": 12}}, []string{"'name'", "string"}},
		"blank name":         {map[string]any{"project": map[string]any{"name": "  "}}, []string{"'name'"}},
		"name too long":      {map[string]any{"project": map[string]any{"name": strings.Repeat("n", 65)}}, []string{"name"}},
		"enabled a string":   {map[string]any{"project": map[string]any{"name": "p", "enabled": "yes"}}, []string{"'enabled'", "boolean"}},
		"enabled null":       {map[string]any{"project": map[string]any{"name": "p", "enabled": nil}}, []string{"'enabled'"}},
		"tags not a list":    {map[string]any{"project": map[string]any{"name": "p", "tags": "a"}}, []string{"'tags'"}},
		"tag not a string":   {map[string]any{"project": map[string]any{"name": "p", "tags": []any{1}}}, []string{"'tags'"}},
		"tag with a slash":   {map[string]any{"project": map[string]any{"name": "p", "tags": []string{"a/b"}}}, []string{"tag"}},
		"is_domain true":     {map[string]any{"project": map[string]any{"name": "p", "is_domain": true}}, []string{"'is_domain'"}},
		"parent not domain":  {map[string]any{"project": map[string]any{"name": "p", "domain_id": "default", "parent_id": "abc"}}, []string{"'parent_id'"}},
		"unknown attribute":  {map[string]any{"project": map[string]any{"name": "p", "color": "red"}}, []string{"'color'"}},
		"options":            {map[string]any{"project": map[string]any{"name": "p", "options": map[string]any{"x": 1}}}, []string{"'options'"}},
		"no project key":     {map[string]any{"name": "p"}, []string{"Expecting to find project"}},
		"project not object": {map[string]any{"project": "p"}, []string{"'project'"}},
		"body a list":        {[]any{1}, []string{"JSON object"}},
		"malformed":          {"{", nil},
	} {
		idaFault(t, "create project, "+name, do(t, "POST", v3+"/projects", admin, tc.body), 400, tc.parts...)
	}
	idaFault(t, "create project, missing domain", do(t, "POST", v3+"/projects", admin,
		map[string]any{"project": map[string]any{"name": "p", "domain_id": "nosuch"}}), 404, "Could not find domain: nosuch.")
	idaFault(t, "create project, missing parent", do(t, "POST", v3+"/projects", admin,
		map[string]any{"project": map[string]any{"name": "p", "parent_id": "abc"}}), 404, "Could not find project: abc.")
	idaFault(t, "bad enabled filter", do(t, "GET", v3+"/projects?enabled=maybe", admin, nil), 400, "enabled")

	mk := func(name string, extra map[string]any) map[string]any {
		body := map[string]any{"name": name}
		for k, v := range extra {
			body[k] = v
		}
		return idaObj(t, idaWant(t, "create "+name, do(t, "POST", v3+"/projects", admin, map[string]any{"project": body}), 201), "project")
	}
	red := mk("red", map[string]any{"tags": []string{"a", "b"}, "domain_id": "default", "parent_id": "default", "is_domain": false, "options": map[string]any{}})
	green := mk("green", map[string]any{"enabled": false, "description": nil})
	idaFault(t, "create project, parent a project", do(t, "POST", v3+"/projects", admin,
		map[string]any{"project": map[string]any{"name": "p", "parent_id": green["id"]}}), 400, "'parent_id'", "hierarchy")
	idaFault(t, "duplicate project", do(t, "POST", v3+"/projects", admin, map[string]any{"project": map[string]any{"name": "red"}}), 409, "red")
	idaFault(t, "rename onto another", do(t, "PATCH", v3+"/projects/"+green["id"].(string), admin, map[string]any{"project": map[string]any{"name": "red"}}), 409)
	idaFault(t, "patch missing", do(t, "PATCH", v3+"/projects/nosuch", admin, map[string]any{"project": map[string]any{"name": "x"}}), 404, "Could not find project: nosuch.")
	idaFault(t, "patch domain_id", do(t, "PATCH", v3+"/projects/"+red["id"].(string), admin, map[string]any{"project": map[string]any{"domain_id": "other"}}), 400, "'domain_id'")
	idaFault(t, "patch bad type", do(t, "PATCH", v3+"/projects/"+red["id"].(string), admin, map[string]any{"project": map[string]any{"description": 5}}), 400, "'description'")
	idaFault(t, "get missing", do(t, "GET", v3+"/projects/nosuch", admin, nil), 404, "Could not find project: nosuch.")
	renamed := idaObj(t, idaWant(t, "patch project", do(t, "PATCH", v3+"/projects/"+red["id"].(string), admin, map[string]any{"project": map[string]any{
		"name": "crimson", "description": "renamed", "tags": []string{}, "enabled": false, "id": red["id"], "domain_id": "default", "links": red["links"],
	}}), 200), "project")
	if renamed["name"] != "crimson" || renamed["description"] != "renamed" || len(renamed["tags"].([]any)) != 0 || renamed["enabled"] != false {
		t.Fatalf("patched project: %v", renamed)
	}
	for query, want := range map[string][]string{
		"?name=crimson":            {red["id"].(string)},
		"?enabled=false":           {red["id"].(string), green["id"].(string)},
		"?domain_id=other":         nil,
		"?is_domain=true":          nil,
		"?name=admin&enabled=true": {idaList(t, idaWant(t, "admin project", do(t, "GET", v3+"/projects?name=admin", admin, nil), 200), "projects")[0]["id"].(string)},
	} {
		got := idaIDs(idaList(t, idaWant(t, "list projects"+query, do(t, "GET", v3+"/projects"+query, admin, nil), 200), "projects"))
		slices.Sort(got)
		slices.Sort(want)
		if !slices.Equal(got, want) {
			t.Errorf("projects%s: %v, want %v", query, got, want)
		}
	}
	list := idaWant(t, "list projects", do(t, "GET", v3+"/projects?enabled=false", admin, nil), 200)
	if l := idaObj(t, list, "links"); l["self"] != v3+"/projects?enabled=false" || l["next"] != nil || l["previous"] != nil {
		t.Fatalf("list links: %v", l)
	}

	// Domains.
	d := idaObj(t, idaWant(t, "get domain", do(t, "GET", v3+"/domains/default", admin, nil), 200), "domain")
	if d["name"] != "Default" || d["enabled"] != true || idaObj(t, d, "links")["self"] != v3+"/domains/default" {
		t.Fatalf("domain: %v", d)
	}
	if got := idaIDs(idaList(t, idaWant(t, "domains", do(t, "GET", v3+"/domains?name=Default", admin, nil), 200), "domains")); !slices.Equal(got, []string{"default"}) {
		t.Fatalf("domains: %v", got)
	}
	if got := idaList(t, idaWant(t, "disabled domains", do(t, "GET", v3+"/domains?enabled=false", admin, nil), 200), "domains"); len(got) != 0 {
		t.Fatalf("disabled domains: %v", got)
	}
	idaFault(t, "missing domain", do(t, "GET", v3+"/domains/nosuch", admin, nil), 404, "Could not find domain: nosuch.")

	// Users: validation, no password, conflicts, disable.
	for name, tc := range map[string]struct {
		body  any
		parts []string
	}{
		"missing name":         {map[string]any{"user": map[string]any{"password": "x"}}, []string{"'name'", "required"}},
		"password not string":  {map[string]any{"user": map[string]any{"name": "u", "password": 1234}}, []string{"'password'"}},
		"empty password":       {map[string]any{"user": map[string]any{"name": "u", "password": ""}}, []string{"'password'"}},
		"password too long":    {map[string]any{"user": map[string]any{"name": "u", "password": strings.Repeat("p", 73)}}, []string{"'password'"}},
		"enabled not boolean":  {map[string]any{"user": map[string]any{"name": "u", "enabled": 1}}, []string{"'enabled'"}},
		"email not a string":   {map[string]any{"user": map[string]any{"name": "u", "email": []string{"a"}}}, []string{"'email'"}},
		"unknown attribute":    {map[string]any{"user": map[string]any{"name": "u", "shoe_size": 9}}, []string{"'shoe_size'"}},
		"missing user section": {map[string]any{"users": map[string]any{}}, []string{"Expecting to find user"}},
	} {
		idaFault(t, "create user, "+name, do(t, "POST", v3+"/users", admin, tc.body), 400, tc.parts...)
	}
	idaFault(t, "create user, missing default project", do(t, "POST", v3+"/users", admin,
		map[string]any{"user": map[string]any{"name": "u", "default_project_id": "nosuch"}}), 404, "Could not find project: nosuch.")
	r := do(t, "POST", v3+"/users", admin, map[string]any{"user": map[string]any{"name": "nopw", "description": "no password"}})
	nopw := idaObj(t, idaWant(t, "user without password", r, 201), "user")
	if _, ok := nopw["email"]; ok {
		t.Fatalf("empty email shown: %v", nopw)
	}
	if _, ok := nopw["default_project_id"]; ok {
		t.Fatalf("empty default project shown: %v", nopw)
	}
	if nopw["password_expires_at"] != nil || idaObj(t, nopw, "links")["self"] != v3+"/users/"+nopw["id"].(string) {
		t.Fatalf("user view: %v", nopw)
	}
	if r := do(t, "POST", v3+"/auth/tokens", "", passwordAuth("nopw", "", nil)); r.Status != 401 {
		t.Fatalf("a user without a password logs in: %d %s", r.Status, r.Body)
	}
	idaFault(t, "duplicate user", do(t, "POST", v3+"/users", admin, map[string]any{"user": map[string]any{"name": "nopw"}}), 409, "nopw")
	idaFault(t, "missing user", do(t, "GET", v3+"/users/nosuch", admin, nil), 404, "Could not find user: nosuch.")
	idaFault(t, "patch missing user", do(t, "PATCH", v3+"/users/nosuch", admin, map[string]any{"user": map[string]any{"enabled": false}}), 404, "Could not find user: nosuch.")
	idaFault(t, "delete missing user", do(t, "DELETE", v3+"/users/nosuch", admin, nil), 404, "Could not find user: nosuch.")
	bob := idaObj(t, idaWant(t, "create bob", do(t, "POST", v3+"/users", admin, map[string]any{"user": map[string]any{"name": "bob", "password": "bob-pw"}}), 201), "user")
	bid := bob["id"].(string)
	idaFault(t, "rename user onto another", do(t, "PATCH", v3+"/users/"+bid, admin, map[string]any{"user": map[string]any{"name": "nopw"}}), 409)
	idaFault(t, "patch user default project missing", do(t, "PATCH", v3+"/users/"+bid, admin, map[string]any{"user": map[string]any{"default_project_id": "nosuch"}}), 404, "Could not find project: nosuch.")
	idaFault(t, "patch password_expires_at", do(t, "PATCH", v3+"/users/"+bid, admin, map[string]any{"user": map[string]any{"password_expires_at": "2030-01-01T00:00:00Z"}}), 400, "'password_expires_at'")
	idaFault(t, "patch user domain", do(t, "PATCH", v3+"/users/"+bid, admin, map[string]any{"user": map[string]any{"domain_id": "other"}}), 400, "'domain_id'")
	patched := idaObj(t, idaWant(t, "patch bob", do(t, "PATCH", v3+"/users/"+bid, admin, map[string]any{"user": map[string]any{
		"email": "bob@example.com", "description": "Bob", "default_project_id": green["id"], "password_expires_at": nil,
	}}), 200), "user")
	if patched["email"] != "bob@example.com" || patched["description"] != "Bob" || patched["default_project_id"] != green["id"] {
		t.Fatalf("patched user: %v", patched)
	}

	// Roles.
	idaFault(t, "create role without name", do(t, "POST", v3+"/roles", admin, map[string]any{"role": map[string]any{}}), 400, "'name'")
	idaFault(t, "domain role", do(t, "POST", v3+"/roles", admin, map[string]any{"role": map[string]any{"name": "x", "domain_id": "default"}}), 400, "'domain_id'")
	role := idaObj(t, idaWant(t, "create role", do(t, "POST", v3+"/roles", admin, map[string]any{"role": map[string]any{"name": "observer", "description": "looks"}}), 201), "role")
	rid := role["id"].(string)
	if role["domain_id"] != nil || role["name"] != "observer" || idaObj(t, role, "links")["self"] != v3+"/roles/"+rid {
		t.Fatalf("role: %v", role)
	}
	idaFault(t, "duplicate role", do(t, "POST", v3+"/roles", admin, map[string]any{"role": map[string]any{"name": "observer"}}), 409)
	idaWant(t, "get role", do(t, "GET", v3+"/roles/"+rid, admin, nil), 200)
	for _, builtin := range []string{"admin", "member", "reader"} {
		idaFault(t, "delete "+builtin, do(t, "DELETE", v3+"/roles/"+idaRoleID(t, base, admin, builtin), admin, nil), 409, builtin)
	}

	// Assignments: status codes on a project and on the system.
	pid := green["id"].(string)
	onProject := v3 + "/projects/" + pid + "/users/" + bid + "/roles/"
	onSystem := v3 + "/system/users/" + bid + "/roles/"
	idaFault(t, "grant to missing user", do(t, "PUT", v3+"/projects/"+pid+"/users/nosuch/roles/"+rid, admin, nil), 404, "Could not find user: nosuch.")
	idaFault(t, "grant missing role", do(t, "PUT", onProject+"nosuch", admin, nil), 404, "Could not find role: nosuch.")
	idaFault(t, "grant on missing project", do(t, "PUT", v3+"/projects/nosuch/users/"+bid+"/roles/"+rid, admin, nil), 404, "Could not find project: nosuch.")
	idaFault(t, "system grant to missing user", do(t, "PUT", v3+"/system/users/nosuch/roles/"+rid, admin, nil), 404, "Could not find user: nosuch.")
	for _, target := range []string{onProject, onSystem} {
		if r := do(t, "HEAD", target+rid, admin, nil); r.Status != 404 {
			t.Fatalf("HEAD %s before grant: %d", target, r.Status)
		}
		idaFault(t, "GET before grant", do(t, "GET", target+rid, admin, nil), 404, "Could not find role assignment")
		idaFault(t, "DELETE before grant", do(t, "DELETE", target+rid, admin, nil), 404, "Could not find role assignment")
		idaWant(t, "PUT", do(t, "PUT", target+rid, admin, nil), 204)
		idaWant(t, "PUT again", do(t, "PUT", target+rid, admin, nil), 204)
		idaWant(t, "HEAD", do(t, "HEAD", target+rid, admin, nil), 204)
		idaWant(t, "GET", do(t, "GET", target+rid, admin, nil), 204)
		roles := idaIDs(idaList(t, idaWant(t, "list roles there", do(t, "GET", strings.TrimSuffix(target, "/"), admin, nil), 200), "roles"))
		if !slices.Equal(roles, []string{rid}) {
			t.Fatalf("roles at %s: %v", target, roles)
		}
	}
	member := idaRoleID(t, base, admin, "member")
	idaWant(t, "grant member", do(t, "PUT", onProject+member, admin, nil), 204)
	idaFault(t, "list roles of a missing user", do(t, "GET", v3+"/projects/"+pid+"/users/nosuch/roles", admin, nil), 404, "Could not find user: nosuch.")

	// role_assignments: filters, include_names, effective.
	ra := func(query string) []map[string]any {
		t.Helper()
		return idaList(t, idaWant(t, "role_assignments"+query, do(t, "GET", v3+"/role_assignments"+query, admin, nil), 200), "role_assignments")
	}
	bobs := ra("?user.id=" + bid)
	if len(bobs) != 3 {
		t.Fatalf("bob's assignments: %v", bobs)
	}
	if got := ra("?user.id=" + bid + "&scope.system=all"); len(got) != 1 || idaObj(t, idaObj(t, got[0], "scope"), "system")["all"] != true ||
		idaObj(t, got[0], "links")["assignment"] != onSystem+rid {
		t.Fatalf("bob's system assignments: %v", got)
	}
	if got := ra("?scope.project.id=" + pid + "&role.id=" + member); len(got) != 1 || idaObj(t, got[0], "user")["id"] != bid ||
		idaObj(t, idaObj(t, got[0], "scope"), "project")["id"] != pid || idaObj(t, got[0], "links")["assignment"] != onProject+member {
		t.Fatalf("member assignments on green: %v", got)
	}
	if got := ra("?role.id=" + rid); len(got) != 2 {
		t.Fatalf("observer assignments: %v", got)
	}
	if got := ra("?group.id=x"); len(got) != 0 {
		t.Fatalf("group assignments: %v", got)
	}
	named := ra("?scope.project.id=" + pid + "&role.id=" + member + "&include_names=true")
	if len(named) != 1 {
		t.Fatalf("named: %v", named)
	}
	nu, nr, np := idaObj(t, named[0], "user"), idaObj(t, named[0], "role"), idaObj(t, idaObj(t, named[0], "scope"), "project")
	if nu["name"] != "bob" || idaObj(t, nu, "domain")["name"] != "Default" || nr["name"] != "member" ||
		np["name"] != "green" || idaObj(t, np, "domain")["id"] != "default" || idaObj(t, np, "domain")["name"] != "Default" {
		t.Fatalf("include_names: %v", named[0])
	}
	if _, ok := idaObj(t, ra("?user.id=" + bid)[0], "user")["name"]; ok {
		t.Fatal("names without include_names")
	}
	eff := ra("?user.id=" + bid + "&scope.project.id=" + pid + "&effective")
	reader := idaRoleID(t, base, admin, "reader")
	var roles []string
	for _, a := range eff {
		roles = append(roles, idaObj(t, a, "role")["id"].(string))
	}
	if !slices.Contains(roles, reader) || len(roles) != 3 {
		t.Fatalf("effective roles of bob on green: %v (reader %s)", roles, reader)
	}
	idaFault(t, "bad system scope", do(t, "GET", v3+"/role_assignments?scope.system=some", admin, nil), 400, "scope.system")

	// Revoking: 204, then 404; deleting the role removes its assignments.
	idaWant(t, "revoke", do(t, "DELETE", onProject+rid, admin, nil), 204)
	idaFault(t, "revoke again", do(t, "DELETE", onProject+rid, admin, nil), 404, "Could not find role assignment")
	if r := do(t, "HEAD", onProject+rid, admin, nil); r.Status != 404 {
		t.Fatalf("HEAD after revoke: %d", r.Status)
	}
	idaWant(t, "delete role", do(t, "DELETE", v3+"/roles/"+rid, admin, nil), 204)
	idaFault(t, "deleted role", do(t, "GET", v3+"/roles/"+rid, admin, nil), 404, "Could not find role: "+rid+".")
	if got := ra("?user.id=" + bid); len(got) != 1 {
		t.Fatalf("bob's assignments after deleting observer: %v", got)
	}

	// Disabling a user ends its tokens; the admin's PATCH of a password
	// does too. Deleting the user removes it.
	idaWant(t, "enable green", do(t, "PATCH", v3+"/projects/"+pid, admin, map[string]any{"project": map[string]any{"enabled": true}}), 200)
	bobTok := login(t, base, "bob", "bob-pw", projectScope("green"))
	idaWant(t, "bob sees his user", do(t, "GET", v3+"/users/"+bid, bobTok, nil), 200)
	idaWant(t, "disable bob", do(t, "PATCH", v3+"/users/"+bid, admin, map[string]any{"user": map[string]any{"enabled": false}}), 200)
	idaFault(t, "disabled user's token", do(t, "GET", v3+"/users/"+bid, bobTok, nil), 401)
	idaWant(t, "enable bob, new password", do(t, "PATCH", v3+"/users/"+bid, admin, map[string]any{"user": map[string]any{"enabled": true, "password": "bob-pw-2"}}), 200)
	idaFault(t, "token from before the disable", do(t, "GET", v3+"/users/"+bid, bobTok, nil), 401)
	login(t, base, "bob", "bob-pw-2", projectScope("green"))
	idaWant(t, "delete bob", do(t, "DELETE", v3+"/users/"+bid, admin, nil), 204)
	if got := ra("?user.id=" + bid); len(got) != 0 {
		t.Fatalf("assignments of a deleted user: %v", got)
	}
}
