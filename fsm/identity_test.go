package fsm

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"testing"

	"github.com/hashicorp/raft"
)

// identityFSM applies commands at increasing Raft indexes.
type identityFSM struct{ *harness }

func newIdentityFSM(t *testing.T) *identityFSM {
	return &identityFSM{newHarness(t)}
}

func (h *identityFSM) state() *State { return h.f.State() }

func identTestSecret(b byte) []byte { return bytes.Repeat([]byte{b}, 32) }

func identTestBootstrap() *IdentityBootstrap {
	return &IdentityBootstrap{
		Domain:       Domain{ID: "default", Name: "Default", Enabled: true},
		AdminProject: Project{ID: "p-admin", Name: "admin", DomainID: "default", Enabled: true},
		AdminUser:    User{ID: "u-admin", Name: "admin", DomainID: "default", DefaultProjectID: "p-admin", PasswordHash: "$argon2id$x", Enabled: true},
		Roles: []Role{
			{ID: "r-admin", Name: RoleAdmin},
			{ID: "r-member", Name: RoleMember},
			{ID: "r-reader", Name: RoleReader},
		},
		TokenKey: TokenKey{ID: "k1", Secret: identTestSecret(1)},
		Now:      1000,
	}
}

func identRoleNames(rs []Role) []string {
	var out []string
	for _, r := range rs {
		out = append(out, r.Name)
	}
	return out
}

func identKeyIDs(ks []TokenKey) []string {
	var out []string
	for _, k := range ks {
		out = append(out, k.ID)
	}
	return out
}

func TestIdentityBootstrap(t *testing.T) {
	h := newIdentityFSM(t)
	s := h.state()
	if done, err := IdentityBootstrapped(s); err != nil || done {
		t.Fatalf("bootstrapped before bootstrap: %v %v", done, err)
	}
	if _, err := PrimaryTokenKey(s); !errors.Is(err, ErrNotFound) {
		t.Fatalf("primary key before bootstrap: %v, want not found", err)
	}
	h.refuse("rotate before bootstrap", &RotateTokenKeys{NewKey: TokenKey{ID: "k0", Secret: identTestSecret(9)}, Now: 10}, KindConflict, "not bootstrapped")

	if r := h.ok(identTestBootstrap()); r.Value != nil {
		t.Fatalf("bootstrap response value %x, want none", r.Value)
	}
	if done, err := IdentityBootstrapped(s); err != nil || !done {
		t.Fatalf("not bootstrapped after bootstrap: %v %v", done, err)
	}
	d, err := DomainByName(s, "Default")
	if err != nil || d.ID != "default" || !d.Enabled {
		t.Fatalf("domain: %+v %v", d, err)
	}
	if _, err := DomainByName(s, "default"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("domain names are case-sensitive, got %v", err)
	}
	p, err := ProjectByName(s, "default", "admin")
	if err != nil || p.ID != "p-admin" {
		t.Fatalf("admin project: %+v %v", p, err)
	}
	u, err := UserByName(s, "default", "admin")
	if err != nil || u.ID != "u-admin" || u.CreatedAt != 1000 || u.DefaultProjectID != "p-admin" {
		t.Fatalf("admin user: %+v %v", u, err)
	}
	if roles, err := ListRoles(s); err != nil || !slices.Equal(identRoleNames(roles), []string{"admin", "member", "reader"}) {
		t.Fatalf("roles %v %v", identRoleNames(roles), err)
	}
	if roles, err := RolesOnProject(s, "u-admin", "p-admin"); err != nil || !slices.Equal(identRoleNames(roles), []string{"admin"}) {
		t.Fatalf("admin roles on admin project: %v %v", identRoleNames(roles), err)
	}
	if roles, err := SystemRoles(s, "u-admin"); err != nil || !slices.Equal(identRoleNames(roles), []string{"admin"}) {
		t.Fatalf("admin system roles: %v %v", identRoleNames(roles), err)
	}
	k, err := PrimaryTokenKey(s)
	if err != nil || k.ID != "k1" || k.RetiredAt != 0 || k.CreatedAt != 1000 || !bytes.Equal(k.Secret, identTestSecret(1)) {
		t.Fatalf("primary key: %+v %v", k, err)
	}
	checkIdentityIndexes(t, s)

	// A second bootstrap is refused, whatever it holds, and changes nothing.
	again := identTestBootstrap()
	again.Domain = Domain{ID: "other", Name: "Other", Enabled: true}
	again.AdminProject.DomainID, again.AdminUser.DomainID = "other", "other"
	h.refuse("second bootstrap", again, KindConflict, "identity is already bootstrapped")
	h.refuse("identical bootstrap", identTestBootstrap(), KindConflict, "identity is already bootstrapped")
}

func TestIdentityBootstrapRefusals(t *testing.T) {
	cases := []struct {
		name   string
		change func(c *IdentityBootstrap)
		msg    string
	}{
		{"no reader role", func(c *IdentityBootstrap) { c.Roles = c.Roles[:2] }, `"reader"`},
		{"duplicate role name", func(c *IdentityBootstrap) { c.Roles = append(c.Roles, Role{ID: "r-x", Name: "member"}) }, "given twice"},
		{"duplicate role id", func(c *IdentityBootstrap) { c.Roles = append(c.Roles, Role{ID: "r-member", Name: "x"}) }, "given twice"},
		{"short secret", func(c *IdentityBootstrap) { c.TokenKey.Secret = c.TokenKey.Secret[:31] }, "31-byte secret"},
		{"retired key", func(c *IdentityBootstrap) { c.TokenKey.RetiredAt = 5 }, "retired"},
		{"project elsewhere", func(c *IdentityBootstrap) { c.AdminProject.DomainID = "other" }, "admin project"},
		{"user elsewhere", func(c *IdentityBootstrap) { c.AdminUser.DomainID = "other" }, "admin user"},
		{"default project", func(c *IdentityBootstrap) { c.AdminUser.DefaultProjectID = "p-other" }, "default project"},
		{"domain id with slash", func(c *IdentityBootstrap) { c.Domain.ID = "a/b" }, "invalid domain id"},
		{"empty domain name", func(c *IdentityBootstrap) { c.Domain.Name = "" }, "invalid domain name"},
		{"role name with NUL", func(c *IdentityBootstrap) { c.Roles[0].Name = "ad\x00min" }, "invalid role name"},
		{"disabled admin", func(c *IdentityBootstrap) { c.AdminUser.Enabled = false }, "must be enabled"},
		{"no time", func(c *IdentityBootstrap) { c.Now = 0 }, "now"},
	}
	h := newIdentityFSM(t)
	for _, tc := range cases {
		c := identTestBootstrap()
		tc.change(c)
		h.refuse(tc.name, c, KindInvalid, tc.msg)
	}
	if done, _ := IdentityBootstrapped(h.state()); done {
		t.Fatal("a refused bootstrap bootstrapped")
	}
	// A role that already exists is not overwritten by the bootstrap.
	h.ok(&CreateRole{Role: Role{ID: "r-pre", Name: "member"}})
	h.refuse("role exists", identTestBootstrap(), KindConflict, `role name "member" already exists`)
}

