package fsm

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
)

// testJoinGroup and testLeaveGroup are commands of this test binary only:
// they call the helpers the servers' appliers call, so membership is tested
// through Apply (a refused join writes nothing).
type testJoinGroup struct {
	Group   string   `json:"group"`
	Servers []string `json:"servers"`
}

const cmdTestJoinGroup CommandType = 0xfe92

func (*testJoinGroup) CommandType() CommandType { return cmdTestJoinGroup }
func (*testJoinGroup) CommandVersion() uint8    { return 1 }

type testLeaveGroup struct {
	Server string `json:"server"`
}

const cmdTestLeaveGroup CommandType = 0xfe93

func (*testLeaveGroup) CommandType() CommandType { return cmdTestLeaveGroup }
func (*testLeaveGroup) CommandVersion() uint8    { return 1 }

func init() {
	register("testJoinGroup", func(tx *Txn, c *testJoinGroup) (any, error) {
		return nil, AddServerGroupMembers(tx, c.Group, c.Servers)
	})
	register("testLeaveGroup", func(tx *Txn, c *testLeaveGroup) (any, error) {
		return nil, RemoveServerGroupMember(tx, c.Server)
	})
}

// sgFSM applies commands at increasing Raft indexes.
type sgFSM struct{ kpFSM }

// newSgFSM has identity bootstrapped and projects p1 and p2 (SetQuota
// wants them).
func newSgFSM(t *testing.T) *sgFSM {
	h := &sgFSM{kpFSM{newHarness(t)}}
	h.ok(identTestBootstrap())
	h.ok(&CreateProject{Project: Project{ID: "p1", Name: "one", DomainID: "default", Enabled: true}})
	h.ok(&CreateProject{Project: Project{ID: "p2", Name: "two", DomainID: "default", Enabled: true}})
	return h
}

// sgTest is a valid group of project/user p1/u1 (p2/u2 for ids from "b").
func sgTest(id, policy string) ServerGroup {
	return ServerGroup{ID: id, Name: "group " + id, ProjectID: "p1", UserID: "u1", Policy: policy, CreatedAt: 1_700_000_000_000_000}
}

func (h *sgFSM) create(g ServerGroup) *ServerGroup {
	h.t.Helper()
	r := h.apply(&CreateServerGroup{Group: g})
	if r.Err != nil {
		h.t.Fatalf("create %s refused: %v", g.ID, r.Err)
	}
	var out ServerGroup
	if err := r.Decode(&out); err != nil {
		h.t.Fatal(err)
	}
	return &out
}

func (h *sgFSM) groupsUsed(project, user string) (int64, int64) {
	h.t.Helper()
	p, err := ProjectUsage(h.f.State(), project, "")
	if err != nil {
		h.t.Fatal(err)
	}
	u, err := UserUsage(h.f.State(), project, user)
	if err != nil {
		h.t.Fatal(err)
	}
	return p["server_groups"], u["server_groups"]
}

func (h *sgFSM) members(id string) []string {
	h.t.Helper()
	g, _, err := GetServerGroup(h.f.State(), id)
	if err != nil {
		h.t.Fatal(err)
	}
	return g.Members
}

func (h *sgFSM) list(project string) []string {
	h.t.Helper()
	var ids []string
	if err := ListServerGroups(h.f.State(), project, func(g *ServerGroup) bool { ids = append(ids, g.ID); return true }); err != nil {
		h.t.Fatal(err)
	}
	return ids
}

