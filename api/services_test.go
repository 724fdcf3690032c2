package api

import (
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/keel-cloud/keel/fsm"
	"github.com/keel-cloud/keel/internal/hostapi"
	"github.com/keel-cloud/keel/internal/ids"
)

// registerTestHost registers a compute host directly in the FSM (no agent:
// nothing changes it behind the test's back).
func registerTestHost(t testing.TB, ac *apiCluster, name, zone string, vcpus, memMB, diskGB int) {
	t.Helper()
	apply(t, ac, &fsm.RegisterHost{Registration: hostapi.Registration{
		Host: name, Zone: zone, HostIP: "192.0.2." + fmt.Sprint(len(name)), HypervisorType: "QEMU", HypervisorVersion: 8002000,
		CPUInfo: `{"arch": "x86_64", "model": "Haswell", "topology": {"sockets": 1, "cores": 4, "threads": 1}}`,
		VCPUs:   vcpus, MemoryMB: memMB, DiskGB: diskGB,
	}, ServiceID: ids.UUID(), HypervisorID: ids.UUID(), Now: time.Now().UnixMicro()})
}

// registerTestController creates a controller's scheduler and conductor
// services, as the leader's liveness loop does.
func registerTestController(t testing.TB, ac *apiCluster, name string) {
	t.Helper()
	apply(t, ac, &fsm.SetLiveness{Controllers: []fsm.ControllerLiveness{{Name: name, Up: true, SchedulerID: ids.UUID(), ConductorID: ids.UUID()}},
		Now: time.Now().UnixMicro()})
}

// opsServices lists os-services at version v.
func opsServices(t testing.TB, cc *computeCloud, v, query string) []map[string]any {
	t.Helper()
	r := doV(t, "GET", cc.url(0)+"/compute/v2.1/os-services"+query, cc.admin, nil, v)
	if r.Status != 200 {
		t.Fatalf("os-services%s at %s: %d %s", query, v, r.Status, r.Body)
	}
	var out []map[string]any
	for _, s := range r.json(t)["services"].([]any) {
		out = append(out, s.(map[string]any))
	}
	return out
}

func serviceByHost(t testing.TB, list []map[string]any, host, binary string) map[string]any {
	t.Helper()
	for _, s := range list {
		if s["host"] == host && s["binary"] == binary {
			return s
		}
	}
	t.Fatalf("no %s service on %s in %v", binary, host, list)
	return nil
}

func sortedKeys(m map[string]any) string { return strings.Join(slices.Sorted(maps.Keys(m)), ",") }

// Acceptance 5 (os-services): the view of each microversion.
func TestServicesViewByMicroversion(t *testing.T) {
	cc := newComputeCloud(t, 1)
	registerTestHost(t, cc.apiCluster, "cmp-a", "", 8, 16384, 100)
	registerTestHost(t, cc.apiCluster, "cmp-b", "az2", 8, 16384, 100)
	registerTestController(t, cc.apiCluster, "ctl-1")
	base := "binary,disabled_reason,host,id,state,status,updated_at,zone"
	v211 := "binary,disabled_reason,forced_down,host,id,state,status,updated_at,zone"
	for _, c := range []struct {
		version, keys string
		uuidIDs       bool
	}{
		{"2.1", base, false},
		{"2.10", base, false},
		{"2.11", v211, false},
		{"2.52", v211, false},
		{"2.53", v211, true},
		{"2.75", v211, true},
		{"2.100", v211, true},
	} {
		list := opsServices(t, cc, c.version, "")
		if len(list) != 4 {
			t.Fatalf("%s: %d services, want 4: %v", c.version, len(list), list)
		}
		for i, want := range [][2]string{{"cmp-a", "nova-compute"}, {"cmp-b", "nova-compute"}, {"ctl-1", "nova-scheduler"}, {"ctl-1", "nova-conductor"}} {
			s := list[i]
			if s["host"] != want[0] || s["binary"] != want[1] {
				t.Fatalf("%s: service %d is %v %v, want %v (Nova's order: by id)", c.version, i, s["host"], s["binary"], want)
			}
			if got := sortedKeys(s); got != c.keys {
				t.Errorf("%s: keys %s, want %s", c.version, got, c.keys)
			}
			_, isString := s["id"].(string)
			if isString != c.uuidIDs || c.uuidIDs && !ids.IsUUID(s["id"].(string)) {
				t.Errorf("%s: id %v (%T)", c.version, s["id"], s["id"])
			}
			if !c.uuidIDs && s["id"] != float64(i+1) {
				t.Errorf("%s: integer id %v, want %d", c.version, s["id"], i+1)
			}
			if s["state"] != "up" || s["status"] != "enabled" || s["disabled_reason"] != nil {
				t.Errorf("%s: %v", c.version, s)
			}
			if u, _ := s["updated_at"].(string); len(u) != len("2006-01-02T15:04:05.000000") || strings.HasSuffix(u, "Z") {
				t.Errorf("%s: updated_at %q, want Nova's format without a zone", c.version, s["updated_at"])
			}
		}
		if z := []any{list[0]["zone"], list[1]["zone"], list[2]["zone"], list[3]["zone"]}; !slices.Equal(z, []any{"nova", "az2", "internal", "internal"}) {
			t.Errorf("%s: zones %v", c.version, z)
		}
	}
	// Filters, and 2.75's refusal of unknown parameters.
	for _, c := range []struct {
		version, query string
		status, n      int
	}{
		{"2.1", "?host=cmp-a", 200, 1},
		{"2.1", "?binary=nova-scheduler", 200, 1},
		{"2.1", "?host=ctl-1", 200, 2},
		{"2.1", "?host=cmp-a&binary=nova-scheduler", 200, 0},
		{"2.1", "?host=", 200, 4},
		{"2.74", "?color=red", 200, 4},
		{"2.75", "?color=red", 400, 0},
		{"2.75", "?host=cmp-b&binary=nova-compute", 200, 1},
	} {
		r := doV(t, "GET", cc.url(0)+"/compute/v2.1/os-services"+c.query, cc.admin, nil, c.version)
		if r.Status != c.status {
			t.Errorf("%s %s: %d %s", c.version, c.query, r.Status, r.Body)
			continue
		}
		if c.status == 200 && len(r.json(t)["services"].([]any)) != c.n {
			t.Errorf("%s %s: %s, want %d services", c.version, c.query, r.Body, c.n)
		}
	}
}

