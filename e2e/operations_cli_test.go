package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// Acceptance 1 of "Operating the cloud": an administrator's day with the
// real openstack CLI — services, hypervisors, aggregates and zones, an
// evacuation, migrations and usage — on one controller and two hosts.
// novaCLI is python-novaclient's CLI (Debian's python3-novaclient, which
// python3-openstackclient depends on).
const novaCLI = "/usr/bin/nova"

func TestOperatingTheCloudWithTheCLI(t *testing.T) {
	if _, err := os.Stat(openstackCLI); err != nil {
		t.Fatalf("%s is missing: run `make deps`", openstackCLI)
	}
	c := startCluster(t, 1)
	nd := c.nodes[0]
	c.waitHealthy(nd, 30*time.Second)
	hostA := c.startGossipAgent("host-a", "--fence-after", "5s")
	c.startGossipAgent("host-b", "--fence-after", "5s")
	c.waitHostState(nd, "host-a", "up", 30*time.Second)
	c.waitHostState(nd, "host-b", "up", 30*time.Second)
	admin := func(version string, args ...string) []byte {
		return osc(t, nd, "admin", adminPassword, "admin", append([]string{"--os-compute-api-version", version}, args...)...)
	}
	type row = map[string]any

	// Services: both hosts' nova-compute, the controller's scheduler and
	// conductor, all up; uuid ids at 2.53+.
	services := decodeJSON[[]row](t, admin("2.92", "compute", "service", "list", "-f", "json"))
	var got []string
	for _, s := range services {
		got = append(got, fmt.Sprintf("%s %s %s %s", s["Binary"], s["Host"], s["Status"], s["State"]))
		if id, _ := s["ID"].(string); len(id) != 36 {
			t.Errorf("service id %v at 2.95 is not a uuid", s["ID"])
		}
	}
	slices.Sort(got)
	want := []string{"nova-compute host-a enabled up", "nova-compute host-b enabled up", "nova-conductor n1 enabled up", "nova-scheduler n1 enabled up"}
	if !slices.Equal(got, want) {
		t.Fatalf("compute service list: %v, want %v", got, want)
	}

	// Disable with a reason: shown by --long, and no server lands there.
	admin("2.92", "compute", "service", "set", "--disable", "--disable-reason", "new disks", "host-b", "nova-compute")
	long := decodeJSON[[]row](t, admin("2.92", "compute", "service", "list", "--long", "--service", "nova-compute", "-f", "json"))
	for _, s := range long {
		if s["Host"] == "host-b" && (s["Status"] != "disabled" || s["Disabled Reason"] != "new disks") {
			t.Fatalf("disabled service: %v", s)
		}
	}

	// Hypervisors.
	hvs := decodeJSON[[]row](t, admin("2.92", "hypervisor", "list", "-f", "json"))
	if len(hvs) != 2 {
		t.Fatalf("hypervisor list: %v", hvs)
	}
	hv := decodeJSON[row](t, admin("2.92", "hypervisor", "show", "host-a", "-f", "json"))
	if hv["hypervisor_hostname"] != "host-a" || hv["state"] != "up" || hv["status"] != "enabled" || hv["hypervisor_type"] != "fake" {
		t.Fatalf("hypervisor show: %v", hv)
	}
	stats := decodeJSON[row](t, admin("2.87", "hypervisor", "stats", "show", "-f", "json"))
	// Nova's statistics count enabled hosts only: host-b is disabled.
	if stats["count"] != 1.0 || stats["vcpus"] != 32.0 {
		t.Fatalf("hypervisor stats show: %v", stats)
	}

	// An aggregate with a zone: the host moves to it, and scheduling
	// follows.
	admin("2.92", "aggregate", "create", "--zone", "az1", "agg1")
	admin("2.92", "aggregate", "add", "host", "agg1", "host-a")
	admin("2.92", "aggregate", "set", "--property", "ssd=true", "agg1")
	agg := decodeJSON[row](t, admin("2.92", "aggregate", "show", "agg1", "-f", "json"))
	if agg["availability_zone"] != "az1" || !strings.Contains(fmt.Sprint(agg["hosts"]), "host-a") || !strings.Contains(fmt.Sprint(agg["properties"]), "ssd") {
		t.Fatalf("aggregate show: %v", agg)
	}
	zones := string(admin("2.92", "availability", "zone", "list", "--compute", "--long", "-f", "json"))
	for _, w := range []string{`"Zone Name": "az1"`, `"Host Name": "host-a"`, `"Service Name": "nova-compute"`, `"Zone Name": "internal"`} {
		if !strings.Contains(zones, w) {
			t.Fatalf("availability zone list --long lacks %s:\n%s", w, zones)
		}
	}
	img := filepath.Join(t.TempDir(), "tiny.img")
	if err := os.WriteFile(img, []byte(strings.Repeat("k", 4096)), 0o644); err != nil {
		t.Fatal(err)
	}
	admin("2.92", "image", "create", "--file", img, "--disk-format", "raw", "--container-format", "bare", "--public", "tiny")
	create := func(name string, extra ...string) row {
		args := append([]string{"server", "create", "--image", "tiny", "--flavor", "m1.tiny", "--nic", "none", "--wait", "-f", "json"}, extra...)
		return decodeJSON[row](t, admin("2.92", append(args, name)...))
	}
	if s := create("in-az1", "--availability-zone", "az1"); s["OS-EXT-SRV-ATTR:host"] != "host-a" || s["OS-EXT-AZ:availability_zone"] != "az1" {
		t.Fatalf("server in az1: host %v zone %v", s["OS-EXT-SRV-ATTR:host"], s["OS-EXT-AZ:availability_zone"])
	}
	// host-b is disabled: a server without a zone still goes to host-a.
	if s := create("to-evacuate"); s["OS-EXT-SRV-ATTR:host"] != "host-a" {
		t.Fatalf("server created while host-b is disabled went to %v", s["OS-EXT-SRV-ATTR:host"])
	}
	admin("2.92", "server", "delete", "--wait", "in-az1")
	admin("2.92", "compute", "service", "set", "--enable", "host-b", "nova-compute")

	// host-a dies; the operator forces it down and evacuates with the CLI.
	hostA.kill()
	c.waitHostState(nd, "host-a", "down", 2*detectionBound)
	admin("2.92", "compute", "service", "set", "--down", "host-a", "nova-compute")
	// python-openstackclient 6.0's `server evacuate` fails after the call
	// with any cloud ('TupleWithMeta' object has no attribute 'id': it
	// takes novaclient's answer for a server), so the evacuation goes
	// through novaclient's own CLI, as the issue allows.
	nova := oscCmd(nd, "admin", adminPassword, "admin", "--os-compute-api-version", "2.29", "evacuate", "to-evacuate", "host-b")
	nova.Path, nova.Args[0] = novaCLI, novaCLI
	if out, err := nova.CombinedOutput(); err != nil {
		t.Fatalf("nova evacuate: %v\n%s", err, out)
	}
	var s row
	c.poll(30*time.Second, "the evacuated server ACTIVE on host-b", func() (bool, string) {
		s = decodeJSON[row](t, admin("2.92", "server", "show", "to-evacuate", "-f", "json"))
		return s["status"] == "ACTIVE" && s["OS-EXT-SRV-ATTR:host"] == "host-b", fmt.Sprintf("%v on %v", s["status"], s["OS-EXT-SRV-ATTR:host"])
	})
	migs := decodeJSON[[]row](t, admin("2.92", "server", "migration", "list", "--type", "evacuation", "-f", "json"))
	if len(migs) != 1 || migs[0]["Source Compute"] != "host-a" || migs[0]["Dest Compute"] != "host-b" || migs[0]["Status"] != "done" {
		t.Fatalf("server migration list: %v", migs)
	}
	// host-a is back: it destroys its copy and the migration completes.
	hostA.start()
	c.poll(30*time.Second, "the evacuation completed", func() (bool, string) {
		m := decodeJSON[[]row](t, admin("2.92", "server", "migration", "list", "--type", "evacuation", "-f", "json"))
		return len(m) == 1 && m[0]["Status"] == "completed", fmt.Sprint(m)
	})
	if run := hostA.running(); len(run) != 0 {
		t.Fatalf("host-a still runs %v", run)
	}
	admin("2.92", "compute", "service", "set", "--up", "host-a", "nova-compute")

	// Usage: the admin project's servers, deleted ones included.
	usage := decodeJSON[[]row](t, admin("2.92", "usage", "list", "--start", time.Now().Add(-time.Hour).UTC().Format("2006-01-02"), "-f", "json"))
	if len(usage) != 1 {
		t.Fatalf("usage list: %v", usage)
	}
	if servers, _ := usage[0]["Servers"].([]any); len(servers) != 2 {
		t.Fatalf("usage list: %v", usage)
	}
}
