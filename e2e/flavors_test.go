package e2e

import (
	"fmt"
	"os"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"
)

// The real openstack CLI manages flavors on a 3-controller cluster, each
// step on another controller: create, list, show, set and unset a property,
// a private flavor given to a project, delete. The default m1.* flavors are
// there from the start.
func TestOpenstackCLIFlavors(t *testing.T) {
	if _, err := os.Stat(openstackCLI); err != nil {
		t.Fatalf("%s is missing: run `make deps` (installs Debian's python3-openstackclient)", openstackCLI)
	}
	c := startCluster(t, 3)
	c.waitHealthy(c.nodes[0], 30*time.Second)
	n1, n2, n3 := c.nodes[0], c.nodes[1], c.nodes[2]
	admin := func(nd *node, args ...string) []byte {
		t.Helper()
		return osc(t, nd, "admin", adminPassword, "admin", args...)
	}
	names := func(nd *node, args ...string) []string {
		t.Helper()
		var out []string
		for _, f := range decodeJSON[[]map[string]any](t, admin(nd, append([]string{"flavor", "list", "-f", "json"}, args...)...)) {
			out = append(out, fmt.Sprint(f["Name"]))
		}
		return out
	}
	// Identity is bootstrapped and the default flavors created.
	c.poll(30*time.Second, "the default flavors are listed", func() (bool, string) {
		cmd := exec.Command(openstackCLI, "flavor", "list", "-f", "value", "-c", "Name")
		cmd.Env = append(cleanEnv(), "OS_AUTH_URL="+n1.url()+"/identity/v3", "OS_IDENTITY_API_VERSION=3", "OS_USERNAME=admin",
			"OS_PASSWORD="+adminPassword, "OS_PROJECT_NAME=admin", "OS_USER_DOMAIN_NAME=Default", "OS_PROJECT_DOMAIN_NAME=Default")
		out, err := cmd.CombinedOutput()
		return err == nil && slices.Contains(strings.Fields(string(out)), "m1.xlarge"), string(out)
	})

	f1 := decodeJSON[map[string]any](t, admin(n1, "flavor", "create", "--ram", "256", "--disk", "1", "--vcpus", "1", "f1", "-f", "json"))
	if f1["name"] != "f1" || f1["ram"] != float64(256) || f1["disk"] != float64(1) || f1["vcpus"] != float64(1) || f1["id"] == "" ||
		f1["os-flavor-access:is_public"] != true {
		t.Fatalf("flavor create: %v", f1)
	}
	if got := names(n2); !slices.Contains(got, "f1") || !slices.Contains(got, "m1.tiny") || len(got) != 6 {
		t.Fatalf("flavor list: %v", got)
	}
	show := decodeJSON[map[string]any](t, admin(n3, "flavor", "show", "f1", "-f", "json"))
	if show["id"] != f1["id"] || show["ram"] != float64(256) {
		t.Fatalf("flavor show: %v", show)
	}

	admin(n1, "flavor", "set", "--property", "hw:cpu_policy=dedicated", "f1")
	show = decodeJSON[map[string]any](t, admin(n2, "flavor", "show", "f1", "-f", "json"))
	if props, _ := show["properties"].(map[string]any); props["hw:cpu_policy"] != "dedicated" {
		t.Fatalf("after flavor set --property: %v", show)
	}
	admin(n3, "flavor", "unset", "--property", "hw:cpu_policy", "f1")
	show = decodeJSON[map[string]any](t, admin(n1, "flavor", "show", "f1", "-f", "json"))
	if props, _ := show["properties"].(map[string]any); len(props) != 0 {
		t.Fatalf("after flavor unset --property: %v", show)
	}

	// A private flavor, given to a project.
	proj := decodeJSON[map[string]any](t, admin(n2, "project", "create", "flavor-project", "-f", "json"))
	p1 := decodeJSON[map[string]any](t, admin(n3, "flavor", "create", "--private", "--ram", "128", "--vcpus", "1", "p1", "-f", "json"))
	if p1["os-flavor-access:is_public"] != false {
		t.Fatalf("flavor create --private: %v", p1)
	}
	if got := names(n1); slices.Contains(got, "p1") {
		t.Fatalf("the default listing shows a private flavor: %v", got)
	}
	if got := names(n1, "--private"); !slices.Equal(got, []string{"p1"}) {
		t.Fatalf("flavor list --private: %v", got)
	}
	admin(n1, "flavor", "set", "--project", "flavor-project", "p1")
	show = decodeJSON[map[string]any](t, admin(n2, "flavor", "show", "p1", "-f", "json"))
	if ids, _ := show["access_project_ids"].([]any); len(ids) != 1 || ids[0] != proj["id"] {
		t.Fatalf("access_project_ids after flavor set --project: %v (project %v)", show, proj["id"])
	}

	admin(n3, "flavor", "delete", "f1")
	if got := names(n1); slices.Contains(got, "f1") || len(got) != 5 {
		t.Fatalf("flavor list after delete: %v", got)
	}
}
