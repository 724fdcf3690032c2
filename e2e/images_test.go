package e2e

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"
)

// Acceptance (images): the real openstack CLI uploads an image through one
// controller and downloads it through another of a 3-controller cluster,
// byte for byte; lists, shows, sets a property and deletes it, each step on
// a different controller.
func TestOpenstackCLIImages(t *testing.T) {
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
		return osc(t, nd, "admin", adminPassword, "admin", args...)
	}

	dir := t.TempDir()
	in, out := filepath.Join(dir, "disk.raw"), filepath.Join(dir, "saved.raw")
	data := make([]byte, 5<<20+123)
	rand.Read(data)
	if err := os.WriteFile(in, data, 0o600); err != nil {
		t.Fatal(err)
	}

	created := decodeJSON[map[string]any](t, admin(n1, "image", "create", "--file", in, "--disk-format", "raw", "--container-format", "bare", "e2e-image", "-f", "json"))
	if created["name"] != "e2e-image" || created["id"] == "" {
		t.Fatalf("image create: %v", created)
	}
	id := created["id"].(string)

	admin(n2, "image", "save", "--file", out, "e2e-image")
	saved, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	if sha256.Sum256(saved) != sha256.Sum256(data) {
		t.Fatalf("image save on n2 wrote %d bytes that differ from the %d uploaded on n1", len(saved), len(data))
	}

	list := decodeJSON[[]map[string]any](t, admin(n3, "image", "list", "-f", "json"))
	found := false
	for _, img := range list {
		if img["ID"] == id {
			found = img["Name"] == "e2e-image" && img["Status"] == "active"
		}
	}
	if !found {
		t.Fatalf("image list on n3 lacks the active image %s: %v", id, list)
	}

	shown := decodeJSON[map[string]any](t, admin(n1, "image", "show", "e2e-image", "-f", "json"))
	if shown["id"] != id || shown["status"] != "active" || shown["size"] != float64(len(data)) || shown["disk_format"] != "raw" {
		t.Fatalf("image show: %v", shown)
	}

	admin(n2, "image", "set", "--property", "os_distro=keel", "--min-ram", "128", "e2e-image")
	shown = decodeJSON[map[string]any](t, admin(n3, "image", "show", id, "-f", "json"))
	props, _ := shown["properties"].(map[string]any)
	if props["os_distro"] != "keel" || shown["min_ram"] != float64(128) {
		t.Fatalf("image show after set: %v", shown)
	}

	admin(n3, "image", "delete", "e2e-image")
	list = decodeJSON[[]map[string]any](t, admin(n1, "image", "list", "-f", "json"))
	for _, img := range list {
		if img["ID"] == id {
			t.Fatalf("image list after delete still has %v", img)
		}
	}
	if !bytes.Equal(saved, data) {
		t.Fatal("unreachable: the hashes matched")
	}
}