func TestServerGroupLifecycle(t *testing.T) {
	h := newSgFSM(t)
	st := h.f.State()
	a := sgTest("a", PolicyAntiAffinity)
	a.Rules = map[string]int{RuleMaxServerPerHost: 2}
	got := h.create(a)
	if got.ID != "a" || got.Policy != PolicyAntiAffinity || got.Rules[RuleMaxServerPerHost] != 2 || len(got.Members) != 0 {
		t.Fatalf("created %+v", got)
	}
	// Listing order is creation time, then id; a later create with an
	// earlier time sorts first.
	c := sgTest("c", PolicySoftAffinity)
	c.CreatedAt++
	h.create(c)
	b := sgTest("b", PolicyAffinity)
	b.Rules = map[string]int{} // empty rules are no rules
	h.create(b)
	bIndex := h.idx
	early := sgTest("z", PolicySoftAntiAffinity)
	early.ProjectID, early.UserID, early.CreatedAt = "p2", "u2", 5
	h.create(early)

	g, meta, err := GetServerGroup(st, "b")
	if err != nil || g.Name != "group b" || g.Rules != nil || g.ProjectID != "p1" || g.UserID != "u1" || meta.CreateIndex != bIndex {
		t.Fatalf("get: %+v %+v %v", g, meta, err)
	}
	if _, _, err := GetServerGroup(st, "nope"); !errors.Is(err, ErrNotFound) || err.Error() != "Instance group nope could not be found." {
		t.Fatalf("missing group: %v", err)
	}
	if _, _, err := GetServerGroup(st, "a/b"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("malformed id: %v", err)
	}
	for _, tc := range []struct {
		project string
		want    []string
	}{
		{"p1", []string{"a", "b", "c"}},
		{"p2", []string{"z"}},
		{"", []string{"z", "a", "b", "c"}},
		{"p", nil}, // a prefix of a project id sees nothing
	} {
		if got := h.list(tc.project); !slices.Equal(got, tc.want) {
			t.Errorf("list %q: %v, want %v", tc.project, got, tc.want)
		}
	}
	var first []string
	ListServerGroups(st, "", func(g *ServerGroup) bool { first = append(first, g.ID); return len(first) < 2 })
	if !slices.Equal(first, []string{"z", "a"}) {
		t.Fatalf("a walk stopped after two saw %v", first)
	}
	if p, u := h.groupsUsed("p1", "u1"); p != 3 || u != 3 {
		t.Fatalf("p1 uses %d server groups (u1 %d), want 3", p, u)
	}

	r := h.apply(&DeleteServerGroup{ID: "a"})
	var del ServerGroup
	if r.Err != nil || r.Decode(&del) != nil || del.ID != "a" || del.Policy != PolicyAntiAffinity {
		t.Fatalf("delete: %v %+v", r.Err, del)
	}
	if _, _, err := GetServerGroup(st, "a"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("deleted group: %v", err)
	}
	if got := h.list("p1"); !slices.Equal(got, []string{"b", "c"}) {
		t.Fatalf("list after delete: %v", got)
	}
	if got := h.list(""); !slices.Equal(got, []string{"z", "b", "c"}) {
		t.Fatalf("list of all after delete: %v", got)
	}
	if p, u := h.groupsUsed("p1", "u1"); p != 2 || u != 2 {
		t.Fatalf("after delete p1 uses %d server groups (u1 %d), want 2", p, u)
	}
	h.refuse("delete again", &DeleteServerGroup{ID: "a"}, KindNotFound, "Instance group a could not be found.")
	h.refuse("create an existing id", &CreateServerGroup{Group: sgTest("b", PolicyAffinity)}, KindConflict, "already exists")
}

// More groups than one index page are listed, each once, in order.
func TestServerGroupListPages(t *testing.T) {
	h := newSgFSM(t)
	h.ok(&SetQuota{ProjectID: "p1", Limits: map[string]int64{"server_groups": -1}, Force: true})
	n := listPage + 10
	var want []string
	for i := range n {
		g := sgTest(fmt.Sprintf("g%04d", i), PolicyAffinity)
		g.CreatedAt = int64(1000 + i/3) // ties, broken by id
		h.create(g)
		want = append(want, g.ID)
	}
	if got := h.list("p1"); !slices.Equal(got, want) {
		t.Fatalf("listed %d groups, want %d in creation order", len(got), len(want))
	}
	if got := h.list(""); !slices.Equal(got, want) {
		t.Fatalf("listed %d groups of all projects, want %d", len(got), len(want))
	}
}

