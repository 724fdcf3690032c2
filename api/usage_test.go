package api

import (
	"math"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/keel-cloud/keel/agent/driver/fake"
	"github.com/keel-cloud/keel/cluster"
	"github.com/keel-cloud/keel/fsm"
)

func TestParseUsageTime(t *testing.T) {
	at := func(s string) int64 { tm, _ := time.Parse(time.RFC3339Nano, s); return tm.UnixMicro() }
	for _, c := range []struct {
		in   string
		ok   bool
		want int64
	}{
		{"2024-03-01T10:20:30", true, at("2024-03-01T10:20:30Z")},
		{"2024-03-01T10:20:30.5", true, at("2024-03-01T10:20:30.5Z")},
		{"2024-03-01T10:20:30.123456", true, at("2024-03-01T10:20:30.123456Z")},
		{"2024-03-01 10:20:30.000001", true, at("2024-03-01T10:20:30.000001Z")},
		{"2024-3-1T1:2:3", true, at("2024-03-01T01:02:03Z")},
		{"2024-03-01 10:20:30", false, 0}, // the space form needs microseconds
		{"2024-03-01T10:20:30Z", false, 0},
		{"2024-03-01T10:20:30+01:00", false, 0},
		{"2024-03-01T10:20:30.1234567", false, 0},
		{"2024-02-30T00:00:00", false, 0},
		{"2024-13-01T00:00:00", false, 0},
		{"2024-03-01", false, 0},
		{"", false, 0},
	} {
		got, ok := parseUsageTime(c.in)
		if ok != c.ok || ok && got != c.want {
			t.Errorf("%q: %d %v, want %d %v", c.in, got, ok, c.want, c.ok)
		}
	}
}

func approx(a, b float64) bool { return math.Abs(a-b) <= 1e-9*math.Max(1, math.Abs(b)) }

