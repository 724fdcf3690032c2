package api

import (
	"strings"
	"testing"

	"github.com/keel-cloud/keel/fsm"
)

// Acceptance 6 (servers' share): invalid requests get Nova's status and
// fault, and change nothing (state hash compared).
func TestServerBadInput(t *testing.T) {
	cc := newComputeCloud(t, 1)
	base := cc.url(0) + "/compute/v2.1/servers"
	ok := cc.createServer(t, 0, cc.admin, map[string]any{"name": "keep"})
	if ok.Status != 202 {
		t.Fatalf("create: %d %s", ok.Status, ok.Body)
	}
	id := ok.json(t)["server"].(map[string]any)["id"].(string)
	before, _ := cc.Nodes[0].FSM().Hash()
	long := strings.Repeat("x", 256)
	meta129 := map[string]string{}
	for i := 0; i < 129; i++ {
		meta129[strings.Repeat("k", 1+i%200)+string(rune('a'+i%26))+string(rune('a'+i/26))] = "v"
	}
	v274 := []string{"OpenStack-API-Version", "compute 2.74"}
	type tc struct {
		name   string
		method string
		path   string
		body   any
		hdr    []string
		status int
		key    string
	}
	srv := func(over map[string]any) map[string]any {
		s := map[string]any{"name": "vm", "flavorRef": "1", "imageRef": cc.imageID, "networks": "none"}
		for k, v := range over {
			if v == nil {
				delete(s, k)
			} else {
				s[k] = v
			}
		}
		return map[string]any{"server": s}
	}
	cases := []tc{
		{"no server key", "POST", base, map[string]any{"srv": 1}, v274, 400, "badRequest"},
		{"server not object", "POST", base, map[string]any{"server": "x"}, v274, 400, "badRequest"},
		{"missing name", "POST", base, srv(map[string]any{"name": nil}), v274, 400, "badRequest"},
		{"empty name", "POST", base, srv(map[string]any{"name": ""}), v274, 400, "badRequest"},
		{"name too long", "POST", base, srv(map[string]any{"name": long}), v274, 400, "badRequest"},
		{"name not string", "POST", base, srv(map[string]any{"name": 5}), v274, 400, "badRequest"},
		{"name leading space", "POST", base, srv(map[string]any{"name": " vm"}), v274, 400, "badRequest"},
		{"missing flavor", "POST", base, srv(map[string]any{"flavorRef": nil}), v274, 400, "badRequest"},
		{"unknown flavor", "POST", base, srv(map[string]any{"flavorRef": "999"}), v274, 400, "badRequest"},
		{"flavor not string", "POST", base, srv(map[string]any{"flavorRef": []int{1}}), v274, 400, "badRequest"},
		{"missing image", "POST", base, srv(map[string]any{"imageRef": nil}), v274, 400, "badRequest"},
		{"unknown image", "POST", base, srv(map[string]any{"imageRef": "6f1c9a7e-0000-4000-8000-000000000000"}), v274, 400, "badRequest"},
		{"unknown key", "POST", base, srv(map[string]any{"key_name": "nope"}), v274, 400, "badRequest"},
		{"bad user_data", "POST", base, srv(map[string]any{"user_data": "%%% not base64"}), v274, 400, "badRequest"},
		{"user_data too large", "POST", base, srv(map[string]any{"user_data": strings.Repeat("QUFB", 16384+1)}), v274, 400, "badRequest"},
		{"metadata not strings", "POST", base, srv(map[string]any{"metadata": map[string]any{"a": 1}}), v274, 400, "badRequest"},
		{"metadata key too long", "POST", base, srv(map[string]any{"metadata": map[string]string{long: "v"}}), v274, 400, "badRequest"},
		{"metadata over quota", "POST", base, srv(map[string]any{"metadata": meta129}), v274, 403, "forbidden"},
		{"negative min_count", "POST", base, srv(map[string]any{"min_count": -1}), v274, 400, "badRequest"},
		{"min over max", "POST", base, srv(map[string]any{"min_count": 3, "max_count": 2}), v274, 400, "badRequest"},
		{"count not int", "POST", base, srv(map[string]any{"max_count": "two"}), v274, 400, "badRequest"},
		{"unknown AZ", "POST", base, srv(map[string]any{"availability_zone": "mars"}), v274, 400, "badRequest"},
		{"networks missing at 2.37+", "POST", base, srv(map[string]any{"networks": nil}), v274, 400, "badRequest"},
		{"networks bad word", "POST", base, srv(map[string]any{"networks": "some"}), v274, 400, "badRequest"},
		{"unknown property", "POST", base, srv(map[string]any{"color": "red"}), v274, 400, "badRequest"},
		{"description before 2.19", "POST", base, srv(map[string]any{"description": "d"}), []string{"OpenStack-API-Version", "compute 2.18"}, 400, "badRequest"},
		{"tags before 2.52", "POST", base, srv(map[string]any{"tags": []string{"a"}}), []string{"OpenStack-API-Version", "compute 2.51"}, 400, "badRequest"},
		{"bad tag", "POST", base, srv(map[string]any{"tags": []string{"a/b"}}), v274, 400, "badRequest"},
		{"too many tags", "POST", base, srv(map[string]any{"tags": strings.Split(strings.Repeat("t,", 51), ",")[:51]}), v274, 400, "badRequest"},
		{"volumes", "POST", base, srv(map[string]any{"block_device_mapping_v2": []any{}}), v274, 501, "notImplemented"},
		{"malformed JSON", "POST", base, `{"server": {`, v274, 400, "badRequest"},
		{"bad uuid show", "GET", base + "/not-a-uuid", nil, nil, 404, "itemNotFound"},
		{"missing server show", "GET", base + "/6f1c9a7e-0000-4000-8000-000000000000", nil, nil, 404, "itemNotFound"},
		{"update unknown field", "PUT", base + "/" + id, map[string]any{"server": map[string]any{"flavor": "x"}}, nil, 400, "badRequest"},
		{"update name too long", "PUT", base + "/" + id, map[string]any{"server": map[string]any{"name": long}}, nil, 400, "badRequest"},
		{"update no body", "PUT", base + "/" + id, map[string]any{}, nil, 400, "badRequest"},
		{"delete missing", "DELETE", base + "/6f1c9a7e-0000-4000-8000-000000000000", nil, nil, 404, "itemNotFound"},
		{"list bad limit", "GET", base + "?limit=-1", nil, nil, 400, "badRequest"},
		{"list limit not int", "GET", base + "?limit=ten", nil, nil, 400, "badRequest"},
		{"list unknown marker", "GET", base + "?marker=6f1c9a7e-0000-4000-8000-000000000000", nil, nil, 400, "badRequest"},
		{"list bad status", "GET", base + "?status=SLEEPY", nil, []string{"OpenStack-API-Version", "compute 2.38"}, 400, "badRequest"},
		{"list bad changes-since", "GET", base + "?changes-since=yesterday", nil, nil, 400, "badRequest"},
		{"list bad sort key", "GET", base + "?sort_key=color", nil, nil, 400, "badRequest"},
		{"list bad sort dir", "GET", base + "?sort_dir=up", nil, nil, 400, "badRequest"},
		{"metadata value not string", "POST", base + "/" + id + "/metadata", map[string]any{"metadata": map[string]any{"a": []int{1}}}, nil, 400, "badRequest"},
		{"metadata item URI mismatch", "PUT", base + "/" + id + "/metadata/a", map[string]any{"meta": map[string]string{"b": "1"}}, nil, 400, "badRequest"},
		{"tag too long", "PUT", base + "/" + id + "/tags/" + strings.Repeat("t", 61), nil, []string{"OpenStack-API-Version", "compute 2.26"}, 400, "badRequest"},
	}
	for _, c := range cases {
		r := do(t, c.method, c.path, cc.admin, c.body, c.hdr...)
		if r.Status != c.status {
			t.Errorf("%s: HTTP %d %s, want %d", c.name, r.Status, r.Body, c.status)
			continue
		}
		if f, ok := r.json(t)[c.key].(map[string]any); !ok || f["message"] == "" {
			t.Errorf("%s: body %s lacks %q", c.name, r.Body, c.key)
		}
	}
	if after, _ := cc.Nodes[0].FSM().Hash(); after != before {
		t.Fatal("invalid requests changed the stored state")
	}
	if n := len(cases); n < 40 {
		t.Fatalf("only %d cases", n)
	}
	_ = fsm.TableServer
}

