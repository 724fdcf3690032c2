package api

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/keel-cloud/keel/cluster"
	"github.com/keel-cloud/keel/fsm"
	"github.com/keel-cloud/keel/liveness"
	"github.com/keel-cloud/keel/scheduler"
)

const testAdminPassword = "secret-admin-password"

// apiCluster is n controllers serving the full API on loopback.
type apiCluster struct {
	*cluster.TestCluster
	servers map[string]*Server // by node name, the current incarnation
}

func newAPICluster(t testing.TB, n int) *apiCluster {
	t.Helper()
	return newAPIClusterWith(t, n, false)
}

// newAPIClusterWith starts n controllers; withScheduler registers the
// scheduler's leader loop too (without it, servers stay pending: tests of
// the API alone keep a state no loop changes under them).
func newAPIClusterWith(t testing.TB, n int, withScheduler bool, opts ...cluster.TestClusterOption) *apiCluster {
	t.Helper()
	ac := &apiCluster{TestCluster: cluster.NewEmptyTestCluster(t), servers: map[string]*Server{}}
	ac.Handler = func(tn *cluster.TestNode) http.Handler {
		s := New(Config{Node: tn.Node, PublicURL: "http://" + tn.Cfg.APIAddr, AdminPassword: testAdminPassword, DataDir: tn.Dir()})
		if withScheduler {
			scheduler.Register(tn.Node, scheduler.Config{}, nil)
			liveness.Register(tn.Node, liveness.Config{}, nil)
		}
		ac.servers[tn.Cfg.Name] = s
		return s
	}
	for i := 0; i < n; i++ {
		ac.AddNode(n, opts...)
	}
	ac.WaitLeader(10 * time.Second)
	cluster.WaitFor(t, 10*time.Second, "identity bootstrap on every node", func() bool {
		for _, tn := range ac.Running() {
			if ok, _ := fsm.IdentityBootstrapped(tn.State()); !ok {
				return false
			}
		}
		return true
	})
	return ac
}

// url of node i.
func (ac *apiCluster) url(i int) string { return "http://" + ac.Nodes[i].Cfg.APIAddr }

// resp is a decoded response.
type resp struct {
	Status int
	Header http.Header
	Body   []byte
}

func (r resp) json(t testing.TB) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(r.Body, &m); err != nil {
		t.Fatalf("response is not JSON (%d): %q", r.Status, r.Body)
	}
	return m
}

// do sends a request; body may be nil, a string (sent as is) or a value
// (sent as JSON).
func do(t testing.TB, method, url, tok string, body any, hdr ...string) resp {
	t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = bytes.NewBufferString(b)
	default:
		j, err := json.Marshal(b)
		if err != nil {
			t.Fatal(err)
		}
		rd = bytes.NewReader(j)
	}
	req, err := http.NewRequest(method, url, rd)
	if err != nil {
		t.Fatal(err)
	}
	if rd != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if tok != "" {
		req.Header.Set("X-Auth-Token", tok)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return resp{Status: res.StatusCode, Header: res.Header, Body: b}
}

// passwordAuth is a password authentication body with an optional scope.
func passwordAuth(user, password string, scope any) map[string]any {
	auth := map[string]any{"identity": map[string]any{
		"methods": []string{"password"},
		"password": map[string]any{"user": map[string]any{
			"name": user, "domain": map[string]any{"id": "default"}, "password": password,
		}},
	}}
	if scope != nil {
		auth["scope"] = scope
	}
	return map[string]any{"auth": auth}
}

func projectScope(name string) map[string]any {
	return map[string]any{"project": map[string]any{"name": name, "domain": map[string]any{"id": "default"}}}
}

// login issues a token on base and returns it.
func login(t testing.TB, base, user, password string, scope any) string {
	t.Helper()
	r := do(t, "POST", base+"/identity/v3/auth/tokens", "", passwordAuth(user, password, scope))
	if r.Status != http.StatusCreated {
		t.Fatalf("login %s: HTTP %d %s", user, r.Status, r.Body)
	}
	tok := r.Header.Get("X-Subject-Token")
	if tok == "" {
		t.Fatal("no X-Subject-Token in the token response")
	}
	return tok
}