// os-simple-tenant-usage from server lifetimes, deleted servers included,
// clipped to the period, per project, with 2.40's paging.
func TestSimpleTenantUsage(t *testing.T) {
	cc := newSchedulingCloud(t, 1)
	cc.startHosts(t, 1, fake.Config{})
	const other = "0000000000000000000000000000000e"
	member, _ := fsm.RoleByName(cc.Nodes[0].State(), "member")
	apply(t, cc.apiCluster, &fsm.CreateProject{Project: fsm.Project{ID: other, Name: "else", DomainID: "default", Enabled: true}})
	apply(t, cc.apiCluster, &fsm.CreateUser{User: fsm.User{ID: "0000000000000000000000000000000f", Name: "eve", DomainID: "default", PasswordHash: qtHash(t, "pw"), Enabled: true}})
	apply(t, cc.apiCluster, &fsm.GrantRole{Assignment: fsm.RoleAssignment{UserID: "0000000000000000000000000000000f", RoleID: member.ID, ProjectID: other}})
	eve := login(t, cc.url(0), "eve", "pw", projectScope("else"))
	admin := cc.projectID(t, "admin")

	vm1 := cc.boot(t, cc.admin, "vm1", nil)
	vm2 := cc.boot(t, cc.admin, "vm2", nil)
	vm3 := cc.boot(t, eve, "vm3", nil)
	for _, id := range []string{vm1, vm2, vm3} {
		cc.waitStatus(t, id, "ACTIVE")
	}
	if r := doV(t, "DELETE", cc.url(0)+"/compute/v2.1/servers/"+vm2, cc.admin, nil, "2.1"); r.Status != 204 {
		t.Fatalf("delete vm2: %d %s", r.Status, r.Body)
	}
	cluster.WaitFor(t, 10*time.Second, "vm2 deleted", func() bool {
		s, _, err := fsm.GetServer(cc.Nodes[0].State(), vm2)
		return err == nil && s.Deleted
	})
	srv := map[string]*fsm.Server{}
	for _, id := range []string{vm1, vm2, vm3} {
		s, _, err := fsm.GetServer(cc.Nodes[0].State(), id)
		if err != nil || s.LaunchedAt == 0 {
			t.Fatalf("server %s: %v %+v", id, err, s)
		}
		srv[id] = s
	}
	first := min(srv[vm1].LaunchedAt, srv[vm2].LaunchedAt, srv[vm3].LaunchedAt)
	start := time.UnixMicro(first).UTC().Add(-time.Hour).Truncate(time.Second)
	end := time.Now().UTC()
	endMicros := end.UnixMicro()
	q := url.Values{"start": {start.Format("2006-01-02T15:04:05")}, "end": {end.Format("2006-01-02T15:04:05.000000")}}
	base := cc.url(0) + "/compute/v2.1/os-simple-tenant-usage"
	hoursOf := func(s *fsm.Server) float64 {
		to := endMicros
		if s.TerminatedAt != 0 {
			to = s.TerminatedAt
		}
		return float64(to-s.LaunchedAt) / 3.6e9
	}

	q.Set("detailed", "1")
	r := doV(t, "GET", base+"?"+q.Encode(), cc.admin, nil, "2.1")
	usages := r.json(t)["tenant_usages"].([]any)
	if r.Status != 200 || len(usages) != 2 {
		t.Fatalf("usage: %d %s", r.Status, r.Body)
	}
	projects := []string{admin, other}
	slices.Sort(projects)
	want := map[string][]string{admin: {vm1, vm2}, other: {vm3}}
	slices.Sort(want[admin])
	for i, u := range usages {
		u := u.(map[string]any)
		p := projects[i]
		if u["tenant_id"] != p || u["start"] != start.Format("2006-01-02T15:04:05.000000") || u["stop"] != end.Format("2006-01-02T15:04:05.000000") {
			t.Fatalf("usage %d: %v", i, u)
		}
		if sortedKeys(u) != "server_usages,start,stop,tenant_id,total_hours,total_local_gb_usage,total_memory_mb_usage,total_vcpus_usage" {
			t.Fatalf("usage keys %s", sortedKeys(u))
		}
		var total float64
		list := u["server_usages"].([]any)
		if len(list) != len(want[p]) {
			t.Fatalf("project %s: %d servers, want %d: %v", p, len(list), len(want[p]), list)
		}
		for j, su := range list {
			su := su.(map[string]any)
			s := srv[want[p][j]]
			h := hoursOf(s)
			total += h
			if sortedKeys(su) != "ended_at,flavor,hours,instance_id,local_gb,memory_mb,name,started_at,state,tenant_id,uptime,vcpus" ||
				su["instance_id"] != s.ID || su["name"] != s.Name || su["tenant_id"] != p || su["flavor"] != "m1.tiny" ||
				su["vcpus"] != 1.0 || su["memory_mb"] != 512.0 || su["local_gb"] != 1.0 || !approx(su["hours"].(float64), h) ||
				su["started_at"] != usageFormat(s.LaunchedAt) {
				t.Errorf("server usage %v, want hours %v of %+v", su, h, s)
			}
			if s.Deleted {
				if su["state"] != "terminated" || su["ended_at"] != usageFormat(s.TerminatedAt) || su["uptime"] != float64((s.TerminatedAt-s.LaunchedAt)/1e6) {
					t.Errorf("deleted server's usage %v", su)
				}
			} else if su["state"] != "active" || su["ended_at"] != nil {
				t.Errorf("live server's usage %v", su)
			}
		}
		if !approx(u["total_hours"].(float64), total) || !approx(u["total_vcpus_usage"].(float64), total) ||
			!approx(u["total_memory_mb_usage"].(float64), 512*total) || !approx(u["total_local_gb_usage"].(float64), total) {
			t.Errorf("totals %v, want hours %v", u, total)
		}
	}

	// Without detailed: the sums only.
	q.Del("detailed")
	r = doV(t, "GET", base+"?"+q.Encode(), cc.admin, nil, "2.1")
	if u := r.json(t)["tenant_usages"].([]any)[0].(map[string]any); u["server_usages"] != nil {
		t.Fatalf("server_usages without detailed=1: %v", u)
	}
	// A period after vm2 ended: vm2 is out, vm1 counts from the start.
	from := srv[vm2].TerminatedAt + 1
	q2 := url.Values{"start": {usageFormat(from)}, "end": {q.Get("end")}}
	r = doV(t, "GET", base+"/"+admin+"?"+q2.Encode(), cc.admin, nil, "2.1")
	u := r.json(t)["tenant_usage"].(map[string]any)
	if l := u["server_usages"].([]any); len(l) != 1 || l[0].(map[string]any)["instance_id"] != vm1 ||
		!approx(l[0].(map[string]any)["hours"].(float64), float64(endMicros-from)/3.6e9) {
		t.Fatalf("period after vm2: %s", r.Body)
	}
	// A period before any launch: nothing.
	q3 := url.Values{"start": {start.Add(-time.Hour).Format("2006-01-02T15:04:05")}, "end": {start.Format("2006-01-02T15:04:05")}}
	if r := doV(t, "GET", base+"?"+q3.Encode(), cc.admin, nil, "2.1"); len(r.json(t)["tenant_usages"].([]any)) != 0 {
		t.Fatalf("period before the servers: %s", r.Body)
	}
	if r := doV(t, "GET", base+"/"+admin+"?"+q3.Encode(), cc.admin, nil, "2.1"); r.Status != 200 || string(r.Body) != "{\"tenant_usage\":{}}\n" {
		t.Fatalf("show of a period without usage: %d %q", r.Status, r.Body)
	}
	// Show: the project's reader or an admin.
	if r := doV(t, "GET", base+"/"+other+"?"+q.Encode(), eve, nil, "2.1"); r.Status != 200 || len(r.json(t)["tenant_usage"].(map[string]any)["server_usages"].([]any)) != 1 {
		t.Fatalf("own usage: %d %s", r.Status, r.Body)
	}
	if r := doV(t, "GET", base+"/"+admin+"?"+q.Encode(), eve, nil, "2.1"); r.Status != 403 {
		t.Fatalf("another project's usage: %d %s", r.Status, r.Body)
	}
	if r := doV(t, "GET", base+"?"+q.Encode(), eve, nil, "2.1"); r.Status != 403 {
		t.Fatalf("every project's usage as a member: %d %s", r.Status, r.Body)
	}
	// No period: now to now (Nova's default), not an error.
	if r := doV(t, "GET", base, cc.admin, nil, "2.1"); r.Status != 200 {
		t.Fatalf("no period: %d %s", r.Status, r.Body)
	}

	// 2.40: pages of servers in (project, id) order; limit is ignored before.
	q.Set("detailed", "1")
	order := append(slices.Clone(want[projects[0]]), want[projects[1]]...)
	for _, c := range []struct {
		version string
		pages   int
	}{{"2.39", 1}, {"2.40", 4}} {
		var got []string
		next := base + "?" + q.Encode() + "&limit=1"
		pages := 0
		for ; next != "" && pages < 10; pages++ {
			r := doV(t, "GET", next, cc.admin, nil, c.version)
			m := r.json(t)
			for _, u := range m["tenant_usages"].([]any) {
				for _, su := range u.(map[string]any)["server_usages"].([]any) {
					got = append(got, su.(map[string]any)["instance_id"].(string))
				}
			}
			next = ""
			if l, ok := m["tenant_usages_links"].([]any); ok {
				next = l[0].(map[string]any)["href"].(string)
				if !strings.Contains(next, "detailed=1") || !strings.Contains(next, "start=") {
					t.Fatalf("next link %s lost the query", next)
				}
			}
		}
		if !slices.Equal(got, order) || pages != c.pages {
			t.Fatalf("%s: %d pages of %v, want %d of %v", c.version, pages, got, c.pages, order)
		}
	}
}
