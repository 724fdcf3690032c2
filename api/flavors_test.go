package api

import (
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/keel-cloud/keel/cluster"
	"github.com/keel-cloud/keel/fsm"
	"github.com/keel-cloud/keel/internal/ids"
)

// flvEnv is a 1-node cluster with the default flavors, an admin, a member
// of the admin project and a member of another project.
type flvEnv struct {
	ac                   *apiCluster
	url                  string // the controller's base URL
	admin, member, other string // tokens
	adminProject         string
	otherProject         string
}

func newFlvEnv(t *testing.T) *flvEnv {
	t.Helper()
	ac := newAPICluster(t, 1)
	st := ac.Nodes[0].State()
	cluster.WaitFor(t, 10*time.Second, "default flavors", func() bool {
		done, _ := fsm.DefaultFlavorsHandled(st)
		return done
	})
	e := &flvEnv{ac: ac, url: ac.url(0), otherProject: ids.Hex()}
	adminProject, err := fsm.ProjectByName(st, "default", "admin")
	if err != nil {
		t.Fatal(err)
	}
	e.adminProject = adminProject.ID
	member, _ := fsm.RoleByName(st, "member")
	apply(t, ac, &fsm.CreateProject{Project: fsm.Project{ID: e.otherProject, Name: "other", DomainID: "default", Enabled: true}})
	for _, u := range []struct{ name, project string }{{"member", e.adminProject}, {"other", e.otherProject}} {
		id := ids.Hex()
		// The lowest bcrypt cost keeps logins fast (under -race too).
		hash, _ := bcrypt.GenerateFromPassword([]byte(u.name+"-pw"), bcrypt.MinCost)
		apply(t, ac, &fsm.CreateUser{User: fsm.User{ID: id, Name: u.name, DomainID: "default", PasswordHash: string(hash), Enabled: true}})
		apply(t, ac, &fsm.GrantRole{Assignment: fsm.RoleAssignment{UserID: id, RoleID: member.ID, ProjectID: u.project}})
	}
	e.admin = login(t, e.url, "admin", testAdminPassword, projectScope("admin"))
	e.member = login(t, e.url, "member", "member-pw", projectScope("admin"))
	e.other = login(t, e.url, "other", "other-pw", projectScope("other"))
	return e
}

// call sends a compute request at microversion mv ("" for none).
func (e *flvEnv) call(t *testing.T, method, path, tok, mv string, body any) resp {
	t.Helper()
	var hdr []string
	if mv != "" {
		hdr = []string{"OpenStack-API-Version", "compute " + mv}
	}
	return do(t, method, e.url+"/compute/v2.1"+path, tok, body, hdr...)
}

// ok wants status want and returns the decoded body (nil if empty).
func (e *flvEnv) ok(t *testing.T, want int, method, path, tok, mv string, body any) map[string]any {
	t.Helper()
	r := e.call(t, method, path, tok, mv, body)
	if r.Status != want {
		t.Fatalf("%s %s (mv %q): HTTP %d %s, want %d", method, path, mv, r.Status, r.Body, want)
	}
	if len(r.Body) == 0 {
		return nil
	}
	return r.json(t)
}

// fault wants a Nova fault of status whose message contains msg.
func (e *flvEnv) fault(t *testing.T, status int, msg, method, path, tok, mv string, body any) {
	t.Helper()
	r := e.call(t, method, path, tok, mv, body)
	checkFlvFault(t, r, status, msg, method+" "+path)
}

func checkFlvFault(t *testing.T, r resp, status int, msg, what string) {
	t.Helper()
	if r.Status != status {
		t.Fatalf("%s: HTTP %d %s, want %d", what, r.Status, r.Body, status)
	}
	f, ok := r.json(t)[NovaFaultName(status)].(map[string]any)
	if !ok {
		t.Fatalf("%s: no %s fault in %s", what, NovaFaultName(status), r.Body)
	}
	if m, _ := f["message"].(string); !strings.Contains(m, msg) || f["code"] != float64(status) {
		t.Fatalf("%s: fault %v, want code %d and a message containing %q", what, f, status, msg)
	}
}

func (e *flvEnv) hash(t *testing.T) string {
	t.Helper()
	h, err := e.ac.Nodes[0].FSM().Hash()
	if err != nil {
		t.Fatal(err)
	}
	return h
}

func flvIDs(t *testing.T, body map[string]any) []string {
	t.Helper()
	list, ok := body["flavors"].([]any)
	if !ok {
		t.Fatalf("no flavors list in %v", body)
	}
	out := []string{}
	for _, f := range list {
		out = append(out, f.(map[string]any)["id"].(string))
	}
	return out
}

func flvBody(name string, ram, vcpus, disk any, extra ...any) map[string]any {
	f := map[string]any{"name": name, "ram": ram, "vcpus": vcpus, "disk": disk}
	for i := 0; i+1 < len(extra); i += 2 {
		f[extra[i].(string)] = extra[i+1]
	}
	return map[string]any{"flavor": f}
}

