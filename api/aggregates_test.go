package api

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/keel-cloud/keel/agent/driver/fake"
	"github.com/keel-cloud/keel/cluster"
	"github.com/keel-cloud/keel/fsm"
	"github.com/keel-cloud/keel/internal/hostapi"
	"github.com/keel-cloud/keel/internal/ids"
)

// newAggEnv is a keypair test environment (admin, members, reader) with
// compute hosts h1, h2, h3 registered straight in the FSM (no agents: their
// records never change under the test).
func newAggEnv(t *testing.T, hosts ...string) *kpEnv {
	t.Helper()
	e := newKpEnv(t)
	for _, h := range hosts {
		aggRegisterHost(t, e.ac, h, "")
	}
	return e
}

func aggRegisterHost(t *testing.T, ac *apiCluster, host, zone string) {
	t.Helper()
	apply(t, ac, &fsm.RegisterHost{Registration: hostapi.Registration{Host: host, Zone: zone, VCPUs: 4, MemoryMB: 4096, DiskGB: 40},
		ServiceID: ids.UUID(), HypervisorID: ids.UUID(), Now: time.Now().UnixMicro()})
}

// aggOf returns the "aggregate" object of a body.
func aggOf(t *testing.T, body map[string]any) map[string]any {
	t.Helper()
	a, ok := body["aggregate"].(map[string]any)
	if !ok {
		t.Fatalf("no aggregate in %v", body)
	}
	return a
}

// aggCall is an admin call on os-aggregates at microversion mv.
func aggCall(t *testing.T, e *kpEnv, mv, method, path string, body any) resp {
	t.Helper()
	return e.call(t, "admin", mv, method, "/os-aggregates"+path, body)
}

func aggAction(t *testing.T, e *kpEnv, id any, body any) map[string]any {
	t.Helper()
	return aggOf(t, kpWant(t, fmt.Sprintf("action %v", body), aggCall(t, e, "", "POST", fmt.Sprintf("/%v/action", id), body), 200))
}

// zoneNames lists os-availability-zone as "name:available".
func zoneNames(t *testing.T, e *kpEnv, user string) []string {
	t.Helper()
	body := kpWant(t, "zones", e.call(t, user, "", "GET", "/os-availability-zone", nil), 200)
	var out []string
	for _, z := range body["availabilityZoneInfo"].([]any) {
		z := z.(map[string]any)
		out = append(out, fmt.Sprintf("%s:%v", z["zoneName"], z["zoneState"].(map[string]any)["available"]))
		if z["hosts"] != nil {
			t.Fatalf("the user's zone list shows hosts: %v", z)
		}
	}
	return out
}

