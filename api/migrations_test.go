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
	"github.com/keel-cloud/keel/internal/ids"
)

func TestFlavorIntID(t *testing.T) {
	for in, want := range map[string]any{"1": int64(1), "42": int64(42), "0": int64(0), "01": nil, "m1.tiny": nil, "": nil,
		"6f1c9a7e-0000-4000-8000-000000000000": nil, "-3": int64(-3), "99999999999999999999": nil} {
		if got := flavorIntID(in); got != want {
			t.Errorf("%q: %v, want %v", in, got, want)
		}
	}
}

// Migration records of evacuations through os-migrations (each
// microversion's document, filters, 2.59 paging), the per-server migration
// routes, and the services rules that depend on them.
func TestMigrationsOfEvacuations(t *testing.T) {
	cc := newSchedulingCloud(t, 1)
	hosts := cc.startHosts(t, 2, fake.Config{})
	svcURL := cc.url(0) + "/compute/v2.1/os-services/"
	legacy := func(action, host string, extra ...any) {
		t.Helper()
		body := map[string]any{"host": host, "binary": "nova-compute"}
		for i := 0; i+1 < len(extra); i += 2 {
			body[extra[i].(string)] = extra[i+1]
		}
		if r := doV(t, "PUT", svcURL+action, cc.admin, body, "2.11"); r.Status != 200 {
			t.Fatalf("%s %s: %d %s", action, host, r.Status, r.Body)
		}
	}
	// Both servers on compute-1: compute-2 is disabled while they build.
	legacy("disable", "compute-2")
	vm1 := cc.boot(t, cc.admin, "vm1", nil)
	vm2 := cc.boot(t, cc.admin, "vm2", nil)
	for _, id := range []string{vm1, vm2} {
		if s := cc.waitStatus(t, id, "ACTIVE"); s["OS-EXT-SRV-ATTR:host"] != "compute-1" {
			t.Fatalf("%s on %v", id, s["OS-EXT-SRV-ATTR:host"])
		}
	}
	legacy("enable", "compute-2")
	// compute-1 dies (its agent stops: its evacuations stay "done") and is
	// fenced; its servers are evacuated.
	hosts[0].stop()
	legacy("force-down", "compute-1", "forced_down", true)
	for _, id := range []string{vm1, vm2} {
		s, _, _ := fsm.GetServer(cc.Nodes[0].State(), id)
		apply(t, cc.apiCluster, &fsm.EvacuateServer{ID: id, MigrationID: ids.UUID(), RequestID: "req-" + ids.UUID(),
			UserID: s.UserID, ProjectID: s.ProjectID, Now: time.Now().UnixMicro()})
	}
	for _, id := range []string{vm1, vm2} {
		if s := cc.waitStatus(t, id, "ACTIVE"); s["OS-EXT-SRV-ATTR:host"] != "compute-2" {
			t.Fatalf("%s evacuated to %v", id, s["OS-EXT-SRV-ATTR:host"])
		}
	}
	var migs []*fsm.Migration // by integer id
	cluster.WaitFor(t, 10*time.Second, "both migrations done", func() bool {
		migs = nil
		_ = fsm.Migrations(cc.Nodes[0].State(), func(m *fsm.Migration) bool { migs = append(migs, m); return true })
		return len(migs) == 2 && migs[0].Status == fsm.MigrationDone && migs[1].Status == fsm.MigrationDone
	})
	slices.SortFunc(migs, func(a, b *fsm.Migration) int { return int(a.Seq - b.Seq) })

	mURL := cc.url(0) + "/compute/v2.1/os-migrations"
	list := func(query, version string) ([]map[string]any, string) {
		t.Helper()
		r := doV(t, "GET", mURL+query, cc.admin, nil, version)
		if r.Status != 200 {
			t.Fatalf("os-migrations%s at %s: %d %s", query, version, r.Status, r.Body)
		}
		var out []map[string]any
		for _, e := range r.json(t)["migrations"].([]any) {
			out = append(out, e.(map[string]any))
		}
		next := ""
		if l, ok := r.json(t)["migrations_links"].([]any); ok {
			next = l[0].(map[string]any)["href"].(string)
		}
		return out, next
	}
	base := "created_at,dest_compute,dest_host,dest_node,id,instance_uuid,new_instance_type_id,old_instance_type_id,source_compute,source_node,status,updated_at"
	for _, c := range []struct {
		version, keys string
		newestFirst   bool
	}{
		{"2.1", base, false},
		{"2.22", base, false},
		{"2.23", base + ",migration_type", false},
		{"2.58", base + ",migration_type", false},
		{"2.59", base + ",migration_type,uuid", true},
		{"2.79", base + ",migration_type,uuid", true},
		{"2.80", base + ",migration_type,project_id,user_id,uuid", true},
	} {
		got, next := list("", c.version)
		if len(got) != 2 || next != "" {
			t.Fatalf("%s: %v (next %q)", c.version, got, next)
		}
		for i, e := range got {
			m := migs[i]
			if c.newestFirst {
				m = migs[1-i]
			}
			keys := strings.Split(c.keys, ",")
			slices.Sort(keys)
			if sortedKeys(e) != strings.Join(keys, ",") {
				t.Errorf("%s keys %s, want %s", c.version, sortedKeys(e), strings.Join(keys, ","))
			}
			if e["id"] != float64(m.Seq) || e["instance_uuid"] != m.ServerID || e["status"] != "done" || e["source_compute"] != "compute-1" ||
				e["dest_compute"] != "compute-2" || e["dest_node"] != "compute-2" || e["old_instance_type_id"] != 1.0 || e["new_instance_type_id"] != 1.0 ||
				e["created_at"] != usageFormat(m.CreatedAt) {
				t.Errorf("%s entry %d: %v, want %+v", c.version, i, e, m)
			}
			if mt, ok := e["migration_type"]; ok && mt != "evacuation" {
				t.Errorf("%s: migration_type %v", c.version, mt)
			}
			if u, ok := e["uuid"]; ok && u != m.ID {
				t.Errorf("%s: uuid %v, want %s", c.version, u, m.ID)
			}
			if p, ok := e["project_id"]; ok && (p != m.ProjectID || e["user_id"] != m.UserID) {
				t.Errorf("%s: project/user %v %v", c.version, p, e["user_id"])
			}
		}
	}
	// Filters.
	future := time.Now().Add(time.Hour).UTC().Format(time.RFC3339)
	past := time.Now().Add(-time.Hour).UTC().Format(time.RFC3339)
	for _, c := range []struct {
		query, version string
		n              int
	}{
		{"?host=compute-1", "2.1", 2},
		{"?host=compute-2", "2.1", 2},
		{"?host=compute-9", "2.1", 0},
		{"?source_compute=compute-2", "2.1", 0},
		{"?source_compute=compute-1", "2.1", 2},
		{"?status=done", "2.1", 2},
		{"?status=error", "2.1", 0},
		{"?instance_uuid=" + vm1, "2.1", 1},
		{"?migration_type=evacuation", "2.23", 2},
		{"?migration_type=live-migration", "2.23", 0},
		{"?hidden=1", "2.1", 0},
		{"?hidden=0", "2.1", 2},
		{"?changes-since=" + future, "2.58", 2}, // ignored before 2.59
		{"?changes-since=" + future, "2.59", 0},
		{"?changes-since=" + past, "2.59", 2},
		{"?changes-before=" + past, "2.66", 0},
		{"?changes-before=" + future, "2.66", 2},
		{"?project_id=" + migs[0].ProjectID, "2.80", 2},
		{"?user_id=someone-else", "2.80", 0},
		{"?user_id=someone-else", "2.1", 0}, // before 2.59 every parameter filters
	} {
		if got, _ := list(c.query, c.version); len(got) != c.n {
			t.Errorf("%s at %s: %d migrations, want %d", c.query, c.version, len(got), c.n)
		}
	}
	// 2.59 paging: newest first, the marker is a uuid.
	var uuids []string
	next := mURL + "?limit=1"
	for i := 0; next != "" && i < 5; i++ {
		r := doV(t, "GET", next, cc.admin, nil, "2.59")
		next = ""
		for _, e := range r.json(t)["migrations"].([]any) {
			uuids = append(uuids, e.(map[string]any)["uuid"].(string))
		}
		if l, ok := r.json(t)["migrations_links"].([]any); ok {
			next = l[0].(map[string]any)["href"].(string)
		}
	}
	if !slices.Equal(uuids, []string{migs[1].ID, migs[0].ID}) {
		t.Fatalf("pages: %v, want %s then %s", uuids, migs[1].ID, migs[0].ID)
	}
	if got, _ := list("?limit=1&marker="+migs[0].ID, "2.59"); len(got) != 0 {
		t.Fatalf("after the oldest: %v", got)
	}

	// Per server: only live migrations in progress exist there.
	sURL := cc.url(0) + "/compute/v2.1/servers/" + vm1 + "/migrations"
	mine := migs[slices.IndexFunc(migs, func(m *fsm.Migration) bool { return m.ServerID == vm1 })]
	if r := doV(t, "GET", sURL, cc.admin, nil, "2.23"); r.Status != 200 || string(r.Body) != "{\"migrations\":[]}\n" {
		t.Fatalf("server migrations: %d %s", r.Status, r.Body)
	}
	for _, c := range []struct {
		method, path, version string
		body                  any
		status                int
		msg                   string
	}{
		{"GET", fmt.Sprintf("/%d", mine.Seq), "2.23", nil, 404, fmt.Sprintf("Migration %d for server %s is not live-migration.", mine.Seq, vm1)},
		{"GET", "/999", "2.23", nil, 404, "In-progress live migration 999 is not found for server " + vm1},
		{"GET", fmt.Sprintf("/%d", mine.Seq), "2.22", nil, 404, "could not be found"},
		{"DELETE", fmt.Sprintf("/%d", mine.Seq), "2.24", nil, 409, "Cannot 'abort live migration' instance " + vm1 + " while it is in task_state None"},
		{"DELETE", fmt.Sprintf("/%d", mine.Seq), "2.23", nil, 404, "could not be found"},
		{"POST", fmt.Sprintf("/%d/action", mine.Seq), "2.22", map[string]any{"force_complete": nil}, 409, "Cannot 'force_complete' instance " + vm1 + " while it is in task_state None"},
		{"POST", fmt.Sprintf("/%d/action", mine.Seq), "2.22", map[string]any{"force_complete": 1}, 400, "is not of type 'null'"},
		{"POST", fmt.Sprintf("/%d/action", mine.Seq), "2.22", map[string]any{"finish": nil}, 400, "There is no such action: finish"},
	} {
		r := doV(t, c.method, sURL+c.path, cc.admin, c.body, c.version)
		if r.Status != c.status || !strings.Contains(string(r.Body), c.msg) {
			t.Errorf("%s %s at %s: %d %s, want %d %q", c.method, c.path, c.version, r.Status, r.Body, c.status, c.msg)
		}
	}

	// Nova refuses to force a host up while its evacuations are "done"
	// (its agent has not destroyed its copies yet) ...
	c1 := serviceByHost(t, opsServices(t, cc, "2.53", ""), "compute-1", "nova-compute")["id"].(string)
	r := doV(t, "PUT", svcURL+c1, cc.admin, map[string]any{"forced_down": false}, "2.53")
	if r.Status != 400 || !strings.Contains(string(r.Body), "Unable to force up host compute-1 as `done` evacuation migration records remain") {
		t.Fatalf("force up with done evacuations: %d %s", r.Status, r.Body)
	}
	r = doV(t, "PUT", svcURL+"force-down", cc.admin, map[string]any{"host": "compute-1", "binary": "nova-compute", "forced_down": false}, "2.11")
	if r.Status != 400 {
		t.Fatalf("legacy force up with done evacuations: %d %s", r.Status, r.Body)
	}
	if s := serviceByHost(t, opsServices(t, cc, "2.11", ""), "compute-1", "nova-compute"); s["forced_down"] != true || s["state"] != "down" {
		t.Fatalf("refused force up changed the service: %v", s)
	}
	gophercloudAdminChecks(t, cc, 2)

	// ... and allows it once the agent came back and completed them.
	hosts[0] = cc.startHost(t, "compute-1", hosts[0].drv)
	cluster.WaitFor(t, 20*time.Second, "evacuations completed", func() bool {
		got, _ := list("?status=completed", "2.1")
		return len(got) == 2
	})
	if r := doV(t, "PUT", svcURL+c1, cc.admin, map[string]any{"forced_down": false}, "2.53"); r.Status != 200 || r.json(t)["service"].(map[string]any)["state"] != "up" {
		t.Fatalf("force up after the evacuations completed: %d %s", r.Status, r.Body)
	}
}
