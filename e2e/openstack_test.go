package e2e

import (
	"bytes"
	"encoding/json"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/keel-cloud/keel/api/token"
)

// openstackCLI is Debian's python3-openstackclient (installed by `make deps`).
const openstackCLI = "/usr/bin/openstack"

// osc runs the real openstack CLI against node with the given credentials
// and returns its stdout; any failure fails the test with the CLI's stderr.
func osc(t *testing.T, nd *node, user, password, project string, args ...string) []byte {
	t.Helper()
	cmd := oscCmd(nd, user, password, project, args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	start := time.Now()
	if err := cmd.Run(); err != nil {
		t.Fatalf("openstack %s (as %s on %s): %v\nstdout: %s\nstderr: %s", strings.Join(args, " "), user, nd.name, err, stdout.Bytes(), stderr.Bytes())
	}
	t.Logf("openstack %s (%s on %s): %s", strings.Join(args, " "), user, nd.name, time.Since(start).Round(time.Millisecond))
	return stdout.Bytes()
}

// oscCmd is the openstack CLI command for user on nd.
func oscCmd(nd *node, user, password, project string, args ...string) *exec.Cmd {
	cmd := exec.Command(openstackCLI, args...)
	cmd.Env = append(cleanEnv(),
		"OS_AUTH_URL="+nd.url()+"/identity/v3",
		"OS_IDENTITY_API_VERSION=3",
		"OS_AUTH_TYPE=password",
		"OS_USERNAME="+user,
		"OS_PASSWORD="+password,
		"OS_PROJECT_NAME="+project,
		"OS_USER_DOMAIN_NAME=Default",
		"OS_PROJECT_DOMAIN_NAME=Default",
		"OS_REGION_NAME=RegionOne",
		"OS_INTERFACE=public",
		"PATH=/usr/bin:/bin",
	)
	return cmd
}

func decodeJSON[T any](t *testing.T, b []byte) T {
	t.Helper()
	var v T
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatalf("not JSON: %v\n%s", err, b)
	}
	return v
}

// Acceptance (identity) 1: the real openstack CLI issues tokens, creates a
// project and a user, grants a role and lists the catalog against a
// 3-controller cluster, each step on a different controller.
func TestOpenstackCLIIdentity(t *testing.T) {
	if _, err := os.Stat(openstackCLI); err != nil {
		t.Fatalf("%s is missing: run `make deps` (installs Debian's python3-openstackclient)", openstackCLI)
	}
	c := startCluster(t, 3)
	c.waitHealthy(c.nodes[0], 30*time.Second)
	n1, n2, n3 := c.nodes[0], c.nodes[1], c.nodes[2]
	c.poll(30*time.Second, "identity bootstrapped", func() (bool, string) {
		cmd := exec.Command(openstackCLI, "token", "issue")
		cmd.Env = append(cleanEnv(), "OS_AUTH_URL="+n1.url()+"/identity/v3", "OS_IDENTITY_API_VERSION=3", "OS_USERNAME=admin",
			"OS_PASSWORD="+adminPassword, "OS_PROJECT_NAME=admin", "OS_USER_DOMAIN_NAME=Default", "OS_PROJECT_DOMAIN_NAME=Default")
		out, err := cmd.CombinedOutput()
		return err == nil, string(out)
	})

	tok := decodeJSON[map[string]string](t, osc(t, n1, "admin", adminPassword, "admin", "token", "issue", "-f", "json"))
	if tok["id"] == "" || tok["project_id"] == "" || tok["user_id"] == "" || tok["expires"] == "" {
		t.Fatalf("token issue: %v", tok)
	}

	proj := decodeJSON[map[string]any](t, osc(t, n2, "admin", adminPassword, "admin",
		"project", "create", "--description", "made by the e2e test", "e2e-project", "-f", "json"))
	if proj["name"] != "e2e-project" || proj["id"] == "" || proj["enabled"] != true {
		t.Fatalf("project create: %v", proj)
	}
	user := decodeJSON[map[string]any](t, osc(t, n3, "admin", adminPassword, "admin",
		"user", "create", "--password", "e2e-user-pw", "--project", "e2e-project", "e2e-user", "-f", "json"))
	if user["name"] != "e2e-user" || user["id"] == "" {
		t.Fatalf("user create: %v", user)
	}
	osc(t, n1, "admin", adminPassword, "admin", "role", "add", "--project", "e2e-project", "--user", "e2e-user", "member")

	assignments := decodeJSON[[]map[string]any](t, osc(t, n2, "admin", adminPassword, "admin",
		"role", "assignment", "list", "--user", "e2e-user", "--project", "e2e-project", "--names", "-f", "json"))
	if len(assignments) != 1 || !strings.HasPrefix(assignments[0]["Role"].(string), "member") {
		t.Fatalf("role assignment list: %v", assignments)
	}

	// The new user logs in, on another controller, scoped to the project.
	utok := decodeJSON[map[string]string](t, osc(t, n3, "e2e-user", "e2e-user-pw", "e2e-project", "token", "issue", "-f", "json"))
	if utok["project_id"] != proj["id"] || utok["user_id"] != user["id"] {
		t.Fatalf("user's token: %v, want project %v user %v", utok, proj["id"], user["id"])
	}

	catalog := decodeJSON[[]map[string]any](t, osc(t, n1, "admin", adminPassword, "admin", "catalog", "list", "-f", "json"))
	types := map[string]bool{}
	for _, s := range catalog {
		types[s["Type"].(string)] = true
		if eps, _ := s["Endpoints"].([]any); len(eps) != 3 {
			t.Errorf("service %v: want public, internal and admin endpoints, got %v", s["Name"], s["Endpoints"])
		}
	}
	for _, want := range []string{"compute", "identity", "image"} {
		if !types[want] {
			t.Fatalf("catalog lacks %s: %v", want, catalog)
		}
	}
}