// identityFixture bootstraps and adds two more users and projects and a role.
func identityFixture(t *testing.T) *identityFSM {
	h := newIdentityFSM(t)
	h.ok(identTestBootstrap())
	h.ok(&CreateProject{Project: Project{ID: "p1", Name: "one", DomainID: "default", Enabled: true, Tags: []string{"a", "b"}}})
	h.ok(&CreateProject{Project: Project{ID: "p2", Name: "two", DomainID: "default", Enabled: true}})
	h.ok(&CreateUser{User: User{ID: "u1", Name: "alice", DomainID: "default", DefaultProjectID: "p1", Enabled: true, CreatedAt: 5}})
	h.ok(&CreateUser{User: User{ID: "u2", Name: "bob", DomainID: "default", Enabled: true}})
	h.ok(&CreateRole{Role: Role{ID: "r-extra", Name: "extra"}})
	return h
}

func TestIdentityRefusalsChangeNothing(t *testing.T) {
	h := identityFixture(t)
	str := func(s string) *string { return &s }
	long := strings.Repeat("x", 65)
	cases := []struct {
		name string
		cmd  Command
		kind Kind
		msg  string
	}{
		// Projects.
		{"project empty id", &CreateProject{Project: Project{Name: "n", DomainID: "default"}}, KindInvalid, "invalid project id"},
		{"project id slash", &CreateProject{Project: Project{ID: "a/b", Name: "n", DomainID: "default"}}, KindInvalid, "invalid project id"},
		{"project id NUL", &CreateProject{Project: Project{ID: "a\x00b", Name: "n", DomainID: "default"}}, KindInvalid, "invalid project id"},
		{"project id too long", &CreateProject{Project: Project{ID: long, Name: "n", DomainID: "default"}}, KindInvalid, "invalid project id"},
		{"project empty name", &CreateProject{Project: Project{ID: "p9", DomainID: "default"}}, KindInvalid, "invalid project name"},
		{"project name 65 chars", &CreateProject{Project: Project{ID: "p9", Name: strings.Repeat("é", 65), DomainID: "default"}}, KindInvalid, "1 to 64 characters"},
		{"project name NUL", &CreateProject{Project: Project{ID: "p9", Name: "a\x00", DomainID: "default"}}, KindInvalid, "invalid project name"},
		{"project name not UTF-8", &CreateProject{Project: Project{ID: "p9", Name: "\xff", DomainID: "default"}}, KindInvalid, "invalid project name"},
		{"project description", &CreateProject{Project: Project{ID: "p9", Name: "n", DomainID: "default", Description: strings.Repeat("d", 65536)}}, KindInvalid, "65536 bytes"},
		{"project tag comma", &CreateProject{Project: Project{ID: "p9", Name: "n", DomainID: "default", Tags: []string{"a,b"}}}, KindInvalid, "tag"},
		{"project tag twice", &CreateProject{Project: Project{ID: "p9", Name: "n", DomainID: "default", Tags: []string{"a", "a"}}}, KindInvalid, "twice"},
		{"project 81 tags", &CreateProject{Project: Project{ID: "p9", Name: "n", DomainID: "default", Tags: identManyTags(81)}}, KindInvalid, "80 tags"},
		{"project domain missing", &CreateProject{Project: Project{ID: "p9", Name: "n", DomainID: "nope"}}, KindNotFound, `domain "nope" not found`},
		{"project id taken", &CreateProject{Project: Project{ID: "p1", Name: "n", DomainID: "default"}}, KindConflict, `project "p1" already exists`},
		{"project name taken", &CreateProject{Project: Project{ID: "p9", Name: "one", DomainID: "default"}}, KindConflict, `project name "one" already exists in domain "default"`},
		{"update project missing", &UpdateProject{ID: "nope", Name: str("x")}, KindNotFound, `project "nope" not found`},
		{"update project bad name", &UpdateProject{ID: "p1", Name: str("")}, KindInvalid, "invalid project name"},
		{"update project name taken", &UpdateProject{ID: "p1", Name: str("two")}, KindConflict, `project name "two" already exists`},
		{"update project bad tags", &UpdateProject{ID: "p1", Tags: &[]string{"x/y"}}, KindInvalid, "tag"},
		{"delete project missing", &DeleteProject{ID: "nope"}, KindNotFound, `project "nope" not found`},
		{"delete project bad id", &DeleteProject{ID: ""}, KindInvalid, "invalid project id"},
		// Users.
		{"user bad id", &CreateUser{User: User{ID: "a/b", Name: "n", DomainID: "default"}}, KindInvalid, "invalid user id"},
		{"user long name", &CreateUser{User: User{ID: "u9", Name: strings.Repeat("n", 256), DomainID: "default"}}, KindInvalid, "invalid user name"},
		{"user long email", &CreateUser{User: User{ID: "u9", Name: "n", DomainID: "default", Email: strings.Repeat("e", 256)}}, KindInvalid, "email"},
		{"user domain missing", &CreateUser{User: User{ID: "u9", Name: "n", DomainID: "nope"}}, KindNotFound, `domain "nope" not found`},
		{"user default project missing", &CreateUser{User: User{ID: "u9", Name: "n", DomainID: "default", DefaultProjectID: "nope"}}, KindNotFound, `default project "nope" not found`},
		{"user id taken", &CreateUser{User: User{ID: "u1", Name: "n", DomainID: "default"}}, KindConflict, `user "u1" already exists`},
		{"user name taken", &CreateUser{User: User{ID: "u9", Name: "alice", DomainID: "default"}}, KindConflict, `user name "alice" already exists in domain "default"`},
		{"update user missing", &UpdateUser{ID: "nope", Name: str("x")}, KindNotFound, `user "nope" not found`},
		{"update user name taken", &UpdateUser{ID: "u2", Name: str("alice")}, KindConflict, `user name "alice" already exists`},
		{"update user default project missing", &UpdateUser{ID: "u2", DefaultProjectID: str("nope")}, KindNotFound, `default project "nope" not found`},
		{"password without time", &UpdateUser{ID: "u2", PasswordHash: str("h")}, KindInvalid, "now_micros"},
		{"disable without time", &UpdateUser{ID: "u2", Enabled: new(bool)}, KindInvalid, "now_micros"},
		{"delete user missing", &DeleteUser{ID: "nope"}, KindNotFound, `user "nope" not found`},
		// Roles and assignments.
		{"role bad name", &CreateRole{Role: Role{ID: "r9", Name: ""}}, KindInvalid, "invalid role name"},
		{"role id taken", &CreateRole{Role: Role{ID: "r-extra", Name: "n"}}, KindConflict, `role "r-extra" already exists`},
		{"role name taken", &CreateRole{Role: Role{ID: "r9", Name: "member"}}, KindConflict, `role name "member" already exists`},
		{"delete admin role", &DeleteRole{ID: "r-admin"}, KindConflict, "built in"},
		{"delete member role", &DeleteRole{ID: "r-member"}, KindConflict, "built in"},
		{"delete reader role", &DeleteRole{ID: "r-reader"}, KindConflict, "built in"},
		{"delete role missing", &DeleteRole{ID: "nope"}, KindNotFound, `role "nope" not found`},
		{"grant both targets", &GrantRole{Assignment: RoleAssignment{UserID: "u1", RoleID: "r-member", ProjectID: "p1", System: true}}, KindInvalid, "not both"},
		{"grant no target", &GrantRole{Assignment: RoleAssignment{UserID: "u1", RoleID: "r-member"}}, KindInvalid, "needs a target"},
		{"grant missing user", &GrantRole{Assignment: RoleAssignment{UserID: "nope", RoleID: "r-member", ProjectID: "p1"}}, KindNotFound, `user "nope" not found`},
		{"grant missing role", &GrantRole{Assignment: RoleAssignment{UserID: "u1", RoleID: "nope", ProjectID: "p1"}}, KindNotFound, `role "nope" not found`},
		{"grant missing project", &GrantRole{Assignment: RoleAssignment{UserID: "u1", RoleID: "r-member", ProjectID: "nope"}}, KindNotFound, `project "nope" not found`},
		{"revoke not granted", &RevokeRole{Assignment: RoleAssignment{UserID: "u1", RoleID: "r-member", ProjectID: "p1"}}, KindNotFound, `user "u1" has no role "r-member" on project "p1"`},
		{"revoke not granted system", &RevokeRole{Assignment: RoleAssignment{UserID: "u1", RoleID: "r-admin", System: true}}, KindNotFound, "on the system"},
		// Token keys and revocations.
		{"rotate short secret", &RotateTokenKeys{NewKey: TokenKey{ID: "k2", Secret: identTestSecret(2)[:31]}, Now: 2000}, KindInvalid, "secret"},
		{"rotate duplicate id", &RotateTokenKeys{NewKey: TokenKey{ID: "k1", Secret: identTestSecret(2)}, Now: 2000}, KindInvalid, `token key "k1" already exists`},
		{"rotate no time", &RotateTokenKeys{NewKey: TokenKey{ID: "k2", Secret: identTestSecret(2)}}, KindInvalid, "now"},
		{"rotate negative retention", &RotateTokenKeys{NewKey: TokenKey{ID: "k2", Secret: identTestSecret(2)}, Now: 2000, RetainSeconds: -1}, KindInvalid, "retain_seconds"},
		{"revoke token bad audit id", &RevokeToken{Revocation: TokenRevocation{AuditID: "", ExpiresAt: 10}}, KindInvalid, "invalid audit id"},
		{"revoke token no expiry", &RevokeToken{Revocation: TokenRevocation{AuditID: "a"}}, KindInvalid, "expires_at"},
		{"purge no time", &PurgeTokenRevocations{}, KindInvalid, "now"},
	}
	for _, tc := range cases {
		h.refuse(tc.name, tc.cmd, tc.kind, tc.msg)
	}
	checkIdentityIndexes(t, h.state())
}

