package api

import (
	"context"
	"crypto/md5"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gophercloud/gophercloud/v2"
	"github.com/gophercloud/gophercloud/v2/openstack"
	"github.com/gophercloud/gophercloud/v2/openstack/compute/v2/servergroups"
	"golang.org/x/crypto/bcrypt"

	"github.com/keel-cloud/keel/fsm"
)

// sgEnv is kpEnv (alice and bob members, rita reader, admin, all of the
// admin project) plus olga, a member of another project.
type sgEnv struct {
	*kpEnv
	otherProject string
}

func newSgEnv(t *testing.T) *sgEnv {
	t.Helper()
	e := &sgEnv{kpEnv: newKpEnv(t), otherProject: "5e0000000000000000000000000000aa"}
	st := e.ac.Nodes[0].State()
	role, err := fsm.RoleByName(st, "member")
	if err != nil {
		t.Fatal(err)
	}
	hash, err := bcrypt.GenerateFromPassword([]byte("kp-pw"), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	id := fmt.Sprintf("%x", md5.Sum([]byte("olga")))
	apply(t, e.ac, &fsm.CreateProject{Project: fsm.Project{ID: e.otherProject, Name: "sg-other", DomainID: "default", Enabled: true}})
	apply(t, e.ac, &fsm.CreateUser{User: fsm.User{ID: id, Name: "sg-olga", DomainID: "default", PasswordHash: string(hash), Enabled: true}})
	apply(t, e.ac, &fsm.GrantRole{Assignment: fsm.RoleAssignment{UserID: id, RoleID: role.ID, ProjectID: e.otherProject}})
	e.ids["olga"] = id
	e.toks["olga"] = login(t, e.base, "sg-olga", "kp-pw", projectScope("sg-other"))
	return e
}

// sgCreate creates a group as user at mv with the body's server_group
// fields and returns the group.
func (e *sgEnv) sgCreate(t *testing.T, user, mv string, fields ...any) map[string]any {
	t.Helper()
	r := e.call(t, user, mv, "POST", "/os-server-groups", sgBody(fields...))
	return sgObj(t, kpWant(t, "create", r, 200))
}

func sgBody(fields ...any) map[string]any {
	g := map[string]any{}
	for i := 0; i+1 < len(fields); i += 2 {
		g[fields[i].(string)] = fields[i+1]
	}
	return map[string]any{"server_group": g}
}

func sgObj(t *testing.T, body map[string]any) map[string]any {
	t.Helper()
	g, ok := body["server_group"].(map[string]any)
	if !ok {
		t.Fatalf("no server_group object in %v", body)
	}
	return g
}

// sgListIDs lists as user at mv with query q and returns the ids.
func (e *sgEnv) sgListIDs(t *testing.T, user, mv, q string) []string {
	t.Helper()
	body := kpWant(t, "list "+q, e.call(t, user, mv, "GET", "/os-server-groups"+q, nil), 200)
	items, ok := body["server_groups"].([]any)
	if !ok {
		t.Fatalf("list %s: no server_groups list in %v", q, body)
	}
	out := []string{}
	for _, it := range items {
		out = append(out, it.(map[string]any)["id"].(string))
	}
	return out
}

// The body shapes of each microversion, for create, show and list.
func TestServerGroupMicroversions(t *testing.T) {
	e := newSgEnv(t)
	alice := e.ids["alice"]

	// 2.1: policies and an empty metadata; no owner.
	g := e.sgCreate(t, "alice", "", "name", "web", "policies", []string{"anti-affinity"})
	id := g["id"].(string)
	if got := kpKeys(g); !slices.Equal(got, []string{"id", "members", "metadata", "name", "policies"}) {
		t.Fatalf("2.1 fields %v", got)
	}
	if g["name"] != "web" || fmt.Sprint(g["policies"]) != "[anti-affinity]" || len(g["metadata"].(map[string]any)) != 0 || len(g["members"].([]any)) != 0 {
		t.Fatalf("2.1 group %v", g)
	}
	// 2.13: project and user.
	g = sgObj(t, kpWant(t, "show 2.13", e.call(t, "alice", "2.13", "GET", "/os-server-groups/"+id, nil), 200))
	if got := kpKeys(g); !slices.Equal(got, []string{"id", "members", "metadata", "name", "policies", "project_id", "user_id"}) {
		t.Fatalf("2.13 fields %v", got)
	}
	if g["project_id"] != e.project || g["user_id"] != alice {
		t.Fatalf("2.13 owner %v", g)
	}
	// 2.64: policy and rules instead of policies and metadata.
	g = sgObj(t, kpWant(t, "show 2.64", e.call(t, "alice", "2.64", "GET", "/os-server-groups/"+id, nil), 200))
	if got := kpKeys(g); !slices.Equal(got, []string{"id", "members", "name", "policy", "project_id", "rules", "user_id"}) {
		t.Fatalf("2.64 fields %v", got)
	}
	if g["policy"] != "anti-affinity" || len(g["rules"].(map[string]any)) != 0 {
		t.Fatalf("2.64 view of a 2.1 group: %v", g)
	}

	// Soft policies from 2.15.
	kpFault(t, "soft at 2.14", e.call(t, "alice", "2.14", "POST", "/os-server-groups", sgBody("name", "s", "policies", []string{"soft-affinity"})), 400,
		"Invalid input for field/attribute 0. Value: soft-affinity. 'soft-affinity' is not one of ['anti-affinity', 'affinity']")
	g = e.sgCreate(t, "alice", "2.15", "name", "soft", "policies", []string{"soft-affinity"})
	if fmt.Sprint(g["policies"]) != "[soft-affinity]" || g["user_id"] != alice {
		t.Fatalf("2.15 group %v", g)
	}

	// 2.64: policy and rules in the body.
	g = e.sgCreate(t, "alice", "2.64", "name", "spread", "policy", "anti-affinity", "rules", map[string]any{"max_server_per_host": 3})
	ruled := g["id"].(string)
	if got := kpKeys(g); !slices.Equal(got, []string{"id", "members", "name", "policy", "project_id", "rules", "user_id"}) {
		t.Fatalf("2.64 create fields %v", got)
	}
	if g["policy"] != "anti-affinity" || g["rules"].(map[string]any)["max_server_per_host"] != float64(3) {
		t.Fatalf("2.64 group %v", g)
	}
	// A string of digits is a number too (Nova stores rules as strings).
	g = e.sgCreate(t, "alice", "2.64", "name", "spread2", "policy", "anti-affinity", "rules", map[string]any{"max_server_per_host": "2"})
	if g["rules"].(map[string]any)["max_server_per_host"] != float64(2) {
		t.Fatalf("rule given as a string: %v", g)
	}
	g = e.sgCreate(t, "alice", "2.64", "name", "plain", "policy", "soft-anti-affinity")
	if len(g["rules"].(map[string]any)) != 0 {
		t.Fatalf("no rules given: %v", g)
	}
	e.sgCreate(t, "alice", "2.64", "name", "empty rules", "policy", "affinity", "rules", map[string]any{})
	// A ruled group seen before 2.64: its one policy, no rules.
	g = sgObj(t, kpWant(t, "show 2.63", e.call(t, "alice", "2.63", "GET", "/os-server-groups/"+ruled, nil), 200))
	if _, ok := g["rules"]; ok || fmt.Sprint(g["policies"]) != "[anti-affinity]" {
		t.Fatalf("2.63 view of a ruled group: %v", g)
	}
	// The list has the same shapes.
	body := kpWant(t, "list 2.1", e.call(t, "alice", "", "GET", "/os-server-groups", nil), 200)
	for _, it := range body["server_groups"].([]any) {
		if got := kpKeys(it.(map[string]any)); !slices.Equal(got, []string{"id", "members", "metadata", "name", "policies"}) {
			t.Fatalf("2.1 list item fields %v", got)
		}
	}
	body = kpWant(t, "list 2.64", e.call(t, "alice", "2.64", "GET", "/os-server-groups", nil), 200)
	if n := len(body["server_groups"].([]any)); n != 6 {
		t.Fatalf("listed %d groups, want 6", n)
	}
	if got := kpKeys(body["server_groups"].([]any)[2].(map[string]any)); !slices.Equal(got, []string{"id", "members", "name", "policy", "project_id", "rules", "user_id"}) {
		t.Fatalf("2.64 list item fields %v", got)
	}

	// Delete: 204, then 404 on show and delete.
	r := e.call(t, "alice", "", "DELETE", "/os-server-groups/"+id, nil)
	if r.Status != 204 || len(r.Body) != 0 {
		t.Fatalf("delete: %d %s", r.Status, r.Body)
	}
	kpFault(t, "show deleted", e.call(t, "alice", "", "GET", "/os-server-groups/"+id, nil), 404, "Instance group "+id+" could not be found.")
	kpFault(t, "delete deleted", e.call(t, "alice", "", "DELETE", "/os-server-groups/"+id, nil), 404, "Instance group "+id+" could not be found.")
}

// Nova's schema faults, each the first one Nova reports, and none writes.
func TestServerGroupValidation(t *testing.T) {
	e := newSgEnv(t)
	long := strings.Repeat("n", 256)
	for _, tc := range []struct {
		name, mv string
		body     any
		want     string
	}{
		{"not an object", "", []any{1}, "[1] is not of type 'object'"},
		{"no server_group", "", map[string]any{}, "'server_group' is a required property"},
		{"extra at the top", "", map[string]any{"server_group": map[string]any{"name": "a", "policies": []any{"affinity"}}, "x": 1},
			"Additional properties are not allowed ('x' was unexpected)"},
		{"server_group not an object", "", map[string]any{"server_group": "a"}, "Invalid input for field/attribute server_group. Value: a. 'a' is not of type 'object'"},
		{"no name", "", sgBody("policies", []any{"affinity"}), "Invalid input for field/attribute server_group. Value: {'policies': ['affinity']}. 'name' is a required property"},
		{"no policies", "", sgBody("name", "a"), "'policies' is a required property"},
		{"no policy at 2.64", "2.64", sgBody("name", "a"), "'policy' is a required property"},
		{"policies at 2.64", "2.64", sgBody("name", "a", "policy", "affinity", "policies", []any{"affinity"}),
			"Additional properties are not allowed ('policies' was unexpected)"},
		{"policy before 2.64", "2.63", sgBody("name", "a", "policy", "affinity"), "'policies' is a required property"},
		{"policy and policies before 2.64", "2.63", sgBody("name", "a", "policies", []any{"affinity"}, "policy", "affinity"),
			"Additional properties are not allowed ('policy' was unexpected)"},
		{"rules before 2.64", "2.63", sgBody("name", "a", "policies", []any{"anti-affinity"}, "rules", map[string]any{}),
			"Additional properties are not allowed ('rules' was unexpected)"},
		{"extra field", "", sgBody("name", "a", "policies", []any{"affinity"}, "metadata", map[string]any{}),
			"Additional properties are not allowed ('metadata' was unexpected)"},
		{"name not a string", "", sgBody("name", 1, "policies", []any{"affinity"}), "Invalid input for field/attribute name. Value: 1. 1 is not of type 'string'"},
		{"empty name", "", sgBody("name", "", "policies", []any{"affinity"}), "Invalid input for field/attribute name. Value: . '' should be non-empty"},
		{"long name", "", sgBody("name", long, "policies", []any{"affinity"}), "'" + long + "' is too long"},
		{"padded name", "", sgBody("name", " a", "policies", []any{"affinity"}), flvNameErr},
		{"control character in name", "", sgBody("name", "a\tb", "policies", []any{"affinity"}), flvNameErr},
		{"name checked first", "", sgBody("name", 1, "policies", "x"), "1 is not of type 'string'"},
		{"policies not a list", "", sgBody("name", "a", "policies", "affinity"), "Invalid input for field/attribute policies. Value: affinity. 'affinity' is not of type 'array'"},
		{"policy not a string", "", sgBody("name", "a", "policies", []any{1}), "Invalid input for field/attribute 0. Value: 1. 1 is not of type 'string'"},
		{"unknown policy", "", sgBody("name", "a", "policies", []any{"legacy"}), "Invalid input for field/attribute 0. Value: legacy. 'legacy' is not one of ['anti-affinity', 'affinity']"},
		{"unknown policy at 2.15", "2.15", sgBody("name", "a", "policies", []any{"x"}),
			"'x' is not one of ['anti-affinity', 'affinity', 'soft-anti-affinity', 'soft-affinity']"},
		{"no policies given", "", sgBody("name", "a", "policies", []any{}), "Invalid input for field/attribute policies. Value: []. [] should be non-empty"},
		{"repeated policy", "", sgBody("name", "a", "policies", []any{"affinity", "affinity"}), "['affinity', 'affinity'] has non-unique elements"},
		{"two policies", "", sgBody("name", "a", "policies", []any{"affinity", "anti-affinity"}), "['affinity', 'anti-affinity'] is too long"},
		{"second policy unchecked but too many", "", sgBody("name", "a", "policies", []any{"affinity", 7}), "['affinity', 7] is too long"},
		{"policy not a string at 2.64", "2.64", sgBody("name", "a", "policy", []any{"affinity"}), "Invalid input for field/attribute policy. Value: ['affinity']. ['affinity'] is not of type 'string'"},
		{"unknown policy at 2.64", "2.64", sgBody("name", "a", "policy", "legacy"),
			"Invalid input for field/attribute policy. Value: legacy. 'legacy' is not one of ['anti-affinity', 'affinity', 'soft-anti-affinity', 'soft-affinity']"},
		{"rules not an object", "2.64", sgBody("name", "a", "policy", "anti-affinity", "rules", 3), "Invalid input for field/attribute rules. Value: 3. 3 is not of type 'object'"},
		{"unknown rule", "2.64", sgBody("name", "a", "policy", "anti-affinity", "rules", map[string]any{"max": 1}),
			"Invalid input for field/attribute rules. Value: {'max': 1}. Additional properties are not allowed ('max' was unexpected)"},
		{"zero per host", "2.64", sgBody("name", "a", "policy", "anti-affinity", "rules", map[string]any{"max_server_per_host": 0}),
			"Invalid input for field/attribute max_server_per_host. Value: 0. 0 is less than the minimum of 1"},
		{"zero per host as a string", "2.64", sgBody("name", "a", "policy", "anti-affinity", "rules", map[string]any{"max_server_per_host": "0"}),
			"0 is less than the minimum of 1"},
		{"negative per host", "2.64", sgBody("name", "a", "policy", "anti-affinity", "rules", map[string]any{"max_server_per_host": "-1"}),
			"Invalid input for field/attribute max_server_per_host. Value: -1. '-1' does not match '^[0-9]*$'"},
		{"empty per host", "2.64", sgBody("name", "a", "policy", "anti-affinity", "rules", map[string]any{"max_server_per_host": ""}), "'' should be non-empty"},
		{"fractional per host", "2.64", sgBody("name", "a", "policy", "anti-affinity", "rules", map[string]any{"max_server_per_host": 1.5}),
			"1.5 is not of type 'integer', 'string'"},
		{"boolean per host", "2.64", sgBody("name", "a", "policy", "anti-affinity", "rules", map[string]any{"max_server_per_host": true}),
			"True is not of type 'integer', 'string'"},
		{"huge per host", "2.64", sgBody("name", "a", "policy", "anti-affinity", "rules", map[string]any{"max_server_per_host": 1 << 40}),
			"is greater than the maximum of 2147483647"},
		// After the schema (and the quota), in the command.
		{"rules with affinity", "2.64", sgBody("name", "a", "policy", "affinity", "rules", map[string]any{"max_server_per_host": 2}),
			"Only anti-affinity policy supports rules."},
		{"rules with soft anti-affinity", "2.64", sgBody("name", "a", "policy", "soft-anti-affinity", "rules", map[string]any{"max_server_per_host": 2}),
			"Only anti-affinity policy supports rules."},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := e.hash(t)
			r := e.call(t, "alice", tc.mv, "POST", "/os-server-groups", tc.body)
			body := kpWant(t, tc.name, r, 400)
			if m := body["badRequest"].(map[string]any)["message"].(string); m != tc.want && !strings.Contains(m, tc.want) {
				t.Fatalf("message %q, want %q", m, tc.want)
			}
			if e.hash(t) != before {
				t.Fatal("a refused create changed the state")
			}
		})
	}
	// Malformed JSON and an empty body are the decoder's 400s.
	kpFault(t, "malformed", e.call(t, "alice", "", "POST", "/os-server-groups", "{"), 400, "Malformed request body")
	if ids := e.sgListIDs(t, "alice", "", ""); len(ids) != 0 {
		t.Fatalf("refused creates left groups %v", ids)
	}
}

