package e2e

import (
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// kpPublicKey was made with ssh-keygen; kpPublicKeyFP is what
// `ssh-keygen -l -E md5` prints for it.
const (
	kpPublicKey   = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOirEdG57n1O+xBGd5Bc8BLlu5JppUgs8iW3FXv7RHtz test@example\n"
	kpPublicKeyFP = "ac:3c:5b:45:17:af:7f:96:3e:e1:c9:3f:85:9c:f7:56"
)

// kpOSCFails runs the openstack CLI as admin on nd and returns its
// combined output if it failed; it fails the test if the command succeeded.
func kpOSCFails(t *testing.T, nd *node, args ...string) string {
	t.Helper()
	cmd := exec.Command(openstackCLI, args...)
	cmd.Env = append(cleanEnv(), "OS_AUTH_URL="+nd.url()+"/identity/v3", "OS_IDENTITY_API_VERSION=3", "OS_USERNAME=admin",
		"OS_PASSWORD="+adminPassword, "OS_PROJECT_NAME=admin", "OS_USER_DOMAIN_NAME=Default", "OS_PROJECT_DOMAIN_NAME=Default",
		"OS_REGION_NAME=RegionOne", "OS_INTERFACE=public", "PATH=/usr/bin:/bin")
	out, err := cmd.CombinedOutput()
	if err == nil {
		t.Fatalf("openstack %s succeeded, want a failure:\n%s", strings.Join(args, " "), out)
	}
	return string(out)
}

// The real openstack CLI creates (server-generated and imported), lists,
// shows and deletes key pairs, and lists availability zones, each step on
// another controller of a 3-controller cluster.
func TestOpenstackCLIKeypairs(t *testing.T) {
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

	// No public key: the server generates the pair and the CLI prints the
	// private key.
	priv := string(admin(n1, "keypair", "create", "k1"))
	if !strings.Contains(priv, "-----BEGIN OPENSSH PRIVATE KEY-----") || !strings.Contains(priv, "-----END OPENSSH PRIVATE KEY-----") {
		t.Fatalf("keypair create k1 printed no private key:\n%s", priv)
	}
	keyFile := filepath.Join(t.TempDir(), "k2.pub")
	if err := os.WriteFile(keyFile, []byte(kpPublicKey), 0o600); err != nil {
		t.Fatal(err)
	}
	k2 := decodeJSON[map[string]any](t, admin(n2, "keypair", "create", "--public-key", keyFile, "k2", "-f", "json"))
	if k2["name"] != "k2" || k2["fingerprint"] != kpPublicKeyFP || k2["user_id"] == "" {
		t.Fatalf("keypair create --public-key: %v", k2)
	}

	list := decodeJSON[[]map[string]any](t, admin(n3, "keypair", "list", "-f", "json"))
	var names []string
	for _, k := range list {
		names = append(names, k["Name"].(string))
		if k["Fingerprint"] == "" || k["Type"] != "ssh" {
			t.Fatalf("keypair list row %v", k)
		}
	}
	if !slices.Equal(names, []string{"k1", "k2"}) {
		t.Fatalf("keypair list: %v", list)
	}

	show := decodeJSON[map[string]any](t, admin(n1, "keypair", "show", "k2", "-f", "json"))
	if show["name"] != "k2" || show["fingerprint"] != kpPublicKeyFP || show["type"] != "ssh" || show["user_id"] != k2["user_id"] {
		t.Fatalf("keypair show: %v", show)
	}
	// The CLI prints the stored public key as it is (then a newline).
	if pub := string(admin(n2, "keypair", "show", "--public-key", "k2")); !strings.HasPrefix(pub, kpPublicKey) || strings.TrimSpace(pub) != strings.TrimSpace(kpPublicKey) {
		t.Fatalf("keypair show --public-key: %q", pub)
	}

	admin(n3, "keypair", "delete", "k1", "k2")
	if out := kpOSCFails(t, n1, "keypair", "show", "k1"); !strings.Contains(out, "k1") {
		t.Fatalf("keypair show after delete: %s", out)
	}
	if left := decodeJSON[[]map[string]any](t, admin(n2, "keypair", "list", "-f", "json")); len(left) != 0 {
		t.Fatalf("keypair list after delete: %v", left)
	}

	// Zones are those of the compute hosts (Nova's rule: no host, no
	// zone): one simulated host in the default zone.
	c.startAgent("--name", "zone-host", "--driver", "fake")
	c.poll(30*time.Second, "the host registered", func() (bool, string) {
		hs, r := c.hosts(n1)
		_, ok := hs["zone-host"]
		return ok, r.String()
	})
	// An admin's list is the detailed one (as with Nova): the internal
	// zone of the control services too, here the three controllers.
	zones := decodeJSON[[]map[string]any](t, admin(n3, "availability", "zone", "list", "--compute", "-f", "json"))
	var zoneNames []string
	for _, z := range zones {
		zoneNames = append(zoneNames, z["Zone Name"].(string))
		if z["Zone Status"] != "available" {
			t.Fatalf("availability zone list: %v", zones)
		}
	}
	if !slices.Equal(zoneNames, []string{"internal", "nova"}) {
		t.Fatalf("availability zone list as admin: %v", zones)
	}
	long := decodeJSON[[]map[string]any](t, admin(n1, "availability", "zone", "list", "--compute", "--long", "-f", "json"))
	hosts := map[string]bool{}
	for _, z := range long {
		if z["Zone Name"] == "internal" {
			hosts[z["Host Name"].(string)] = true
			if !strings.HasPrefix(z["Service Status"].(string), "enabled :-) ") {
				t.Fatalf("availability zone list --long: %v", z)
			}
		}
	}
	if len(hosts) != 3 || !hosts["n1"] || !hosts["n2"] || !hosts["n3"] {
		t.Fatalf("availability zone list --long: internal zone hosts %v, want n1 n2 n3:\n%v", hosts, long)
	}
	// A member is refused the detail (403) and the CLI falls back to the
	// plain list: the default zone only.
	admin(n2, "user", "create", "--password", "kp-user-pw", "kp-user")
	admin(n3, "role", "add", "--project", "admin", "--user", "kp-user", "member")
	zones = decodeJSON[[]map[string]any](t, osc(t, n1, "kp-user", "kp-user-pw", "admin", "availability", "zone", "list", "--compute", "-f", "json"))
	if len(zones) != 1 || zones[0]["Zone Name"] != "nova" || zones[0]["Zone Status"] != "available" {
		t.Fatalf("availability zone list as a member: %v", zones)
	}
	// Key pairs are per user: the member has none of the admin's.
	kp := decodeJSON[map[string]any](t, osc(t, n2, "kp-user", "kp-user-pw", "admin", "keypair", "create", "--public-key", keyFile, "k2", "-f", "json"))
	if kp["fingerprint"] != kpPublicKeyFP || kp["user_id"] == k2["user_id"] {
		t.Fatalf("member's keypair create: %v", kp)
	}
}
