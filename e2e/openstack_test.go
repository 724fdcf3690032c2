package e2e

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// openstackCLI is Debian's python3-openstackclient (installed by `make deps`).
const openstackCLI = "/usr/bin/openstack"

// osc runs the real openstack CLI against node with the given credentials
// and returns its stdout; any failure fails the test with the CLI's stderr.
func osc(t *testing.T, nd *node, user, password, project string, args ...string) []byte {
	t.Helper()
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
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	start := time.Now()
	if err := cmd.Run(); err != nil {
		t.Fatalf("openstack %s (as %s on %s): %v\nstdout: %s\nstderr: %s", strings.Join(args, " "), user, nd.name, err, stdout.Bytes(), stderr.Bytes())
	}
	t.Logf("openstack %s (%s on %s): %s", strings.Join(args, " "), user, nd.name, time.Since(start).Round(time.Millisecond))
	return stdout.Bytes()
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