// Groups are their project's: members create and delete, readers read,
// another project sees a 404, admins see all and list all with
// all_projects.
func TestServerGroupAccess(t *testing.T) {
	e := newSgEnv(t)
	mine := e.sgCreate(t, "alice", "2.64", "name", "mine", "policy", "affinity")["id"].(string)
	bobs := e.sgCreate(t, "bob", "2.64", "name", "bobs", "policy", "affinity")["id"].(string)
	theirs := e.sgCreate(t, "olga", "2.64", "name", "theirs", "policy", "anti-affinity")["id"].(string)

	// The project's members and readers see every group of the project.
	for _, user := range []string{"alice", "bob", "rita", "admin"} {
		if got := e.sgListIDs(t, user, "", ""); !slices.Equal(got, []string{mine, bobs}) {
			t.Errorf("%s lists %v, want %v", user, got, []string{mine, bobs})
		}
		kpWant(t, user+" shows bob's", e.call(t, user, "", "GET", "/os-server-groups/"+bobs, nil), 200)
	}
	if got := e.sgListIDs(t, "olga", "", ""); !slices.Equal(got, []string{theirs}) {
		t.Fatalf("olga lists %v", got)
	}
	// Another project's group does not exist for non-admins.
	for _, user := range []string{"alice", "rita"} {
		kpFault(t, user+" shows olga's", e.call(t, user, "", "GET", "/os-server-groups/"+theirs, nil), 404, "Instance group "+theirs+" could not be found.")
	}
	before := e.hash(t)
	kpFault(t, "alice deletes olga's", e.call(t, "alice", "", "DELETE", "/os-server-groups/"+theirs, nil), 404, "could not be found")
	kpFault(t, "olga deletes alice's", e.call(t, "olga", "", "DELETE", "/os-server-groups/"+mine, nil), 404, "could not be found")
	kpFault(t, "missing", e.call(t, "alice", "", "GET", "/os-server-groups/00000000-0000-0000-0000-000000000000", nil), 404,
		"Instance group 00000000-0000-0000-0000-000000000000 could not be found.")
	// A reader may not write (the policy's 403).
	kpFault(t, "rita creates", e.call(t, "rita", "", "POST", "/os-server-groups", sgBody("name", "r", "policies", []any{"affinity"})), 403, "Policy doesn't allow")
	kpFault(t, "rita deletes", e.call(t, "rita", "", "DELETE", "/os-server-groups/"+mine, nil), 403, "Policy doesn't allow")
	if e.hash(t) != before {
		t.Fatal("refused requests changed the state")
	}

	// all_projects: every project's groups for an admin, in creation order,
	// whatever its value; ignored for others.
	for _, q := range []string{"?all_projects", "?all_projects=0", "?all_projects=True&limit=5"} {
		if got := e.sgListIDs(t, "admin", "2.75", q); !slices.Equal(got, []string{mine, bobs, theirs}) {
			t.Errorf("admin lists %s: %v", q, got)
		}
	}
	if got := e.sgListIDs(t, "alice", "", "?all_projects=1"); !slices.Equal(got, []string{mine, bobs}) {
		t.Fatalf("alice with all_projects: %v", got)
	}
	// An admin may show and delete any project's group.
	g := sgObj(t, kpWant(t, "admin shows olga's", e.call(t, "admin", "2.13", "GET", "/os-server-groups/"+theirs, nil), 200))
	if g["project_id"] != e.otherProject || g["user_id"] != e.ids["olga"] {
		t.Fatalf("olga's group %v", g)
	}
	if r := e.call(t, "admin", "", "DELETE", "/os-server-groups/"+theirs, nil); r.Status != 204 {
		t.Fatalf("admin deletes olga's: %d %s", r.Status, r.Body)
	}
	// Members of the project delete each other's groups (Nova's rule is
	// the project, not the creator).
	if r := e.call(t, "alice", "", "DELETE", "/os-server-groups/"+bobs, nil); r.Status != 204 {
		t.Fatalf("alice deletes bob's: %d %s", r.Status, r.Body)
	}
	if got := e.sgListIDs(t, "admin", "", "?all_projects"); !slices.Equal(got, []string{mine}) {
		t.Fatalf("after deletes: %v", got)
	}
}

