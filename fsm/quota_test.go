package fsm

import (
	"fmt"
	"maps"
	"strings"
	"testing"

	"github.com/hashicorp/raft"
)

// testCharge is a command of this test binary only: it charges quota the
// way resource appliers do (servers, key pairs), so ChargeQuota is tested
// through Apply, Raft batches and all.
type testCharge struct {
	Project string           `json:"project"`
	User    string           `json:"user"`
	Deltas  map[string]int64 `json:"deltas"`
}

// cmdTestCharge is outside every range real commands use.
const cmdTestCharge CommandType = 0xfe90

func (*testCharge) CommandType() CommandType { return cmdTestCharge }
func (*testCharge) CommandVersion() uint8    { return 1 }

// testChargeDown charges Max instances of 2 cores each, or fewer if they
// do not fit, down to 1; it answers how many it charged.
type testChargeDown struct {
	Project string `json:"project"`
	User    string `json:"user"`
	Max     int64  `json:"max"`
}

const cmdTestChargeDown CommandType = 0xfe91

func (*testChargeDown) CommandType() CommandType { return cmdTestChargeDown }
func (*testChargeDown) CommandVersion() uint8    { return 1 }

func init() {
	register("testCharge", func(tx *Txn, c *testCharge) (any, error) {
		return nil, ChargeQuota(tx, c.Project, c.User, c.Deltas)
	})
	register("testChargeDown", func(tx *Txn, c *testChargeDown) (any, error) {
		var err error
		for n := c.Max; n >= 1; n-- {
			if err = ChargeQuota(tx, c.Project, c.User, map[string]int64{"instances": n, "cores": 2 * n}); err == nil {
				return n, nil
			}
		}
		return nil, err
	})
}

func charge(project, user string, kv ...any) *testCharge {
	d := map[string]int64{}
	for i := 0; i+1 < len(kv); i += 2 {
		d[kv[i].(string)] = int64(kv[i+1].(int))
	}
	return &testCharge{Project: project, User: user, Deltas: d}
}

// quotaFixture: identity with projects p1, p2 (and the admin project).
func quotaFixture(t *testing.T) *identityFSM {
	h := newIdentityFSM(t)
	h.ok(identTestBootstrap())
	h.ok(&CreateProject{Project: Project{ID: "p1", Name: "one", DomainID: "default", Enabled: true}})
	h.ok(&CreateProject{Project: Project{ID: "p2", Name: "two", DomainID: "default", Enabled: true}})
	return h
}

// wantMap fails unless got has exactly the values of want for want's keys.
func wantMap(t *testing.T, what string, got map[string]int64, want map[string]int64) {
	t.Helper()
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s: %s = %d, want %d (all: %v)", what, k, got[k], v, got)
		}
	}
}

func TestChargeQuotaProjectAndUserLimits(t *testing.T) {
	h := quotaFixture(t)
	h.ok(&SetQuota{ProjectID: "p1", Limits: map[string]int64{"instances": 3, "cores": -1}})
	h.ok(&SetQuota{ProjectID: "p1", UserID: "u1", Limits: map[string]int64{"instances": 2}})

	h.ok(charge("p1", "u1", "instances", 2, "cores", 1000, "ram", 512))
	// u1 is at its own limit of 2; the project still has room.
	h.refuse("user limit", charge("p1", "u1", "instances", 1), KindQuota,
		"Quota exceeded for instances: Requested 1, but already used 2 of 2 instances")
	h.ok(charge("p1", "u2", "instances", 1))
	// The project (3) is full for everyone now, u2 included.
	h.refuse("project limit", charge("p1", "u2", "instances", 1), KindQuota,
		"Quota exceeded for instances: Requested 1, but already used 3 of 3 instances")
	// cores are unlimited (-1); ram has its default of 51200.
	h.ok(charge("p1", "u2", "cores", 1_000_000))
	h.refuse("default ram", charge("p1", "u2", "ram", 51200), KindQuota,
		"Quota exceeded for ram: Requested 51200, but already used 512 of 51200 ram")
	// Two resources over at once are both named; nothing is charged.
	h.ok(&SetQuota{ProjectID: "p1", Limits: map[string]int64{"cores": 10}, Force: true})
	h.refuse("two over", charge("p1", "u2", "instances", 1, "cores", 1, "ram", 1), KindQuota,
		"Quota exceeded for cores, instances: Requested 1, 1, but already used 1001000, 3 of 10, 3 cores, instances")

	s := h.state()
	pu, _ := ProjectUsage(s, "p1", "")
	wantMap(t, "p1 usage", pu, map[string]int64{"instances": 3, "cores": 1_001_000, "ram": 512})
	u1, _ := UserUsage(s, "p1", "u1")
	wantMap(t, "u1 usage", u1, map[string]int64{"instances": 2, "cores": 1000, "ram": 512, "key_pairs": 0})
	u2, _ := UserUsage(s, "p1", "u2")
	wantMap(t, "u2 usage", u2, map[string]int64{"instances": 1, "cores": 1_000_000})
	// Another project is untouched.
	if p2, _ := ProjectUsage(s, "p2", ""); len(p2) != 0 {
		t.Errorf("p2 usage %v", p2)
	}
}

