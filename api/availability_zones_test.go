package api

import (
	"slices"
	"testing"
	"time"
)

func TestAvailabilityZones(t *testing.T) {
	e := newKpEnv(t)
	for _, user := range []string{"alice", "rita", "admin"} {
		for _, mv := range []string{"", "2.100"} {
			body := kpWant(t, "zones as "+user, e.call(t, user, mv, "GET", "/os-availability-zone?anything=1", nil), 200)
			zones, _ := body["availabilityZoneInfo"].([]any)
			if len(zones) != 1 || len(body) != 1 {
				t.Fatalf("zones as %s: %v", user, body)
			}
			z := zones[0].(map[string]any)
			if z["zoneName"] != "nova" || z["zoneState"].(map[string]any)["available"] != true || z["hosts"] != nil || len(z) != 3 {
				t.Fatalf("zone as %s: %v", user, z)
			}
		}
	}
	kpFault(t, "detail as a member", e.call(t, "alice", "", "GET", "/os-availability-zone/detail", nil), 403, "Policy doesn't allow")

	body := kpWant(t, "detail", e.call(t, "admin", "", "GET", "/os-availability-zone/detail", nil), 200)
	zones, _ := body["availabilityZoneInfo"].([]any)
	if len(zones) != 2 {
		t.Fatalf("detail: %v", body)
	}
	internal, nova := zones[0].(map[string]any), zones[1].(map[string]any)
	if internal["zoneName"] != "internal" || internal["zoneState"].(map[string]any)["available"] != true {
		t.Fatalf("internal zone: %v", internal)
	}
	if nova["zoneName"] != "nova" || nova["zoneState"].(map[string]any)["available"] != true || len(nova["hosts"].(map[string]any)) != 0 {
		t.Fatalf("nova zone: %v", nova)
	}
	hosts := internal["hosts"].(map[string]any)
	name := e.ac.Nodes[0].Cfg.Name
	services, ok := hosts[name].(map[string]any)
	if len(hosts) != 1 || !ok {
		t.Fatalf("internal hosts %v, want the controller %s", hosts, name)
	}
	if got := kpKeys(services); !slices.Equal(got, []string{"nova-conductor", "nova-scheduler"}) {
		t.Fatalf("services of %s: %v", name, got)
	}
	for svc, st := range services {
		st := st.(map[string]any)
		at, err := time.Parse("2006-01-02T15:04:05.000000", st["updated_at"].(string))
		if st["available"] != true || st["active"] != true || err != nil || time.Since(at) > time.Minute {
			t.Fatalf("%s on %s: %v (%v)", svc, name, st, err)
		}
	}
}
