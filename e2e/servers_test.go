package e2e

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"
)

// Compute acceptance 1 (servers): the real CLI creates, lists, shows,
// renames and deletes a server across a 3-controller cluster (n1 runs an
// embedded agent with the fake driver, so the server becomes ACTIVE).
func TestOpenstackCLIServers(t *testing.T) {
	if _, err := os.Stat(openstackCLI); err != nil {
		t.Fatalf("%s is missing: run `make deps`", openstackCLI)
	}
	agentAddr := net.JoinHostPort("127.0.0.1", strconv.Itoa(freePort(t, false)))
	c := startClusterWith(t, 3, func(i int) []string {
		if i > 0 {
			return nil
		}
		return []string{"--agent", "--agent-driver", "fake", "--agent-listen", agentAddr}
	})
	c.waitHealthy(c.nodes[0], 30*time.Second)
	n1, n2, n3 := c.nodes[0], c.nodes[1], c.nodes[2]
	admin := func(nd *node, args ...string) []byte {
		return osc(t, nd, "admin", adminPassword, "admin", args...)
	}
	c.poll(30*time.Second, "default flavors", func() (bool, string) {
		cmd := oscCmd(n1, "admin", adminPassword, "admin", "flavor", "show", "m1.tiny")
		out, err := cmd.CombinedOutput()
		return err == nil, string(out)
	})
	img := filepath.Join(t.TempDir(), "disk.img")
	if err := os.WriteFile(img, []byte("a tiny disk image for the e2e test"), 0o600); err != nil {
		t.Fatal(err)
	}
	admin(n1, "image", "create", "--file", img, "--disk-format", "raw", "--container-format", "bare", "--public", "e2e-image")

	created := decodeJSON[map[string]any](t, admin(n2, "--os-compute-api-version", "2.74",
		"server", "create", "--flavor", "m1.tiny", "--image", "e2e-image", "--nic", "none",
		"--property", "role=test", "e2e-vm", "-f", "json"))
	id, _ := created["id"].(string)
	if id == "" || created["status"] != "BUILD" && created["status"] != "ACTIVE" {
		t.Fatalf("server create: %v", created)
	}
	c.poll(30*time.Second, "server ACTIVE", func() (bool, string) {
		s := decodeJSON[map[string]any](t, admin(n3, "server", "show", id, "-f", "json"))
		return s["status"] == "ACTIVE", fmt.Sprint(s["status"])
	})
	list := decodeJSON[[]map[string]any](t, admin(n3, "server", "list", "-f", "json"))
	if len(list) != 1 || list[0]["ID"] != id || list[0]["Name"] != "e2e-vm" {
		t.Fatalf("server list: %v", list)
	}
	admin(n1, "--os-compute-api-version", "2.74", "server", "set", "--name", "e2e-vm-renamed", "--description", "renamed by the test", id)
	shown := decodeJSON[map[string]any](t, admin(n2, "--os-compute-api-version", "2.74", "server", "show", id, "-f", "json"))
	if shown["name"] != "e2e-vm-renamed" || shown["description"] != "renamed by the test" || shown["flavor"] == nil {
		t.Fatalf("server show after set: %v", shown)
	}
	admin(n3, "server", "delete", "--wait", id)
	if list := decodeJSON[[]map[string]any](t, admin(n1, "server", "list", "-f", "json")); len(list) != 0 {
		t.Fatalf("server list after delete: %v", list)
	}
}