// limit and offset cut the list as Nova's common.limited does; their values
// are checked by the query schema; 2.75 refuses unknown parameters.
func TestServerGroupListPaging(t *testing.T) {
	e := newSgEnv(t)
	var all []string
	for i := range 5 {
		all = append(all, e.sgCreate(t, "alice", "", "name", fmt.Sprintf("g%d", i), "policies", []any{"affinity"})["id"].(string))
	}
	for q, want := range map[string][]string{
		"":                          all,
		"?limit=2":                  all[:2],
		"?limit=2&offset=1":         all[1:3],
		"?offset=3":                 all[3:],
		"?offset=5":                 {},
		"?offset=99999999999999999": {},
		"?limit=0":                  all, // 0 is max_limit
		"?limit=99999999999999999":  all,
		"?limit=1&limit=3":          all[:3], // the last value counts
		"?offset=004":               all[4:],
		"?unknown=1":                all, // before 2.75, ignored
		"?page_size=2":              all, // read, but it cuts nothing
	} {
		if got := e.sgListIDs(t, "alice", "2.74", q); !slices.Equal(got, want) {
			t.Errorf("list %s: %v, want %v", q, got, want)
		}
	}
	for _, tc := range []struct{ mv, q, want string }{
		{"", "?limit=-1", "Invalid input for query parameters limit. Value: -1. '-1' does not match '^[0-9]*$'"},
		{"", "?offset=a", "Invalid input for query parameters offset. Value: a. 'a' does not match '^[0-9]*$'"},
		{"", "?limit=", "Invalid input for query parameters limit. Value: . '' should be non-empty"},
		{"", "?limit=1&limit=x", "'x' does not match"},
		{"", "?page_size=x", "Invalid input received: page_size must be an integer"},
		{"", "?page_size=-2", "Invalid input received: page_size must be >= 0"},
		{"2.75", "?unknown=1", "Additional properties are not allowed ('unknown' was unexpected)"},
		{"2.75", "?page_size=1&b=2", "Additional properties are not allowed ('b', 'page_size' were unexpected)"},
	} {
		kpFault(t, "list "+tc.q, e.call(t, "alice", tc.mv, "GET", "/os-server-groups"+tc.q, nil), 400, tc.want)
	}
}

