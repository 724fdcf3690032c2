package api

import (
	"fmt"
	"strconv"
	"strings"
	"testing"

	"github.com/keel-cloud/keel/agent/driver/fake"
)

// os-hosts (2.1–2.42): the list of enabled services with their topics and
// zones, status updates through the compute service, Nova's 501s.
func TestOSHostsListAndUpdate(t *testing.T) {
	cc := newComputeCloud(t, 1)
	registerTestHost(t, cc.apiCluster, "cmp-a", "", 8, 16384, 100)
	registerTestHost(t, cc.apiCluster, "cmp-b", "az2", 8, 16384, 100)
	registerTestController(t, cc.apiCluster, "ctl-1")
	url := cc.url(0) + "/compute/v2.1/os-hosts"
	list := func(query string) string {
		t.Helper()
		r := doV(t, "GET", url+query, cc.admin, nil, "2.42")
		if r.Status != 200 {
			t.Fatalf("os-hosts%s: %d %s", query, r.Status, r.Body)
		}
		var out []string
		for _, e := range r.json(t)["hosts"].([]any) {
			h := e.(map[string]any)
			if sortedKeys(h) != "host_name,service,zone" {
				t.Fatalf("entry %v", h)
			}
			out = append(out, h["host_name"].(string)+"/"+h["service"].(string)+"/"+h["zone"].(string))
		}
		return strings.Join(out, " ")
	}
	if got := list(""); got != "cmp-a/compute/nova cmp-b/compute/az2 ctl-1/scheduler/internal ctl-1/conductor/internal" {
		t.Fatalf("os-hosts: %s", got)
	}
	if got := list("?zone=internal"); got != "ctl-1/scheduler/internal ctl-1/conductor/internal" {
		t.Fatalf("os-hosts?zone=internal: %s", got)
	}
	for _, c := range []struct {
		status, want string
		disabled     string
	}{{"disable", "disabled", "disabled"}, {"Enable", "enabled", "enabled"}, {"DISABLE", "disabled", "disabled"}} {
		r := doV(t, "PUT", url+"/cmp-a", cc.admin, map[string]any{"status": c.status}, "2.1")
		if r.Status != 200 || r.json(t)["host"] != "cmp-a" || r.json(t)["status"] != c.want || len(r.json(t)) != 2 {
			t.Fatalf("status %s: %d %s", c.status, r.Status, r.Body)
		}
		if s := serviceByHost(t, opsServices(t, cc, "2.1", ""), "cmp-a", "nova-compute"); s["status"] != c.disabled {
			t.Fatalf("after os-hosts status %s the service is %v", c.status, s["status"])
		}
	}
	// A disabled service is not listed (Nova lists enabled services only).
	if got := list(""); strings.Contains(got, "cmp-a") {
		t.Fatalf("a disabled host is listed: %s", got)
	}
	// The host without servers shows its capacity and nothing used.
	r := doV(t, "GET", url+"/cmp-b", cc.admin, nil, "2.1")
	res := r.json(t)["host"].([]any)
	if r.Status != 200 || len(res) != 3 {
		t.Fatalf("show: %d %s", r.Status, r.Body)
	}
	for i, want := range []string{"(total) 8 16384 100", "(used_now) 0 0 0", "(used_max) 0 0 0"} {
		e := res[i].(map[string]any)["resource"].(map[string]any)
		if got := strings.Join([]string{e["project"].(string), ftoa(e["cpu"]), ftoa(e["memory_mb"]), ftoa(e["disk_gb"])}, " "); got != want || e["host"] != "cmp-b" {
			t.Errorf("resource %d: %v, want %s", i, e, want)
		}
	}
}

// ftoa renders a decoded JSON number.
func ftoa(v any) string {
	f, ok := v.(float64)
	if !ok {
		return fmt.Sprintf("%v (not a number)", v)
	}
	return strconv.FormatFloat(f, 'f', -1, 64)
}

