package api

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/keel-cloud/keel/api/token"
	"github.com/keel-cloud/keel/cluster"
	"github.com/keel-cloud/keel/fsm"
)

// tokenWorks reports whether tok authenticates a call on base (a compute
// call, which also needs a scoped token).
func tokenStatus(t testing.TB, base, tok string) int {
	t.Helper()
	return do(t, "GET", base+"/identity/v3/auth/catalog", tok, nil).Status
}

// waitStatus polls until tok gets want on every node: a revocation or role
// change reaches each controller when it applies the entry, normally within
// milliseconds.
func waitStatus(t testing.TB, ac *apiCluster, tok string, want int) {
	t.Helper()
	for i := range ac.Nodes {
		cluster.WaitFor(t, 5*time.Second, "the token's status on every controller", func() bool {
			return tokenStatus(t, ac.url(i), tok) == want
		})
	}
}

// Acceptance 3: tokens work on every controller; tampered, expired, revoked
// and wrong-scope tokens get 401 on every controller; after a key rotation
// an older unexpired token still works.
func TestTokensAcrossControllers(t *testing.T) {
	ac := newAPICluster(t, 3)
	tok := login(t, ac.url(0), "admin", testAdminPassword, projectScope("admin"))
	for i := range ac.Nodes {
		if s := tokenStatus(t, ac.url(i), tok); s != 200 {
			t.Fatalf("token issued on node 0 gets %d on node %d", s, i)
		}
	}

	// Tampered: every way of changing one character fails everywhere.
	for _, bad := range []string{tok[:len(tok)-1], tok + "A", "x" + tok[1:], tok[:20] + flip(tok[20]) + tok[21:]} {
		for i := range ac.Nodes {
			if s := tokenStatus(t, ac.url(i), bad); s != 401 {
				t.Fatalf("tampered token gets %d on node %d", s, i)
			}
		}
	}

	// Expired: a correctly signed token whose time is over.
	st := ac.Nodes[0].State()
	key, err := fsm.PrimaryTokenKey(st)
	if err != nil {
		t.Fatal(err)
	}
	admin, err := fsm.UserByName(st, "default", "admin")
	if err != nil {
		t.Fatal(err)
	}
	proj, err := fsm.ProjectByName(st, "default", "admin")
	if err != nil {
		t.Fatal(err)
	}
	past := time.Now().Add(-2 * time.Hour)
	expired, err := token.Sign(token.Key{ID: key.ID, Secret: key.Secret}, token.Claims{
		UserID: admin.ID, ProjectID: proj.ID, Methods: []string{"password"}, AuditID: token.NewAuditID(),
		IssuedAt: past, ExpiresAt: past.Add(time.Hour),
	})
	if err != nil {
		t.Fatal(err)
	}
	for i := range ac.Nodes {
		if s := tokenStatus(t, ac.url(i), expired); s != 401 {
			t.Fatalf("expired token gets %d on node %d", s, i)
		}
	}

	// Wrong scope: unscoped tokens are refused by the compute API, and a
	// token whose project role was revoked is refused everywhere.
	unscoped := login(t, ac.url(1), "admin", testAdminPassword, nil)
	for i := range ac.Nodes {
		if s := do(t, "GET", ac.url(i)+"/compute/v2.1/", unscoped, nil).Status; s != 200 {
			t.Fatalf("version document is public, got %d", s)
		}
	}
	memberRole, _ := fsm.RoleByName(st, "member")
	other := &fsm.User{ID: "0123456789abcdef0123456789abcdef", Name: "alice", DomainID: "default", Enabled: true}
	other.PasswordHash, _ = HashPassword("alice-pw")
	apply(t, ac, &fsm.CreateUser{User: *other})
	apply(t, ac, &fsm.GrantRole{Assignment: fsm.RoleAssignment{UserID: other.ID, RoleID: memberRole.ID, ProjectID: proj.ID}})
	alice := login(t, ac.url(2), "alice", "alice-pw", projectScope("admin"))
	waitStatus(t, ac, alice, 200)
	apply(t, ac, &fsm.RevokeRole{Assignment: fsm.RoleAssignment{UserID: other.ID, RoleID: memberRole.ID, ProjectID: proj.ID}})
	waitStatus(t, ac, alice, 401)

	// Revoked: DELETE /v3/auth/tokens on one controller, 401 on all.
	victim := login(t, ac.url(0), "admin", testAdminPassword, projectScope("admin"))
	fromVictim := tokenFromToken(t, ac.url(1), victim) // its child is revoked with it
	if r := do(t, "DELETE", ac.url(2)+"/identity/v3/auth/tokens", tok, nil, "X-Subject-Token", victim); r.Status != 204 {
		t.Fatalf("revoke: %d %s", r.Status, r.Body)
	}
	waitStatus(t, ac, victim, 401)
	waitStatus(t, ac, fromVictim, 401)
	if s := tokenStatus(t, ac.url(0), tok); s != 200 {
		t.Fatalf("revoking one token broke another: %d", s)
	}

	// Rotation: the old token keeps working, new tokens use the new key
	// and work everywhere at once.
	req, _ := cluster.NewInternalRequest(context.Background(), ac.Key, "POST", ac.Nodes[1].Cfg.APIAddr, "/internal/v1/token/rotate-keys", nil)
	res, err := http.DefaultClient.Do(req)
	if err != nil || res.StatusCode != 200 {
		t.Fatalf("rotate keys: %v %v", err, res)
	}
	res.Body.Close()
	fresh := login(t, ac.url(1), "admin", testAdminPassword, projectScope("admin"))
	if k1, _ := token.KeyID(tok); k1 == mustKeyID(t, fresh) {
		t.Fatal("rotation did not change the signing key")
	}
	for i := range ac.Nodes {
		if s := tokenStatus(t, ac.url(i), tok); s != 200 {
			t.Fatalf("pre-rotation token gets %d on node %d", s, i)
		}
		if s := tokenStatus(t, ac.url(i), fresh); s != 200 {
			t.Fatalf("post-rotation token gets %d on node %d", s, i)
		}
	}
}