// The default flavors, and the flavor documents at each microversion.
func TestFlavorDefaultsAndViews(t *testing.T) {
	e := newFlvEnv(t)
	list := e.ok(t, 200, "GET", "/flavors", e.member, "", nil)
	if got := flvIDs(t, list); !slices.Equal(got, []string{"1", "2", "3", "4", "5"}) {
		t.Fatalf("default flavors %v", got)
	}
	first := list["flavors"].([]any)[0].(map[string]any)
	if len(first) != 3 || first["name"] != "m1.tiny" {
		t.Fatalf("index entry at 2.1: %v", first)
	}
	links := first["links"].([]any)
	if self := links[0].(map[string]any); self["rel"] != "self" || self["href"] != e.url+"/compute/v2.1/flavors/1" {
		t.Fatalf("self link %v", self)
	}
	if bm := links[1].(map[string]any); bm["rel"] != "bookmark" || bm["href"] != e.url+"/compute/flavors/1" {
		t.Fatalf("bookmark link %v", bm)
	}
	if _, ok := e.ok(t, 200, "GET", "/flavors", e.member, "2.55", nil)["flavors"].([]any)[0].(map[string]any)["description"]; !ok {
		t.Fatal("index at 2.55 has no description")
	}

	sizes := map[string][3]float64{"m1.tiny": {1, 512, 1}, "m1.small": {1, 2048, 20}, "m1.medium": {2, 4096, 40}, "m1.large": {4, 8192, 80}, "m1.xlarge": {8, 16384, 160}}
	for _, f := range e.ok(t, 200, "GET", "/flavors/detail", e.member, "", nil)["flavors"].([]any) {
		m := f.(map[string]any)
		want := sizes[m["name"].(string)]
		if m["vcpus"] != want[0] || m["ram"] != want[1] || m["disk"] != want[2] || m["os-flavor-access:is_public"] != true {
			t.Fatalf("default flavor %v, want vcpus/ram/disk %v", m, want)
		}
	}

	for _, tc := range []struct {
		mv                     string
		swap                   any
		description, extraSpec bool
	}{
		{"", "", false, false},
		{"2.54", "", false, false},
		{"2.55", "", true, false},
		{"2.60", "", true, false},
		{"2.61", "", true, true},
		{"2.74", "", true, true},
		{"2.75", float64(0), true, true},
		{"latest", float64(0), true, true},
	} {
		r := e.call(t, "GET", "/flavors/1", e.member, tc.mv, nil)
		if r.Status != 200 {
			t.Fatalf("show at %q: %d %s", tc.mv, r.Status, r.Body)
		}
		f := r.json(t)["flavor"].(map[string]any)
		_, hasDesc := f["description"]
		_, hasSpecs := f["extra_specs"]
		if f["swap"] != tc.swap || hasDesc != tc.description || hasSpecs != tc.extraSpec {
			t.Errorf("show at %q: swap %#v description %v extra_specs %v; want %#v %v %v", tc.mv, f["swap"], hasDesc, hasSpecs, tc.swap, tc.description, tc.extraSpec)
		}
		for _, k := range []string{"id", "name", "ram", "vcpus", "disk", "OS-FLV-EXT-DATA:ephemeral", "OS-FLV-DISABLED:disabled", "os-flavor-access:is_public", "rxtx_factor", "links"} {
			if _, ok := f[k]; !ok {
				t.Errorf("show at %q lacks %s", tc.mv, k)
			}
		}
		// rxtx_factor is a float, as Python writes it.
		if !strings.Contains(string(r.Body), `"rxtx_factor":1.0`) {
			t.Errorf("rxtx_factor not rendered as 1.0: %s", r.Body)
		}
		if hasDesc && f["description"] != nil {
			t.Errorf("description of a flavor without one: %#v", f["description"])
		}
	}
	e.fault(t, 404, "Flavor nope could not be found.", "GET", "/flavors/nope", e.member, "", nil)
}