func TestChargeQuotaReleaseNeverBelowZero(t *testing.T) {
	h := quotaFixture(t)
	h.ok(charge("p1", "u1", "instances", 2, "key_pairs", 1))
	h.ok(charge("p1", "u1", "instances", -5, "key_pairs", -3, "cores", -1))
	s := h.state()
	pu, _ := ProjectUsage(s, "p1", "u1")
	wantMap(t, "after over-release", pu, map[string]int64{"instances": 0, "cores": 0, "key_pairs": 0})
	uu, _ := UserUsage(s, "p1", "u1")
	wantMap(t, "user after over-release", uu, map[string]int64{"instances": 0, "cores": 0, "key_pairs": 0})
	// A release is never refused, even over a limit lowered with force.
	h.ok(charge("p1", "u1", "instances", 5))
	h.ok(&SetQuota{ProjectID: "p1", Limits: map[string]int64{"instances": 1}, Force: true})
	h.ok(charge("p1", "u1", "instances", -1))
	h.refuse("still over", charge("p1", "u1", "instances", 1), KindQuota, "already used 4 of 1 instances")
}

func TestChargeQuotaKeyPairsPerUserAcrossProjects(t *testing.T) {
	h := quotaFixture(t)
	h.ok(&SetQuota{ProjectID: "p1", Limits: map[string]int64{"key_pairs": 3}})
	h.ok(charge("p1", "u1", "key_pairs", 2))
	h.ok(charge("p2", "u1", "key_pairs", 1)) // p2 has the default of 100
	// u1 has 3 key pairs in all: p1's limit of 3 is reached for u1...
	h.refuse("u1 in p1", charge("p1", "u1", "key_pairs", 1), KindQuota,
		"Quota exceeded for key_pairs: Requested 1, but already used 3 of 3 key_pairs")
	// ...but not for u2 in p1, and not for u1 in p2.
	h.ok(charge("p1", "u2", "key_pairs", 3))
	h.ok(charge("p2", "u1", "key_pairs", 1))
	// Key pairs are the user's, not the project's.
	s := h.state()
	if pu, _ := ProjectUsage(s, "p1", ""); pu["key_pairs"] != 0 {
		t.Errorf("project usage counts key pairs: %v", pu)
	}
	for _, c := range []struct {
		project, user string
		want          int64
	}{{"p1", "u1", 4}, {"p2", "u1", 4}, {"p1", "u2", 3}} {
		if u, _ := UserUsage(s, c.project, c.user); u["key_pairs"] != c.want {
			t.Errorf("key pairs of %s seen from %s: %d, want %d", c.user, c.project, u["key_pairs"], c.want)
		}
		if u, _ := ProjectUsage(s, c.project, c.user); u["key_pairs"] != c.want {
			t.Errorf("ProjectUsage(%s, %s) key pairs %d, want %d", c.project, c.user, u["key_pairs"], c.want)
		}
	}
	// A user limit applies to the user's key pairs in that project.
	h.ok(&SetQuota{ProjectID: "p2", UserID: "u1", Limits: map[string]int64{"key_pairs": 4}})
	h.refuse("u1 user limit in p2", charge("p2", "u1", "key_pairs", 1), KindQuota, "already used 4 of 4 key_pairs")
}