// The servers of a host: os-hypervisors' servers (and with_servers), the
// resources, os-hosts' per-project usage.
func TestHostsWithServers(t *testing.T) {
	cc := newSchedulingCloud(t, 1)
	cc.startHosts(t, 1, fake.Config{})
	a := cc.boot(t, cc.admin, "vm-a", nil)
	b := cc.boot(t, cc.admin, "vm-b", nil)
	va, vb := cc.waitStatus(t, a, "ACTIVE"), cc.waitStatus(t, b, "ACTIVE")
	want := map[string]string{a: va["OS-EXT-SRV-ATTR:instance_name"].(string), b: vb["OS-EXT-SRV-ATTR:instance_name"].(string)}
	checkServers := func(what string, e map[string]any) {
		t.Helper()
		l, _ := e["servers"].([]any)
		if len(l) != 2 {
			t.Fatalf("%s: servers %v", what, e["servers"])
		}
		for _, s := range l {
			s := s.(map[string]any)
			if sortedKeys(s) != "name,uuid" || want[s["uuid"].(string)] != s["name"] {
				t.Fatalf("%s: server %v, want names %v", what, s, want)
			}
		}
	}
	hv := cc.url(0) + "/compute/v2.1/os-hypervisors"
	r := doV(t, "GET", hv+"/compute/servers", cc.admin, nil, "2.52")
	checkServers("servers route", r.json(t)["hypervisors"].([]any)[0].(map[string]any))
	r = doV(t, "GET", hv+"/detail?with_servers=1", cc.admin, nil, "2.53")
	d := r.json(t)["hypervisors"].([]any)[0].(map[string]any)
	checkServers("detail with_servers", d)
	if d["vcpus_used"] != 2.0 || d["memory_mb_used"] != 1024.0 || d["local_gb_used"] != 2.0 || d["running_vms"] != 2.0 ||
		d["free_ram_mb"] != d["memory_mb"].(float64)-1024 {
		t.Fatalf("usage of two m1.tiny: %v", d)
	}
	r = doV(t, "GET", hv+"/"+d["id"].(string)+"?with_servers=yes", cc.admin, nil, "2.53")
	checkServers("show with_servers", r.json(t)["hypervisor"].(map[string]any))
	if r := doV(t, "GET", hv+"/"+d["id"].(string), cc.admin, nil, "2.53"); strings.Contains(string(r.Body), `"servers"`) {
		t.Fatalf("show without with_servers lists servers: %s", r.Body)
	}

	r = doV(t, "GET", cc.url(0)+"/compute/v2.1/os-hosts/compute-1", cc.admin, nil, "2.1")
	res := r.json(t)["host"].([]any)
	if r.Status != 200 || len(res) != 4 {
		t.Fatalf("os-hosts show: %d %s", r.Status, r.Body)
	}
	proj := cc.projectID(t, "admin")
	for i, want := range []string{"(used_now) 2 1024 2", "(used_max) 2 1024 2", proj + " 2 1024 2"} {
		e := res[i+1].(map[string]any)["resource"].(map[string]any)
		if got := strings.Join([]string{e["project"].(string), ftoa(e["cpu"]), ftoa(e["memory_mb"]), ftoa(e["disk_gb"])}, " "); got != want {
			t.Errorf("resource %d: %s, want %s", i+1, got, want)
		}
	}
	// The host with servers cannot be deleted.
	svc := serviceByHost(t, opsServices(t, cc, "2.53", ""), "compute-1", "nova-compute")
	if r := doV(t, "DELETE", cc.url(0)+"/compute/v2.1/os-services/"+svc["id"].(string), cc.admin, nil, "2.53"); r.Status != 409 ||
		!strings.Contains(string(r.Body), "Unable to delete compute service that is hosting instances") {
		t.Fatalf("delete of a host with servers: %d %s", r.Status, r.Body)
	}
}