func TestFlavorCreateUpdateDelete(t *testing.T) {
	e := newFlvEnv(t)
	// A given id, string numbers, every optional field.
	f := e.ok(t, 200, "POST", "/flavors", e.admin, "", flvBody("big", 1024, "2", 10,
		"id", "big-1", "swap", 512, "OS-FLV-EXT-DATA:ephemeral", 5, "rxtx_factor", "2.5", "os-flavor-access:is_public", "false"))["flavor"].(map[string]any)
	want := map[string]any{"id": "big-1", "name": "big", "ram": float64(1024), "vcpus": float64(2), "disk": float64(10), "swap": float64(512),
		"OS-FLV-EXT-DATA:ephemeral": float64(5), "rxtx_factor": 2.5, "os-flavor-access:is_public": false, "OS-FLV-DISABLED:disabled": false}
	for k, v := range want {
		if f[k] != v {
			t.Errorf("created %s = %#v, want %#v", k, f[k], v)
		}
	}
	got := e.ok(t, 200, "GET", "/flavors/big-1", e.admin, "", nil)["flavor"].(map[string]any)
	if got["ram"] != float64(1024) || got["os-flavor-access:is_public"] != false {
		t.Fatalf("read back %v", got)
	}

	// Generated ids: no id, null, "auto", a number.
	for i, id := range []any{nil, "auto", "none-given"} {
		body := flvBody(fmt.Sprintf("gen%d", i), 64, 1, 0)
		if id != "none-given" {
			body["flavor"].(map[string]any)["id"] = id
		}
		got := e.ok(t, 200, "POST", "/flavors", e.admin, "", body)["flavor"].(map[string]any)
		if !ids.IsUUID(got["id"].(string)) {
			t.Errorf("id %v gave flavor id %v, want a UUID", id, got["id"])
		}
	}
	if got := e.ok(t, 200, "POST", "/flavors", e.admin, "", flvBody("numbered", 64, 1, 0, "id", 42))["flavor"].(map[string]any); got["id"] != "42" {
		t.Fatalf("numeric id 42 became %v", got["id"])
	}

	// Conflicts, with Nova's messages.
	before := e.hash(t)
	e.fault(t, 409, "Flavor with ID big-1 already exists.", "POST", "/flavors", e.admin, "", flvBody("other name", 64, 1, 0, "id", "big-1"))
	e.fault(t, 409, "Flavor with name big already exists.", "POST", "/flavors", e.admin, "", flvBody("big", 64, 1, 0))
	e.fault(t, 403, "Policy doesn't allow", "POST", "/flavors", e.member, "", flvBody("mine", 64, 1, 0))
	if e.hash(t) != before {
		t.Fatal("refused creates changed the state")
	}

	// Description: 2.55+, on create and with PUT.
	e.fault(t, 400, "Additional properties are not allowed ('description' was unexpected)", "POST", "/flavors", e.admin, "2.54",
		flvBody("described", 64, 1, 0, "description", "x"))
	got = e.ok(t, 200, "POST", "/flavors", e.admin, "2.55", flvBody("described", 64, 1, 0, "description", "first words"))["flavor"].(map[string]any)
	if got["description"] != "first words" {
		t.Fatalf("description on create: %v", got)
	}
	id := got["id"].(string)
	e.fault(t, 404, "could not be found", "PUT", "/flavors/"+id, e.admin, "2.54", map[string]any{"flavor": map[string]any{"description": "x"}})
	got = e.ok(t, 200, "PUT", "/flavors/"+id, e.admin, "2.61", map[string]any{"flavor": map[string]any{"description": "second words"}})["flavor"].(map[string]any)
	if got["description"] != "second words" || got["extra_specs"] == nil {
		t.Fatalf("PUT at 2.61: %v", got)
	}
	got = e.ok(t, 200, "PUT", "/flavors/"+id, e.admin, "2.55", map[string]any{"flavor": map[string]any{"description": nil}})["flavor"].(map[string]any)
	if v, ok := got["description"]; !ok || v != nil {
		t.Fatalf("cleared description: %v", got)
	}
	e.fault(t, 404, "Flavor nope could not be found.", "PUT", "/flavors/nope", e.admin, "2.55", map[string]any{"flavor": map[string]any{"description": "x"}})

	// Delete: 202, then gone.
	if r := e.call(t, "DELETE", "/flavors/big-1", e.admin, "", nil); r.Status != 202 || len(r.Body) != 0 {
		t.Fatalf("delete: %d %s", r.Status, r.Body)
	}
	e.fault(t, 404, "Flavor big-1 could not be found.", "GET", "/flavors/big-1", e.admin, "", nil)
	e.fault(t, 404, "Flavor big-1 could not be found.", "DELETE", "/flavors/big-1", e.admin, "", nil)
	e.fault(t, 403, "Policy doesn't allow", "DELETE", "/flavors/1", e.member, "", nil)
	// The name is free again.
	e.ok(t, 200, "POST", "/flavors", e.admin, "", flvBody("big", 64, 1, 0))
}