// The legacy actions (2.1–2.52) answer with Nova's short documents and
// change what the list shows; from 2.53 PUT takes the uuid.
func TestServicesUpdateAndDelete(t *testing.T) {
	cc := newComputeCloud(t, 1)
	registerTestHost(t, cc.apiCluster, "cmp-a", "", 8, 16384, 100)
	registerTestHost(t, cc.apiCluster, "cmp-b", "", 8, 16384, 100)
	registerTestController(t, cc.apiCluster, "ctl-1")
	url := cc.url(0) + "/compute/v2.1/os-services/"
	hb := func(extra ...any) map[string]any {
		m := map[string]any{"host": "cmp-a", "binary": "nova-compute"}
		for i := 0; i+1 < len(extra); i += 2 {
			m[extra[i].(string)] = extra[i+1]
		}
		return m
	}
	legacy := []struct {
		version, action string
		body            map[string]any
		status          int
		reply           string // the "service" document, keys=values sorted
		state, st       string // then: the service's state and status
		reason          any
		forced          any
	}{
		{"2.1", "disable", hb(), 200, "binary=nova-compute,host=cmp-a,status=disabled", "up", "disabled", nil, nil},
		{"2.1", "enable", hb(), 200, "binary=nova-compute,host=cmp-a,status=enabled", "up", "enabled", nil, nil},
		{"2.1", "disable-log-reason", hb("disabled_reason", "disk swap"), 200, "binary=nova-compute,disabled_reason=disk swap,host=cmp-a,status=disabled", "up", "disabled", "disk swap", nil},
		{"2.1", "enable", hb(), 200, "binary=nova-compute,host=cmp-a,status=enabled", "up", "enabled", nil, nil},
		{"2.1", "disable", hb("disabled_reason", "ignored by disable"), 200, "binary=nova-compute,host=cmp-a,status=disabled", "up", "disabled", nil, nil},
		{"2.1", "enable", hb(), 200, "binary=nova-compute,host=cmp-a,status=enabled", "up", "enabled", nil, nil},
		{"2.11", "force-down", hb("forced_down", true), 200, "binary=nova-compute,forced_down=true,host=cmp-a", "down", "enabled", nil, true},
		{"2.52", "force-down", hb("forced_down", "no"), 200, "binary=nova-compute,forced_down=false,host=cmp-a", "up", "enabled", nil, false},
	}
	for _, c := range legacy {
		r := doV(t, "PUT", url+c.action, cc.admin, c.body, c.version)
		if r.Status != c.status {
			t.Fatalf("%s %s %v: %d %s", c.version, c.action, c.body, r.Status, r.Body)
		}
		svc := r.json(t)["service"].(map[string]any)
		var kv []string
		for _, k := range slices.Sorted(maps.Keys(svc)) {
			kv = append(kv, fmt.Sprintf("%s=%v", k, svc[k]))
		}
		if got := strings.Join(kv, ","); got != c.reply {
			t.Errorf("%s %s: reply %s, want %s", c.version, c.action, got, c.reply)
		}
		s := serviceByHost(t, opsServices(t, cc, "2.11", ""), "cmp-a", "nova-compute")
		if s["state"] != c.state || s["status"] != c.st || s["disabled_reason"] != c.reason || c.forced != nil && s["forced_down"] != c.forced {
			t.Errorf("%s %s: then %v", c.version, c.action, s)
		}
	}

	// 2.53: the uuid in the path, the full view in the reply.
	id := serviceByHost(t, opsServices(t, cc, "2.53", ""), "cmp-a", "nova-compute")["id"].(string)
	v253 := []struct {
		body           map[string]any
		state, status  string
		reason, forced any
	}{
		{map[string]any{"status": "disabled", "disabled_reason": "rack 7"}, "up", "disabled", "rack 7", false},
		{map[string]any{"forced_down": true}, "down", "disabled", "rack 7", true},
		{map[string]any{"status": "disabled"}, "down", "disabled", nil, true},
		{map[string]any{"status": "enabled", "forced_down": "False"}, "up", "enabled", nil, false},
	}
	for _, c := range v253 {
		r := doV(t, "PUT", url+id, cc.admin, c.body, "2.53")
		if r.Status != 200 {
			t.Fatalf("2.53 %v: %d %s", c.body, r.Status, r.Body)
		}
		s := r.json(t)["service"].(map[string]any)
		if sortedKeys(s) != "binary,disabled_reason,forced_down,host,id,state,status,updated_at,zone" || s["id"] != id ||
			s["state"] != c.state || s["status"] != c.status || s["disabled_reason"] != c.reason || s["forced_down"] != c.forced {
			t.Errorf("2.53 %v: %v", c.body, s)
		}
	}

	// Delete: an integer id before 2.53, a uuid from 2.53.
	list := opsServices(t, cc, "2.1", "")
	seqB := serviceByHost(t, list, "cmp-b", "nova-compute")["id"].(float64)
	if r := doV(t, "DELETE", url+fmt.Sprint(seqB), cc.admin, nil, "2.1"); r.Status != 204 {
		t.Fatalf("delete cmp-b: %d %s", r.Status, r.Body)
	}
	if r := doV(t, "DELETE", url+fmt.Sprint(seqB), cc.admin, nil, "2.1"); r.Status != 404 {
		t.Fatalf("delete cmp-b again: %d %s", r.Status, r.Body)
	}
	cond := serviceByHost(t, opsServices(t, cc, "2.53", ""), "ctl-1", "nova-conductor")["id"].(string)
	if r := doV(t, "DELETE", url+cond, cc.admin, nil, "2.53"); r.Status != 204 {
		t.Fatalf("delete the conductor: %d %s", r.Status, r.Body)
	}
	if list := opsServices(t, cc, "2.1", ""); len(list) != 2 {
		t.Fatalf("after two deletes: %v", list)
	}
	if r := doV(t, "GET", cc.url(0)+"/compute/v2.1/os-hypervisors", cc.admin, nil, "2.1"); strings.Contains(string(r.Body), "cmp-b") {
		t.Fatalf("the deleted service's hypervisor is still listed: %s", r.Body)
	}
}

