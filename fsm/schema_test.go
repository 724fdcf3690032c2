package fsm

import (
	"errors"
	"fmt"
	"strings"
	"testing"
)

// schemaOne is every command version that FSM schema 1 comprises. Schema 1
// has shipped: a controller advertising it applies exactly these, so the
// list never changes. A command type or version added since must be
// registered with registerSince(Schema()+1, ...) (see README.md), or the
// leader would propose it to controllers that stop on it.
var schemaOne = []struct {
	typ  CommandType
	ver  uint8
	name string
}{
	{1, 1, "Barrier"},
	{2, 1, "KVPut"},
	{3, 1, "KVDelete"},
	{4, 1, "SequenceNext"},
	{20, 1, "IdentityBootstrap"},
	{21, 1, "CreateProject"},
	{22, 1, "UpdateProject"},
	{23, 1, "DeleteProject"},
	{24, 1, "CreateUser"},
	{25, 1, "UpdateUser"},
	{26, 1, "DeleteUser"},
	{27, 1, "CreateRole"},
	{28, 1, "DeleteRole"},
	{29, 1, "GrantRole"},
	{30, 1, "RevokeRole"},
	{31, 1, "RotateTokenKeys"},
	{32, 1, "RevokeToken"},
	{33, 1, "PurgeTokenRevocations"},
	{40, 1, "CreateFlavor"},
	{41, 1, "DeleteFlavor"},
	{42, 1, "UpdateFlavorDescription"},
	{43, 1, "SetFlavorExtraSpecs"},
	{44, 1, "DeleteFlavorExtraSpec"},
	{45, 1, "AddFlavorAccess"},
	{46, 1, "RemoveFlavorAccess"},
	{47, 1, "CreateDefaultFlavors"},
	{60, 1, "CreateKeypair"},
	{61, 1, "DeleteKeypair"},
	{70, 1, "CreateImage"},
	{71, 1, "UpdateImage"},
	{72, 1, "DeleteImage"},
	{73, 1, "BeginUpload"},
	{74, 1, "FinishUpload"},
	{75, 1, "AbortUpload"},
	{76, 1, "AddImageLocation"},
	{77, 1, "AddImageMember"},
	{78, 1, "UpdateImageMember"},
	{79, 1, "DeleteImageMember"},
	{90, 1, "SetQuota"},
	{91, 1, "DeleteQuota"},
	{92, 1, "SetQuotaClass"},
	{100, 1, "CreateServers"},
	{101, 1, "UpdateServer"},
	{102, 1, "DeleteServer"},
	{103, 1, "SetServerMetadata"},
	{104, 1, "DeleteServerMetadata"},
	{105, 1, "SetServerTags"},
	{106, 1, "DeleteServerTag"},
	{107, 1, "AddServerTag"},
	{109, 1, "ServerAction"},
	{110, 1, "PlaceServers"},
	{111, 1, "ReportServer"},
	{120, 1, "CreateServerGroup"},
	{121, 1, "DeleteServerGroup"},
	{140, 1, "RegisterHost"},
	{141, 1, "SetLiveness"},
	{142, 1, "UpdateService"},
	{143, 1, "DeleteService"},
	{144, 1, "EvacuateServer"},
	{145, 1, "CompleteMigration"},
	{160, 1, "CreateAggregate"},
	{161, 1, "UpdateAggregate"},
	{162, 1, "DeleteAggregate"},
	{163, 1, "AddAggregateHost"},
	{164, 1, "RemoveAggregateHost"},
	{165, 1, "SetAggregateMetadata"},
}

// testTypes are the command types tests register (quota_test.go, ...).
const testTypesFrom CommandType = 0xfe00

func TestSchemaOneIsFrozen(t *testing.T) {
	want := map[[2]int]string{}
	for _, c := range schemaOne {
		want[[2]int{int(c.typ), int(c.ver)}] = c.name
	}
	for typ, a := range registry {
		if typ >= testTypesFrom {
			continue
		}
		for ver, v := range a.versions {
			name, frozen := want[[2]int{int(typ), int(ver)}]
			switch {
			case frozen && v.since != 1:
				t.Errorf("%s (type %d version %d) is part of schema 1 but registered at schema %d", a.name, typ, ver, v.since)
			case frozen && name != a.name:
				t.Errorf("type %d is %s in schema 1 but registered as %s: types are never renumbered or reused", typ, name, a.name)
			case !frozen && v.since <= 1:
				t.Errorf("%s (type %d version %d) is registered at schema %d, but schema 1 has shipped without it: "+
					"register it with registerSince(%d, ...) so the leader proposes it only once every controller applies it",
					a.name, typ, ver, v.since, Schema()+1)
			}
			delete(want, [2]int{int(typ), int(ver)})
		}
	}
	for k, name := range want {
		t.Errorf("%s (type %d version %d) of schema 1 is no longer registered: a log written by an older controller may hold it, "+
			"and this binary would stop on it; keep its applier", name, k[0], k[1])
	}
}

// Test commands of schemas after 1, to exercise the gate's lookup and the
// registration rules. Registering them raises Schema() of this test binary
// only.
type testSince2 struct {
	N int `json:"n"`
}