func TestChargeQuotaRefusalWritesNothing(t *testing.T) {
	h := quotaFixture(t)
	h.ok(&SetQuota{ProjectID: "p1", Limits: map[string]int64{"instances": 1, "key_pairs": 1}})
	h.ok(charge("p1", "u1", "key_pairs", 1))
	// Every refusal below leaves the state byte for byte as it was
	// (refuse checks the state hash), although the charge of the
	// resources within their limits came first.
	h.refuse("instances over", charge("p1", "u1", "cores", 1, "ram", 1, "instances", 2), KindQuota, "instances")
	h.refuse("key pairs over", charge("p1", "u1", "instances", 1, "key_pairs", 1), KindQuota, "key_pairs")
	h.refuse("not counted", charge("p1", "u1", "metadata_items", 1), KindInternal, "not counted")
	h.refuse("not counted with others", charge("p1", "u1", "instances", 1, "injected_files", 1), KindInternal, "not counted")
}

// One applier may try several charges in one Txn (servers create fewer
// when more do not fit): the refused tries leave no trace.
func TestChargeQuotaRetryInOneCommand(t *testing.T) {
	h := quotaFixture(t)
	h.ok(charge("p1", "u1", "instances", 3, "cores", 6))
	r := h.ok(&testChargeDown{Project: "p1", User: "u1", Max: 15})
	var n int64
	if err := r.Decode(&n); err != nil || n != 7 {
		t.Fatalf("charged %d instances (%v), want the 7 the quota leaves", n, err)
	}
	u, _ := ProjectUsage(h.state(), "p1", "")
	wantMap(t, "usage", u, map[string]int64{"instances": 10, "cores": 20})
	h.refuse("none left", &testChargeDown{Project: "p1", User: "u1", Max: 3}, KindQuota, "Quota exceeded for cores, instances: Requested 2, 1, but already used 20, 10 of 20, 10 cores, instances")
}

// The concurrency rule: 20 charges racing for a quota of 10, proposed
// through different controllers, are serialised by Raft into batches of any
// shape; whatever the batching, exactly 10 succeed.
func TestChargeQuotaRaceExactlyLimitSucceed(t *testing.T) {
	for _, batch := range []int{20, 7, 1} {
		t.Run(fmt.Sprintf("batches of %d", batch), func(t *testing.T) {
			h := quotaFixture(t)
			h.ok(&SetQuota{ProjectID: "p1", Limits: map[string]int64{"key_pairs": 10, "instances": 10}})
			var logs []*raft.Log
			for i := range 20 {
				h.idx++
				// Key pairs: one user, its limit in p1 is the
				// project's 10. Instances: 20 users of p1.
				logs = append(logs, entry(t, h.idx, charge("p1", "u1", "key_pairs", 1)))
				h.idx++
				logs = append(logs, entry(t, h.idx, charge("p1", fmt.Sprintf("user%d", i), "instances", 1)))
			}
			okKP, okInst := 0, 0
			for start := 0; start < len(logs); start += batch * 2 {
				end := min(start+batch*2, len(logs))
				for i, r := range h.f.ApplyBatch(logs[start:end]) {
					resp := r.(*Response)
					if resp.Err != nil && resp.Err.Kind != KindQuota {
						t.Fatalf("entry %d: %v", start+i, resp.Err)
					}
					if resp.Err == nil {
						if (start+i)%2 == 0 {
							okKP++
						} else {
							okInst++
						}
					}
				}
			}
			if okKP != 10 || okInst != 10 {
				t.Fatalf("%d key pair and %d instance charges succeeded, want 10 and 10", okKP, okInst)
			}
			s := h.state()
			if u, _ := UserUsage(s, "p1", "u1"); u["key_pairs"] != 10 {
				t.Errorf("key pairs in use %d", u["key_pairs"])
			}
			if u, _ := ProjectUsage(s, "p1", ""); u["instances"] != 10 {
				t.Errorf("instances in use %d", u["instances"])
			}
		})
	}
}