// The aggregate document of each call at each microversion (2.41 adds
// uuid; create leaves out hosts and metadata), and the flow of a zone.
func TestAggregateMicroversions(t *testing.T) {
	e := newAggEnv(t, "h1", "h2", "h3")
	base := []string{"availability_zone", "created_at", "deleted", "deleted_at", "id", "name", "updated_at"}
	full := slices.Sorted(slices.Values(append(slices.Clone(base), "hosts", "metadata")))
	withUUID := func(keys []string, yes bool) []string {
		if !yes {
			return keys
		}
		return slices.Sorted(slices.Values(append(slices.Clone(keys), "uuid")))
	}
	for i, c := range []struct {
		mv   string
		uuid bool
	}{{"", false}, {"2.40", false}, {"2.41", true}, {"2.100", true}} {
		name := fmt.Sprintf("agg-%d", i)
		zone := any(nil)
		if i%2 == 1 {
			zone = fmt.Sprintf("zone-%d", i)
		}
		a := aggOf(t, kpWant(t, "create at "+c.mv, aggCall(t, e, c.mv, "POST", "", map[string]any{"aggregate": map[string]any{"name": name, "availability_zone": zone}}), 200))
		if got := kpKeys(a); !slices.Equal(got, withUUID(base, c.uuid)) {
			t.Fatalf("create at %q: keys %v", c.mv, got)
		}
		if a["name"] != name || a["availability_zone"] != zone || a["deleted"] != false || a["deleted_at"] != nil || a["updated_at"] != nil || a["id"] != float64(i+1) {
			t.Fatalf("create at %q: %v", c.mv, a)
		}
		if _, err := time.Parse("2006-01-02T15:04:05.000000", a["created_at"].(string)); err != nil {
			t.Fatalf("created_at %v: %v", a["created_at"], err)
		}
		if c.uuid && !ids.IsUUID(a["uuid"].(string)) {
			t.Fatalf("uuid %v", a["uuid"])
		}
		show := aggOf(t, kpWant(t, "show at "+c.mv, aggCall(t, e, c.mv, "GET", fmt.Sprintf("/%d", i+1), nil), 200))
		if got := kpKeys(show); !slices.Equal(got, withUUID(full, c.uuid)) {
			t.Fatalf("show at %q: keys %v", c.mv, got)
		}
		wantMeta := map[string]any{}
		if zone != nil {
			wantMeta["availability_zone"] = zone
		}
		if fmt.Sprint(show["metadata"]) != fmt.Sprint(wantMeta) || len(show["hosts"].([]any)) != 0 || show["uuid"] != a["uuid"] {
			t.Fatalf("show at %q: %v", c.mv, show)
		}
		list := kpWant(t, "list at "+c.mv, aggCall(t, e, c.mv, "GET", "", nil), 200)["aggregates"].([]any)
		if len(list) != i+1 {
			t.Fatalf("list at %q: %v", c.mv, list)
		}
		for _, it := range list {
			if got := kpKeys(it.(map[string]any)); !slices.Equal(got, withUUID(full, c.uuid)) {
				t.Fatalf("list at %q: keys %v", c.mv, got)
			}
		}
		// Every action answers with the full document of its microversion.
		upd := aggOf(t, kpWant(t, "update at "+c.mv, aggCall(t, e, c.mv, "PUT", fmt.Sprintf("/%d", i+1), map[string]any{"aggregate": map[string]any{"name": name + "-x"}}), 200))
		if got := kpKeys(upd); !slices.Equal(got, withUUID(full, c.uuid)) || upd["updated_at"] == nil {
			t.Fatalf("update at %q: %v", c.mv, upd)
		}
		act := aggOf(t, kpWant(t, "set_metadata at "+c.mv, aggCall(t, e, c.mv, "POST", fmt.Sprintf("/%d/action", i+1), map[string]any{"set_metadata": map[string]any{"metadata": map[string]any{"k": "v"}}}), 200))
		if got := kpKeys(act); !slices.Equal(got, withUUID(full, c.uuid)) {
			t.Fatalf("action at %q: keys %v", c.mv, got)
		}
	}

	// A zone: hosts move into it and out of it.
	if got := zoneNames(t, e, "alice"); !slices.Equal(got, []string{"nova:true"}) {
		t.Fatalf("zones before: %v", got)
	}
	a := aggOf(t, kpWant(t, "create zone", aggCall(t, e, "", "POST", "", map[string]any{"aggregate": map[string]any{"name": "edge", "availability_zone": "az1"}}), 200))
	id := int(a["id"].(float64))
	if got := zoneNames(t, e, "alice"); !slices.Equal(got, []string{"nova:true"}) {
		t.Fatalf("a zone without hosts is no zone: %v", got)
	}
	a = aggAction(t, e, id, map[string]any{"add_host": map[string]any{"host": "h1"}})
	if fmt.Sprint(a["hosts"]) != "[h1]" || a["availability_zone"] != "az1" || a["updated_at"] == nil {
		t.Fatalf("after add_host: %v", a)
	}
	if got := zoneNames(t, e, "alice"); !slices.Equal(got, []string{"az1:true", "nova:true"}) {
		t.Fatalf("zones with h1 in az1: %v", got)
	}
	aggAction(t, e, id, map[string]any{"add_host": map[string]any{"host": "h2"}})
	a = aggAction(t, e, id, map[string]any{"set_metadata": map[string]any{"metadata": map[string]any{"ssd": "true", "availability_zone": "az2"}}})
	if fmt.Sprint(a["metadata"]) != "map[availability_zone:az2 ssd:true]" || a["availability_zone"] != "az2" {
		t.Fatalf("after set_metadata: %v", a)
	}
	a = aggAction(t, e, id, map[string]any{"set_metadata": map[string]any{"metadata": map[string]any{"ssd": nil, "never-set": nil}}})
	if fmt.Sprint(a["metadata"]) != "map[availability_zone:az2]" {
		t.Fatalf("a null value deletes the key: %v", a)
	}
	if got := zoneNames(t, e, "alice"); !slices.Equal(got, []string{"az2:true", "nova:true"}) {
		t.Fatalf("zones after the move: %v", got)
	}
	// Legacy v2 names with spaces are stripped on update; the zone moves.
	a = aggOf(t, kpWant(t, "update", aggCall(t, e, "", "PUT", fmt.Sprintf("/%d", id), map[string]any{"aggregate": map[string]any{"name": "  edge-2 ", "availability_zone": "az3"}}), 200))
	if a["name"] != "edge-2" || a["availability_zone"] != "az3" {
		t.Fatalf("after update: %v", a)
	}
	a = aggAction(t, e, id, map[string]any{"remove_host": map[string]any{"host": "h1"}})
	if fmt.Sprint(a["hosts"]) != "[h2]" {
		t.Fatalf("after remove_host: %v", a)
	}
	aggAction(t, e, id, map[string]any{"remove_host": map[string]any{"host": "h2"}})
	if got := zoneNames(t, e, "alice"); !slices.Equal(got, []string{"nova:true"}) {
		t.Fatalf("zones after the hosts left: %v", got)
	}
	r := aggCall(t, e, "", "DELETE", fmt.Sprintf("/%d", id), nil)
	if r.Status != 200 || len(r.Body) != 0 {
		t.Fatalf("delete: %d %q", r.Status, r.Body)
	}
	kpFault(t, "show deleted", aggCall(t, e, "", "GET", fmt.Sprintf("/%d", id), nil), 404, fmt.Sprintf("Aggregate %d could not be found.", id))

	// Image caching (2.81) is not offered: an honest 501 once the request
	// is valid and the aggregate exists.
	cache := map[string]any{"cache": []any{map[string]any{"id": ids.UUID()}}}
	kpFault(t, "images before 2.81", aggCall(t, e, "2.80", "POST", "/1/images", cache), 404, "could not be found")
	kpFault(t, "images", aggCall(t, e, "2.81", "POST", "/1/images", cache), 501, "not offered")
	kpFault(t, "images of nothing", aggCall(t, e, "2.81", "POST", "/99/images", cache), 404, "Aggregate 99 could not be found.")
	kpFault(t, "images without cache", aggCall(t, e, "2.81", "POST", "/1/images", map[string]any{}), 400, "'cache' is a required property")
	img := ids.UUID()
	kpFault(t, "duplicate images", aggCall(t, e, "2.81", "POST", "/1/images", map[string]any{"cache": []any{map[string]any{"id": img}, map[string]any{"id": img}}}), 400, "Duplicate images in request")
}