func TestFlavorListFilters(t *testing.T) {
	e := newFlvEnv(t)
	for _, f := range []map[string]any{
		flvBody("a-small", 128, 1, 1, "id", "a"),
		flvBody("b-mid", 4096, 2, 50, "id", "b"),
		flvBody("c-private", 2048, 1, 5, "id", "c", "os-flavor-access:is_public", false),
	} {
		e.ok(t, 200, "POST", "/flavors", e.admin, "", f)
	}
	// A disabled flavor (no API sets that; Nova neither).
	apply(t, e.ac, &fsm.CreateFlavor{Flavor: fsm.Flavor{ID: "d", Name: "d-disabled", VCPUs: 1, RAM: 64, RxTxFactor: 1, IsPublic: true, Disabled: true, CreatedAt: 1}})

	list := func(tok, query, mv string) []string {
		t.Helper()
		return flvIDs(t, e.ok(t, 200, "GET", "/flavors"+query, tok, mv, nil))
	}
	for _, tc := range []struct {
		tok, query string
		want       []string
	}{
		{e.member, "", []string{"1", "2", "3", "4", "5", "a", "b"}},
		{e.member, "?is_public=false", []string{"1", "2", "3", "4", "5", "a", "b"}}, // ignored for non-admins
		{e.admin, "", []string{"1", "2", "3", "4", "5", "a", "b", "d"}},
		{e.admin, "?is_public=false", []string{"c"}},
		{e.admin, "?is_public=None", []string{"1", "2", "3", "4", "5", "a", "b", "c", "d"}},
		{e.admin, "?is_public=none&minRam=2048", []string{"2", "3", "4", "5", "b", "c"}},
		{e.admin, "?is_public=none&minDisk=40&minRam=4096", []string{"3", "4", "5", "b"}},
		{e.member, "?sort_key=memory_mb&sort_dir=desc", []string{"5", "4", "b", "3", "2", "1", "a"}}, // ties: later first
		{e.member, "?sort_key=name", []string{"a", "b", "4", "3", "2", "1", "5"}},
		{e.member, "?sort_key=vcpus", []string{"1", "2", "a", "3", "b", "4", "5"}},
		{e.member, "?name=^m1%5C.", []string{"1", "2", "3", "4", "5"}}, // before 2.75, name is a regex filter
		{e.member, "?unknown=1", []string{"1", "2", "3", "4", "5", "a", "b"}},
	} {
		if got := list(tc.tok, tc.query, ""); !slices.Equal(got, tc.want) {
			t.Errorf("list %q: %v, want %v", tc.query, got, tc.want)
		}
	}
	// The other project is given the private flavor: it sees it, others not.
	e.ok(t, 200, "POST", "/flavors/c/action", e.admin, "", map[string]any{"addTenantAccess": map[string]any{"tenant": e.otherProject}})
	if got := list(e.other, "", ""); !slices.Contains(got, "c") {
		t.Errorf("other's list %v lacks its private flavor", got)
	}
	if got := list(e.member, "", ""); slices.Contains(got, "c") {
		t.Errorf("member's list %v shows another project's private flavor", got)
	}

	// Pagination: limit, marker and the next link.
	r := e.ok(t, 200, "GET", "/flavors/detail?limit=3&sort_key=flavorid", e.member, "", nil)
	if got := flvIDs(t, r); !slices.Equal(got, []string{"1", "2", "3"}) {
		t.Fatalf("first page %v", got)
	}
	links, _ := r["flavors_links"].([]any)
	if len(links) != 1 {
		t.Fatalf("first page links %v", r["flavors_links"])
	}
	next := links[0].(map[string]any)
	if next["rel"] != "next" || next["href"] != e.url+"/compute/v2.1/flavors/detail?limit=3&marker=3&sort_key=flavorid" {
		t.Fatalf("next link %v", next)
	}
	r = e.ok(t, 200, "GET", strings.TrimPrefix(next["href"].(string), e.url+"/compute/v2.1"), e.member, "", nil)
	if got := flvIDs(t, r); !slices.Equal(got, []string{"4", "5", "a"}) {
		t.Fatalf("second page %v", got)
	}
	r = e.ok(t, 200, "GET", "/flavors?limit=3&marker=a", e.member, "", nil)
	if got := flvIDs(t, r); !slices.Equal(got, []string{"b"}) || r["flavors_links"] != nil {
		t.Fatalf("last page %v %v", got, r["flavors_links"])
	}
	if got := list(e.member, "?sort_dir=desc&marker=3", ""); !slices.Equal(got, []string{"2", "1"}) {
		t.Fatalf("descending after 3: %v", got)
	}
	if got := list(e.member, "?limit=0", ""); len(got) != 0 {
		t.Fatalf("limit=0: %v", got)
	}
	// A disabled flavor can be a non-admin's marker (Nova looks it up
	// without the disabled filter); another project's private one cannot.
	if got := list(e.member, "?marker=d", ""); len(got) != 0 {
		t.Fatalf("after d: %v", got)
	}
	e.fault(t, 400, "marker [c] not found", "GET", "/flavors?marker=c", e.member, "", nil)
	e.fault(t, 400, "marker [zz] not found", "GET", "/flavors?marker=zz", e.admin, "", nil)
	e.fault(t, 400, "Invalid input for query parameters sort_key. Value: ram. 'ram' is not one of [", "GET", "/flavors?sort_key=ram", e.member, "", nil)
	e.fault(t, 400, "Invalid input for query parameters sort_dir.", "GET", "/flavors?sort_dir=up", e.member, "", nil)
	e.fault(t, 400, "Invalid input for query parameters limit. Value: -1. '-1' does not match '^[0-9]*$'", "GET", "/flavors?limit=-1", e.member, "", nil)
	e.fault(t, 400, "Invalid minRam filter [big]", "GET", "/flavors?minRam=big", e.member, "", nil)
	e.fault(t, 400, "Invalid minDisk filter [1.5]", "GET", "/flavors/detail?minDisk=1.5", e.member, "", nil)
	e.fault(t, 400, "Invalid is_public filter [maybe]", "GET", "/flavors?is_public=maybe", e.admin, "", nil)
	// 2.75 refuses unknown parameters (and the name filter with them).
	e.fault(t, 400, "Additional properties are not allowed ('unknown' was unexpected)", "GET", "/flavors?unknown=1", e.member, "2.75", nil)
	e.fault(t, 400, "Additional properties are not allowed ('name' was unexpected)", "GET", "/flavors/detail?name=m1", e.member, "2.75", nil)
}