func mustKeyID(t testing.TB, tok string) string {
	id, err := token.KeyID(tok)
	if err != nil {
		t.Fatal(err)
	}
	return id
}

func flip(c byte) string {
	if c == 'A' {
		return "B"
	}
	return "A"
}

func apply(t testing.TB, ac *apiCluster, cmd fsm.Command) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := ac.Running()[0].Apply(ctx, cmd); err != nil {
		t.Fatalf("apply %T: %v", cmd, err)
	}
}

// tokenFromToken exchanges tok for a new token with the token method.
func tokenFromToken(t testing.TB, base, tok string) string {
	t.Helper()
	r := do(t, "POST", base+"/identity/v3/auth/tokens", "", map[string]any{"auth": map[string]any{
		"identity": map[string]any{"methods": []string{"token"}, "token": map[string]any{"id": tok}},
		"scope":    projectScope("admin"),
	}})
	if r.Status != 201 {
		t.Fatalf("token method: %d %s", r.Status, r.Body)
	}
	if m := r.json(t)["token"].(map[string]any)["methods"].([]any); len(m) != 2 {
		t.Fatalf("a token from a token lists methods %v, want password and token", m)
	}
	return r.Header.Get("X-Subject-Token")
}

// Password authentication failures all look the same.
func TestLoginFailures(t *testing.T) {
	ac := newAPICluster(t, 1)
	base := ac.url(0)
	for name, body := range map[string]any{
		"wrong password":  passwordAuth("admin", "nope", projectScope("admin")),
		"unknown user":    passwordAuth("mallory", "x", nil),
		"unknown project": passwordAuth("admin", testAdminPassword, projectScope("nosuch")),
		"domain scope":    passwordAuth("admin", testAdminPassword, map[string]any{"domain": map[string]any{"id": "default"}}),
	} {
		r := do(t, "POST", base+"/identity/v3/auth/tokens", "", body)
		if r.Status != 401 || r.Header.Get("X-Subject-Token") != "" {
			t.Errorf("%s: %d %s", name, r.Status, r.Body)
		}
	}
	for name, body := range map[string]any{
		"no methods":     map[string]any{"auth": map[string]any{"identity": map[string]any{}}},
		"unknown method": map[string]any{"auth": map[string]any{"identity": map[string]any{"methods": []string{"totp"}}}},
		"not json":       "{{",
	} {
		if r := do(t, "POST", base+"/identity/v3/auth/tokens", "", body); r.Status != 400 {
			t.Errorf("%s: %d %s", name, r.Status, r.Body)
		}
	}
	// System scope for the admin, with the system's roles.
	r := do(t, "POST", base+"/identity/v3/auth/tokens", "", passwordAuth("admin", testAdminPassword, map[string]any{"system": map[string]any{"all": true}}))
	if r.Status != 201 || r.json(t)["token"].(map[string]any)["system"] == nil {
		t.Fatalf("system scope: %d %s", r.Status, r.Body)
	}
}