func TestServerGroupRefusalsChangeNothing(t *testing.T) {
	h := newSgFSM(t)
	h.create(sgTest("keep", PolicyAffinity))
	mod := func(f func(g *ServerGroup)) *CreateServerGroup {
		g := sgTest("new", PolicyAntiAffinity)
		f(&g)
		return &CreateServerGroup{Group: g}
	}
	for _, tc := range []struct {
		name string
		c    *CreateServerGroup
		msg  string
	}{
		{"no id", mod(func(g *ServerGroup) { g.ID = "" }), "invalid server group id"},
		{"slash in id", mod(func(g *ServerGroup) { g.ID = "a/b" }), "invalid server group id"},
		{"no project", mod(func(g *ServerGroup) { g.ProjectID = "" }), "invalid project id"},
		{"NUL in user", mod(func(g *ServerGroup) { g.UserID = "u\x00" }), "invalid user id"},
		{"empty name", mod(func(g *ServerGroup) { g.Name = "" }), "invalid server group name"},
		{"long name", mod(func(g *ServerGroup) { g.Name = strings.Repeat("é", 256) }), "1 to 255 characters"},
		{"NUL in name", mod(func(g *ServerGroup) { g.Name = "a\x00b" }), "invalid server group name"},
		{"bad UTF-8 name", mod(func(g *ServerGroup) { g.Name = "\xff" }), "invalid server group name"},
		{"unknown policy", mod(func(g *ServerGroup) { g.Policy = "legacy" }), "invalid server group policy"},
		{"no policy", mod(func(g *ServerGroup) { g.Policy = "" }), "invalid server group policy"},
		{"unknown rule", mod(func(g *ServerGroup) { g.Rules = map[string]int{"max_servers": 2} }), "the only rule is max_server_per_host"},
		{"zero rule", mod(func(g *ServerGroup) { g.Rules = map[string]int{RuleMaxServerPerHost: 0} }), "want 1 to"},
		{"rule too big", mod(func(g *ServerGroup) { g.Rules = map[string]int{RuleMaxServerPerHost: 1 << 31} }), "want 1 to"},
		{"members given", mod(func(g *ServerGroup) { g.Members = []string{"s1"} }), "has no members"},
		{"no creation time", mod(func(g *ServerGroup) { g.CreatedAt = 0 }), "creation time"},
		{"rules with affinity", mod(func(g *ServerGroup) {
			g.Policy, g.Rules = PolicySoftAntiAffinity, map[string]int{RuleMaxServerPerHost: 2}
		}), "Only anti-affinity policy supports rules."},
	} {
		h.refuse(tc.name, tc.c, KindInvalid, tc.msg)
	}
	h.refuse("delete missing", &DeleteServerGroup{ID: "nope"}, KindNotFound, "Instance group nope could not be found.")
	h.refuse("delete malformed", &DeleteServerGroup{ID: ""}, KindNotFound, "could not be found")
	if p, u := h.groupsUsed("p1", "u1"); p != 1 || u != 1 {
		t.Fatalf("usage %d/%d after refusals, want 1", p, u)
	}
}

// server_groups is counted per project and per user; at the limit a create
// hears Nova's message, before any complaint about its rules; a delete
// frees one.
func TestServerGroupQuota(t *testing.T) {
	h := newSgFSM(t)
	limit := int(DefaultQuotas["server_groups"])
	for i := range limit {
		g := sgTest(fmt.Sprintf("g%02d", i), PolicyAffinity)
		if i%2 == 1 {
			g.UserID = "u2" // the project's count is over all its users
		}
		h.create(g)
	}
	if p, _ := h.groupsUsed("p1", "u1"); p != int64(limit) {
		t.Fatalf("usage %d, want %d", p, limit)
	}
	h.refuse("one over", &CreateServerGroup{Group: sgTest("extra", PolicyAffinity)}, KindQuota, "Quota exceeded, too many server groups.")
	bad := sgTest("extra", PolicyAffinity)
	bad.Rules = map[string]int{RuleMaxServerPerHost: 3}
	h.refuse("over with rules on affinity", &CreateServerGroup{Group: bad}, KindQuota, "Quota exceeded, too many server groups.")
	other := sgTest("other", PolicyAffinity)
	other.ProjectID = "p2"
	h.create(other) // another project has its own count

	// A user's own limit applies too.
	h.ok(&SetQuota{ProjectID: "p2", UserID: "u1", Limits: map[string]int64{"server_groups": 1}, Force: true})
	second := sgTest("second", PolicyAffinity)
	second.ProjectID = "p2"
	h.refuse("over the user's limit", &CreateServerGroup{Group: second}, KindQuota, "Quota exceeded, too many server groups.")

	h.ok(&DeleteServerGroup{ID: "g03"})
	if p, u := h.groupsUsed("p1", "u2"); p != int64(limit-1) || u != int64(limit/2-1) {
		t.Fatalf("after delete: project %d user %d", p, u)
	}
	h.create(sgTest("extra", PolicyAffinity))
	h.refuse("at the limit again", &CreateServerGroup{Group: sgTest("extra2", PolicyAffinity)}, KindQuota, "too many server groups")
}