func identManyTags(n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("t%d", i)
	}
	return out
}

func TestIdentityUniqueNamesAfterRename(t *testing.T) {
	h := identityFixture(t)
	s := h.state()
	str := func(s string) *string { return &s }

	// Projects: renaming frees the old name and takes the new one.
	r := h.ok(&UpdateProject{ID: "p1", Name: str("uno")})
	var got Project
	if err := r.Decode(&got); err != nil || got.Name != "uno" || !slices.Equal(got.Tags, []string{"a", "b"}) {
		t.Fatalf("update response %+v %v", got, err)
	}
	h.refuse("rename onto renamed", &UpdateProject{ID: "p2", Name: str("uno")}, KindConflict, `project name "uno"`)
	h.ok(&CreateProject{Project: Project{ID: "p3", Name: "one", DomainID: "default"}})
	if p, err := ProjectByName(s, "default", "one"); err != nil || p.ID != "p3" {
		t.Fatalf("one -> %+v %v, want p3", p, err)
	}
	if p, err := ProjectByName(s, "default", "uno"); err != nil || p.ID != "p1" {
		t.Fatalf("uno -> %+v %v, want p1", p, err)
	}
	h.ok(&CreateProject{Project: Project{ID: "p4", Name: "ONE", DomainID: "default"}}) // case-sensitive
	h.refuse("create onto renamed", &CreateProject{Project: Project{ID: "p5", Name: "uno", DomainID: "default"}}, KindConflict, "already exists")
	h.ok(&UpdateProject{ID: "p1", Name: str("uno")}) // its own name is not a conflict

	// Users.
	h.ok(&UpdateUser{ID: "u1", Name: str("alicia")})
	h.refuse("user rename onto renamed", &UpdateUser{ID: "u2", Name: str("alicia")}, KindConflict, `user name "alicia"`)
	h.ok(&CreateUser{User: User{ID: "u3", Name: "alice", DomainID: "default"}})
	if u, err := UserByName(s, "default", "alicia"); err != nil || u.ID != "u1" {
		t.Fatalf("alicia -> %+v %v", u, err)
	}
	if u, err := UserByName(s, "default", "alice"); err != nil || u.ID != "u3" {
		t.Fatalf("alice -> %+v %v", u, err)
	}

	// Roles: a deleted role's name is free again.
	h.refuse("role name taken", &CreateRole{Role: Role{ID: "r9", Name: "extra"}}, KindConflict, `role name "extra"`)
	h.ok(&DeleteRole{ID: "r-extra"})
	h.ok(&CreateRole{Role: Role{ID: "r9", Name: "extra"}})
	if r, err := RoleByName(s, "extra"); err != nil || r.ID != "r9" {
		t.Fatalf("extra -> %+v %v", r, err)
	}

	if ps, err := ListProjects(s, "default"); err != nil || len(ps) != 5 {
		t.Fatalf("projects %+v %v", ps, err)
	} else {
		var names []string
		for _, p := range ps {
			names = append(names, p.Name)
		}
		if !slices.Equal(names, []string{"ONE", "admin", "one", "two", "uno"}) {
			t.Fatalf("projects not by name: %v", names)
		}
		all, _ := ListProjects(s, "")
		if !slices.EqualFunc(all, ps, func(a, b Project) bool { return a.ID == b.ID }) {
			t.Fatal("all projects differ from the default domain's")
		}
	}
	if ps, err := ListProjects(s, "nope"); err != nil || len(ps) != 0 {
		t.Fatalf("projects of a missing domain: %v %v", ps, err)
	}
	checkIdentityIndexes(t, s)
}