func TestSetQuotaLevels(t *testing.T) {
	h := quotaFixture(t)
	s := h.state()
	p1, _ := ProjectQuotas(s, "p1")
	if !maps.Equal(p1, DefaultQuotas) {
		t.Fatalf("defaults %v", p1)
	}
	h.ok(&SetQuotaClass{Class: "default", Limits: map[string]int64{"instances": 20, "ram": -1}})
	h.ok(&SetQuotaClass{Class: "gold", Limits: map[string]int64{"instances": 99}})
	h.ok(&SetQuota{ProjectID: "p1", Limits: map[string]int64{"instances": 15, "cores": 40}})
	h.ok(&SetQuota{ProjectID: "p1", UserID: "u1", Limits: map[string]int64{"instances": 5}})
	h.ok(&SetQuota{ProjectID: "p1", Limits: map[string]int64{"cores": 50}}) // merges

	cls, _ := ClassQuotas(s)
	wantMap(t, "default class", cls, map[string]int64{"instances": 20, "ram": -1, "cores": 20, "floating_ips": -1})
	gold, _ := QuotaClassLimits(s, "gold")
	wantMap(t, "gold class", gold, map[string]int64{"instances": 99, "ram": 51200}) // over the built-ins, not "default"
	none, _ := QuotaClassLimits(s, "never-set")
	if !maps.Equal(none, DefaultQuotas) {
		t.Errorf("unset class %v", none)
	}
	p1, _ = ProjectQuotas(s, "p1")
	wantMap(t, "p1", p1, map[string]int64{"instances": 15, "cores": 50, "ram": -1, "key_pairs": 100})
	p2, _ := ProjectQuotas(s, "p2")
	wantMap(t, "p2", p2, map[string]int64{"instances": 20, "cores": 20, "ram": -1})
	u1, _ := UserQuotas(s, "p1", "u1")
	wantMap(t, "u1", u1, map[string]int64{"instances": 5, "cores": 50, "ram": -1})
	u2, _ := UserQuotas(s, "p1", "u2")
	wantMap(t, "u2", u2, map[string]int64{"instances": 15, "cores": 50})

	// Setting the same values again writes nothing.
	before := stateHash(t, h.f)
	h.ok(&SetQuota{ProjectID: "p1", Limits: map[string]int64{"cores": 50}})
	h.ok(&SetQuota{ProjectID: "p1", UserID: "u1", Limits: map[string]int64{}})
	h.ok(&SetQuotaClass{Class: "gold", Limits: map[string]int64{"instances": 99}})
	if stateHash(t, h.f) != before {
		t.Error("setting unchanged limits changed the state")
	}

	// Deleting a user's limits keeps the project's and other users'.
	h.ok(&SetQuota{ProjectID: "p1", UserID: "u2", Limits: map[string]int64{"instances": 3}})
	h.ok(&DeleteQuota{ProjectID: "p1", UserID: "u1"})
	u1, _ = UserQuotas(s, "p1", "u1")
	wantMap(t, "u1 after its delete", u1, map[string]int64{"instances": 15})
	u2, _ = UserQuotas(s, "p1", "u2")
	wantMap(t, "u2 after u1's delete", u2, map[string]int64{"instances": 3})
	// Deleting the project's limits removes its users' too.
	h.ok(&SetQuota{ProjectID: "p2", UserID: "u2", Limits: map[string]int64{"instances": 4}})
	h.ok(&DeleteQuota{ProjectID: "p1"})
	p1, _ = ProjectQuotas(s, "p1")
	if !maps.Equal(p1, cls) {
		t.Errorf("p1 after delete %v, want the default class %v", p1, cls)
	}
	u2, _ = UserQuotas(s, "p1", "u2")
	wantMap(t, "u2 after the project's delete", u2, map[string]int64{"instances": 20})
	u2p2, _ := UserQuotas(s, "p2", "u2")
	wantMap(t, "u2 in p2", u2p2, map[string]int64{"instances": 4})
	// Deleting what is not set succeeds and changes nothing.
	before = stateHash(t, h.f)
	h.ok(&DeleteQuota{ProjectID: "p1"})
	h.ok(&DeleteQuota{ProjectID: "nope", UserID: "u9"})
	if stateHash(t, h.f) != before {
		t.Error("deleting unset limits changed the state")
	}
}

