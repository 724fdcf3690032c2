package api

import (
	"fmt"
	"strings"
	"testing"

	"github.com/keel-cloud/keel/internal/ids"
)

// Acceptance 5 (os-hypervisors): the documents of each microversion.
func TestHypervisorsViewByMicroversion(t *testing.T) {
	cc := newComputeCloud(t, 1)
	registerTestHost(t, cc.apiCluster, "cmp-a", "", 8, 16384, 100)
	registerTestHost(t, cc.apiCluster, "cmp-b", "az2", 16, 32768, 200)
	hv := cc.url(0) + "/compute/v2.1/os-hypervisors"
	const (
		index  = "hypervisor_hostname,id,state,status"
		common = "host_ip,hypervisor_hostname,hypervisor_type,hypervisor_version,id,service,state,status"
		res    = "cpu_info,current_workload,disk_available_least,free_disk_gb,free_ram_mb,local_gb,local_gb_used,memory_mb,memory_mb_used,running_vms,vcpus,vcpus_used"
	)
	join := func(parts ...string) string {
		var all []string
		for _, p := range parts {
			all = append(all, strings.Split(p, ",")...)
		}
		return sortedKeys(func() map[string]any {
			m := map[string]any{}
			for _, k := range all {
				m[k] = true
			}
			return m
		}())
	}
	for _, c := range []struct {
		version, detail string
		uuids, cpuObj   bool
	}{
		{"2.1", join(common, res), false, false},
		{"2.27", join(common, res), false, false},
		{"2.28", join(common, res), false, true},
		{"2.52", join(common, res), false, true},
		{"2.53", join(common, res), true, true},
		{"2.87", join(common, res), true, true},
		{"2.88", join(common, "uptime"), true, false},
	} {
		r := doV(t, "GET", hv, cc.admin, nil, c.version)
		list := r.json(t)["hypervisors"].([]any)
		if r.Status != 200 || len(list) != 2 {
			t.Fatalf("%s list: %d %s", c.version, r.Status, r.Body)
		}
		for _, e := range list {
			if got := sortedKeys(e.(map[string]any)); got != index {
				t.Errorf("%s list keys %s, want %s", c.version, got, index)
			}
		}
		r = doV(t, "GET", hv+"/detail", cc.admin, nil, c.version)
		list = r.json(t)["hypervisors"].([]any)
		if r.Status != 200 || len(list) != 2 {
			t.Fatalf("%s detail: %d %s", c.version, r.Status, r.Body)
		}
		a := list[0].(map[string]any)
		if got := sortedKeys(a); got != c.detail {
			t.Errorf("%s detail keys %s, want %s", c.version, got, c.detail)
		}
		if a["hypervisor_hostname"] != "cmp-a" || a["state"] != "up" || a["status"] != "enabled" || a["hypervisor_type"] != "QEMU" ||
			a["hypervisor_version"] != 8002000.0 || a["host_ip"] != "192.0.2.5" {
			t.Errorf("%s detail: %v", c.version, a)
		}
		svc := a["service"].(map[string]any)
		if sortedKeys(svc) != "disabled_reason,host,id" || svc["host"] != "cmp-a" || svc["disabled_reason"] != nil {
			t.Errorf("%s service: %v", c.version, svc)
		}
		id := fmt.Sprint(a["id"])
		if c.uuids {
			if !ids.IsUUID(id) || !ids.IsUUID(fmt.Sprint(svc["id"])) {
				t.Errorf("%s ids %v / %v, want uuids", c.version, a["id"], svc["id"])
			}
		} else if a["id"] != 1.0 || svc["id"] != 1.0 {
			t.Errorf("%s ids %v / %v, want 1 and 1", c.version, a["id"], svc["id"])
		}
		if _, ok := a["vcpus"]; ok && (a["vcpus"] != 8.0 || a["memory_mb"] != 16384.0 || a["local_gb"] != 100.0 || a["free_ram_mb"] != 16384.0 ||
			a["free_disk_gb"] != 100.0 || a["running_vms"] != 0.0 || a["current_workload"] != 0.0) {
			t.Errorf("%s resources: %v", c.version, a)
		}
		switch ci := a["cpu_info"].(type) {
		case map[string]any:
			if !c.cpuObj || ci["model"] != "Haswell" {
				t.Errorf("%s cpu_info %v", c.version, ci)
			}
		case string:
			if c.cpuObj || !strings.Contains(ci, `"Haswell"`) {
				t.Errorf("%s cpu_info %q", c.version, ci)
			}
		case nil:
			if c.version != "2.88" {
				t.Errorf("%s: no cpu_info", c.version)
			}
		}
		if c.version == "2.88" && a["uptime"] != nil {
			t.Errorf("2.88 uptime %v, want null (the agent does not report it)", a["uptime"])
		}
		// show is the detail entry.
		r = doV(t, "GET", hv+"/"+id, cc.admin, nil, c.version)
		if r.Status != 200 || sortedKeys(r.json(t)["hypervisor"].(map[string]any)) != c.detail {
			t.Errorf("%s show %s: %d %s", c.version, id, r.Status, r.Body)
		}
	}

	// Paging (2.33): limit, marker and the next link; ignored before.
	page := func(url, version string) (names []string, next string) {
		t.Helper()
		r := doV(t, "GET", url, cc.admin, nil, version)
		if r.Status != 200 {
			t.Fatalf("%s at %s: %d %s", url, version, r.Status, r.Body)
		}
		m := r.json(t)
		for _, e := range m["hypervisors"].([]any) {
			names = append(names, e.(map[string]any)["hypervisor_hostname"].(string))
		}
		if l, ok := m["hypervisors_links"].([]any); ok {
			next = l[0].(map[string]any)["href"].(string)
		}
		return names, next
	}
	if names, next := page(hv+"?limit=1", "2.32"); len(names) != 2 || next != "" {
		t.Fatalf("2.32 ignores limit: %v %q", names, next)
	}
	for _, v := range []string{"2.33", "2.53"} {
		var got []string
		url := hv + "/detail?limit=1"
		for i := 0; url != "" && i < 5; i++ {
			names, next := page(url, v)
			got = append(got, names...)
			if next != "" && !strings.Contains(next, "/os-hypervisors/detail?") {
				t.Fatalf("%s next link %s", v, next)
			}
			url = next
		}
		if strings.Join(got, ",") != "cmp-a,cmp-b" {
			t.Fatalf("%s pages: %v", v, got)
		}
	}
	// 2.53's hostname pattern (SQL LIKE: "_" is any character).
	for _, c := range []struct {
		pattern string
		want    string
	}{{"cmp", "cmp-a,cmp-b"}, {"b", "cmp-b"}, {"CMP_A", "cmp-a"}} {
		names, next := page(hv+"?hypervisor_hostname_pattern="+c.pattern, "2.53")
		if strings.Join(names, ",") != c.want || next != "" {
			t.Errorf("pattern %s: %v %q", c.pattern, names, next)
		}
	}
	// with_servers: "servers" only when there are some, an empty list from
	// 2.75.
	for _, c := range []struct {
		version string
		has     bool
	}{{"2.53", false}, {"2.74", false}, {"2.75", true}} {
		r := doV(t, "GET", hv+"?with_servers=true", cc.admin, nil, c.version)
		e := r.json(t)["hypervisors"].([]any)[0].(map[string]any)
		if s, ok := e["servers"]; ok != c.has || ok && len(s.([]any)) != 0 {
			t.Errorf("%s with_servers on an empty host: %v", c.version, e)
		}
	}
	// The deprecated routes (before 2.53).
	r := doV(t, "GET", hv+"/cmp/search", cc.admin, nil, "2.52")
	if l := r.json(t)["hypervisors"].([]any); r.Status != 200 || len(l) != 2 || sortedKeys(l[0].(map[string]any)) != index {
		t.Errorf("search: %d %s", r.Status, r.Body)
	}
	r = doV(t, "GET", hv+"/cmp-b/servers", cc.admin, nil, "2.1")
	if l := r.json(t)["hypervisors"].([]any); r.Status != 200 || len(l) != 1 || sortedKeys(l[0].(map[string]any)) != index {
		t.Errorf("servers of a host without servers: %d %s", r.Status, r.Body)
	}

	// Statistics count the enabled hosts; state and status follow the
	// service; uptime is 400 for a host that is down.
	stats := func() map[string]any {
		r := doV(t, "GET", hv+"/statistics", cc.admin, nil, "2.87")
		return r.json(t)["hypervisor_statistics"].(map[string]any)
	}
	if s := stats(); s["count"] != 2.0 || s["vcpus"] != 24.0 || s["memory_mb"] != 49152.0 || s["local_gb"] != 300.0 || s["free_disk_gb"] != 300.0 || len(s) != 12 {
		t.Fatalf("statistics: %v", s)
	}
	svc := cc.url(0) + "/compute/v2.1/os-services/"
	if r := doV(t, "PUT", svc+"disable", cc.admin, map[string]any{"host": "cmp-b", "binary": "nova-compute"}, "2.1"); r.Status != 200 {
		t.Fatalf("disable: %d %s", r.Status, r.Body)
	}
	if r := doV(t, "PUT", svc+"force-down", cc.admin, map[string]any{"host": "cmp-a", "binary": "nova-compute", "forced_down": true}, "2.11"); r.Status != 200 {
		t.Fatalf("force down: %d %s", r.Status, r.Body)
	}
	if s := stats(); s["count"] != 1.0 || s["vcpus"] != 8.0 {
		t.Fatalf("statistics with cmp-b disabled: %v", s)
	}
	r = doV(t, "GET", hv, cc.admin, nil, "2.1")
	l := r.json(t)["hypervisors"].([]any)
	if a, b := l[0].(map[string]any), l[1].(map[string]any); a["state"] != "down" || a["status"] != "enabled" || b["state"] != "up" || b["status"] != "disabled" {
		t.Fatalf("after force-down and disable: %s", r.Body)
	}
	if r := doV(t, "GET", hv+"/1/uptime", cc.admin, nil, "2.1"); r.Status != 400 || !strings.Contains(string(r.Body), "Compute service of cmp-a is unavailable at this time.") {
		t.Fatalf("uptime of a down host: %d %s", r.Status, r.Body)
	}
	// cmp-b is up but has no agent to ask (a registration without one).
	if r := doV(t, "GET", hv+"/2/uptime", cc.admin, nil, "2.1"); r.Status != 400 || !strings.Contains(string(r.Body), "Compute service of cmp-b is unavailable at this time.") {
		t.Fatalf("uptime of an up host without an agent: %d %s", r.Status, r.Body)
	}
}