// server_groups is counted in Apply: at the limit a create is Nova's 403,
// even one whose rules are wrong too; a delete frees one.
func TestServerGroupQuota(t *testing.T) {
	e := newSgEnv(t)
	apply(t, e.ac, &fsm.SetQuota{ProjectID: e.project, Limits: map[string]int64{"server_groups": 2}})
	first := e.sgCreate(t, "alice", "", "name", "a", "policies", []any{"affinity"})["id"].(string)
	e.sgCreate(t, "bob", "", "name", "b", "policies", []any{"affinity"})
	before := e.hash(t)
	kpFault(t, "over the limit", e.call(t, "alice", "", "POST", "/os-server-groups", sgBody("name", "c", "policies", []any{"affinity"})), 403,
		"Quota exceeded, too many server groups.")
	kpFault(t, "over the limit with bad rules", e.call(t, "alice", "2.64", "POST", "/os-server-groups",
		sgBody("name", "c", "policy", "affinity", "rules", map[string]any{"max_server_per_host": 2})), 403, "Quota exceeded, too many server groups.")
	if e.hash(t) != before {
		t.Fatal("refused creates changed the state")
	}
	// Another project has its own count.
	e.sgCreate(t, "olga", "", "name", "o", "policies", []any{"affinity"})
	// The usage shows in /limits.
	abs := kpWant(t, "limits", e.call(t, "alice", "", "GET", "/limits", nil), 200)["limits"].(map[string]any)["absolute"].(map[string]any)
	if abs["totalServerGroupsUsed"] != float64(2) || abs["maxServerGroups"] != float64(2) {
		t.Fatalf("limits: %v", abs)
	}
	if r := e.call(t, "alice", "", "DELETE", "/os-server-groups/"+first, nil); r.Status != 204 {
		t.Fatalf("delete: %d %s", r.Status, r.Body)
	}
	e.sgCreate(t, "alice", "", "name", "c", "policies", []any{"affinity"})
}

