package api

import (
	"fmt"
	"maps"
	"net/http"
	"slices"
	"strings"
	"testing"

	"golang.org/x/crypto/bcrypt"

	"github.com/keel-cloud/keel/fsm"
	"github.com/keel-cloud/keel/internal/ids"
)

// quotaCloud is a cluster with two projects besides admin: qproj, where
// qmember is a member, and qother, where qothermember is.
type quotaCloud struct {
	*apiCluster
	base                       string
	admin, member, otherMember string // tokens
	proj, other                string // project ids
	memberID, otherMemberID    string
}

const (
	qtProj  = "00000000000000000000000000000a01"
	qtOther = "00000000000000000000000000000a02"
)

func newQuotaCloud(t *testing.T, n int) *quotaCloud {
	t.Helper()
	ac := newAPICluster(t, n)
	q := &quotaCloud{apiCluster: ac, base: ac.url(0), proj: qtProj, other: qtOther,
		memberID: strings.Repeat("b", 32), otherMemberID: strings.Repeat("c", 32)}
	member, err := fsm.RoleByName(ac.Nodes[0].State(), "member")
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range []struct{ id, name, user, userID string }{
		{qtProj, "qproj", "qmember", q.memberID}, {qtOther, "qother", "qothermember", q.otherMemberID},
	} {
		apply(t, ac, &fsm.CreateProject{Project: fsm.Project{ID: p.id, Name: p.name, DomainID: "default", Enabled: true}})
		apply(t, ac, &fsm.CreateUser{User: fsm.User{ID: p.userID, Name: p.user, DomainID: "default", PasswordHash: qtHash(t, p.user+"-pw"), Enabled: true}})
		apply(t, ac, &fsm.GrantRole{Assignment: fsm.RoleAssignment{UserID: p.userID, RoleID: member.ID, ProjectID: p.id}})
	}
	q.admin = login(t, q.base, "admin", testAdminPassword, projectScope("admin"))
	q.member = login(t, q.base, "qmember", "qmember-pw", projectScope("qproj"))
	q.otherMember = login(t, q.base, "qothermember", "qothermember-pw", projectScope("qother"))
	return q
}