func TestIdentityUpdates(t *testing.T) {
	h := identityFixture(t)
	s := h.state()
	str := func(s string) *string { return &s }
	f, tr := false, true

	// No change: no write, so the state (and modify indexes) stay put.
	before := stateHash(t, h.f)
	h.ok(&UpdateProject{ID: "p1", Name: str("one"), Tags: &[]string{"a", "b"}})
	h.ok(&UpdateUser{ID: "u1", Email: str("")})
	if stateHash(t, h.f) != before {
		t.Fatal("an update that changes nothing wrote")
	}
	_, m0, err := GetProject(s, "p1")
	if err != nil || m0.CreateIndex != 2 || m0.ModifyIndex != 2 {
		t.Fatalf("p1 meta %+v %v, want created and modified at 2", m0, err)
	}
	// Tags are cleared with a pointer to an empty slice.
	h.ok(&UpdateProject{ID: "p1", Tags: &[]string{}, Enabled: &f, Description: str("d")})
	if _, m, _ := GetProject(s, "p1"); m.CreateIndex != 2 || m.ModifyIndex != h.idx {
		t.Fatalf("p1 meta after update %+v, want created at 2 modified at %d", m, h.idx)
	}
	if p, _, _ := GetProject(s, "p1"); p.Tags != nil || p.Enabled || p.Description != "d" || p.Name != "one" {
		t.Fatalf("after update: %+v", p)
	}

	// Password change and disable move TokensValidAfter; nothing else does,
	// and it never moves back.
	h.ok(&UpdateUser{ID: "u1", PasswordHash: str("h2"), NowMicros: 7_000_000})
	if u, _, _ := GetUser(s, "u1"); u.TokensValidAfter != 7_000_000 || u.PasswordHash != "h2" {
		t.Fatalf("after password change: %+v", u)
	}
	h.ok(&UpdateUser{ID: "u1", Description: str("x"), NowMicros: 8_000_000})
	if u, _, _ := GetUser(s, "u1"); u.TokensValidAfter != 7_000_000 {
		t.Fatalf("a description change moved tokens_valid_after to %d", u.TokensValidAfter)
	}
	h.ok(&UpdateUser{ID: "u1", Enabled: &f, NowMicros: 9_000_000})
	if u, _, _ := GetUser(s, "u1"); u.TokensValidAfter != 9_000_000 || u.Enabled {
		t.Fatalf("after disable: %+v", u)
	}
	h.ok(&UpdateUser{ID: "u1", Enabled: &tr})
	h.ok(&UpdateUser{ID: "u1", PasswordHash: str("h3"), NowMicros: 1})
	if u, _, _ := GetUser(s, "u1"); u.TokensValidAfter != 9_000_000 || !u.Enabled {
		t.Fatalf("tokens_valid_after moved back or enable failed: %+v", u)
	}

	// Default project: set, move, clear; the index follows.
	h.ok(&UpdateUser{ID: "u2", DefaultProjectID: str("p2")})
	h.ok(&UpdateUser{ID: "u1", DefaultProjectID: str("p2")})
	h.ok(&UpdateUser{ID: "u2", DefaultProjectID: str("")})
	if u, _, _ := GetUser(s, "u2"); u.DefaultProjectID != "" {
		t.Fatalf("default project not cleared: %+v", u)
	}
	checkIdentityIndexes(t, s)
	if ids := identIndexPKs(t, s, TableUser, identIdxDefaultProject, "p2"); !slices.Equal(ids, []string{"u1"}) {
		t.Fatalf("default project index of p2: %v", ids)
	}
}