// Acceptance 7 (servers): another project's server is a 404 to its members.
func TestServerOfAnotherProjectIsNotFound(t *testing.T) {
	cc := newComputeCloud(t, 1)
	r := cc.createServer(t, 0, cc.admin, map[string]any{"name": "admins"})
	id := r.json(t)["server"].(map[string]any)["id"].(string)
	st := cc.Nodes[0].State()
	member, _ := fsm.RoleByName(st, "member")
	apply(t, cc.apiCluster, &fsm.CreateProject{Project: fsm.Project{ID: "0000000000000000000000000000000e", Name: "else", DomainID: "default", Enabled: true}})
	hash, _ := HashPassword("pw")
	apply(t, cc.apiCluster, &fsm.CreateUser{User: fsm.User{ID: "0000000000000000000000000000000f", Name: "eve", DomainID: "default", PasswordHash: hash, Enabled: true}})
	apply(t, cc.apiCluster, &fsm.GrantRole{Assignment: fsm.RoleAssignment{UserID: "0000000000000000000000000000000f", RoleID: member.ID, ProjectID: "0000000000000000000000000000000e"}})
	eve := login(t, cc.url(0), "eve", "pw", projectScope("else"))
	for _, m := range []string{"GET", "DELETE"} {
		if r := do(t, m, cc.url(0)+"/compute/v2.1/servers/"+id, eve, nil); r.Status != 404 {
			t.Fatalf("%s another project's server: %d", m, r.Status)
		}
	}
	if r := do(t, "GET", cc.url(0)+"/compute/v2.1/servers?all_tenants=1", eve, nil); len(r.json(t)["servers"].([]any)) != 0 {
		t.Fatalf("all_tenants for a non-admin leaks servers: %s", r.Body)
	}
}