// gophercloud v2's servergroups against a 3-controller cluster: writes
// through one controller, reads through another, at 2.1 and at 2.64.
func TestGophercloudServerGroups(t *testing.T) {
	ac := newAPICluster(t, 3)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	compute := func(i int, mv string) *gophercloud.ServiceClient {
		t.Helper()
		provider, err := openstack.AuthenticatedClient(ctx, gophercloud.AuthOptions{
			IdentityEndpoint: ac.url(i) + "/identity/v3", Username: "admin", Password: testAdminPassword,
			DomainName: "Default", TenantName: "admin",
		})
		if err != nil {
			t.Fatalf("authenticate on node %d: %v", i, err)
		}
		c, err := openstack.NewComputeV2(provider, gophercloud.EndpointOpts{Region: "RegionOne"})
		if err != nil {
			t.Fatal(err)
		}
		c.Microversion = mv
		return c
	}
	old, cur := compute(1, "2.1"), compute(2, "2.64")

	a, err := servergroups.Create(ctx, old, servergroups.CreateOpts{Name: "web", Policies: []string{"anti-affinity"}}).Extract()
	if err != nil || a.Name != "web" || !slices.Equal(a.Policies, []string{"anti-affinity"}) || a.Policy != nil || len(a.Members) != 0 {
		t.Fatalf("create at 2.1: %+v %v", a, err)
	}
	b, err := servergroups.Create(ctx, cur, servergroups.CreateOpts{
		Name: "spread", Policy: "anti-affinity", Rules: &servergroups.Rules{MaxServerPerHost: 2},
	}).Extract()
	if err != nil || b.Policy == nil || *b.Policy != "anti-affinity" || b.Rules == nil || b.Rules.MaxServerPerHost != 2 || b.ProjectID == "" || b.UserID == "" {
		t.Fatalf("create at 2.64: %+v %v", b, err)
	}
	_, err = servergroups.Create(ctx, cur, servergroups.CreateOpts{Name: "bad", Policy: "affinity", Rules: &servergroups.Rules{MaxServerPerHost: 2}}).Extract()
	if !gophercloud.ResponseCodeIs(err, http.StatusBadRequest) {
		t.Fatalf("rules with affinity: %v, want a 400", err)
	}

	got, err := servergroups.Get(ctx, cur, a.ID).Extract()
	if err != nil || got.Name != "web" || got.Policy == nil || *got.Policy != "anti-affinity" || got.Policies != nil {
		t.Fatalf("get at 2.64 through another controller: %+v %v", got, err)
	}
	pages, err := servergroups.List(old, servergroups.ListOpts{AllProjects: true}).AllPages(ctx)
	if err != nil {
		t.Fatal(err)
	}
	all, err := servergroups.ExtractServerGroups(pages)
	if err != nil || len(all) != 2 || all[0].ID != a.ID || all[1].ID != b.ID {
		t.Fatalf("list: %+v %v", all, err)
	}
	pages, err = servergroups.List(cur, servergroups.ListOpts{Limit: 1, Offset: 1}).AllPages(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if page, err := servergroups.ExtractServerGroups(pages); err != nil || len(page) != 1 || page[0].ID != b.ID {
		t.Fatalf("list with limit and offset: %+v %v", page, err)
	}
	if err := servergroups.Delete(ctx, old, a.ID).ExtractErr(); err != nil {
		t.Fatalf("delete: %v", err)
	}
	if _, err := servergroups.Get(ctx, cur, a.ID).Extract(); !gophercloud.ResponseCodeIs(err, http.StatusNotFound) {
		t.Fatalf("get after delete through another controller: %v, want a 404", err)
	}
}