func TestIdentityCascadingDeletes(t *testing.T) {
	h := identityFixture(t)
	s := h.state()
	grants := []RoleAssignment{
		{UserID: "u1", RoleID: "r-member", ProjectID: "p1"},
		{UserID: "u1", RoleID: "r-extra", ProjectID: "p1"},
		{UserID: "u1", RoleID: "r-reader", ProjectID: "p2"},
		{UserID: "u1", RoleID: "r-extra", System: true},
		{UserID: "u2", RoleID: "r-member", ProjectID: "p1"},
		{UserID: "u2", RoleID: "r-extra", ProjectID: "p2"},
		{UserID: "u2", RoleID: "r-reader", System: true},
	}
	for _, a := range grants {
		h.ok(&GrantRole{Assignment: a})
	}
	checkIdentityIndexes(t, s)
	count := func(f AssignmentFilter) int {
		t.Helper()
		as, err := ListAssignments(s, f)
		if err != nil {
			t.Fatal(err)
		}
		return len(as)
	}

	// Deleting p1 takes its 3 assignments and u1's default project.
	h.ok(&DeleteProject{ID: "p1"})
	if n := count(AssignmentFilter{ProjectID: "p1"}); n != 0 {
		t.Fatalf("%d assignments left on a deleted project", n)
	}
	if ids := identIndexPKs(t, s, TableRoleAssignment, identIdxProject, "p1"); len(ids) != 0 {
		t.Fatalf("project index keeps %v", ids)
	}
	if u, _, _ := GetUser(s, "u1"); u.DefaultProjectID != "" {
		t.Fatalf("u1 keeps deleted default project: %+v", u)
	}
	if _, _, err := GetProject(s, "p1"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("deleted project: %v", err)
	}
	if _, err := ProjectByName(s, "default", "one"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("deleted project by name: %v", err)
	}
	if n := count(AssignmentFilter{}); n != 2+len(grants)-3 {
		t.Fatalf("%d assignments after deleting p1, want %d", n, 2+len(grants)-3)
	}
	checkIdentityIndexes(t, s)

	// Deleting u2 takes its assignments (p2 extra, system reader).
	h.ok(&DeleteUser{ID: "u2"})
	if n := count(AssignmentFilter{UserID: "u2"}); n != 0 {
		t.Fatalf("%d assignments left of a deleted user", n)
	}
	if _, err := UserByName(s, "default", "bob"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("deleted user by name: %v", err)
	}
	checkIdentityIndexes(t, s)

	// Deleting r-extra takes u1's system extra.
	h.ok(&DeleteRole{ID: "r-extra"})
	if ids := identIndexPKs(t, s, TableRoleAssignment, identIdxRole, "r-extra"); len(ids) != 0 {
		t.Fatalf("role index keeps %v", ids)
	}
	if ids := identIndexPKs(t, s, TableRoleAssignment, identIdxSystem, "r-extra"); len(ids) != 0 {
		t.Fatalf("system index keeps %v", ids)
	}
	all, err := ListAssignments(s, AssignmentFilter{})
	if err != nil {
		t.Fatal(err)
	}
	want := []RoleAssignment{
		{UserID: "u-admin", RoleID: "r-admin", ProjectID: "p-admin"},
		{UserID: "u-admin", RoleID: "r-admin", System: true},
		{UserID: "u1", RoleID: "r-reader", ProjectID: "p2"},
	}
	if !slices.Equal(all, want) {
		t.Fatalf("assignments left:\n got %+v\nwant %+v", all, want)
	}
	checkIdentityIndexes(t, s)

	// A deleted user's assignments do not come back with a new user of the
	// same id.
	h.ok(&CreateUser{User: User{ID: "u2", Name: "bob", DomainID: "default"}})
	if n := count(AssignmentFilter{UserID: "u2"}); n != 0 {
		t.Fatalf("a recreated user has %d assignments", n)
	}
}

func TestIdentityGrantAndRevoke(t *testing.T) {
	h := identityFixture(t)
	s := h.state()
	a := RoleAssignment{UserID: "u1", RoleID: "r-member", ProjectID: "p1"}
	h.ok(&GrantRole{Assignment: a})
	before := stateHash(t, h.f)
	rec, _, _ := s.Get(TableRoleAssignment, identAssignmentKey(&a))
	if r := h.ok(&GrantRole{Assignment: a}); r.Value != nil || r.Err != nil {
		t.Fatalf("second grant: %+v", r)
	}
	if stateHash(t, h.f) != before {
		t.Fatal("a repeated grant changed the state")
	}
	if again, _, _ := s.Get(TableRoleAssignment, identAssignmentKey(&a)); again.ModifyIndex != rec.ModifyIndex {
		t.Fatal("a repeated grant rewrote the assignment")
	}
	// The same role on the system is a different assignment.
	sys := RoleAssignment{UserID: "u1", RoleID: "r-member", System: true}
	h.refuse("revoke system before grant", &RevokeRole{Assignment: sys}, KindNotFound, "on the system")
	h.ok(&GrantRole{Assignment: sys})
	h.ok(&RevokeRole{Assignment: a})
	h.refuse("revoke twice", &RevokeRole{Assignment: a}, KindNotFound, "has no role")
	if roles, _ := RolesOnProject(s, "u1", "p1"); len(roles) != 0 {
		t.Fatalf("roles after revoke: %v", identRoleNames(roles))
	}
	if roles, _ := SystemRoles(s, "u1"); !slices.Equal(identRoleNames(roles), []string{"member"}) {
		t.Fatalf("system roles: %v", identRoleNames(roles))
	}
	checkIdentityIndexes(t, s)
}