// Bad requests get Nova's status and message and change nothing stored.
func TestAggregateBadInput(t *testing.T) {
	e := newAggEnv(t, "h1", "h2")
	mk := func(name string, zone any) float64 {
		a := aggOf(t, kpWant(t, "create "+name, aggCall(t, e, "", "POST", "", map[string]any{"aggregate": map[string]any{"name": name, "availability_zone": zone}}), 200))
		return a["id"].(float64)
	}
	z1, z2 := mk("z1", "az1"), mk("z2", "az2")
	aggAction(t, e, z1, map[string]any{"add_host": map[string]any{"host": "h1"}})
	before := e.hash(t)
	long := strings.Repeat("x", 256)
	agg := func(m map[string]any) map[string]any { return map[string]any{"aggregate": m} }
	act := func(name string, arg any) map[string]any { return map[string]any{name: arg} }
	p1 := fmt.Sprintf("/%v", z1)
	a1 := p1 + "/action"
	cases := []struct {
		name, user, method, path string
		body                     any
		status                   int
		msg                      string
	}{
		{"member lists", "alice", "GET", "", nil, 403, "Policy doesn't allow"},
		{"member creates", "alice", "POST", "", agg(map[string]any{"name": "m"}), 403, "Policy doesn't allow"},
		{"reader shows", "rita", "GET", p1, nil, 403, "Policy doesn't allow"},
		{"member acts", "bob", "POST", a1, act("add_host", map[string]any{"host": "h2"}), 403, "Policy doesn't allow"},

		{"body not object", "admin", "POST", "", []any{1}, 400, "[1] is not of type 'object'"},
		{"no aggregate", "admin", "POST", "", map[string]any{"name": "x"}, 400, "'aggregate' is a required property"},
		{"aggregate not object", "admin", "POST", "", map[string]any{"aggregate": "x"}, 400, "Invalid input for field/attribute aggregate. Value: x. 'x' is not of type 'object'"},
		{"no name", "admin", "POST", "", agg(map[string]any{"availability_zone": "az"}), 400, "'name' is a required property"},
		{"name not string", "admin", "POST", "", agg(map[string]any{"name": 5}), 400, "Invalid input for field/attribute name. Value: 5. 5 is not of type 'string'"},
		{"name with spaces", "admin", "POST", "", agg(map[string]any{"name": " x"}), 400, "An invalid 'name' value was provided. The name must be: printable characters. Can not start or end with whitespace."},
		{"empty name", "admin", "POST", "", agg(map[string]any{"name": ""}), 400, "'' is too short"},
		{"long name", "admin", "POST", "", agg(map[string]any{"name": long}), 400, "is too long"},
		{"zone with colon", "admin", "POST", "", agg(map[string]any{"name": "n", "availability_zone": "a:b"}), 400,
			"Invalid input for field/attribute availability_zone. Value: a:b. 'a:b' is not valid under any of the given schemas"},
		{"empty zone", "admin", "POST", "", agg(map[string]any{"name": "n", "availability_zone": ""}), 400, "is not valid under any of the given schemas"},
		{"zone not string", "admin", "POST", "", agg(map[string]any{"name": "n", "availability_zone": 3}), 400, "3 is not valid under any of the given schemas"},
		{"unknown member", "admin", "POST", "", agg(map[string]any{"name": "n", "color": "red"}), 400, "Additional properties are not allowed ('color' was unexpected)"},
		{"unknown top member", "admin", "POST", "", map[string]any{"aggregate": map[string]any{"name": "n"}, "x": 1}, 400, "Additional properties are not allowed ('x' was unexpected)"},
		{"name taken", "admin", "POST", "", agg(map[string]any{"name": "z2"}), 409, "Aggregate z2 already exists."},
		{"malformed JSON", "admin", "POST", "", `{"aggregate": {`, 400, "Malformed request body"},

		{"show bad id", "admin", "GET", "/abc", nil, 400, "Invalid input received: id must be an integer"},
		{"show unknown", "admin", "GET", "/99", nil, 404, "Aggregate 99 could not be found."},
		{"update nothing", "admin", "PUT", p1, agg(map[string]any{}), 400, "Invalid input for field/attribute aggregate. Value: {}. {} is not valid under any of the given schemas"},
		{"update blank name", "admin", "PUT", p1, agg(map[string]any{"name": "   "}), 400, "printable characters with at least one non space character"},
		{"update unknown member", "admin", "PUT", p1, agg(map[string]any{"name": "n", "hosts": []any{}}), 400, "Additional properties are not allowed ('hosts' was unexpected)"},
		{"update bad id", "admin", "PUT", "/1x", agg(map[string]any{"name": "n"}), 400, "id must be an integer"},
		{"update unknown", "admin", "PUT", "/99", agg(map[string]any{"name": "n"}), 404, "Aggregate 99 could not be found."},
		{"update name taken", "admin", "PUT", p1, agg(map[string]any{"name": "z2"}), 409, "Aggregate z2 already exists."},
		{"update null zone", "admin", "PUT", p1, agg(map[string]any{"availability_zone": nil}), 400,
			fmt.Sprintf("Cannot update aggregate %v. Reason: Aggregate z1 does not support empty named availability zone.", z1)},

		{"delete bad id", "admin", "DELETE", "/x", nil, 400, "id must be an integer"},
		{"delete unknown", "admin", "DELETE", "/99", nil, 404, "Aggregate 99 could not be found."},
		{"delete with hosts", "admin", "DELETE", p1, nil, 400, fmt.Sprintf("Cannot remove host from aggregate %v. Reason: Host aggregate is not empty.", z1)},

		{"two actions", "admin", "POST", a1, map[string]any{"add_host": map[string]any{"host": "h2"}, "remove_host": map[string]any{"host": "h1"}}, 400, "Malformed request body"},
		{"no action", "admin", "POST", a1, map[string]any{}, 400, "Malformed request body"},
		{"unknown action", "admin", "POST", a1, act("frobnicate", nil), 400, "There is no such action: frobnicate"},
		{"add_host not object", "admin", "POST", a1, act("add_host", "h2"), 400, "Invalid input for field/attribute add_host. Value: h2. 'h2' is not of type 'object'"},
		{"add_host no host", "admin", "POST", a1, act("add_host", map[string]any{}), 400, "'host' is a required property"},
		{"add_host bad host", "admin", "POST", a1, act("add_host", map[string]any{"host": "a b"}), 400, "Invalid input for field/attribute host. Value: a b. 'a b' does not match '^[a-zA-Z0-9-._]*$'"},
		{"add_host host not string", "admin", "POST", a1, act("add_host", map[string]any{"host": 7}), 400, "7 is not of type 'string'"},
		{"add_host extra", "admin", "POST", a1, act("add_host", map[string]any{"host": "h2", "force": true}), 400, "Additional properties are not allowed ('force' was unexpected)"},
		{"add_host bad id", "admin", "POST", "/one/action", act("add_host", map[string]any{"host": "h2"}), 400, "id must be an integer"},
		{"add unknown host", "admin", "POST", a1, act("add_host", map[string]any{"host": "ghost"}), 404, "Compute host ghost could not be found."},
		{"add to unknown", "admin", "POST", "/99/action", act("add_host", map[string]any{"host": "h2"}), 404, "Aggregate 99 could not be found."},
		{"add twice", "admin", "POST", a1, act("add_host", map[string]any{"host": "h1"}), 409, fmt.Sprintf("Aggregate %v already has host h1.", z1)},
		{"host in two zones", "admin", "POST", fmt.Sprintf("/%v/action", z2), act("add_host", map[string]any{"host": "h1"}), 409,
			fmt.Sprintf("Cannot add host to aggregate %v. Reason: One or more hosts already in availability zone(s) ['az1'].", z2)},
		{"remove non-member", "admin", "POST", a1, act("remove_host", map[string]any{"host": "h2"}), 404, fmt.Sprintf("Cannot remove host h2 in aggregate %v", z1)},
		{"remove unknown host", "admin", "POST", a1, act("remove_host", map[string]any{"host": "ghost"}), 404, fmt.Sprintf("Cannot remove host ghost in aggregate %v", z1)},
		{"remove_host empty host", "admin", "POST", a1, act("remove_host", map[string]any{"host": ""}), 400, "'' is too short"},
		{"set_metadata no metadata", "admin", "POST", a1, act("set_metadata", map[string]any{}), 400, "'metadata' is a required property"},
		{"set_metadata not object", "admin", "POST", a1, act("set_metadata", map[string]any{"metadata": []any{}}), 400, "Invalid input for field/attribute metadata. Value: []. [] is not of type 'object'"},
		{"set_metadata bad key", "admin", "POST", a1, act("set_metadata", map[string]any{"metadata": map[string]any{"a/b": "1"}}), 400,
			"'a/b' does not match any of the regexes: '^[a-zA-Z0-9-_:. ]{1,255}$'"},
		{"set_metadata value not string", "admin", "POST", a1, act("set_metadata", map[string]any{"metadata": map[string]any{"k": 1}}), 400,
			"Invalid input for field/attribute k. Value: 1. 1 is not of type 'string', 'null'"},
		{"set_metadata long value", "admin", "POST", a1, act("set_metadata", map[string]any{"metadata": map[string]any{"k": long}}), 400, "is too long"},
		{"set_metadata extra", "admin", "POST", a1, act("set_metadata", map[string]any{"metadata": map[string]any{}, "x": 1}), 400, "Additional properties are not allowed ('x' was unexpected)"},
		{"set_metadata null zone", "admin", "POST", a1, act("set_metadata", map[string]any{"metadata": map[string]any{"availability_zone": nil}}), 400,
			fmt.Sprintf("Cannot update metadata of aggregate %v. Reason: Aggregate z1 does not support empty named availability zone.", z1)},
		{"set_metadata zone conflict", "admin", "POST", fmt.Sprintf("/%v/action", z2), act("set_metadata", map[string]any{"metadata": map[string]any{"availability_zone": "az1"}}), 200, ""},
	}
	// The last case is not bad: z2 has no hosts, so any zone is fine. Take
	// it out of the comparison and check it separately below.
	cases = cases[:len(cases)-1]
	for _, c := range cases {
		r := e.call(t, c.user, "", c.method, "/os-aggregates"+c.path, c.body)
		if r.Status != c.status {
			t.Errorf("%s: HTTP %d %s, want %d", c.name, r.Status, r.Body, c.status)
			continue
		}
		f, ok := r.json(t)[NovaFaultName(c.status)].(map[string]any)
		if !ok || f["code"] != float64(c.status) {
			t.Errorf("%s: not a Nova %d fault: %s", c.name, c.status, r.Body)
			continue
		}
		if m, _ := f["message"].(string); !strings.Contains(m, c.msg) {
			t.Errorf("%s: message %q does not contain %q", c.name, m, c.msg)
		}
	}
	if e.hash(t) != before {
		t.Fatal("refused requests changed the stored state")
	}
	// Giving z2 the zone az1 is fine (no hosts); then h1 may join it too,
	// both aggregates being az1.
	aggAction(t, e, z2, act("set_metadata", map[string]any{"metadata": map[string]any{"availability_zone": "az1"}}))
	aggAction(t, e, z2, act("add_host", map[string]any{"host": "h1"}))
}

