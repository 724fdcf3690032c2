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

// startAgent runs keel-agent against the cluster with the given flags; it is
// killed when the test ends, and its log shown if the test failed.
func (c *testCluster) startAgent(args ...string) {
	c.t.Helper()
	logPath := filepath.Join(c.t.TempDir(), "agent.log")
	logf, err := os.Create(logPath)
	if err != nil {
		c.t.Fatal(err)
	}
	var urls []string
	for _, nd := range c.nodes {
		urls = append(urls, nd.url())
	}
	cmd := exec.Command(agentBin, append([]string{"--controllers", strings.Join(urls, ","), "--cluster-key", c.key,
		"--listen", net.JoinHostPort("127.0.0.1", strconv.Itoa(freePort(c.t, false)))}, args...)...)
	cmd.Env = cleanEnv()
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		c.t.Fatalf("start keel-agent: %v", err)
	}
	c.t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
		logf.Close()
		if c.t.Failed() {
			c.t.Logf("==== keel-agent %v: the end of its log ====\n%s", args, tail(logPath, 40))
		}
	})
}

// Acceptance 5 of the lifecycle, through the CLI: a build that fails on
// every host is retried on another host, then the server is in ERROR with
// Nova's fault, and the events of its create action show each attempt.
func TestBuildFailureThroughCLI(t *testing.T) {
	if _, err := os.Stat(openstackCLI); err != nil {
		t.Fatalf("%s is missing: run `make deps`", openstackCLI)
	}
	c := startCluster(t, 1)
	c.waitHealthy(c.nodes[0], 30*time.Second)
	c.startAgent("--name", "sim", "--driver", "fake", "--fake-hosts", "4", "--fake-fail-spawn", "^doomed")
	nd := c.nodes[0]
	admin := func(args ...string) []byte {
		return osc(t, nd, "admin", adminPassword, "admin", append([]string{"--os-compute-api-version", "2.74"}, args...)...)
	}
	c.poll(30*time.Second, "4 hosts registered", func() (bool, string) {
		out, _ := oscCmd(nd, "admin", adminPassword, "admin", "availability", "zone", "list", "--compute", "--long", "-f", "json").CombinedOutput()
		return strings.Count(string(out), "nova-compute") == 4, string(out)
	})
	img := filepath.Join(t.TempDir(), "disk.img")
	if err := os.WriteFile(img, []byte("bytes"), 0o600); err != nil {
		t.Fatal(err)
	}
	admin("image", "create", "--file", img, "--disk-format", "raw", "--container-format", "bare", "--public", "img")
	id := decodeJSON[map[string]any](t, admin("server", "create", "--image", "img", "--flavor", "m1.tiny", "--nic", "none", "doomed-1", "-f", "json"))["id"].(string)
	var shown map[string]any
	c.poll(30*time.Second, "server in ERROR", func() (bool, string) {
		shown = decodeJSON[map[string]any](t, admin("server", "show", id, "-f", "json"))
		return shown["status"] == "ERROR", fmt.Sprint(shown["status"])
	})
	fault := fmt.Sprint(shown["fault"])
	if !strings.Contains(fault, "Exceeded maximum number of retries. Exceeded max scheduling attempts 3 for instance "+id) ||
		!strings.Contains(fault, "injected failure") {
		t.Fatalf("fault shown by the CLI: %s", fault)
	}
	events := decodeJSON[[]map[string]any](t, admin("server", "event", "list", id, "-f", "json"))
	if len(events) != 1 || events[0]["Action"] != "create" {
		t.Fatalf("server event list: %v", events)
	}
	ev := decodeJSON[map[string]any](t, admin("server", "event", "show", id, events[0]["Request ID"].(string), "-f", "json"))
	hosts := map[string]bool{}
	for _, e := range ev["events"].([]any) {
		e := e.(map[string]any)
		if e["event"] == "compute__do_build_and_run_instance" && e["result"] == "Error" {
			hosts[fmt.Sprint(e["host"])] = true
		}
	}
	if len(hosts) != 3 {
		t.Fatalf("failed build events on %d hosts, want 3 different ones: %v", len(hosts), ev["events"])
	}
	// A server the hosts can build still becomes ACTIVE.
	created := decodeJSON[map[string]any](t, admin("server", "create", "--image", "img", "--flavor", "m1.tiny", "--nic", "none", "--wait", "fine-1", "-f", "json"))
	if created["status"] != "ACTIVE" {
		t.Fatalf("a good server: %v", created)
	}
}