func TestPrivateFlavorsAndAccess(t *testing.T) {
	e := newFlvEnv(t)
	e.ok(t, 200, "POST", "/flavors", e.admin, "", flvBody("secret", 64, 1, 0, "id", "p", "os-flavor-access:is_public", false))
	e.ok(t, 200, "POST", "/flavors/p/os-extra_specs", e.admin, "", map[string]any{"extra_specs": map[string]any{"k": "v"}})

	// Not given to any project: a 404 for non-admins, everywhere.
	for _, tok := range []string{e.member, e.other} {
		e.fault(t, 404, "Flavor p could not be found.", "GET", "/flavors/p", tok, "", nil)
		e.fault(t, 404, "Flavor p could not be found.", "GET", "/flavors/p/os-extra_specs", tok, "", nil)
		e.fault(t, 404, "Flavor p could not be found.", "GET", "/flavors/p/os-extra_specs/k", tok, "", nil)
	}
	if got := e.ok(t, 200, "GET", "/flavors/p/os-flavor-access", e.admin, "", nil)["flavor_access"].([]any); len(got) != 0 {
		t.Fatalf("empty access list: %v", got)
	}

	// Given to the other project.
	r := e.ok(t, 200, "POST", "/flavors/p/action", e.admin, "", map[string]any{"addTenantAccess": map[string]any{"tenant": e.otherProject}})
	if want := []any{map[string]any{"flavor_id": "p", "tenant_id": e.otherProject}}; fmt.Sprint(r["flavor_access"]) != fmt.Sprint(want) {
		t.Fatalf("add access: %v", r)
	}
	e.ok(t, 200, "GET", "/flavors/p", e.other, "", nil)
	if spec := e.ok(t, 200, "GET", "/flavors/p/os-extra_specs/k", e.other, "", nil); spec["k"] != "v" {
		t.Fatalf("other reads the extra spec: %v", spec)
	}
	e.fault(t, 404, "Flavor p could not be found.", "GET", "/flavors/p", e.member, "", nil)
	r = e.ok(t, 200, "GET", "/flavors/p/os-flavor-access", e.admin, "", nil)
	if list := r["flavor_access"].([]any); len(list) != 1 || list[0].(map[string]any)["tenant_id"] != e.otherProject {
		t.Fatalf("access list %v", r)
	}
	e.ok(t, 200, "POST", "/flavors/p/action", e.admin, "", map[string]any{"addTenantAccess": map[string]any{"tenant": e.adminProject}})
	if list := e.ok(t, 200, "GET", "/flavors/p/os-flavor-access", e.admin, "", nil)["flavor_access"].([]any); len(list) != 2 {
		t.Fatalf("access list of two: %v", list)
	}
	e.ok(t, 200, "GET", "/flavors/p", e.member, "", nil)

	before := e.hash(t)
	e.fault(t, 409, "Flavor access already exists for flavor p and project "+e.otherProject+" combination.",
		"POST", "/flavors/p/action", e.admin, "", map[string]any{"addTenantAccess": map[string]any{"tenant": e.otherProject}})
	e.fault(t, 400, "Project ID nope is not a valid project.", "POST", "/flavors/p/action", e.admin, "", map[string]any{"addTenantAccess": map[string]any{"tenant": "nope"}})
	e.fault(t, 404, "Flavor zz could not be found.", "POST", "/flavors/zz/action", e.admin, "", map[string]any{"addTenantAccess": map[string]any{"tenant": e.otherProject}})
	e.fault(t, 409, "Can not add access to a public flavor.", "POST", "/flavors/1/action", e.admin, "2.7", map[string]any{"addTenantAccess": map[string]any{"tenant": e.otherProject}})
	e.fault(t, 404, "Access list not available for public flavors.", "GET", "/flavors/1/os-flavor-access", e.admin, "", nil)
	e.fault(t, 404, "Flavor access not found for p / nope combination.", "POST", "/flavors/p/action", e.admin, "", map[string]any{"removeTenantAccess": map[string]any{"tenant": "nope"}})
	e.fault(t, 400, "There is no such action: grant", "POST", "/flavors/p/action", e.admin, "", map[string]any{"grant": map[string]any{"tenant": "x"}})
	e.fault(t, 400, "Malformed request body", "POST", "/flavors/p/action", e.admin, "", map[string]any{"addTenantAccess": map[string]any{"tenant": "x"}, "removeTenantAccess": map[string]any{"tenant": "x"}})
	e.fault(t, 400, "'tenant' is a required property", "POST", "/flavors/p/action", e.admin, "", map[string]any{"addTenantAccess": map[string]any{}})
	e.fault(t, 403, "Policy doesn't allow", "POST", "/flavors/p/action", e.other, "", map[string]any{"removeTenantAccess": map[string]any{"tenant": e.otherProject}})
	e.fault(t, 403, "Policy doesn't allow", "GET", "/flavors/p/os-flavor-access", e.other, "", nil)
	if e.hash(t) != before {
		t.Fatal("refused access changes changed the state")
	}
	// Before 2.7 Nova lets access be added to a public flavor.
	e.ok(t, 200, "POST", "/flavors/1/action", e.admin, "2.6", map[string]any{"addTenantAccess": map[string]any{"tenant": e.otherProject}})

	r = e.ok(t, 200, "POST", "/flavors/p/action", e.admin, "", map[string]any{"removeTenantAccess": map[string]any{"tenant": e.otherProject}})
	if list := r["flavor_access"].([]any); len(list) != 1 || list[0].(map[string]any)["tenant_id"] != e.adminProject {
		t.Fatalf("after removal: %v", r)
	}
	e.fault(t, 404, "Flavor p could not be found.", "GET", "/flavors/p", e.other, "", nil)
	e.fault(t, 404, "Flavor access not found for p / "+e.otherProject+" combination.",
		"POST", "/flavors/p/action", e.admin, "", map[string]any{"removeTenantAccess": map[string]any{"tenant": e.otherProject}})
}