// Acceptance 4: aggregate zone changes are reflected in scheduling, and a
// host with servers does not change zone.
func TestAggregateZonesSchedule(t *testing.T) {
	cc := newSchedulingCloud(t, 1)
	cc.startHosts(t, 2, fake.Config{})
	call := func(method, path string, body any) resp {
		return do(t, method, cc.url(0)+"/compute/v2.1"+path, cc.admin, body)
	}
	want := func(what string, r resp, status int) map[string]any {
		t.Helper()
		if r.Status != status {
			t.Fatalf("%s: HTTP %d %s, want %d", what, r.Status, r.Body, status)
		}
		if len(r.Body) == 0 {
			return nil
		}
		return r.json(t)
	}
	mkAgg := func(name, zone string) float64 {
		t.Helper()
		b := want("create "+name, call("POST", "/os-aggregates", map[string]any{"aggregate": map[string]any{"name": name, "availability_zone": zone}}), 200)
		return b["aggregate"].(map[string]any)["id"].(float64)
	}
	agg1 := mkAgg("rack-1", "az1")
	want("add compute-1", call("POST", fmt.Sprintf("/os-aggregates/%v/action", agg1), map[string]any{"add_host": map[string]any{"host": "compute-1"}}), 200)

	// The detail view: az1 holds compute-1, nova compute-2, internal the
	// controller's services.
	detail := want("zones", call("GET", "/os-availability-zone/detail", nil), 200)["availabilityZoneInfo"].([]any)
	var got []string
	for _, z := range detail {
		z := z.(map[string]any)
		var hosts []string
		for h, svcs := range z["hosts"].(map[string]any) {
			for b, st := range svcs.(map[string]any) {
				st := st.(map[string]any)
				hosts = append(hosts, fmt.Sprintf("%s/%s/%v/%v", h, b, st["available"], st["active"]))
			}
		}
		slices.Sort(hosts)
		got = append(got, fmt.Sprintf("%s%v", z["zoneName"], hosts))
	}
	ctl := cc.Nodes[0].Cfg.Name
	wantZones := []string{"az1[compute-1/nova-compute/true/true]",
		fmt.Sprintf("internal[%s/nova-conductor/true/true %s/nova-scheduler/true/true]", ctl, ctl),
		"nova[compute-2/nova-compute/true/true]"}
	if !slices.Equal(got, wantZones) {
		t.Fatalf("zones %v, want %v", got, wantZones)
	}

	bootIn := func(name, zone string) string {
		t.Helper()
		r := cc.createServer(t, 0, cc.admin, map[string]any{"name": name, "availability_zone": zone})
		if r.Status != 202 {
			t.Fatalf("create %s in %s: %d %s", name, zone, r.Status, r.Body)
		}
		return r.json(t)["server"].(map[string]any)["id"].(string)
	}
	// A server asking for az1 lands on compute-1, one asking for nova on
	// compute-2.
	id1 := bootIn("in-az1", "az1")
	s := cc.waitStatus(t, id1, "ACTIVE")
	if s["OS-EXT-SRV-ATTR:host"] != "compute-1" || s["OS-EXT-AZ:availability_zone"] != "az1" {
		t.Fatalf("server in az1: host %v zone %v", s["OS-EXT-SRV-ATTR:host"], s["OS-EXT-AZ:availability_zone"])
	}
	id2 := bootIn("in-nova", "nova")
	if s := cc.waitStatus(t, id2, "ACTIVE"); s["OS-EXT-SRV-ATTR:host"] != "compute-2" {
		t.Fatalf("server in nova on %v", s["OS-EXT-SRV-ATTR:host"])
	}

	// compute-1 has a server: its zone does not move.
	r := call("POST", fmt.Sprintf("/os-aggregates/%v/action", agg1), map[string]any{"set_metadata": map[string]any{"metadata": map[string]any{"availability_zone": "az2"}}})
	if r.Status != 400 || !strings.Contains(string(r.Body), "One or more hosts contain instances in this zone") {
		t.Fatalf("moving a busy host's zone: %d %s", r.Status, r.Body)
	}
	r = call("POST", fmt.Sprintf("/os-aggregates/%v/action", agg1), map[string]any{"remove_host": map[string]any{"host": "compute-1"}})
	if r.Status != 409 || !strings.Contains(string(r.Body), "would change from 'az1' to 'nova' but the host already has 1 instance(s)") {
		t.Fatalf("removing a busy host from its zone: %d %s", r.Status, r.Body)
	}
	a := want("show rack-1", call("GET", fmt.Sprintf("/os-aggregates/%v", agg1), nil), 200)["aggregate"].(map[string]any)
	if a["availability_zone"] != "az1" || fmt.Sprint(a["hosts"]) != "[compute-1]" {
		t.Fatalf("refused zone changes changed the aggregate: %v", a)
	}

	// Once its server is gone, the host moves to another aggregate's zone
	// and scheduling follows.
	if r := call("DELETE", "/servers/"+id1, nil); r.Status != 204 {
		t.Fatalf("delete: %d %s", r.Status, r.Body)
	}
	cluster.WaitFor(t, 20*time.Second, "server deleted", func() bool {
		return call("GET", "/servers/"+id1, nil).Status == 404
	})
	want("remove compute-1", call("POST", fmt.Sprintf("/os-aggregates/%v/action", agg1), map[string]any{"remove_host": map[string]any{"host": "compute-1"}}), 200)
	agg2 := mkAgg("rack-2", "az2")
	want("add compute-1 to az2", call("POST", fmt.Sprintf("/os-aggregates/%v/action", agg2), map[string]any{"add_host": map[string]any{"host": "compute-1"}}), 200)
	r = cc.createServer(t, 0, cc.admin, map[string]any{"availability_zone": "az1"})
	if r.Status != 400 || !strings.Contains(string(r.Body), "The requested availability zone is not available") {
		t.Fatalf("az1 has no host left: %d %s", r.Status, r.Body)
	}
	id3 := bootIn("in-az2", "az2")
	if s := cc.waitStatus(t, id3, "ACTIVE"); s["OS-EXT-SRV-ATTR:host"] != "compute-1" || s["OS-EXT-AZ:availability_zone"] != "az2" {
		t.Fatalf("server in az2: host %v zone %v", s["OS-EXT-SRV-ATTR:host"], s["OS-EXT-AZ:availability_zone"])
	}
	// An empty aggregate can go; one with a host cannot.
	want("delete rack-1", call("DELETE", fmt.Sprintf("/os-aggregates/%v", agg1), nil), 200)
	want("delete rack-2", call("DELETE", fmt.Sprintf("/os-aggregates/%v", agg2), nil), 400)
}