// adminBadInput is one refused request of the administrator APIs.
type adminBadInput struct {
	name, method, path string
	body               any
	version            string
	status             int
	msg                string // a part of the fault's message
}

// Bad input to the administrator APIs: Nova's status and fault, and no
// change to the stored state.
func TestAdminAPIBadInput(t *testing.T) {
	cc := newComputeCloud(t, 1)
	registerTestHost(t, cc.apiCluster, "cmp-a", "", 8, 16384, 100)
	registerTestController(t, cc.apiCluster, "ctl-1")
	c := cc.url(0) + "/compute/v2.1"
	svcs := opsServices(t, cc, "2.53", "")
	cmpID := serviceByHost(t, svcs, "cmp-a", "nova-compute")["id"].(string)
	schedID := serviceByHost(t, svcs, "ctl-1", "nova-scheduler")["id"].(string)
	proj := cc.projectID(t, "admin")
	hb := map[string]any{"host": "cmp-a", "binary": "nova-compute"}
	with := func(m map[string]any, kv ...any) map[string]any {
		out := maps.Clone(m)
		for i := 0; i+1 < len(kv); i += 2 {
			if kv[i+1] == nil {
				delete(out, kv[i].(string))
			} else {
				out[kv[i].(string)] = kv[i+1]
			}
		}
		return out
	}
	missing := "6f1c9a7e-0000-4000-8000-000000000000"
	cases := []adminBadInput{
		// os-services, legacy
		{"legacy unknown action", "PUT", c + "/os-services/reboot", hb, "2.1", 404, "Unknown action"},
		{"legacy force-down before 2.11", "PUT", c + "/os-services/force-down", with(hb, "forced_down", true), "2.10", 400, "Additional properties"},
		{"legacy force-down action before 2.11", "PUT", c + "/os-services/force-down", hb, "2.10", 404, "Unknown action"},
		{"legacy no host", "PUT", c + "/os-services/disable", with(hb, "host", nil), "2.1", 400, "'host' is a required property"},
		{"legacy no binary", "PUT", c + "/os-services/enable", with(hb, "binary", nil), "2.1", 400, "'binary' is a required property"},
		{"legacy bad host", "PUT", c + "/os-services/enable", with(hb, "host", "a b"), "2.1", 400, "does not match"},
		{"legacy host not string", "PUT", c + "/os-services/enable", with(hb, "host", 5), "2.1", 400, "is not of type 'string'"},
		{"legacy extra", "PUT", c + "/os-services/enable", with(hb, "zone", "nova"), "2.1", 400, "Additional properties are not allowed ('zone' was unexpected)"},
		{"legacy reason too long", "PUT", c + "/os-services/disable-log-reason", with(hb, "disabled_reason", strings.Repeat("r", 256)), "2.1", 400, "is too long"},
		{"legacy reason empty", "PUT", c + "/os-services/disable-log-reason", with(hb, "disabled_reason", ""), "2.1", 400, "is too short"},
		{"legacy no reason", "PUT", c + "/os-services/disable-log-reason", hb, "2.1", 400, "Missing disabled reason field"},
		{"legacy no forced_down", "PUT", c + "/os-services/force-down", hb, "2.11", 400, "Missing forced_down field"},
		{"legacy bad forced_down", "PUT", c + "/os-services/force-down", with(hb, "forced_down", "maybe"), "2.11", 400, "is not one of"},
		{"legacy scheduler", "PUT", c + "/os-services/disable", with(hb, "host", "ctl-1", "binary", "nova-scheduler"), "2.1", 400, "Updating a nova-scheduler service is not supported"},
		{"legacy unknown host", "PUT", c + "/os-services/disable", with(hb, "host", "nowhere"), "2.1", 404, "nowhere"},
		{"legacy body not object", "PUT", c + "/os-services/disable", []any{1}, "2.1", 400, "is not of type 'object'"},
		{"legacy malformed", "PUT", c + "/os-services/disable", `{"host": `, "2.1", 400, "Malformed"},
		// os-services, 2.53
		{"2.53 action path", "PUT", c + "/os-services/disable", map[string]any{"status": "disabled"}, "2.53", 400, "Invalid uuid disable"},
		{"2.53 legacy body", "PUT", c + "/os-services/" + cmpID, hb, "2.53", 400, "Additional properties"},
		{"2.53 bad status", "PUT", c + "/os-services/" + cmpID, map[string]any{"status": "off"}, "2.53", 400, "is not one of ['enabled', 'disabled']"},
		{"2.53 reason with enabled", "PUT", c + "/os-services/" + cmpID, map[string]any{"status": "enabled", "disabled_reason": "x"}, "2.53", 400, "Specifying 'disabled_reason' with status 'enabled' is invalid."},
		{"2.53 reason alone", "PUT", c + "/os-services/" + cmpID, map[string]any{"disabled_reason": "x"}, "2.53", 400, "No updates were requested"},
		{"2.53 empty body", "PUT", c + "/os-services/" + cmpID, map[string]any{}, "2.53", 400, "No updates were requested"},
		{"2.53 forced_down on scheduler", "PUT", c + "/os-services/" + schedID, map[string]any{"forced_down": true}, "2.53", 400, "Only nova-compute services can be updated"},
		{"2.53 unknown service", "PUT", c + "/os-services/" + missing, map[string]any{"status": "disabled"}, "2.53", 404, "could not be found"},
		{"2.53 bad forced_down", "PUT", c + "/os-services/" + cmpID, map[string]any{"forced_down": 2}, "2.53", 400, "forced_down"},
		{"delete non-int before 2.53", "DELETE", c + "/os-services/" + cmpID, nil, "2.52", 400, "id must be an integer"},
		{"delete non-uuid from 2.53", "DELETE", c + "/os-services/1", nil, "2.53", 400, "Invalid uuid 1"},
		{"delete unknown", "DELETE", c + "/os-services/" + missing, nil, "2.53", 404, "not found"},
		{"delete unknown int", "DELETE", c + "/os-services/999", nil, "2.1", 404, "not found"},
		{"list unknown param 2.75", "GET", c + "/os-services?zone=nova", nil, "2.75", 400, "Additional properties"},
		// os-hypervisors
		{"hv show non-int before 2.53", "GET", c + "/os-hypervisors/abc", nil, "2.1", 404, "Hypervisor with ID 'abc' could not be found."},
		{"hv show missing int", "GET", c + "/os-hypervisors/999", nil, "2.1", 404, "could not be found"},
		{"hv show non-uuid from 2.53", "GET", c + "/os-hypervisors/1", nil, "2.53", 400, "Invalid uuid 1"},
		{"hv show missing uuid", "GET", c + "/os-hypervisors/" + missing, nil, "2.53", 404, "could not be found"},
		{"hv show bad with_servers", "GET", c + "/os-hypervisors/" + missing + "?with_servers=perhaps", nil, "2.53", 400, "with_servers"},
		{"hv show unknown param", "GET", c + "/os-hypervisors/" + missing + "?x=1", nil, "2.53", 400, "Additional properties"},
		{"hv list bad limit", "GET", c + "/os-hypervisors?limit=-1", nil, "2.33", 400, "limit"},
		{"hv list unknown marker", "GET", c + "/os-hypervisors?marker=77", nil, "2.33", 400, "marker [77] not found"},
		{"hv list pattern with paging", "GET", c + "/os-hypervisors?hypervisor_hostname_pattern=cmp&limit=1", nil, "2.53", 400, "Paging over hypervisors"},
		{"hv list bad pattern", "GET", c + "/os-hypervisors?hypervisor_hostname_pattern=a%20b", nil, "2.53", 400, "does not match"},
		{"hv list no match", "GET", c + "/os-hypervisors/detail?hypervisor_hostname_pattern=zzz", nil, "2.53", 404, "No hypervisor matching 'zzz' could be found."},
		{"hv list unknown param 2.53", "GET", c + "/os-hypervisors?color=1", nil, "2.53", 400, "Additional properties"},
		{"hv search no match", "GET", c + "/os-hypervisors/zzz/search", nil, "2.1", 404, "No hypervisor matching"},
		{"hv search at 2.53", "GET", c + "/os-hypervisors/cmp/search", nil, "2.53", 404, "could not be found"},
		{"hv servers at 2.53", "GET", c + "/os-hypervisors/cmp/servers", nil, "2.53", 404, "could not be found"},
		{"hv statistics at 2.88", "GET", c + "/os-hypervisors/statistics", nil, "2.88", 404, "could not be found"},
		{"hv uptime at 2.88", "GET", c + "/os-hypervisors/1/uptime", nil, "2.88", 404, "could not be found"},
		{"hv uptime of a host without an agent", "GET", c + "/os-hypervisors/1/uptime", nil, "2.1", 400, "Compute service of cmp-a is unavailable at this time."},
		// os-hosts
		{"hosts gone at 2.43", "GET", c + "/os-hosts", nil, "2.43", 404, "could not be found"},
		{"host show gone at 2.43", "GET", c + "/os-hosts/cmp-a", nil, "2.43", 404, "could not be found"},
		{"host show unknown", "GET", c + "/os-hosts/nowhere", nil, "2.1", 404, "Host 'nowhere' is not mapped to any cell"},
		{"host show controller", "GET", c + "/os-hosts/ctl-1", nil, "2.1", 404, "not mapped"},
		{"host update empty", "PUT", c + "/os-hosts/cmp-a", map[string]any{}, "2.1", 400, "is not valid under any of the given schemas"},
		{"host update bad status", "PUT", c + "/os-hosts/cmp-a", map[string]any{"status": "on"}, "2.1", 400, "is not one of"},
		{"host update extra", "PUT", c + "/os-hosts/cmp-a", map[string]any{"status": "enable", "x": 1}, "2.1", 400, "Additional properties"},
		{"host update unknown host", "PUT", c + "/os-hosts/nowhere", map[string]any{"status": "disable"}, "2.1", 404, "not mapped"},
		{"host maintenance", "PUT", c + "/os-hosts/cmp-a", map[string]any{"status": "disable", "maintenance_mode": "enable"}, "2.1", 501, "not supported"},
		{"host update gone at 2.43", "PUT", c + "/os-hosts/cmp-a", map[string]any{"status": "disable"}, "2.43", 404, "could not be found"},
		{"host reboot", "GET", c + "/os-hosts/cmp-a/reboot", nil, "2.1", 501, "not supported"},
		{"host shutdown unknown", "GET", c + "/os-hosts/nowhere/shutdown", nil, "2.1", 404, "not mapped"},
		{"host startup", "GET", c + "/os-hosts/cmp-a/startup", nil, "2.42", 501, "not supported"},
		// os-simple-tenant-usage
		{"usage bad start", "GET", c + "/os-simple-tenant-usage?start=yesterday", nil, "2.1", 400, "Invalid datetime string"},
		{"usage start with zone", "GET", c + "/os-simple-tenant-usage?start=2024-01-01T00:00:00Z", nil, "2.1", 400, "Invalid datetime string"},
		{"usage start after end", "GET", c + "/os-simple-tenant-usage?start=2024-02-01T00:00:00&end=2024-01-01T00:00:00", nil, "2.1", 400, "Invalid start time"},
		{"usage bad limit", "GET", c + "/os-simple-tenant-usage?limit=x", nil, "2.40", 400, "limit"},
		{"usage unknown marker", "GET", c + "/os-simple-tenant-usage?marker=" + missing, nil, "2.40", 400, "Marker " + missing + " could not be found."},
		{"usage unknown param 2.75", "GET", c + "/os-simple-tenant-usage?x=1", nil, "2.75", 400, "Additional properties"},
		{"usage show detailed at 2.75", "GET", c + "/os-simple-tenant-usage/" + proj + "?detailed=1", nil, "2.75", 400, "Additional properties"},
		{"usage show bad end", "GET", c + "/os-simple-tenant-usage/" + proj + "?end=2024-13-01T00:00:00", nil, "2.1", 400, "Invalid datetime string"},
		// os-migrations and server migrations
		{"migrations bad limit", "GET", c + "/os-migrations?limit=-2", nil, "2.59", 400, "limit"},
		{"migrations unknown marker", "GET", c + "/os-migrations?marker=" + missing, nil, "2.59", 400, "Marker " + missing + " could not be found."},
		{"migrations bad changes-since", "GET", c + "/os-migrations?changes-since=soon", nil, "2.59", 400, "changes-since"},
		{"migrations before before since", "GET", c + "/os-migrations?changes-since=2024-02-01T00:00:00Z&changes-before=2024-01-01T00:00:00Z", nil, "2.66", 400, "changes-since must be less than or equal to changes-before"},
		{"migrations changes-before at 2.65", "GET", c + "/os-migrations?changes-before=2024-01-01T00:00:00Z", nil, "2.65", 400, "Additional properties"},
		{"migrations user_id at 2.79", "GET", c + "/os-migrations?user_id=x", nil, "2.79", 400, "Additional properties"},
		{"server migrations unknown server", "GET", c + "/servers/" + missing + "/migrations", nil, "2.23", 404, "Instance " + missing + " could not be found."},
		{"server migrations before 2.23", "GET", c + "/servers/" + missing + "/migrations", nil, "2.22", 404, "could not be found"},
	}
	before, _ := cc.Nodes[0].FSM().Hash()
	for _, k := range cases {
		r := doV(t, k.method, k.path, cc.admin, k.body, k.version)
		if r.Status != k.status {
			t.Errorf("%s: HTTP %d %s, want %d", k.name, r.Status, r.Body, k.status)
			continue
		}
		f, ok := r.json(t)[NovaFaultName(k.status)].(map[string]any)
		if !ok || !strings.Contains(fmt.Sprint(f["message"]), k.msg) {
			t.Errorf("%s: fault %s, want %s with %q", k.name, r.Body, NovaFaultName(k.status), k.msg)
		}
	}
	if after, _ := cc.Nodes[0].FSM().Hash(); after != before {
		t.Fatal("refused administrator requests changed the stored state")
	}
	if n := len(cases); n < 70 {
		t.Fatalf("only %d cases", n)
	}
}