func TestIdentityRoleQueries(t *testing.T) {
	h := identityFixture(t)
	s := h.state()
	h.ok(&CreateUser{User: User{ID: "u3", Name: "carol", DomainID: "default"}})
	h.ok(&CreateRole{Role: Role{ID: "r-aaa", Name: "zeta"}}) // id order is not name order
	grants := []RoleAssignment{
		{UserID: "u1", RoleID: "r-aaa", ProjectID: "p1"},
		{UserID: "u1", RoleID: "r-reader", ProjectID: "p1"},
		{UserID: "u1", RoleID: "r-member", ProjectID: "p1"},
		{UserID: "u1", RoleID: "r-extra", ProjectID: "p2"},
		{UserID: "u1", RoleID: "r-admin", System: true},
		{UserID: "u1", RoleID: "r-reader", System: true},
		{UserID: "u2", RoleID: "r-reader", ProjectID: "p1"},
		{UserID: "u2", RoleID: "r-reader", System: true},
		{UserID: "u3", RoleID: "r-extra", ProjectID: "p-admin"},
	}
	for _, a := range grants {
		h.ok(&GrantRole{Assignment: a})
	}
	roleCases := []struct {
		name string
		got  func() ([]Role, error)
		want []string
	}{
		{"u1 on p1", func() ([]Role, error) { return RolesOnProject(s, "u1", "p1") }, []string{"member", "reader", "zeta"}},
		{"u1 on p2", func() ([]Role, error) { return RolesOnProject(s, "u1", "p2") }, []string{"extra"}},
		{"u1 on admin", func() ([]Role, error) { return RolesOnProject(s, "u1", "p-admin") }, nil},
		{"u2 on p1", func() ([]Role, error) { return RolesOnProject(s, "u2", "p1") }, []string{"reader"}},
		{"u3 on p1", func() ([]Role, error) { return RolesOnProject(s, "u3", "p1") }, nil},
		{"missing user", func() ([]Role, error) { return RolesOnProject(s, "nope", "p1") }, nil},
		{"malformed ids", func() ([]Role, error) { return RolesOnProject(s, "u1/project", "p1") }, nil},
		{"u1 system", func() ([]Role, error) { return SystemRoles(s, "u1") }, []string{"admin", "reader"}},
		{"u2 system", func() ([]Role, error) { return SystemRoles(s, "u2") }, []string{"reader"}},
		{"u3 system", func() ([]Role, error) { return SystemRoles(s, "u3") }, nil},
		{"admin system", func() ([]Role, error) { return SystemRoles(s, "u-admin") }, []string{"admin"}},
	}
	for _, tc := range roleCases {
		roles, err := tc.got()
		if err != nil || !slices.Equal(identRoleNames(roles), tc.want) {
			t.Errorf("%s: %v (%v), want %v", tc.name, identRoleNames(roles), err, tc.want)
		}
	}

	// Every filter combination agrees with a brute-force filter of all
	// assignments, whichever index the query used.
	all, err := ListAssignments(s, AssignmentFilter{})
	if err != nil {
		t.Fatal(err)
	}
	if len(all) != len(grants)+2 {
		t.Fatalf("%d assignments, want %d", len(all), len(grants)+2)
	}
	yes, no := true, false
	for _, user := range []string{"", "u1", "u2", "u3", "u-admin", "nope", "u1/system"} {
		for _, project := range []string{"", "p1", "p2", "p-admin", "nope"} {
			for _, role := range []string{"", "r-reader", "r-extra", "r-admin", "nope"} {
				for _, system := range []*bool{nil, &yes, &no} {
					f := AssignmentFilter{UserID: user, ProjectID: project, RoleID: role, System: system}
					var want []RoleAssignment
					for _, a := range all {
						if (user == "" || a.UserID == user) && (project == "" || a.ProjectID == project) &&
							(role == "" || a.RoleID == role) && (system == nil || a.System == *system) {
							want = append(want, a)
						}
					}
					got, err := ListAssignments(s, f)
					if err != nil || !slices.Equal(got, want) {
						t.Errorf("filter %+v (system %v): got %+v (%v), want %+v", f, system, got, err, want)
					}
				}
			}
		}
	}
	// Hand-checked ones, so the brute force is not checking itself only.
	if got, _ := ListAssignments(s, AssignmentFilter{RoleID: "r-reader", System: &yes}); len(got) != 2 || got[0].UserID != "u1" || got[1].UserID != "u2" {
		t.Fatalf("system readers: %+v", got)
	}
	if got, _ := ListAssignments(s, AssignmentFilter{ProjectID: "p1"}); len(got) != 4 {
		t.Fatalf("assignments on p1: %+v", got)
	}
	if got, _ := ListAssignments(s, AssignmentFilter{UserID: "u1"}); len(got) != 6 || !got[4].System || !got[5].System || got[0].ProjectID != "p1" || got[0].RoleID != "r-aaa" {
		t.Fatalf("assignments of u1 not in key order: %+v", got)
	}
}

func TestIdentityTokenKeyRotation(t *testing.T) {
	h := newIdentityFSM(t)
	s := h.state()
	h.ok(identTestBootstrap()) // k1 primary, created at 1000
	rotate := func(id string, now, retain int64) {
		t.Helper()
		h.ok(&RotateTokenKeys{NewKey: TokenKey{ID: id, Secret: identTestSecret(byte(now))}, Now: now, RetainSeconds: retain})
	}
	check := func(want ...string) {
		t.Helper()
		keys, err := ListTokenKeys(s)
		if err != nil || !slices.Equal(identKeyIDs(keys), want) {
			t.Fatalf("keys %v (%v), want %v", identKeyIDs(keys), err, want)
		}
		primaries := 0
		for _, k := range keys {
			if k.RetiredAt == 0 {
				primaries++
			}
		}
		if primaries != 1 || keys[0].RetiredAt != 0 {
			t.Fatalf("%d primary keys (%+v), want exactly one, listed first", primaries, keys)
		}
		if p, err := PrimaryTokenKey(s); err != nil || p.ID != want[0] {
			t.Fatalf("primary %+v %v, want %s", p, err, want[0])
		}
	}
	check("k1")
	rotate("k2", 2000, 500) // k1 retired at 2000
	check("k2", "k1")
	if k, _, _ := Get[TokenKey](s, TableTokenKey, "k1"); k.RetiredAt != 2000 {
		t.Fatalf("k1 retired at %d, want 2000", k.RetiredAt)
	}
	if k, _, _ := Get[TokenKey](s, TableTokenKey, "k2"); k.CreatedAt != 2000 {
		t.Fatalf("k2 created at %d, want 2000 (the rotation's now)", k.CreatedAt)
	}
	rotate("k3", 2400, 500) // k2 retired at 2400; k1: 2000+500 >= 2400, kept
	check("k3", "k2", "k1")
	rotate("k4", 2500, 500) // k1: 2000+500 == 2500, not past retention, kept
	check("k4", "k3", "k2", "k1")
	rotate("k5", 2501, 500) // k1: 2500 < 2501, pruned; k2 (2400) kept
	check("k5", "k4", "k3", "k2")
	rotate("k6", 10000, 0) // everything retired before 10000 goes
	check("k6", "k5")
	h.refuse("rotate to a pruned id", &RotateTokenKeys{NewKey: TokenKey{ID: "k5", Secret: identTestSecret(7)}, Now: 10001}, KindInvalid, "already exists")
	h.refuse("rotate retired key", &RotateTokenKeys{NewKey: TokenKey{ID: "k7", Secret: identTestSecret(7), RetiredAt: 3}, Now: 10001}, KindInvalid, "retired")
}