func TestSetQuotaSettableRange(t *testing.T) {
	h := quotaFixture(t)
	h.ok(charge("p1", "u1", "instances", 3, "cores", 6, "ram", 1024, "key_pairs", 5, "server_groups", 2))
	h.ok(charge("p1", "u2", "instances", 1))

	// A project's limit may not go below its usage...
	h.refuse("below usage", &SetQuota{ProjectID: "p1", Limits: map[string]int64{"instances": 3}}, KindInvalid,
		"Quota limit 3 for instances must be greater than or equal to already used and reserved 4.")
	h.refuse("below usage, one of several", &SetQuota{ProjectID: "p1", Limits: map[string]int64{"instances": 4, "ram": 1000}}, KindInvalid,
		"Quota limit 1000 for ram must be greater than or equal to already used and reserved 1024.")
	h.refuse("server groups", &SetQuota{ProjectID: "p1", Limits: map[string]int64{"server_groups": 0}}, KindInvalid,
		"Quota limit 0 for server_groups must be greater than or equal to already used and reserved 2.")
	// ...but may equal it, be unlimited, and key pairs (a user's, not the
	// project's) do not count, as in Nova.
	h.ok(&SetQuota{ProjectID: "p1", Limits: map[string]int64{"instances": 4, "cores": -1, "key_pairs": 0, "metadata_items": 0}})
	// force sets anything in range.
	h.ok(&SetQuota{ProjectID: "p1", Limits: map[string]int64{"instances": 0, "ram": 0}, Force: true})
	if q, _ := ProjectQuotas(h.state(), "p1"); q["instances"] != 0 || q["ram"] != 0 {
		t.Fatalf("forced limits %v", q)
	}
	h.ok(&SetQuota{ProjectID: "p1", Limits: map[string]int64{"instances": 10, "ram": 10000}})

	// A user's limit: at least the user's usage, at most what the project
	// leaves after the other users' limits.
	h.refuse("user below usage", &SetQuota{ProjectID: "p1", UserID: "u1", Limits: map[string]int64{"instances": 2}}, KindInvalid,
		"Quota limit 2 for instances must be greater than or equal to already used and reserved 3.")
	h.refuse("user over project", &SetQuota{ProjectID: "p1", UserID: "u1", Limits: map[string]int64{"instances": 11}}, KindInvalid,
		"Quota limit 11 for instances must be less than or equal to 10.")
	h.refuse("unlimited user in a limited project", &SetQuota{ProjectID: "p1", UserID: "u1", Limits: map[string]int64{"instances": -1}}, KindInvalid,
		"Quota limit -1 for instances must be less than or equal to 10.")
	h.ok(&SetQuota{ProjectID: "p1", UserID: "u1", Limits: map[string]int64{"instances": 6}})
	h.refuse("the others' share", &SetQuota{ProjectID: "p1", UserID: "u2", Limits: map[string]int64{"instances": 5}}, KindInvalid,
		"Quota limit 5 for instances must be less than or equal to 4.")
	h.ok(&SetQuota{ProjectID: "p1", UserID: "u2", Limits: map[string]int64{"instances": 4}})
	// u1 may move within its own share (its old limit is not "other").
	h.ok(&SetQuota{ProjectID: "p1", UserID: "u1", Limits: map[string]int64{"instances": 5}})
	// The project may not drop below the sum of its users' limits (9).
	h.refuse("below users' limits", &SetQuota{ProjectID: "p1", Limits: map[string]int64{"instances": 8}}, KindInvalid,
		"Quota limit 8 for instances must be greater than or equal to already used and reserved 9.")
	h.ok(&SetQuota{ProjectID: "p1", Limits: map[string]int64{"instances": 9}})
	// Unlimited project: any user limit; unlimited users add nothing.
	h.ok(&SetQuota{ProjectID: "p1", Limits: map[string]int64{"cores": -1}})
	h.ok(&SetQuota{ProjectID: "p1", UserID: "u1", Limits: map[string]int64{"cores": -1}})
	h.ok(&SetQuota{ProjectID: "p1", UserID: "u2", Limits: map[string]int64{"cores": 1000}})
	h.ok(&SetQuota{ProjectID: "p1", Limits: map[string]int64{"cores": 1000}})
	// force skips the user checks too.
	h.ok(&SetQuota{ProjectID: "p1", UserID: "u2", Limits: map[string]int64{"instances": 0, "cores": 5000}, Force: true})
}