// qtHash hashes a test user's password at bcrypt's lowest cost: logins
// stay fast under the race detector.
func qtHash(t *testing.T, pw string) string {
	t.Helper()
	h, err := bcrypt.GenerateFromPassword([]byte(pw), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	return string(h)
}

// call sends a compute request at microversion mv ("" for none).
func (q *quotaCloud) call(t *testing.T, method, path, tok, mv string, body any) resp {
	t.Helper()
	var hdr []string
	if mv != "" {
		hdr = []string{"OpenStack-API-Version", "compute " + mv}
	}
	return do(t, method, q.base+"/compute/v2.1"+path, tok, body, hdr...)
}

// ok wants status and returns the body's object under key.
func (q *quotaCloud) ok(t *testing.T, r resp, status int, key string) map[string]any {
	t.Helper()
	if r.Status != status {
		t.Fatalf("HTTP %d, want %d: %s", r.Status, status, r.Body)
	}
	obj, _ := r.json(t)[key].(map[string]any)
	if obj == nil {
		t.Fatalf("no %q object in %s", key, r.Body)
	}
	return obj
}

// fault wants a Nova fault of status whose message contains msg.
func qtFault(t *testing.T, what string, r resp, status int, msg string) {
	t.Helper()
	if r.Status != status {
		t.Errorf("%s: HTTP %d, want %d: %s", what, r.Status, status, r.Body)
		return
	}
	f, _ := r.json(t)[NovaFaultName(status)].(map[string]any)
	if f == nil || !strings.Contains(fmt.Sprint(f["message"]), msg) || f["code"] != float64(status) {
		t.Errorf("%s: fault %s, want a %s containing %q", what, r.Body, NovaFaultName(status), msg)
	}
}

func qtKeys(m map[string]any) []string { return slices.Sorted(maps.Keys(m)) }

func qtNum(t *testing.T, m map[string]any, k string) int64 {
	t.Helper()
	v, ok := m[k].(float64)
	if !ok {
		t.Fatalf("%s is %v (%T) in %v", k, m[k], m[k], m)
	}
	return int64(v)
}

// qtWant fails unless m holds the numbers of want.
func qtWant(t *testing.T, what string, m map[string]any, want map[string]int64) {
	t.Helper()
	for k, v := range want {
		if got, ok := m[k].(float64); !ok || int64(got) != v {
			t.Errorf("%s: %s = %v, want %d (in %v)", what, k, m[k], v, m)
		}
	}
}

// qtServers is what a server create charges (instances, cores, ram),
// proposed straight to the state machine: n servers of vcpus and ram MB.
func qtServers(project, user string, n, vcpus, ram int) *fsm.CreateServers {
	c := &fsm.CreateServers{MinCount: n}
	for range n {
		c.Servers = append(c.Servers, fsm.Server{ID: ids.UUID(), Name: "quota-test", ProjectID: project, UserID: user,
			Flavor: fsm.ServerFlavor{ID: "1", VCPUs: vcpus, RAM: ram}, CreatedAt: 1})
	}
	return c
}

var (
	qtBase     = []string{"cores", "instances", "key_pairs", "metadata_items", "ram", "server_group_members", "server_groups"}
	qtNetwork  = []string{"fixed_ips", "floating_ips", "security_group_rules", "security_groups"}
	qtInjected = []string{"injected_file_content_bytes", "injected_file_path_bytes", "injected_files"}
)

func qtSorted(parts ...[]string) []string {
	return slices.Sorted(slices.Values(slices.Concat(parts...)))
}

// Every quota and limits document has Nova's fields at each microversion.
func TestQuotaFieldsByMicroversion(t *testing.T) {
	q := newQuotaCloud(t, 1)
	id := []string{"id"}
	for _, c := range []struct {
		mv   string
		want []string // without id
	}{
		{"", qtSorted(qtBase, qtNetwork, qtInjected)},
		{"2.35", qtSorted(qtBase, qtNetwork, qtInjected)},
		{"2.36", qtSorted(qtBase, qtInjected)},
		{"2.56", qtSorted(qtBase, qtInjected)},
		{"2.57", qtSorted(qtBase)},
		{"2.100", qtSorted(qtBase)},
	} {
		show := q.ok(t, q.call(t, "GET", "/os-quota-sets/"+q.proj, q.admin, c.mv, nil), 200, "quota_set")
		if got, want := qtKeys(show), qtSorted(c.want, id); !slices.Equal(got, want) {
			t.Errorf("%s show: %v, want %v", c.mv, got, want)
		}
		if show["id"] != q.proj {
			t.Errorf("%s show id %v", c.mv, show["id"])
		}
		defs := q.ok(t, q.call(t, "GET", "/os-quota-sets/"+q.proj+"/defaults", q.member, c.mv, nil), 200, "quota_set")
		if got, want := qtKeys(defs), qtSorted(c.want, id); !slices.Equal(got, want) {
			t.Errorf("%s defaults: %v, want %v", c.mv, got, want)
		}
		detail := q.ok(t, q.call(t, "GET", "/os-quota-sets/"+q.proj+"/detail", q.member, c.mv, nil), 200, "quota_set")
		if got, want := qtKeys(detail), qtSorted(c.want, id); !slices.Equal(got, want) {
			t.Errorf("%s detail: %v, want %v", c.mv, got, want)
		}
		for _, res := range c.want {
			d, _ := detail[res].(map[string]any)
			if got := qtKeys(d); !slices.Equal(got, []string{"in_use", "limit", "reserved"}) {
				t.Errorf("%s detail of %s: %v", c.mv, res, detail[res])
			}
		}
		upd := q.ok(t, q.call(t, "PUT", "/os-quota-sets/"+q.proj, q.admin, c.mv, map[string]any{"quota_set": map[string]any{"metadata_items": 128}}), 200, "quota_set")
		if got := qtKeys(upd); !slices.Equal(got, c.want) {
			t.Errorf("%s update: %v, want %v (no id)", c.mv, got, c.want)
		}
	}
	// The values at 2.1: Nova's defaults, the nova-network ones unlimited.
	show := q.ok(t, q.call(t, "GET", "/os-quota-sets/"+q.proj, q.admin, "", nil), 200, "quota_set")
	qtWant(t, "2.1 values", show, map[string]int64{
		"instances": 10, "cores": 20, "ram": 51200, "metadata_items": 128, "key_pairs": 100,
		"server_groups": 10, "server_group_members": 10, "injected_files": 5,
		"injected_file_content_bytes": 10240, "injected_file_path_bytes": 255,
		"fixed_ips": -1, "floating_ips": -1, "security_groups": -1, "security_group_rules": -1,
	})

	// Quota classes: no server groups before 2.50, no nova-network ones
	// from 2.50, no injected files from 2.57.
	common := []string{"cores", "instances", "key_pairs", "metadata_items", "ram"}
	groups := []string{"server_group_members", "server_groups"}
	for _, c := range []struct {
		mv   string
		want []string
	}{
		{"2.1", qtSorted(common, qtNetwork, qtInjected)},
		{"2.49", qtSorted(common, qtNetwork, qtInjected)},
		{"2.50", qtSorted(common, groups, qtInjected)},
		{"2.56", qtSorted(common, groups, qtInjected)},
		{"2.57", qtSorted(common, groups)},
	} {
		show := q.ok(t, q.call(t, "GET", "/os-quota-class-sets/default", q.admin, c.mv, nil), 200, "quota_class_set")
		if got, want := qtKeys(show), qtSorted(c.want, id); !slices.Equal(got, want) {
			t.Errorf("%s class show: %v, want %v", c.mv, got, want)
		}
		upd := q.ok(t, q.call(t, "PUT", "/os-quota-class-sets/default", q.admin, c.mv, map[string]any{"quota_class_set": map[string]any{"ram": 51200}}), 200, "quota_class_set")
		if got := qtKeys(upd); !slices.Equal(got, c.want) {
			t.Errorf("%s class update: %v, want %v (no id)", c.mv, got, c.want)
		}
	}

	// Limits.
	always := []string{"maxServerGroupMembers", "maxServerGroups", "maxServerMeta", "maxTotalCores", "maxTotalInstances",
		"maxTotalKeypairs", "maxTotalRAMSize", "totalCoresUsed", "totalInstancesUsed", "totalRAMUsed", "totalServerGroupsUsed"}
	network := []string{"maxSecurityGroupRules", "maxSecurityGroups", "maxTotalFloatingIps", "totalFloatingIpsUsed", "totalSecurityGroupsUsed"}
	personality := []string{"maxPersonality", "maxPersonalitySize"}
	image := []string{"maxImageMeta"}
	for _, c := range []struct {
		mv   string
		want []string
	}{
		{"", qtSorted(always, network, personality, image)},
		{"2.35", qtSorted(always, network, personality, image)},
		{"2.36", qtSorted(always, personality, image)},
		{"2.38", qtSorted(always, personality, image)},
		{"2.39", qtSorted(always, personality)},
		{"2.56", qtSorted(always, personality)},
		{"2.57", qtSorted(always)},
		{"2.100", qtSorted(always)},
	} {
		r := q.call(t, "GET", "/limits", q.member, c.mv, nil)
		lim := q.ok(t, r, 200, "limits")
		abs, _ := lim["absolute"].(map[string]any)
		if got := qtKeys(abs); !slices.Equal(got, c.want) {
			t.Errorf("%s limits: %v, want %v", c.mv, got, c.want)
		}
		if rate, ok := lim["rate"].([]any); !ok || len(rate) != 0 {
			t.Errorf("%s rate: %v", c.mv, lim["rate"])
		}
	}
}

// An admin sets, shows and resets project and user quotas; detail and
// /limits report what servers use; a limit below usage needs force.
func TestQuotaSetUpdateUsageAndUserQuotas(t *testing.T) {
	q := newQuotaCloud(t, 1)
	path := "/os-quota-sets/" + q.proj

	// Numbers may come as strings; force as a string too.
	upd := q.ok(t, q.call(t, "PUT", path, q.admin, "", map[string]any{"quota_set": map[string]any{
		"instances": 5, "cores": "7", "ram": -1, "force": "False"}}), 200, "quota_set")
	qtWant(t, "update answer", upd, map[string]int64{"instances": 5, "cores": 7, "ram": -1, "key_pairs": 100})
	show := q.ok(t, q.call(t, "GET", path, q.member, "", nil), 200, "quota_set")
	qtWant(t, "member's show", show, map[string]int64{"instances": 5, "cores": 7, "ram": -1})
	defs := q.ok(t, q.call(t, "GET", path+"/defaults", q.member, "", nil), 200, "quota_set")
	qtWant(t, "defaults stay", defs, map[string]int64{"instances": 10, "cores": 20, "ram": 51200})
	other := q.ok(t, q.call(t, "GET", "/os-quota-sets/"+q.other, q.admin, "", nil), 200, "quota_set")
	qtWant(t, "other project", other, map[string]int64{"instances": 10, "cores": 20})

	// Two servers of 2 vCPUs and 512 MB for qmember.
	apply(t, q.apiCluster, qtServers(q.proj, q.memberID, 2, 2, 512))

	detail := q.ok(t, q.call(t, "GET", path+"/detail", q.member, "2.57", nil), 200, "quota_set")
	for res, want := range map[string][3]int64{ // limit, in_use, reserved
		"instances": {5, 2, 0}, "cores": {7, 4, 0}, "ram": {-1, 1024, 0}, "key_pairs": {100, 0, 0}, "server_groups": {10, 0, 0},
	} {
		d, _ := detail[res].(map[string]any)
		qtWant(t, "detail of "+res, d, map[string]int64{"limit": want[0], "in_use": want[1], "reserved": want[2]})
	}
	abs := q.ok(t, q.call(t, "GET", "/limits", q.member, "", nil), 200, "limits")["absolute"].(map[string]any)
	qtWant(t, "limits", abs, map[string]int64{"maxTotalInstances": 5, "maxTotalCores": 7, "maxTotalRAMSize": -1,
		"totalInstancesUsed": 2, "totalCoresUsed": 4, "totalRAMUsed": 1024, "totalServerGroupsUsed": 0,
		"maxTotalKeypairs": 100, "maxServerMeta": 128, "maxImageMeta": 128, "maxPersonality": 5, "maxPersonalitySize": 10240,
		"maxTotalFloatingIps": -1, "totalFloatingIpsUsed": 0, "totalSecurityGroupsUsed": 0})

	// Below usage: refused, unless forced.
	before, _ := q.Nodes[0].FSM().Hash()
	qtFault(t, "below usage", q.call(t, "PUT", path, q.admin, "", map[string]any{"quota_set": map[string]any{"instances": 1}}),
		400, "Quota limit 1 for instances must be greater than or equal to already used and reserved 2.")
	qtFault(t, "below usage, cores", q.call(t, "PUT", path, q.admin, "", map[string]any{"quota_set": map[string]any{"cores": 3, "instances": 9}}),
		400, "Quota limit 3 for cores must be greater than or equal to already used and reserved 4.")
	if after, _ := q.Nodes[0].FSM().Hash(); after != before {
		t.Fatal("a refused quota update changed the state")
	}
	upd = q.ok(t, q.call(t, "PUT", path, q.admin, "", map[string]any{"quota_set": map[string]any{"instances": 1, "force": true}}), 200, "quota_set")
	qtWant(t, "forced", upd, map[string]int64{"instances": 1})
	q.ok(t, q.call(t, "PUT", path, q.admin, "", map[string]any{"quota_set": map[string]any{"instances": 6}}), 200, "quota_set")

	// User quotas: the user's limits over the project's; in use, the user's.
	upath := path + "?user_id=" + q.memberID
	upd = q.ok(t, q.call(t, "PUT", upath, q.admin, "", map[string]any{"quota_set": map[string]any{"instances": 3}}), 200, "quota_set")
	qtWant(t, "user update", upd, map[string]int64{"instances": 3, "cores": 7})
	qtWant(t, "user show", q.ok(t, q.call(t, "GET", upath, q.member, "", nil), 200, "quota_set"), map[string]int64{"instances": 3, "cores": 7})
	qtWant(t, "project show", q.ok(t, q.call(t, "GET", path, q.member, "", nil), 200, "quota_set"), map[string]int64{"instances": 6})
	ud := q.ok(t, q.call(t, "GET", path+"/detail?user_id="+q.memberID, q.member, "", nil), 200, "quota_set")
	qtWant(t, "user detail", ud["instances"].(map[string]any), map[string]int64{"limit": 3, "in_use": 2, "reserved": 0})
	od := q.ok(t, q.call(t, "GET", path+"/detail?user_id="+q.otherMemberID, q.admin, "", nil), 200, "quota_set")
	qtWant(t, "another user's detail", od["instances"].(map[string]any), map[string]int64{"limit": 6, "in_use": 0})
	// A user's limit may not exceed what the project leaves for it...
	qtFault(t, "user over project", q.call(t, "PUT", path+"?user_id="+q.otherMemberID, q.admin, "", map[string]any{"quota_set": map[string]any{"instances": 4}}),
		400, "Quota limit 4 for instances must be less than or equal to 3.")
	qtFault(t, "user below its usage", q.call(t, "PUT", upath, q.admin, "", map[string]any{"quota_set": map[string]any{"instances": 1}}),
		400, "Quota limit 1 for instances must be greater than or equal to already used and reserved 2.")
	// ...and the project's may not drop below its users' limits.
	qtFault(t, "project below user limits", q.call(t, "PUT", path, q.admin, "", map[string]any{"quota_set": map[string]any{"instances": 2}}),
		400, "Quota limit 2 for instances must be greater than or equal to already used and reserved 3.")

	// DELETE ?user_id= resets the user; DELETE resets the project.
	r := q.call(t, "DELETE", upath, q.admin, "", nil)
	if r.Status != http.StatusAccepted || len(r.Body) != 0 {
		t.Fatalf("delete user quotas: %d %q", r.Status, r.Body)
	}
	qtWant(t, "user after reset", q.ok(t, q.call(t, "GET", upath, q.member, "", nil), 200, "quota_set"), map[string]int64{"instances": 6})
	if r := q.call(t, "DELETE", path, q.admin, "", nil); r.Status != http.StatusAccepted {
		t.Fatalf("delete project quotas: %d %s", r.Status, r.Body)
	}
	qtWant(t, "project after reset", q.ok(t, q.call(t, "GET", path, q.member, "", nil), 200, "quota_set"),
		map[string]int64{"instances": 10, "cores": 20, "ram": 51200})
	// Usage is not a limit: it stays.
	detail = q.ok(t, q.call(t, "GET", path+"/detail", q.member, "", nil), 200, "quota_set")
	qtWant(t, "usage after reset", detail["cores"].(map[string]any), map[string]int64{"limit": 20, "in_use": 4})
}

// Nova's policy: a project's quotas are its readers' and the admins'; the
// defaults anyone's; changes and classes the admins'; another project's
// limits the admins'.
func TestQuotaPolicyAcrossProjects(t *testing.T) {
	q := newQuotaCloud(t, 1)
	own, other := "/os-quota-sets/"+q.proj, "/os-quota-sets/"+q.other
	// A reader of qproj, and a user whose only role on qproj is a custom
	// one (its token is scoped to qproj, but it is no reader).
	reader, _ := fsm.RoleByName(q.Nodes[0].State(), "reader")
	apply(t, q.apiCluster, &fsm.CreateRole{Role: fsm.Role{ID: strings.Repeat("e", 32), Name: "observer"}})
	for _, u := range []struct{ name, role string }{{"qreader", reader.ID}, {"qobserver", strings.Repeat("e", 32)}} {
		id := strings.Repeat(u.name[1:2], 32)
		apply(t, q.apiCluster, &fsm.CreateUser{User: fsm.User{ID: id, Name: u.name, DomainID: "default", PasswordHash: qtHash(t, u.name+"-pw"), Enabled: true}})
		apply(t, q.apiCluster, &fsm.GrantRole{Assignment: fsm.RoleAssignment{UserID: id, RoleID: u.role, ProjectID: q.proj}})
	}
	readerTok := login(t, q.base, "qreader", "qreader-pw", projectScope("qproj"))
	observer := login(t, q.base, "qobserver", "qobserver-pw", projectScope("qproj"))
	for _, c := range []struct {
		what, method, path, tok string
		body                    any
		status                  int
	}{
		{"member reads own", "GET", own, q.member, nil, 200},
		{"member reads own detail", "GET", own + "/detail", q.member, nil, 200},
		{"member reads another project", "GET", other, q.member, nil, 403},
		{"member reads another project's detail", "GET", other + "/detail", q.member, nil, 403},
		{"member reads a missing project", "GET", "/os-quota-sets/nope", q.member, nil, 403},
		{"member reads another project's defaults", "GET", other + "/defaults", q.member, nil, 200},
		{"admin reads another project", "GET", other, q.admin, nil, 200},
		{"admin reads a missing project", "GET", "/os-quota-sets/nope", q.admin, nil, 400},
		{"member updates own", "PUT", own, q.member, map[string]any{"quota_set": map[string]any{"instances": 50}}, 403},
		{"member resets own", "DELETE", own, q.member, nil, 403},
		{"member reads a class", "GET", "/os-quota-class-sets/default", q.member, nil, 403},
		{"member updates a class", "PUT", "/os-quota-class-sets/default", q.member, map[string]any{"quota_class_set": map[string]any{"instances": 50}}, 403},
		{"member reads another project's limits", "GET", "/limits?tenant_id=" + q.other, q.member, nil, 403},
		{"member names its own project in limits", "GET", "/limits?tenant_id=" + q.proj, q.member, nil, 403},
		{"member reads its limits", "GET", "/limits", q.member, nil, 200},
		{"admin reads another project's limits", "GET", "/limits?tenant_id=" + q.other, q.admin, nil, 200},
		{"other member reads qproj", "GET", own, q.otherMember, nil, 403},
		{"reader reads own", "GET", own, readerTok, nil, 200},
		{"reader reads own detail", "GET", own + "/detail", readerTok, nil, 200},
		{"reader updates own", "PUT", own, readerTok, map[string]any{"quota_set": map[string]any{"instances": 50}}, 403},
		{"non-reader reads its project", "GET", own, observer, nil, 403},
		{"non-reader reads its project's detail", "GET", own + "/detail", observer, nil, 403},
		{"non-reader reads defaults", "GET", own + "/defaults", observer, nil, 200},
		{"non-reader reads its limits", "GET", "/limits", observer, nil, 200},
	} {
		r := q.call(t, c.method, c.path, c.tok, "", c.body)
		if r.Status != c.status {
			t.Errorf("%s: HTTP %d, want %d: %s", c.what, r.Status, c.status, r.Body)
		}
	}
	// The admin's view of qother's limits is qother's, not its own.
	q.ok(t, q.call(t, "PUT", "/os-quota-sets/"+q.other, q.admin, "", map[string]any{"quota_set": map[string]any{"instances": 4}}), 200, "quota_set")
	abs := q.ok(t, q.call(t, "GET", "/limits?tenant_id="+q.other, q.admin, "", nil), 200, "limits")["absolute"].(map[string]any)
	if qtNum(t, abs, "maxTotalInstances") != 4 {
		t.Errorf("admin's ?tenant_id= limits %v", abs)
	}
	own4 := q.ok(t, q.call(t, "GET", "/limits", q.otherMember, "", nil), 200, "limits")["absolute"].(map[string]any)
	if qtNum(t, own4, "maxTotalInstances") != 4 {
		t.Errorf("qother member's limits %v", own4)
	}
	if mine := q.ok(t, q.call(t, "GET", "/limits", q.member, "", nil), 200, "limits")["absolute"].(map[string]any); qtNum(t, mine, "maxTotalInstances") != 10 {
		t.Errorf("qproj member's limits %v", mine)
	}
}

// Bad input: a Nova fault naming the field, and nothing stored changes.
func TestQuotaBadInputChangesNothing(t *testing.T) {
	q := newQuotaCloud(t, 1)
	path := "/os-quota-sets/" + q.proj
	q.ok(t, q.call(t, "PUT", path, q.admin, "", map[string]any{"quota_set": map[string]any{"instances": 5}}), 200, "quota_set")
	apply(t, q.apiCluster, qtServers(q.proj, q.memberID, 1, 1, 64))
	before, _ := q.Nodes[0].FSM().Hash()
	set := func(m map[string]any) map[string]any { return map[string]any{"quota_set": m} }
	long := strings.Repeat("x", 256)
	for _, c := range []struct {
		what, method, path, mv string
		body                   any
		status                 int
		msg                    string
	}{
		{"not JSON", "PUT", path, "", "{", 400, "Malformed request body"},
		{"empty body", "PUT", path, "", "", 400, "body is empty"},
		{"no quota_set", "PUT", path, "", map[string]any{}, 400, "'quota_set' is a required property"},
		{"not an object", "PUT", path, "", []any{1}, 400, "[1] is not of type 'object'"},
		{"quota_set not an object", "PUT", path, "", map[string]any{"quota_set": 5}, 400,
			"Invalid input for field/attribute quota_set. Value: 5. 5 is not of type 'object'"},
		{"extra top-level key", "PUT", path, "", map[string]any{"quota_set": map[string]any{}, "x": 1}, 400,
			"Additional properties are not allowed ('x' was unexpected)"},
		{"below -1", "PUT", path, "", set(map[string]any{"instances": -2}), 400,
			"Invalid input for field/attribute instances. Value: -2. -2 is less than the minimum of -1"},
		{"below -1 as a string", "PUT", path, "", set(map[string]any{"cores": "-5"}), 400,
			"Invalid input for field/attribute cores. Value: -5. -5 is less than the minimum of -1"},
		{"above the maximum", "PUT", path, "", set(map[string]any{"ram": 2147483648}), 400,
			"Invalid input for field/attribute ram. Value: 2147483648. 2147483648 is greater than the maximum of 2147483647"},
		{"not a number", "PUT", path, "", set(map[string]any{"instances": "abc"}), 400,
			"Invalid input for field/attribute instances. Value: abc. 'abc' does not match '^-?[0-9]+$'"},
		{"a fraction", "PUT", path, "", set(map[string]any{"instances": 1.5}), 400,
			"Invalid input for field/attribute instances. Value: 1.5. 1.5 is not of type 'integer', 'string'"},
		{"null", "PUT", path, "", set(map[string]any{"key_pairs": nil}), 400,
			"Invalid input for field/attribute key_pairs. Value: None. None is not of type 'integer', 'string'"},
		{"a boolean", "PUT", path, "", set(map[string]any{"key_pairs": true}), 400, "True is not of type 'integer', 'string'"},
		{"unknown resource", "PUT", path, "", set(map[string]any{"gpus": 1}), 400,
			"Invalid input for field/attribute quota_set. Value: {'gpus': 1}. Additional properties are not allowed ('gpus' was unexpected)"},
		{"networks (gone from Nova)", "PUT", path, "", set(map[string]any{"networks": 1}), 400, "('networks' was unexpected)"},
		{"floating_ips at 2.36", "PUT", path, "2.36", set(map[string]any{"floating_ips": 1}), 400, "('floating_ips' was unexpected)"},
		{"injected_files at 2.57", "PUT", path, "2.57", set(map[string]any{"injected_files": 1}), 400, "('injected_files' was unexpected)"},
		{"bad force", "PUT", path, "", set(map[string]any{"instances": 0, "force": "maybe"}), 400,
			"Invalid input for field/attribute force. Value: maybe. 'maybe' is not one of"},
		{"below usage", "PUT", path, "", set(map[string]any{"instances": 0}), 400,
			"Quota limit 0 for instances must be greater than or equal to already used and reserved 1."},
		{"missing project", "PUT", "/os-quota-sets/nope", "", set(map[string]any{"instances": 1}), 400,
			"Project ID nope is not a valid project."},
		{"user id with a slash", "PUT", path + "?user_id=a%2Fb", "", set(map[string]any{"instances": 1}), 400,
			"Invalid input for query parameters user_id"},
		{"unknown query parameter at 2.75", "PUT", path + "?foo=1", "2.75", set(map[string]any{"instances": 1}), 400,
			"Additional properties are not allowed ('foo' was unexpected)"},
		{"unknown query parameter on delete at 2.75", "DELETE", path + "?bar=1", "2.75", nil, 400, "('bar' was unexpected)"},
		{"user over the project", "PUT", path + "?user_id=" + q.memberID, "", set(map[string]any{"instances": 6}), 400,
			"Quota limit 6 for instances must be less than or equal to 5."},
		{"wrong media type", "PUT", path, "", nil, 415, "Unsupported Content-Type"},
		{"class: bad limit", "PUT", "/os-quota-class-sets/default", "", map[string]any{"quota_class_set": map[string]any{"cores": -3}}, 400,
			"Invalid input for field/attribute cores. Value: -3. -3 is less than the minimum of -1"},
		{"class: force is not a resource", "PUT", "/os-quota-class-sets/default", "", map[string]any{"quota_class_set": map[string]any{"force": true}}, 400,
			"('force' was unexpected)"},
		{"class: security groups at 2.50", "PUT", "/os-quota-class-sets/default", "2.50", map[string]any{"quota_class_set": map[string]any{"security_groups": 1}}, 400,
			"('security_groups' was unexpected)"},
		{"class: name too long", "PUT", "/os-quota-class-sets/" + long, "", map[string]any{"quota_class_set": map[string]any{"cores": 1}}, 400,
			"quota_class_name has more than 255 characters."},
		{"class: no wrapper", "PUT", "/os-quota-class-sets/default", "", map[string]any{"quota_set": map[string]any{"cores": 1}}, 400,
			"'quota_class_set' is a required property"},
		{"limits: unknown query parameter at 2.75", "GET", "/limits?reserved=1", "2.75", nil, 400, "('reserved' was unexpected)"},
	} {
		var r resp
		if c.what == "wrong media type" {
			r = do(t, c.method, q.base+"/compute/v2.1"+c.path, q.admin, `{"quota_set": {}}`, "Content-Type", "text/plain")
		} else {
			r = q.call(t, c.method, c.path, q.admin, c.mv, c.body)
		}
		qtFault(t, c.what, r, c.status, c.msg)
		if after, _ := q.Nodes[0].FSM().Hash(); after != before {
			t.Fatalf("%s changed the state", c.what)
		}
	}
	// Before 2.75 unknown query parameters are ignored, as in Nova.
	q.ok(t, q.call(t, "GET", "/limits?reserved=1", q.member, "2.74", nil), 200, "limits")
	q.ok(t, q.call(t, "GET", path+"?foo=1", q.member, "2.74", nil), 200, "quota_set")
	qtWant(t, "after the refusals", q.ok(t, q.call(t, "GET", path, q.admin, "", nil), 200, "quota_set"), map[string]int64{"instances": 5, "cores": 20})
}

// The default class replaces the built-in defaults of every project; other
// classes are kept but apply to nobody.
func TestQuotaClassSets(t *testing.T) {
	q := newQuotaCloud(t, 1)
	upd := q.ok(t, q.call(t, "PUT", "/os-quota-class-sets/default", q.admin, "2.50",
		map[string]any{"quota_class_set": map[string]any{"instances": 20, "server_groups": "12"}}), 200, "quota_class_set")
	qtWant(t, "class update", upd, map[string]int64{"instances": 20, "server_groups": 12, "cores": 20})
	q.ok(t, q.call(t, "PUT", "/os-quota-class-sets/gold", q.admin, "", map[string]any{"quota_class_set": map[string]any{"cores": 99}}), 200, "quota_class_set")
	q.ok(t, q.call(t, "PUT", "/os-quota-sets/"+q.other, q.admin, "", map[string]any{"quota_set": map[string]any{"instances": 3}}), 200, "quota_set")

	gold := q.ok(t, q.call(t, "GET", "/os-quota-class-sets/gold", q.admin, "2.57", nil), 200, "quota_class_set")
	qtWant(t, "gold", gold, map[string]int64{"cores": 99, "instances": 10}) // over the built-ins
	if gold["id"] != "gold" {
		t.Errorf("class id %v", gold["id"])
	}
	def := q.ok(t, q.call(t, "GET", "/os-quota-class-sets/default", q.admin, "2.57", nil), 200, "quota_class_set")
	qtWant(t, "default", def, map[string]int64{"instances": 20, "server_groups": 12, "cores": 20})
	for _, c := range []struct {
		what, path string
		want       map[string]int64
	}{
		{"defaults", "/os-quota-sets/" + q.proj + "/defaults", map[string]int64{"instances": 20, "server_groups": 12, "cores": 20}},
		{"project without limits", "/os-quota-sets/" + q.proj, map[string]int64{"instances": 20, "server_groups": 12, "cores": 20}},
		{"project with its own", "/os-quota-sets/" + q.other, map[string]int64{"instances": 3, "server_groups": 12}},
	} {
		qtWant(t, c.what, q.ok(t, q.call(t, "GET", c.path, q.admin, "", nil), 200, "quota_set"), c.want)
	}
	if abs := q.ok(t, q.call(t, "GET", "/limits", q.member, "", nil), 200, "limits")["absolute"].(map[string]any); qtNum(t, abs, "maxTotalInstances") != 20 {
		t.Errorf("limits after the class update: %v", abs)
	}
}