func TestServerGroupMembers(t *testing.T) {
	h := newSgFSM(t)
	st := h.f.State()
	h.create(sgTest("g1", PolicyAntiAffinity))
	h.create(sgTest("g2", PolicyAffinity))

	h.ok(&testJoinGroup{Group: "g1", Servers: []string{"s3", "s1"}})
	h.ok(&testJoinGroup{Group: "g1", Servers: []string{"s2"}})
	h.ok(&testJoinGroup{Group: "g2", Servers: []string{"s4"}})
	h.ok(&testJoinGroup{Group: "g2", Servers: nil}) // nothing joins: a no-op
	if m := h.members("g1"); !slices.Equal(m, []string{"s3", "s1", "s2"}) {
		t.Fatalf("g1 members %v, want the order they joined", m)
	}
	for server, want := range map[string]string{"s1": "g1", "s2": "g1", "s3": "g1", "s4": "g2", "s5": "", "": "", "a\x00b": ""} {
		g, err := ServerGroupOf(st, server)
		switch {
		case err != nil:
			t.Errorf("group of %q: %v", server, err)
		case want == "" && g != nil:
			t.Errorf("group of %q: %s, want none", server, g.ID)
		case want != "" && (g == nil || g.ID != want):
			t.Errorf("group of %q: %+v, want %s", server, g, want)
		}
	}

	h.refuse("missing group", &testJoinGroup{Group: "nope", Servers: []string{"s9"}}, KindInvalid, "Instance group nope could not be found.")
	h.refuse("malformed group id", &testJoinGroup{Group: "a/b", Servers: []string{"s9"}}, KindInvalid, "Instance group a/b could not be found.")
	h.refuse("already a member", &testJoinGroup{Group: "g2", Servers: []string{"s9", "s1"}}, KindConflict, "already a member of server group g1")
	h.refuse("twice in one call", &testJoinGroup{Group: "g2", Servers: []string{"s9", "s9"}}, KindInvalid, "given twice")
	h.refuse("malformed server id", &testJoinGroup{Group: "g2", Servers: []string{"s/9"}}, KindInvalid, "invalid server id")

	// Leaving: a point lookup; a server in no group is a no-op.
	h.ok(&testLeaveGroup{Server: "s1"})
	h.ok(&testLeaveGroup{Server: "s1"})
	h.ok(&testLeaveGroup{Server: "never-joined"})
	if m := h.members("g1"); !slices.Equal(m, []string{"s3", "s2"}) {
		t.Fatalf("g1 members after s1 left: %v", m)
	}
	if g, err := ServerGroupOf(st, "s1"); g != nil || err != nil {
		t.Fatalf("s1 still in %+v (%v)", g, err)
	}
	// A server that left may join another group.
	h.ok(&testJoinGroup{Group: "g2", Servers: []string{"s1"}})
	if m := h.members("g2"); !slices.Equal(m, []string{"s4", "s1"}) {
		t.Fatalf("g2 members: %v", m)
	}

	// Deleting a group frees its members from the index.
	h.ok(&DeleteServerGroup{ID: "g1"})
	if g, err := ServerGroupOf(st, "s3"); g != nil || err != nil {
		t.Fatalf("s3 of a deleted group still in %+v (%v)", g, err)
	}
	h.ok(&testLeaveGroup{Server: "s3"}) // its group is gone: a no-op
	h.ok(&testJoinGroup{Group: "g2", Servers: []string{"s3"}})
}

// server_group_members limits each group's size (the limit of the group's
// project and creator); a refused join adds none of its servers.
func TestServerGroupMembersQuota(t *testing.T) {
	h := newSgFSM(t)
	h.create(sgTest("g1", PolicyAffinity))
	h.create(sgTest("g2", PolicyAffinity))
	limit := int(DefaultQuotas["server_group_members"])
	ids := func(prefix string, n int) []string {
		var out []string
		for i := range n {
			out = append(out, fmt.Sprintf("%s%02d", prefix, i))
		}
		return out
	}
	h.ok(&testJoinGroup{Group: "g1", Servers: ids("a", limit-2)})
	h.refuse("three more", &testJoinGroup{Group: "g1", Servers: ids("b", 3)}, KindQuota, "Quota exceeded, too many servers in group")
	if n := len(h.members("g1")); n != limit-2 {
		t.Fatalf("a refused join left %d members, want %d", n, limit-2)
	}
	h.ok(&testJoinGroup{Group: "g1", Servers: ids("b", 2)})
	h.refuse("one more", &testJoinGroup{Group: "g1", Servers: []string{"c"}}, KindQuota, "too many servers in group")
	h.ok(&testJoinGroup{Group: "g2", Servers: ids("c", limit)}) // per group
	h.ok(&testLeaveGroup{Server: "a00"})
	h.ok(&testJoinGroup{Group: "g1", Servers: []string{"d"}})

	// The project's limit, then the creator's, apply; -1 is unlimited.
	h.ok(&SetQuota{ProjectID: "p1", Limits: map[string]int64{"server_group_members": -1}, Force: true})
	h.ok(&testJoinGroup{Group: "g1", Servers: ids("e", 5)})
	h.ok(&SetQuota{ProjectID: "p1", UserID: "u1", Limits: map[string]int64{"server_group_members": 15}, Force: true})
	h.refuse("over the creator's limit", &testJoinGroup{Group: "g1", Servers: []string{"f"}}, KindQuota, "too many servers in group")
}