func TestQuotaCommandsRefuseBadInput(t *testing.T) {
	h := quotaFixture(t)
	h.ok(&SetQuota{ProjectID: "p1", Limits: map[string]int64{"instances": 5}})
	long := strings.Repeat("x", 256)
	for _, c := range []struct {
		name string
		cmd  Command
		msg  string
	}{
		{"unknown resource", &SetQuota{ProjectID: "p1", Limits: map[string]int64{"gpus": 1}}, `"gpus" is not a quota resource`},
		{"networks (removed from Nova)", &SetQuota{ProjectID: "p1", Limits: map[string]int64{"networks": 1}}, "not a quota resource"},
		{"below -1", &SetQuota{ProjectID: "p1", Limits: map[string]int64{"cores": -2}}, "-2 is less than the minimum of -1"},
		{"above max", &SetQuota{ProjectID: "p1", Limits: map[string]int64{"ram": MaxQuotaLimit + 1}}, "greater than the maximum of 2147483647"},
		{"below -1 even forced", &SetQuota{ProjectID: "p1", Limits: map[string]int64{"cores": -5}, Force: true}, "minimum of -1"},
		{"no project", &SetQuota{Limits: map[string]int64{"cores": 1}}, "Invalid project ID"},
		{"missing project", &SetQuota{ProjectID: "p9", Limits: map[string]int64{"cores": 1}}, "Project ID p9 is not a valid project."},
		{"slash in project", &SetQuota{ProjectID: "p1/u", Limits: map[string]int64{"cores": 1}}, "Invalid project ID"},
		{"slash in user", &SetQuota{ProjectID: "p1", UserID: "a/b", Limits: map[string]int64{"cores": 1}}, "Invalid user ID"},
		{"long user", &SetQuota{ProjectID: "p1", UserID: long, Limits: map[string]int64{"cores": 1}}, "Invalid user ID"},
		{"delete without project", &DeleteQuota{}, "Invalid project ID"},
		{"delete bad user", &DeleteQuota{ProjectID: "p1", UserID: "x\x00"}, "Invalid user ID"},
		{"class without name", &SetQuotaClass{Limits: map[string]int64{"cores": 1}}, "minimum character requirement"},
		{"class name too long", &SetQuotaClass{Class: long, Limits: map[string]int64{"cores": 1}}, "more than 255 characters"},
		{"class bad limit", &SetQuotaClass{Class: "default", Limits: map[string]int64{"cores": -3}}, "minimum of -1"},
		{"class unknown resource", &SetQuotaClass{Class: "default", Limits: map[string]int64{"volumes": 3}}, "not a quota resource"},
	} {
		h.refuse(c.name, c.cmd, KindInvalid, c.msg)
	}
	if q, _ := ProjectQuotas(h.state(), "p1"); q["instances"] != 5 || q["cores"] != 20 {
		t.Fatalf("limits after refusals %v", q)
	}
}

func TestQuotaCommandTypes(t *testing.T) {
	seen := map[CommandType]bool{}
	for _, c := range []Command{&SetQuota{}, &DeleteQuota{}, &SetQuotaClass{}} {
		typ := c.CommandType()
		if typ < 90 || typ > 99 || seen[typ] {
			t.Errorf("%T has type %d: want a distinct type in 90-99", c, typ)
		}
		seen[typ] = true
		a, ok := registry[typ]
		if !ok || a.version != c.CommandVersion() || "*fsm."+a.name != fmt.Sprintf("%T", c) {
			t.Errorf("%T: registered as %+v", c, a)
		}
	}
}