// keelctl openrc prints a working admin environment, and token key rotation
// keeps earlier tokens valid while new ones use the new key.
func TestKeelctlOpenrcAndKeyRotation(t *testing.T) {
	if _, err := os.Stat(openstackCLI); err != nil {
		t.Fatalf("%s is missing: run `make deps`", openstackCLI)
	}
	c := startCluster(t, 1)
	nd := c.nodes[0]
	c.waitHealthy(nd, 30*time.Second)
	var rc result
	c.poll(30*time.Second, "keelctl openrc succeeds (identity bootstrapped)", func() (bool, string) {
		rc = c.keelctl(nd, "openrc", "--password", adminPassword)
		return rc.code == 0, rc.String()
	})
	env := cleanEnv()
	for _, line := range strings.Split(strings.TrimSpace(rc.stdout), "\n") {
		kv, ok := strings.CutPrefix(line, "export ")
		if !ok {
			t.Fatalf("openrc line %q", line)
		}
		k, v, _ := strings.Cut(kv, "=")
		env = append(env, k+"="+strings.Trim(v, "'"))
	}
	issue := func() map[string]string {
		cmd := exec.Command(openstackCLI, "token", "issue", "-f", "json")
		cmd.Env = env
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("openstack token issue with keelctl openrc's environment: %v\n%s", err, out)
		}
		return decodeJSON[map[string]string](t, out)
	}
	before := issue()["id"]

	if r := c.keelctl(nd, "openrc", "--password", "wrong"); r.code == 0 || !strings.Contains(r.stderr, "refused these credentials") {
		t.Fatalf("openrc with a wrong password: %s", r)
	}
	r := c.keelctl(nd, "token", "rotate-keys")
	if r.code != 0 || !strings.Contains(r.stdout, "new primary token signing key") {
		t.Fatalf("rotate-keys: %s", r)
	}
	after := issue()["id"]
	kb, err1 := token.KeyID(before)
	ka, err2 := token.KeyID(after)
	if err1 != nil || err2 != nil || kb == ka {
		t.Fatalf("tokens before and after the rotation use keys %q and %q (%v %v)", kb, ka, err1, err2)
	}
	for _, tok := range []string{before, after} {
		req, _ := http.NewRequest("GET", nd.url()+"/identity/v3/auth/tokens", nil)
		req.Header.Set("X-Auth-Token", after)
		req.Header.Set("X-Subject-Token", tok)
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if res.StatusCode != 200 {
			t.Fatalf("token from before/after the rotation: HTTP %d", res.StatusCode)
		}
	}
}