func TestIdentityTokenRevocations(t *testing.T) {
	h := newIdentityFSM(t)
	s := h.state()
	for _, v := range []TokenRevocation{
		{AuditID: "a", ExpiresAt: 100, RevokedAt: 10},
		{AuditID: "b", ExpiresAt: 200, RevokedAt: 11},
		{AuditID: "c", ExpiresAt: 300, RevokedAt: 12},
		{AuditID: "d", ExpiresAt: 150, RevokedAt: 13},
	} {
		h.ok(&RevokeToken{Revocation: v})
	}
	for id, want := range map[string]bool{"a": true, "d": true, "z": false, "": false, "a/b": false} {
		if got, err := TokenRevoked(s, id); err != nil || got != want {
			t.Errorf("TokenRevoked(%q) = %v %v, want %v", id, got, err, want)
		}
	}
	// Revoking again is idempotent; a later expiry extends the revocation.
	before := stateHash(t, h.f)
	h.ok(&RevokeToken{Revocation: TokenRevocation{AuditID: "a", ExpiresAt: 100, RevokedAt: 10}})
	h.ok(&RevokeToken{Revocation: TokenRevocation{AuditID: "a", ExpiresAt: 50, RevokedAt: 20}})
	if stateHash(t, h.f) != before {
		t.Fatal("a repeated revocation changed the state")
	}
	h.ok(&RevokeToken{Revocation: TokenRevocation{AuditID: "a", ExpiresAt: 250, RevokedAt: 30}})
	if v, _, _ := Get[TokenRevocation](s, TableTokenRevocation, "a"); v.ExpiresAt != 250 || v.RevokedAt != 10 {
		t.Fatalf("extended revocation %+v, want expiry 250 revoked at 10", v)
	}
	checkIdentityIndexes(t, s)

	purge := func(now int64) uint64 {
		t.Helper()
		var n uint64
		if err := h.ok(&PurgeTokenRevocations{Now: now}).Decode(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	if n := purge(150); n != 0 { // d expires at 150: not before 150
		t.Fatalf("purged %d at 150, want 0", n)
	}
	if n := purge(201); n != 2 { // d (150), b (200)
		t.Fatalf("purged %d at 201, want 2", n)
	}
	before = stateHash(t, h.f)
	if n := purge(201); n != 0 {
		t.Fatalf("second purge removed %d", n)
	}
	if stateHash(t, h.f) != before {
		t.Fatal("an empty purge changed the state")
	}
	for id, want := range map[string]bool{"a": true, "b": false, "c": true, "d": false} {
		if got, _ := TokenRevoked(s, id); got != want {
			t.Errorf("after purge TokenRevoked(%q) = %v, want %v", id, got, want)
		}
	}
	if ids := identIndexPKs(t, s, TableTokenRevocation, identIdxExpires); !slices.Equal(ids, []string{"a", "c"}) {
		t.Fatalf("expiry index after purge: %v, want [a c] (a expires first)", ids)
	}
	checkIdentityIndexes(t, s)
	if n := purge(1 << 40); n != 2 {
		t.Fatalf("final purge %d, want 2", n)
	}
	checkIdentityIndexes(t, s)
}

// TestIdentityBatchSeesEarlierCommands: two creates of one name in one Raft
// batch; the second sees the first and is refused.
func TestIdentityBatchSeesEarlierCommands(t *testing.T) {
	f := openTest(t)
	out := f.ApplyBatch([]*raft.Log{
		entry(t, 1, identTestBootstrap()),
		entry(t, 2, &CreateProject{Project: Project{ID: "p1", Name: "x", DomainID: "default"}}),
		entry(t, 3, &CreateProject{Project: Project{ID: "p2", Name: "x", DomainID: "default"}}),
		entry(t, 4, &GrantRole{Assignment: RoleAssignment{UserID: "u-admin", RoleID: "r-member", ProjectID: "p1"}}),
	})
	for i, want := range []Kind{0, 0, KindConflict, 0} {
		r := out[i].(*Response)
		if (r.Err == nil) != (want == 0) || (r.Err != nil && r.Err.Kind != want) {
			t.Fatalf("entry %d: %+v, want kind %v", i+1, r.Err, want)
		}
	}
	if roles, _ := RolesOnProject(f.State(), "u-admin", "p1"); !slices.Equal(identRoleNames(roles), []string{"member"}) {
		t.Fatalf("roles %v", identRoleNames(roles))
	}
	checkIdentityIndexes(t, f.State())
}

func TestIdentitySnapshotRoundTrip(t *testing.T) {
	h := identityFixture(t)
	h.ok(&GrantRole{Assignment: RoleAssignment{UserID: "u1", RoleID: "r-member", ProjectID: "p1"}})
	h.ok(&GrantRole{Assignment: RoleAssignment{UserID: "u2", RoleID: "r-reader", System: true}})
	h.ok(&RotateTokenKeys{NewKey: TokenKey{ID: "k2", Secret: identTestSecret(2)}, Now: 2000, RetainSeconds: 3600})
	h.ok(&RevokeToken{Revocation: TokenRevocation{AuditID: "aud", ExpiresAt: 5000, RevokedAt: 2000}})

	snap, err := h.f.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	var sink bufSink
	if err := snap.Persist(&sink); err != nil {
		t.Fatal(err)
	}
	snap.Release()
	dst := openTest(t)
	if err := dst.Restore(io.NopCloser(bytes.NewReader(sink.Bytes()))); err != nil {
		t.Fatal(err)
	}
	if stateHash(t, dst) != stateHash(t, h.f) {
		t.Fatal("state hash differs after restore")
	}
	s := dst.State()
	if roles, err := RolesOnProject(s, "u1", "p1"); err != nil || !slices.Equal(identRoleNames(roles), []string{"member"}) {
		t.Fatalf("restored roles %v %v", identRoleNames(roles), err)
	}
	if k, err := PrimaryTokenKey(s); err != nil || k.ID != "k2" {
		t.Fatalf("restored primary key %+v %v", k, err)
	}
	if ok, _ := TokenRevoked(s, "aud"); !ok {
		t.Fatal("restored revocation missing")
	}
	checkIdentityIndexes(t, s)

	// The same next command keeps both equal.
	next := &DeleteUser{ID: "u1"}
	if r := mustApply(t, dst, entry(t, h.idx+1, next)); r.Err != nil {
		t.Fatal(r.Err)
	}
	h.ok(next)
	if stateHash(t, dst) != stateHash(t, h.f) {
		t.Fatal("state hash differs after the same command on both")
	}
}

func TestIdentityCommandTypes(t *testing.T) {
	cmds := []Command{
		&IdentityBootstrap{}, &CreateProject{}, &UpdateProject{}, &DeleteProject{},
		&CreateUser{}, &UpdateUser{}, &DeleteUser{}, &CreateRole{}, &DeleteRole{},
		&GrantRole{}, &RevokeRole{}, &RotateTokenKeys{}, &RevokeToken{}, &PurgeTokenRevocations{},
	}
	seen := map[CommandType]bool{}
	for _, c := range cmds {
		typ := c.CommandType()
		if typ < 20 || typ > 39 || seen[typ] {
			t.Errorf("%T has type %d: want a distinct type in 20-39", c, typ)
		}
		seen[typ] = true
		a, ok := registry[typ]
		if !ok || a.version != c.CommandVersion() || "*fsm."+a.name != fmt.Sprintf("%T", c) {
			t.Errorf("%T: registered as %+v", c, a)
		}
	}
}

// identIndexPKs returns the primary keys an index lists under values.
func identIndexPKs(t *testing.T, r Reader, table, index string, values ...string) []string {
	t.Helper()
	var out []string
	if err := r.ScanIndex(table, index, values, func(pk string) bool { out = append(out, pk); return true }); err != nil {
		t.Fatal(err)
	}
	return out
}

// checkIdentityIndexes rebuilds every identity index from the records and
// compares it with the stored one: no orphan entries, none missing, none
// stale, and each entry found under its values.
func checkIdentityIndexes(t *testing.T, r Reader) {
	t.Helper()
	type idxEntry struct {
		values []string
		pk     string
	}
	want := map[[2]string][]idxEntry{}
	add := func(table, index, pk string, values ...string) {
		k := [2]string{table, index}
		want[k] = append(want[k], idxEntry{values, pk})
	}
	var refs [][3]string // assignment key, table, key it names
	for _, k := range [][2]string{
		{TableDomain, "name"}, {TableProject, "name"}, {TableUser, "name"}, {TableUser, "default_project"},
		{TableRole, "name"}, {TableRoleAssignment, "project"}, {TableRoleAssignment, "system"},
		{TableRoleAssignment, "role"}, {TableTokenRevocation, "expires"},
	} {
		want[k] = nil
	}
	scan := func(table string, fn func(rec Record) error) {
		t.Helper()
		var ferr error
		if err := r.Scan(table, "", func(rec Record) bool { ferr = fn(rec); return ferr == nil }); err != nil || ferr != nil {
			t.Fatalf("scan %s: %v %v", table, err, ferr)
		}
	}
	scan(TableDomain, func(rec Record) error {
		var d Domain
		err := rec.Decode(&d)
		add(TableDomain, "name", d.ID, d.Name)
		return err
	})
	scan(TableProject, func(rec Record) error {
		var p Project
		err := rec.Decode(&p)
		add(TableProject, "name", p.ID, p.DomainID, p.Name)
		return err
	})
	scan(TableUser, func(rec Record) error {
		var u User
		err := rec.Decode(&u)
		add(TableUser, "name", u.ID, u.DomainID, u.Name)
		if u.DefaultProjectID != "" {
			add(TableUser, "default_project", u.ID, u.DefaultProjectID)
		}
		return err
	})
	scan(TableRole, func(rec Record) error {
		var role Role
		err := rec.Decode(&role)
		add(TableRole, "name", role.ID, role.Name)
		return err
	})
	scan(TableRoleAssignment, func(rec Record) error {
		var a RoleAssignment
		err := rec.Decode(&a)
		if a.System {
			if rec.Key != a.UserID+"/system/"+a.RoleID {
				return fmt.Errorf("system assignment %+v at key %q", a, rec.Key)
			}
			add(TableRoleAssignment, "system", rec.Key, a.RoleID)
		} else {
			if rec.Key != a.UserID+"/project/"+a.ProjectID+"/"+a.RoleID {
				return fmt.Errorf("project assignment %+v at key %q", a, rec.Key)
			}
			add(TableRoleAssignment, "project", rec.Key, a.ProjectID)
		}
		add(TableRoleAssignment, "role", rec.Key, a.RoleID)
		refs = append(refs, [3]string{rec.Key, TableUser, a.UserID}, [3]string{rec.Key, TableRole, a.RoleID})
		if !a.System {
			refs = append(refs, [3]string{rec.Key, TableProject, a.ProjectID})
		}
		return err
	})
	// Everything an assignment names exists (read after the scan: no
	// nested State reads).
	for _, ref := range refs {
		if _, ok, err := r.Get(ref[1], ref[2]); err != nil || !ok {
			t.Errorf("assignment %q names missing %s %q (%v)", ref[0], ref[1], ref[2], err)
		}
	}
	scan(TableTokenRevocation, func(rec Record) error {
		var v TokenRevocation
		err := rec.Decode(&v)
		add(TableTokenRevocation, "expires", v.AuditID, fmt.Sprintf("%020d", v.ExpiresAt))
		return err
	})
	for k, entries := range want {
		var wantPKs []string
		for _, e := range entries {
			wantPKs = append(wantPKs, e.pk)
			if !slices.Contains(identIndexPKs(t, r, k[0], k[1], e.values...), e.pk) {
				t.Errorf("index %s/%s: no entry %q under %q", k[0], k[1], e.pk, e.values)
			}
		}
		got := identIndexPKs(t, r, k[0], k[1])
		slices.Sort(got)
		slices.Sort(wantPKs)
		if !slices.Equal(got, wantPKs) {
			t.Errorf("index %s/%s holds %q, want %q", k[0], k[1], got, wantPKs)
		}
	}
}
