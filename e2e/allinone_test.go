package e2e

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// libvirtUsable reports whether libvirtd answers on qemu:///system. CI sets
// KEEL_REQUIRE_LIBVIRT=1 (after scripts/install-libvirt.sh) so a missing
// libvirtd fails instead of skipping.
func libvirtUsable(t *testing.T) {
	t.Helper()
	out, err := exec.Command("virsh", "-c", "qemu:///system", "version").CombinedOutput()
	if err == nil {
		return
	}
	msg := fmt.Sprintf("libvirtd does not answer on qemu:///system (%v: %s); run scripts/install-libvirt.sh", err, strings.TrimSpace(string(out)))
	if os.Getenv("KEEL_REQUIRE_LIBVIRT") != "" {
		t.Fatal(msg)
	}
	t.Skip(msg)
}

func virsh(t *testing.T, args ...string) (string, error) {
	t.Helper()
	out, err := exec.Command("virsh", append([]string{"-c", "qemu:///system"}, args...)...).CombinedOutput()
	return strings.TrimSpace(string(out)), err
}

// Acceptance 1 of the lifecycle: an all-in-one controller with the real
// libvirt driver (qemu:///system, TCG) runs a server through every action
// with the real openstack CLI, and libvirt agrees at every step.
func TestAllInOneLibvirtLifecycle(t *testing.T) {
	if _, err := os.Stat(openstackCLI); err != nil {
		t.Fatalf("%s is missing: run `make deps`", openstackCLI)
	}
	skipShort(t)
	libvirtUsable(t)
	// QEMU runs as another user: the state directory must be searchable.
	state, err := os.MkdirTemp("", "keel-e2e-agent-")
	if err != nil {
		t.Fatal(err)
	}
	os.Chmod(state, 0o755)
	pool := "keel-e2e-" + strconv.FormatInt(time.Now().UnixNano(), 36)
	t.Cleanup(func() {
		virsh(t, "pool-destroy", pool)
		virsh(t, "pool-undefine", pool)
		os.RemoveAll(state)
	})
	agentAddr := net.JoinHostPort("127.0.0.1", strconv.Itoa(freePort(t, false)))
	c := startClusterWith(t, 1, func(int) []string {
		return []string{"--agent", "--agent-driver", "libvirt", "--agent-listen", agentAddr, "--agent-state-dir", state,
			"--libvirt-pool", pool, "--shutdown-timeout", "2s",
			// TCG: nested KVM on CI machines boots slower than emulation.
			"--libvirt-virt-type", "qemu"}
	})
	c.waitHealthy(c.nodes[0], 30*time.Second)
	nd := c.nodes[0]
	admin := func(args ...string) []byte {
		return osc(t, nd, "admin", adminPassword, "admin", append([]string{"--os-compute-api-version", "2.74"}, args...)...)
	}
	c.poll(30*time.Second, "the host registered", func() (bool, string) {
		out, err := oscCmd(nd, "admin", adminPassword, "admin", "availability", "zone", "list", "--compute", "--long", "-f", "json").CombinedOutput()
		return err == nil && strings.Contains(string(out), "nova-compute"), string(out)
	})

	img := filepath.Join(t.TempDir(), "keel-test.img")
	if r := keelctl(t, "test-image", img); r.code != 0 {
		t.Fatalf("keelctl test-image: %s", r)
	}
	admin("image", "create", "--file", img, "--disk-format", "raw", "--container-format", "bare", "--public", "keel-test")
	created := decodeJSON[map[string]any](t, admin("server", "create", "--image", "keel-test", "--flavor", "m1.tiny", "--nic", "none", "--wait", "vm1", "-f", "json"))
	id, _ := created["id"].(string)
	if created["status"] != "ACTIVE" || id == "" {
		t.Fatalf("server create --wait: %v", created)
	}
	dom := "keel-" + id
	if st, err := virsh(t, "domstate", dom); err != nil || st != "running" {
		t.Fatalf("libvirt domain %s while ACTIVE: %q %v", dom, st, err)
	}
	c.poll(30*time.Second, "the boot line on the console", func() (bool, string) {
		out := string(admin("console", "log", "show", "vm1"))
		return strings.Contains(out, "keel test image: booted"), out
	})

	show := func() map[string]any {
		return decodeJSON[map[string]any](t, admin("server", "show", "vm1", "-f", "json"))
	}
	steps := []struct {
		args   []string
		status string
		power  float64
		domain string
		boots  bool // the guest boots again: one more line on its console
	}{
		{[]string{"server", "stop", "vm1"}, "SHUTOFF", 4, "shut off", false},
		{[]string{"server", "start", "vm1"}, "ACTIVE", 1, "running", true},
		{[]string{"server", "reboot", "--soft", "vm1"}, "ACTIVE", 1, "running", true},
		{[]string{"server", "reboot", "--hard", "vm1"}, "ACTIVE", 1, "running", true},
		{[]string{"server", "pause", "vm1"}, "PAUSED", 3, "paused", false},
		{[]string{"server", "unpause", "vm1"}, "ACTIVE", 1, "running", false},
		{[]string{"server", "suspend", "vm1"}, "SUSPENDED", 4, "shut off", false},
		{[]string{"server", "resume", "vm1"}, "ACTIVE", 1, "running", false},
	}
	boots := 1
	for _, st := range steps {
		admin(st.args...)
		var s map[string]any
		c.poll(60*time.Second, strings.Join(st.args, " "), func() (bool, string) {
			s = show()
			return s["status"] == st.status && s["OS-EXT-STS:task_state"] == nil, fmt.Sprint(s["status"], " ", s["OS-EXT-STS:task_state"])
		})
		if s["OS-EXT-STS:power_state"] != st.power {
			t.Fatalf("after %v: power state %v, want %v", st.args, s["OS-EXT-STS:power_state"], st.power)
		}
		if got, err := virsh(t, "domstate", dom); err != nil || got != st.domain {
			t.Fatalf("after %v: libvirt says %q (%v), want %q", st.args, got, err, st.domain)
		}
		if st.boots {
			// The guest printed its line again (software emulation takes
			// a moment to get through the BIOS).
			boots++
			c.poll(30*time.Second, fmt.Sprintf("boot %d on the console", boots), func() (bool, string) {
				out := string(admin("console", "log", "show", "vm1"))
				return strings.Count(out, "keel test image: booted") == boots, out
			})
		}
	}
	events := decodeJSON[[]map[string]any](t, admin("server", "event", "list", "vm1", "-f", "json"))
	if len(events) != 9 {
		t.Fatalf("server event list: %d actions, want 9: %v", len(events), events)
	}
	disks, _ := filepath.Glob(filepath.Join(state, "*", id+"*"))
	if len(disks) == 0 {
		t.Fatalf("no disk of %s under %s", id, state)
	}
	admin("server", "delete", "--wait", "vm1")
	if out, err := virsh(t, "dominfo", dom); err == nil {
		t.Fatalf("domain %s still defined after delete: %s", dom, out)
	}
	for _, d := range disks {
		if _, err := os.Stat(d); !os.IsNotExist(err) {
			t.Fatalf("disk %s left after delete (%v)", d, err)
		}
	}
}
