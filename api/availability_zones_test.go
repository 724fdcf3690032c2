package api

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/keel-cloud/keel/fsm"
	"github.com/keel-cloud/keel/internal/ids"
)

// azDetail renders os-availability-zone/detail as one line per zone:
// "zone:available[host/binary/available/active ...]", or "zone:false<nil>"
// for a zone listed without hosts.
func azDetail(t *testing.T, e *kpEnv) []string {
	t.Helper()
	body := kpWant(t, "detail", e.call(t, "admin", "", "GET", "/os-availability-zone/detail", nil), 200)
	var out []string
	for _, z := range body["availabilityZoneInfo"].([]any) {
		z := z.(map[string]any)
		line := fmt.Sprintf("%s:%v", z["zoneName"], z["zoneState"].(map[string]any)["available"])
		if z["hosts"] == nil {
			out = append(out, line+"<nil>")
			continue
		}
		var hosts []string
		for h, svcs := range z["hosts"].(map[string]any) {
			for b, st := range svcs.(map[string]any) {
				st := st.(map[string]any)
				if _, err := time.Parse("2006-01-02T15:04:05.000000", fmt.Sprint(st["updated_at"])); err != nil {
					t.Fatalf("updated_at of %s on %s: %v", b, h, st["updated_at"])
				}
				hosts = append(hosts, fmt.Sprintf("%s/%s/%v/%v", h, b, st["available"], st["active"]))
			}
		}
		slices.Sort(hosts)
		out = append(out, fmt.Sprintf("%s%v", line, hosts))
	}
	return out
}

// Zones come from the services, as in Nova: compute hosts bring theirs
// (an aggregate's zone overrides the registered one), controllers are in
// "internal" (hidden from the users' list); a zone whose services are all
// disabled is listed as not available, without hosts; a zone whose hosts
// are down stays available, its hosts showing available false.
func TestAvailabilityZones(t *testing.T) {
	e := newKpEnv(t)
	for _, user := range []string{"alice", "rita", "admin"} {
		for _, mv := range []string{"", "2.100"} {
			body := kpWant(t, "zones as "+user, e.call(t, user, mv, "GET", "/os-availability-zone?anything=1", nil), 200)
			if zones, ok := body["availabilityZoneInfo"].([]any); !ok || len(zones) != 0 || len(body) != 1 {
				t.Fatalf("a cloud without hosts has no zone (as %s): %s", user, body)
			}
		}
	}
	kpFault(t, "detail as a member", e.call(t, "alice", "", "GET", "/os-availability-zone/detail", nil), 403, "Policy doesn't allow")
	if got := azDetail(t, e); len(got) != 0 {
		t.Fatalf("detail without services: %v", got)
	}

	aggRegisterHost(t, e.ac, "h1", "")
	aggRegisterHost(t, e.ac, "h2", "rack")
	aggRegisterHost(t, e.ac, "h3", "")
	apply(t, e.ac, &fsm.SetLiveness{Controllers: []fsm.ControllerLiveness{{Name: "ctl-1", Up: true, SchedulerID: ids.UUID(), ConductorID: ids.UUID()}},
		Now: time.Now().UnixMicro()})
	step := func(what string, users, detail []string) {
		t.Helper()
		if got := zoneNames(t, e, "alice"); !slices.Equal(got, users) {
			t.Fatalf("%s: zones %v, want %v", what, got, users)
		}
		if got := azDetail(t, e); !slices.Equal(got, detail) {
			t.Fatalf("%s: detail %v, want %v", what, got, detail)
		}
	}
	internal := "internal:true[ctl-1/nova-conductor/true/true ctl-1/nova-scheduler/true/true]"
	step("registered zones", []string{"nova:true", "rack:true"},
		[]string{internal, "nova:true[h1/nova-compute/true/true h3/nova-compute/true/true]", "rack:true[h2/nova-compute/true/true]"})

	// An aggregate's zone overrides the registered one.
	a := aggOf(t, kpWant(t, "aggregate", e.call(t, "admin", "", "POST", "/os-aggregates", map[string]any{"aggregate": map[string]any{"name": "a", "availability_zone": "az1"}}), 200))
	aggAction(t, e, a["id"], map[string]any{"add_host": map[string]any{"host": "h2"}})
	step("h2 in an aggregate zone", []string{"az1:true", "nova:true"},
		[]string{"az1:true[h2/nova-compute/true/true]", internal, "nova:true[h1/nova-compute/true/true h3/nova-compute/true/true]"})

	set := func(host string, u fsm.UpdateService) {
		t.Helper()
		u.Host, u.Binary, u.Now = host, fsm.BinaryCompute, time.Now().UnixMicro()
		apply(t, e.ac, &u)
	}
	yes, no := true, false
	// A down host leaves its zone available; a disabled one leaves it.
	set("h3", fsm.UpdateService{ForcedDown: &yes})
	set("h1", fsm.UpdateService{Disabled: &yes})
	step("h3 down, h1 disabled", []string{"az1:true", "nova:true"},
		[]string{"az1:true[h2/nova-compute/true/true]", internal, "nova:true[h3/nova-compute/false/true]"})
	// Every host of a zone disabled: the zone is not available.
	set("h2", fsm.UpdateService{Disabled: &yes})
	step("az1 all disabled", []string{"nova:true", "az1:false"},
		[]string{internal, "nova:true[h3/nova-compute/false/true]", "az1:false<nil>"})
	set("h3", fsm.UpdateService{Disabled: &yes})
	step("all disabled", []string{"az1:false", "nova:false"}, []string{internal, "az1:false<nil>", "nova:false<nil>"})
	set("h1", fsm.UpdateService{Disabled: &no})
	step("h1 enabled again", []string{"nova:true", "az1:false"}, []string{internal, "nova:true[h1/nova-compute/true/true]", "az1:false<nil>"})
}