func TestFlavorExtraSpecs(t *testing.T) {
	e := newFlvEnv(t)
	e.ok(t, 200, "POST", "/flavors", e.admin, "", flvBody("specs", 64, 1, 0, "id", "s"))

	// POST merges and echoes the request (numbers stay numbers there).
	r := e.call(t, "POST", "/flavors/s/os-extra_specs", e.admin, "", map[string]any{"extra_specs": map[string]any{"hw:cpu_policy": "dedicated", "quota:cpu_shares": 1024}})
	if r.Status != 200 || !strings.Contains(string(r.Body), `"quota:cpu_shares":1024`) {
		t.Fatalf("create extra specs: %d %s", r.Status, r.Body)
	}
	e.ok(t, 200, "POST", "/flavors/s/os-extra_specs", e.admin, "", map[string]any{"extra_specs": map[string]any{"hw:cpu_policy": "shared", "a b": "c"}})
	specs := e.ok(t, 200, "GET", "/flavors/s/os-extra_specs", e.member, "", nil)["extra_specs"].(map[string]any)
	if want := map[string]any{"hw:cpu_policy": "shared", "quota:cpu_shares": "1024", "a b": "c"}; fmt.Sprint(specs) != fmt.Sprint(want) {
		t.Fatalf("extra specs %v, want %v", specs, want)
	}
	if got := e.ok(t, 200, "GET", "/flavors/s/os-extra_specs/a%20b", e.member, "", nil); got["a b"] != "c" || len(got) != 1 {
		t.Fatalf("one extra spec: %v", got)
	}
	if f := e.ok(t, 200, "GET", "/flavors/s", e.member, "2.61", nil)["flavor"].(map[string]any); f["extra_specs"].(map[string]any)["hw:cpu_policy"] != "shared" {
		t.Fatalf("extra specs in the flavor at 2.61: %v", f)
	}
	e.fault(t, 404, "Flavor s has no extra specs with key nope.", "GET", "/flavors/s/os-extra_specs/nope", e.member, "", nil)
	e.fault(t, 404, "Flavor zz could not be found.", "GET", "/flavors/zz/os-extra_specs", e.member, "", nil)

	// PUT one key.
	if got := e.ok(t, 200, "PUT", "/flavors/s/os-extra_specs/a%20b", e.admin, "", map[string]any{"a b": "d"}); got["a b"] != "d" {
		t.Fatalf("update: %v", got)
	}
	if got := e.ok(t, 200, "GET", "/flavors/s/os-extra_specs/a%20b", e.member, "", nil); got["a b"] != "d" {
		t.Fatalf("after update: %v", got)
	}

	// DELETE: 200, no body.
	if r := e.call(t, "DELETE", "/flavors/s/os-extra_specs/a%20b", e.admin, "", nil); r.Status != 200 || len(r.Body) != 0 {
		t.Fatalf("delete: %d %s", r.Status, r.Body)
	}
	e.fault(t, 404, "Flavor s has no extra specs with key a b.", "DELETE", "/flavors/s/os-extra_specs/a%20b", e.admin, "", nil)

	// Validation of known extra specs from 2.86 on; nothing before.
	before := e.hash(t)
	for _, tc := range []struct {
		key   string
		value any
		msg   string
	}{
		{"hw:cpu_policy", "bogus", "Validation failed; 'bogus' is not one of: dedicated, shared, mixed."},
		{"hw:numa_nodes", "abc", "Validation failed; 'abc' is not a valid integer value."},
		{"hw:numa_nodes", "0", "Validation failed; '0' is less than the min value of '1'."},
		{"hw:numa_nodes", 0, "Validation failed; '0' is less than the min value of '1'."},
		{"hw:redirected_usb_ports", "16", "is greater than the max value of '15'."},
		{"hw:mem_page_size", "huge", "Validation failed; 'huge' is not of the format"},
		{"hw:boot_menu", "perhaps", "is not a valid boolean-like value."},
		{"hw:no_such_thing", "1", "Validation failed; extra spec 'hw:no_such_thing' does not appear to be a valid extra spec."},
		{"quota:nope", "1", "does not appear to be a valid extra spec."},
		{"resources:NOT_A_CLASS", "1", "does not appear to be a valid extra spec."},
		{"trait:CUSTOM_X", "maybe", "is not one of: required, forbidden."},
		{"group_policy", "all", "is not one of: isolate, none."},
	} {
		e.fault(t, 400, tc.msg, "POST", "/flavors/s/os-extra_specs", e.admin, "2.86", map[string]any{"extra_specs": map[string]any{tc.key: tc.value}})
		e.fault(t, 400, tc.msg, "PUT", "/flavors/s/os-extra_specs/"+tc.key, e.admin, "latest", map[string]any{tc.key: tc.value})
	}
	if e.hash(t) != before {
		t.Fatal("refused extra specs changed the state")
	}
	good := map[string]any{
		"hw:cpu_policy": "dedicated", "hw:numa_nodes": "2", "hw:numa_cpus.0": "0-3,^2", "hw:numa_mem.1": 1024,
		"hw:mem_page_size": "2MiB", "hw:boot_menu": "yes", "aggregate_instance_extra_specs:ssd": "<in> true",
		"quota:cpu_quota": "-5", "resources:VCPU": "2", "resources1:CUSTOM_GPU": "1", "trait:HW_CPU_X86_AVX2": "required",
		"capabilities:cpu_info:features": "<in> avx", "custom:anything": "goes", "no_namespace": "anything", "pci_passthrough:alias": "a1:2",
	}
	e.ok(t, 200, "POST", "/flavors/s/os-extra_specs", e.admin, "2.86", map[string]any{"extra_specs": good})
	// Below 2.86 the same bad values are stored.
	e.ok(t, 200, "POST", "/flavors/s/os-extra_specs", e.admin, "2.85", map[string]any{"extra_specs": map[string]any{"hw:cpu_policy": "bogus", "hw:no_such_thing": "1"}})
	if got := e.ok(t, 200, "GET", "/flavors/s/os-extra_specs/hw:cpu_policy", e.member, "", nil); got["hw:cpu_policy"] != "bogus" {
		t.Fatalf("before 2.86: %v", got)
	}

	before = e.hash(t)
	e.fault(t, 403, "Policy doesn't allow", "POST", "/flavors/s/os-extra_specs", e.member, "", map[string]any{"extra_specs": map[string]any{"a": "b"}})
	e.fault(t, 403, "Policy doesn't allow", "DELETE", "/flavors/s/os-extra_specs/hw:cpu_policy", e.member, "", nil)
	e.fault(t, 400, "Request body and URI mismatch", "PUT", "/flavors/s/os-extra_specs/a", e.admin, "", map[string]any{"b": "c"})
	e.fault(t, 400, "has too many properties", "PUT", "/flavors/s/os-extra_specs/a", e.admin, "", map[string]any{"a": "c", "b": "d"})
	e.fault(t, 400, "{} does not have enough properties", "PUT", "/flavors/s/os-extra_specs/a", e.admin, "", map[string]any{})
	e.fault(t, 400, "Invalid input for field/attribute k. Value: True. True is not of type 'string', 'number'", "POST", "/flavors/s/os-extra_specs", e.admin, "",
		map[string]any{"extra_specs": map[string]any{"k": true}})
	e.fault(t, 400, "is too long", "POST", "/flavors/s/os-extra_specs", e.admin, "", map[string]any{"extra_specs": map[string]any{"k": strings.Repeat("v", 256)}})
	e.fault(t, 400, "'a/b' does not match any of the regexes: '^[a-zA-Z0-9-_:. ]{1,255}$'", "POST", "/flavors/s/os-extra_specs", e.admin, "",
		map[string]any{"extra_specs": map[string]any{"a/b": "c"}})
	e.fault(t, 400, "'extra_specs' is a required property", "POST", "/flavors/s/os-extra_specs", e.admin, "", map[string]any{"specs": map[string]any{}})
	e.fault(t, 404, "Flavor zz could not be found.", "POST", "/flavors/zz/os-extra_specs", e.admin, "", map[string]any{"extra_specs": map[string]any{"a": "b"}})
	if e.hash(t) != before {
		t.Fatal("refused extra spec requests changed the state")
	}
}

