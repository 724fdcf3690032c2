package e2e

import (
	"os"
	"os/exec"
	"testing"
	"time"
)

// The real openstack CLI sets and reads quotas and limits against a
// 3-controller cluster, each step on another controller: quota set, quota
// show (the project's and the defaults), limits show --absolute (the own
// project's and, as an admin, another's).
func TestOpenstackCLIQuotas(t *testing.T) {
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
	admin := func(nd *node, args ...string) []byte {
		t.Helper()
		return osc(t, nd, "admin", adminPassword, "admin", append(args, "-f", "json")...)
	}

	proj := decodeJSON[map[string]any](t, admin(n1, "project", "create", "e2e-quota"))
	osc(t, n2, "admin", adminPassword, "admin", "quota", "set", "--instances", "5", "--cores", "7", "e2e-quota")

	show := decodeJSON[map[string]any](t, admin(n3, "quota", "show", "e2e-quota"))
	for k, want := range map[string]float64{
		"instances": 5, "cores": 7, "ram": 51200, "key-pairs": 100, "properties": 128,
		"server-groups": 10, "server-group-members": 10, "injected-files": 5,
	} {
		if show[k] != want {
			t.Errorf("quota show: %s = %v, want %v (all: %v)", k, show[k], want, show)
		}
	}
	if show["project"] != proj["id"] {
		t.Errorf("quota show: project %v, want %v", show["project"], proj["id"])
	}

	defaults := decodeJSON[map[string]any](t, admin(n1, "quota", "show", "--default"))
	if defaults["instances"] != 10.0 || defaults["cores"] != 20.0 || defaults["ram"] != 51200.0 {
		t.Errorf("quota show --default: %v", defaults)
	}

	limits := func(nd *node, args ...string) map[string]float64 {
		t.Helper()
		rows := decodeJSON[[]map[string]any](t, admin(nd, append([]string{"limits", "show", "--absolute"}, args...)...))
		out := map[string]float64{}
		for _, r := range rows {
			name, _ := r["Name"].(string)
			v, _ := r["Value"].(float64)
			out[name] = v
		}
		return out
	}
	other := limits(n2, "--project", "e2e-quota")
	own := limits(n3)
	for _, c := range []struct {
		what string
		got  map[string]float64
		want map[string]float64
	}{
		{"e2e-quota's", other, map[string]float64{"maxTotalInstances": 5, "maxTotalCores": 7, "totalInstancesUsed": 0}},
		{"admin's own", own, map[string]float64{"maxTotalInstances": 10, "maxTotalCores": 20, "maxTotalRAMSize": 51200,
			"maxTotalKeypairs": 100, "maxServerMeta": 128, "maxServerGroups": 10, "maxServerGroupMembers": 10,
			"maxPersonality": 5, "maxPersonalitySize": 10240, "totalCoresUsed": 0, "totalRAMUsed": 0, "totalServerGroupsUsed": 0}},
	} {
		for k, want := range c.want {
			if v, ok := c.got[k]; !ok || v != want {
				t.Errorf("limits show --absolute (%s): %s = %v, want %v (all: %v)", c.what, k, c.got[k], want, c.got)
			}
		}
	}
}