const cmdTestSince2 CommandType = 0xfe94

func (*testSince2) CommandType() CommandType { return cmdTestSince2 }
func (*testSince2) CommandVersion() uint8    { return 1 }

// testVersioned exists at version 1 (schema 1) and 2 (schema 2).
type testVersionedV1 struct {
	A string `json:"a"`
}
type testVersionedV2 struct {
	A string `json:"a"`
	B string `json:"b"`
}

const cmdTestVersioned CommandType = 0xfe95

func (*testVersionedV1) CommandType() CommandType { return cmdTestVersioned }
func (*testVersionedV1) CommandVersion() uint8    { return 1 }
func (*testVersionedV2) CommandType() CommandType { return cmdTestVersioned }
func (*testVersionedV2) CommandVersion() uint8    { return 2 }

// testVersionedV3 is registered (and refused) by a test only.
type testVersionedV3 struct{}

func (*testVersionedV3) CommandType() CommandType { return cmdTestVersioned }
func (*testVersionedV3) CommandVersion() uint8    { return 3 }

func init() {
	registerSince(2, "testSince2", func(tx *Txn, c *testSince2) (any, error) {
		return nil, tx.Put(TableKV, "since2", &KVEntry{Value: []byte(fmt.Sprint(c.N))})
	})
	register("testVersioned", func(tx *Txn, c *testVersionedV1) (any, error) { return "v1", nil })
	registerSince(2, "testVersioned", func(tx *Txn, c *testVersionedV2) (any, error) { return "v2", nil })
}

func TestInspectCommandGivesTheSchemaOfTypeAndVersion(t *testing.T) {
	for _, tc := range []struct {
		c      Command
		schema int
	}{
		{&KVPut{Key: "k"}, 1},
		{&Barrier{}, 1},
		{&testSince2{N: 1}, 2},
		{&testVersionedV1{A: "x"}, 1},
		{&testVersionedV2{A: "x"}, 2},
	} {
		h, err := InspectCommand(mustEncode(t, tc.c))
		if err != nil {
			t.Fatalf("%T: %v", tc.c, err)
		}
		if h.Type != tc.c.CommandType() || h.Version != tc.c.CommandVersion() || h.Schema != tc.schema {
			t.Errorf("%T: got %+v, want type %d version %d schema %d", tc.c, h, tc.c.CommandType(), tc.c.CommandVersion(), tc.schema)
		}
	}
	if Schema() != 2 {
		t.Errorf("Schema() = %d with test commands of schema 2 registered, want 2", Schema())
	}
	if v := registry[cmdTestVersioned].version; v != 2 {
		t.Errorf("newest version of testVersioned = %d, want 2", v)
	}

	good := mustEncode(t, &KVPut{Key: "k"})
	for name, tc := range map[string]struct {
		data    []byte
		unknown bool
	}{
		"empty":                 {nil, false},
		"short header":          {[]byte{1, 0, 2}, false},
		"unknown format":        {append([]byte{2}, good[1:]...), true},
		"short, unknown format": {[]byte{7}, true},
		"unknown type":          {append([]byte{1, 0x7f, 0x01, 1}, good[4:]...), true},
		"unknown version":       {append([]byte{1, 0, 2, 9}, good[4:]...), true},
	} {
		_, err := InspectCommand(tc.data)
		var u *UnknownCommandError
		isUnknown := errors.As(err, &u)
		if err == nil || isUnknown != tc.unknown {
			t.Errorf("%s: got %v (unknown %v), want unknown=%v", name, err, isUnknown, tc.unknown)
		}
		if !tc.unknown {
			if fe, ok := AsError(err); !ok || fe.Kind != KindInvalid {
				t.Errorf("%s: got %v, want a KindInvalid refusal", name, err)
			}
		}
	}
}

func TestRegistrationRules(t *testing.T) {
	mustPanic := func(name, want string, fn func()) {
		t.Helper()
		defer func() {
			t.Helper()
			r := recover()
			if r == nil {
				t.Errorf("%s: registered, want a panic", name)
				return
			}
			if !strings.Contains(fmt.Sprint(r), want) {
				t.Errorf("%s: panic %q does not say %q", name, r, want)
			}
		}()
		fn()
	}
	noop3 := func(tx *Txn, c *testVersionedV3) (any, error) { return nil, nil }
	mustPanic("a version bump at the old schema", "a newer version needs a newer schema", func() {
		registerSince(2, "testVersioned", noop3)
	})
	mustPanic("a version twice", "registered twice", func() {
		registerSince(2, "testVersioned", func(tx *Txn, c *testVersionedV2) (any, error) { return nil, nil })
	})
	mustPanic("another name for a type", "registered as both", func() {
		registerSince(3, "somethingElse", noop3)
	})
	mustPanic("schema 0", "schemas start at 1", func() {
		registerSince(0, "testVersioned", noop3)
	})
	if _, ok := registry[cmdTestVersioned].versions[3]; ok {
		t.Fatal("a refused registration was kept")
	}
}