// Bad input: each request gets the right status and Nova fault, and the
// state does not change.
func TestFlavorBadInput(t *testing.T) {
	e := newFlvEnv(t)
	before := e.hash(t)
	long := strings.Repeat("n", 256)
	for _, tc := range []struct {
		name, method, path, mv string
		body                   any
		status                 int
		msg                    string
	}{
		{"not an object", "POST", "/flavors", "", []any{1}, 400, "[1] is not of type 'object'"},
		{"no flavor", "POST", "/flavors", "", map[string]any{"flavour": map[string]any{}}, 400, "'flavor' is a required property"},
		{"flavor not an object", "POST", "/flavors", "", map[string]any{"flavor": "x"}, 400, "Invalid input for field/attribute flavor. Value: x. 'x' is not of type 'object'"},
		{"no ram", "POST", "/flavors", "", map[string]any{"flavor": map[string]any{"name": "x", "vcpus": 1, "disk": 0}}, 400, "'ram' is a required property"},
		{"ram 0", "POST", "/flavors", "", flvBody("x", 0, 1, 0), 400, "Invalid input for field/attribute ram. Value: 0. 0 is less than the minimum of 1"},
		{"ram as a word", "POST", "/flavors", "", flvBody("x", 1, 1, 0, "ram", "lots"), 400, "Invalid input for field/attribute ram. Value: lots. 'lots' does not match '^[0-9]+$'"},
		{"ram as a fraction", "POST", "/flavors", "", flvBody("x", 1, 1, 0, "ram", 1.5), 400, "Invalid input for field/attribute ram. Value: 1.5. 1.5 is not of type 'integer', 'string'"},
		{"ram as a float", "POST", "/flavors", "", `{"flavor": {"name": "x", "ram": 64.0, "vcpus": 1, "disk": 0}}`, 400, "Invalid input received: ram must be an integer"},
		{"ram too big", "POST", "/flavors", "", flvBody("x", 1<<31, 1, 0), 400, "2147483648 is greater than the maximum of 2147483647"},
		{"vcpus 0", "POST", "/flavors", "", flvBody("x", 64, 0, 0), 400, "Invalid input for field/attribute vcpus. Value: 0. 0 is less than the minimum of 1"},
		{"negative disk", "POST", "/flavors", "", flvBody("x", 64, 1, -1), 400, "Invalid input for field/attribute disk. Value: -1. -1 is less than the minimum of 0"},
		{"negative swap", "POST", "/flavors", "", flvBody("x", 64, 1, 0, "swap", -1), 400, "field/attribute swap"},
		{"negative ephemeral", "POST", "/flavors", "", flvBody("x", 64, 1, 0, "OS-FLV-EXT-DATA:ephemeral", "-1"), 400, "field/attribute OS-FLV-EXT-DATA:ephemeral"},
		{"empty name", "POST", "/flavors", "", flvBody("", 64, 1, 0), 400, "Invalid input for field/attribute name. Value: . '' is too short"},
		{"name with spaces around", "POST", "/flavors", "", flvBody(" x ", 64, 1, 0), 400, "An invalid 'name' value was provided. The name must be: printable characters. Can not start or end with whitespace."},
		{"name with a newline", "POST", "/flavors", "", flvBody("a\nb", 64, 1, 0), 400, "An invalid 'name' value was provided."},
		{"name too long", "POST", "/flavors", "", flvBody(long, 64, 1, 0), 400, "is too long"},
		{"name a number", "POST", "/flavors", "", flvBody("x", 64, 1, 0, "name", 5), 400, "5 is not of type 'string'"},
		{"bad id", "POST", "/flavors", "", flvBody("x", 64, 1, 0, "id", "a/b"), 400, "Invalid input for field/attribute id. Value: a/b. 'a/b' does not match"},
		{"empty id", "POST", "/flavors", "", flvBody("x", 64, 1, 0, "id", ""), 400, "'' is too short"},
		{"boolean id", "POST", "/flavors", "", flvBody("x", 64, 1, 0, "id", true), 400, "True is not of type 'string', 'number', 'null'"},
		{"rxtx 0", "POST", "/flavors", "", flvBody("x", 64, 1, 0, "rxtx_factor", 0), 400, "0 is less than or equal to the minimum of 0"},
		{"rxtx '0'", "POST", "/flavors", "", flvBody("x", 64, 1, 0, "rxtx_factor", "0"), 400, "Invalid input received: 'rxtx_factor' argument must be a float between 0 and 3.40282e+38"},
		{"rxtx word", "POST", "/flavors", "", flvBody("x", 64, 1, 0, "rxtx_factor", "fast"), 400, "does not match"},
		{"is_public maybe", "POST", "/flavors", "", flvBody("x", 64, 1, 0, "os-flavor-access:is_public", "maybe"), 400, "'maybe' is not one of [True, 'True'"},
		{"unknown field", "POST", "/flavors", "", flvBody("x", 64, 1, 0, "color", "red"), 400, "Additional properties are not allowed ('color' was unexpected)"},
		{"unknown top field", "POST", "/flavors", "", map[string]any{"flavor": flvBody("x", 64, 1, 0)["flavor"], "x": 1}, 400, "Additional properties are not allowed ('x' was unexpected)"},
		{"description with a control character", "POST", "/flavors", "2.55", flvBody("x", 64, 1, 0, "description", "a\x01b"), 400, "field/attribute description"},
		{"malformed JSON", "POST", "/flavors", "", `{"flavor": `, 400, "Malformed request body"},
		{"duplicate name", "POST", "/flavors", "", flvBody("m1.tiny", 64, 1, 0), 409, "Flavor with name m1.tiny already exists."},
		{"duplicate id", "POST", "/flavors", "", flvBody("x", 64, 1, 0, "id", "1"), 409, "Flavor with ID 1 already exists."},
		{"PUT without description", "PUT", "/flavors/1", "2.55", map[string]any{"flavor": map[string]any{}}, 400, "'description' is a required property"},
		{"PUT other fields", "PUT", "/flavors/1", "2.55", map[string]any{"flavor": map[string]any{"description": "d", "name": "n"}}, 400, "Additional properties are not allowed ('name' was unexpected)"},
		{"PUT description number", "PUT", "/flavors/1", "2.55", map[string]any{"flavor": map[string]any{"description": 5}}, 400, "5 is not of type 'string', 'null'"},
		{"delete missing", "DELETE", "/flavors/nope", "", nil, 404, "Flavor nope could not be found."},
		{"bad microversion", "GET", "/flavors", "2.101", nil, 406, "Version 2.101 is not supported by the API."},
	} {
		var hdr []string
		if tc.mv != "" {
			hdr = []string{"OpenStack-API-Version", "compute " + tc.mv}
		}
		r := do(t, tc.method, e.url+"/compute/v2.1"+tc.path, e.admin, tc.body, hdr...)
		checkFlvFault(t, r, tc.status, tc.msg, tc.name)
		if e.hash(t) != before {
			t.Fatalf("%s changed the state", tc.name)
		}
	}
	// Valid after all that: the state changes.
	e.ok(t, 200, "POST", "/flavors", e.admin, "", flvBody("fine", "64", "1", "0"))
	if e.hash(t) == before {
		t.Fatal("a create did not change the state")
	}
}

// With NoDefaultFlavors the leader creates none.
func TestNoDefaultFlavors(t *testing.T) {
	tc := cluster.NewEmptyTestCluster(t)
	tc.Handler = func(tn *cluster.TestNode) http.Handler {
		return New(Config{Node: tn.Node, AdminPassword: testAdminPassword, DataDir: tn.Dir(), NoDefaultFlavors: true})
	}
	tc.AddNode(1)
	tc.WaitLeader(10 * time.Second)
	st := tc.Nodes[0].State()
	cluster.WaitFor(t, 10*time.Second, "identity bootstrap", func() bool { ok, _ := fsm.IdentityBootstrapped(st); return ok })
	time.Sleep(300 * time.Millisecond) // the default loop would be done by now
	if list, _ := fsm.ListFlavors(st); len(list) != 0 {
		t.Fatalf("flavors with NoDefaultFlavors: %+v", list)
	}
	if done, _ := fsm.DefaultFlavorsHandled(st); done {
		t.Fatal("defaults handled with NoDefaultFlavors")
	}
}
