package fsm

import (
	"bytes"
	"errors"
	"maps"
	"slices"
	"strings"
	"testing"
)

// flavorFSM applies commands at increasing Raft indexes.
type flavorFSM struct{ *harness }

func newFlavorFSM(t *testing.T) *flavorFSM {
	t.Helper()
	h := &flavorFSM{newHarness(t)}
	// A domain and two projects, for access lists.
	h.ok(&IdentityBootstrap{
		Domain:       Domain{ID: "default", Name: "Default", Enabled: true},
		AdminProject: Project{ID: "p-admin", Name: "admin", DomainID: "default", Enabled: true},
		AdminUser:    User{ID: "u-admin", Name: "admin", DomainID: "default", Enabled: true},
		Roles:        []Role{{ID: "r1", Name: RoleAdmin}, {ID: "r2", Name: RoleMember}, {ID: "r3", Name: RoleReader}},
		TokenKey:     TokenKey{ID: "k1", Secret: bytes.Repeat([]byte{1}, 32)},
		Now:          1,
	})
	h.ok(&CreateProject{Project: Project{ID: "p-other", Name: "other", DomainID: "default", Enabled: true}})
	return h
}

func testFlavor(id, name string) Flavor {
	return Flavor{ID: id, Name: name, VCPUs: 1, RAM: 256, Disk: 1, RxTxFactor: 1, IsPublic: true, CreatedAt: 10}
}

func TestFlavorCreateGetList(t *testing.T) {
	h := newFlavorFSM(t)
	s := h.f.State()
	f := testFlavor("f1", "small one")
	f.ExtraSpecs = map[string]string{"hw:cpu_policy": "dedicated"}
	f.Description = "desc"
	r := h.ok(&CreateFlavor{Flavor: f})
	var got Flavor
	if err := r.Decode(&got); err != nil || got.ID != "f1" || got.ExtraSpecs["hw:cpu_policy"] != "dedicated" {
		t.Fatalf("response %+v %v", got, err)
	}
	g, meta, err := GetFlavor(s, "f1")
	if err != nil || g.Name != "small one" || g.Description != "desc" || g.RxTxFactor != 1 || meta.CreateIndex != r.Index {
		t.Fatalf("get: %+v %+v %v", g, meta, err)
	}
	if _, _, err := GetFlavor(s, "nope"); !errors.Is(err, ErrNotFound) || err.Error() != "Flavor nope could not be found." {
		t.Fatalf("missing flavor: %v", err)
	}
	if _, _, err := GetFlavor(s, "bad/id"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("malformed id: %v", err)
	}
	if b, err := FlavorByName(s, "small one"); err != nil || b.ID != "f1" {
		t.Fatalf("by name: %+v %v", b, err)
	}
	h.ok(&CreateFlavor{Flavor: testFlavor("a0", "first")})
	list, err := ListFlavors(s)
	if err != nil || len(list) != 2 || list[0].ID != "a0" || list[1].ID != "f1" {
		t.Fatalf("list: %+v %v", list, err)
	}
	// Empty extra specs are stored as none.
	h.ok(&CreateFlavor{Flavor: func() Flavor { f := testFlavor("e", "empty specs"); f.ExtraSpecs = map[string]string{}; return f }()})
	if e, _, _ := GetFlavor(s, "e"); e.ExtraSpecs != nil {
		t.Fatalf("empty extra specs stored as %#v", e.ExtraSpecs)
	}
}

func TestFlavorRefusalsChangeNothing(t *testing.T) {
	h := newFlavorFSM(t)
	h.ok(&CreateFlavor{Flavor: testFlavor("1", "taken")})
	priv := testFlavor("p", "private")
	priv.IsPublic = false
	h.ok(&CreateFlavor{Flavor: priv})
	h.ok(&AddFlavorAccess{FlavorID: "p", ProjectID: "p-other"})

	with := func(mod func(*Flavor)) *CreateFlavor {
		f := testFlavor("new", "new")
		mod(&f)
		return &CreateFlavor{Flavor: f}
	}
	for _, tc := range []struct {
		name string
		cmd  Command
		kind Kind
		msg  string
	}{
		{"duplicate id", with(func(f *Flavor) { f.ID = "1" }), KindConflict, "Flavor with ID 1 already exists."},
		{"duplicate name", with(func(f *Flavor) { f.Name = "taken" }), KindConflict, "Flavor with name taken already exists."},
		{"empty id", with(func(f *Flavor) { f.ID = "" }), KindInvalid, "invalid flavor id"},
		{"id with slash", with(func(f *Flavor) { f.ID = "a/b" }), KindInvalid, "invalid flavor id"},
		{"id with leading space", with(func(f *Flavor) { f.ID = " a" }), KindInvalid, "invalid flavor id"},
		{"id too long", with(func(f *Flavor) { f.ID = strings.Repeat("a", 256) }), KindInvalid, "invalid flavor id"},
		{"empty name", with(func(f *Flavor) { f.Name = "" }), KindInvalid, "invalid flavor name"},
		{"name with trailing space", with(func(f *Flavor) { f.Name = "x " }), KindInvalid, "invalid flavor name"},
		{"name too long", with(func(f *Flavor) { f.Name = strings.Repeat("é", 256) }), KindInvalid, "at most 255"},
		{"name with NUL", with(func(f *Flavor) { f.Name = "a\x00b" }), KindInvalid, "NUL"},
		{"ram 0", with(func(f *Flavor) { f.RAM = 0 }), KindInvalid, "ram"},
		{"vcpus 0", with(func(f *Flavor) { f.VCPUs = 0 }), KindInvalid, "vcpus"},
		{"negative disk", with(func(f *Flavor) { f.Disk = -1 }), KindInvalid, "disk"},
		{"negative ephemeral", with(func(f *Flavor) { f.Ephemeral = -1 }), KindInvalid, "ephemeral"},
		{"negative swap", with(func(f *Flavor) { f.Swap = -1 }), KindInvalid, "swap"},
		{"huge ram", with(func(f *Flavor) { f.RAM = 1 << 31 }), KindInvalid, "ram"},
		{"rxtx 0", with(func(f *Flavor) { f.RxTxFactor = 0 }), KindInvalid, "rxtx_factor"},
		{"bad spec key", with(func(f *Flavor) { f.ExtraSpecs = map[string]string{"a/b": "x"} }), KindInvalid, "invalid extra spec key"},
		{"long spec value", with(func(f *Flavor) { f.ExtraSpecs = map[string]string{"k": strings.Repeat("v", 256)} }), KindInvalid, "at most 255"},
		{"long description", with(func(f *Flavor) { f.Description = strings.Repeat("d", 65536) }), KindInvalid, "description"},
		{"delete missing", &DeleteFlavor{ID: "nope"}, KindNotFound, "Flavor nope could not be found."},
		{"describe missing", &UpdateFlavorDescription{ID: "nope", Description: "x"}, KindNotFound, "could not be found"},
		{"describe too long", &UpdateFlavorDescription{ID: "1", Description: strings.Repeat("d", 65536)}, KindInvalid, "description"},
		{"specs of missing", &SetFlavorExtraSpecs{ID: "nope", Specs: map[string]string{"a": "b"}}, KindNotFound, "could not be found"},
		{"bad spec key set", &SetFlavorExtraSpecs{ID: "1", Specs: map[string]string{"": "b"}}, KindInvalid, "invalid extra spec key"},
		{"unset missing key", &DeleteFlavorExtraSpec{ID: "1", Key: "nokey"}, KindNotFound, "Flavor 1 has no extra specs with key nokey."},
		{"access unknown project", &AddFlavorAccess{FlavorID: "p", ProjectID: "p-nope"}, KindInvalid, "Project ID p-nope is not a valid project."},
		{"access missing flavor", &AddFlavorAccess{FlavorID: "nope", ProjectID: "p-other"}, KindNotFound, "Flavor nope could not be found."},
		{"access to public (2.7+)", &AddFlavorAccess{FlavorID: "1", ProjectID: "p-other", RefusePublic: true}, KindConflict, "Can not add access to a public flavor."},
		{"access twice", &AddFlavorAccess{FlavorID: "p", ProjectID: "p-other"}, KindConflict, "Flavor access already exists for flavor p and project p-other combination."},
		{"remove missing access", &RemoveFlavorAccess{FlavorID: "p", ProjectID: "p-admin"}, KindNotFound, "Flavor access not found for p / p-admin combination."},
		{"remove access of missing flavor", &RemoveFlavorAccess{FlavorID: "nope", ProjectID: "p-admin"}, KindNotFound, "could not be found"},
		{"defaults with negative now", &CreateDefaultFlavors{Now: -1}, KindInvalid, "now"},
	} {
		h.refuse(tc.name, tc.cmd, tc.kind, tc.msg)
	}
}

func TestFlavorUpdatesAndDelete(t *testing.T) {
	h := newFlavorFSM(t)
	s := h.f.State()
	h.ok(&CreateFlavor{Flavor: testFlavor("1", "one")})

	r := h.ok(&UpdateFlavorDescription{ID: "1", Description: "new text"})
	var f Flavor
	if err := r.Decode(&f); err != nil || f.Description != "new text" {
		t.Fatalf("description: %+v %v", f, err)
	}
	// Unchanged description: no write.
	before := stateHash(t, h.f)
	h.ok(&UpdateFlavorDescription{ID: "1", Description: "new text"})
	if stateHash(t, h.f) != before {
		t.Fatal("setting the same description wrote")
	}

	h.ok(&SetFlavorExtraSpecs{ID: "1", Specs: map[string]string{"a": "1", "b": "2"}})
	h.ok(&SetFlavorExtraSpecs{ID: "1", Specs: map[string]string{"b": "3", "c:d": "4"}})
	g, _, _ := GetFlavor(s, "1")
	if want := map[string]string{"a": "1", "b": "3", "c:d": "4"}; !maps.Equal(g.ExtraSpecs, want) {
		t.Fatalf("merged specs %v, want %v", g.ExtraSpecs, want)
	}
	before = stateHash(t, h.f)
	h.ok(&SetFlavorExtraSpecs{ID: "1", Specs: map[string]string{"a": "1"}})
	if stateHash(t, h.f) != before {
		t.Fatal("setting the same extra spec wrote")
	}
	h.ok(&DeleteFlavorExtraSpec{ID: "1", Key: "b"})
	g, _, _ = GetFlavor(s, "1")
	if want := map[string]string{"a": "1", "c:d": "4"}; !maps.Equal(g.ExtraSpecs, want) {
		t.Fatalf("specs after delete %v, want %v", g.ExtraSpecs, want)
	}

	// Access lists.
	p := testFlavor("p", "private")
	p.IsPublic = false
	h.ok(&CreateFlavor{Flavor: p})
	pub, _, _ := GetFlavor(s, "1")
	priv, _, _ := GetFlavor(s, "p")
	for _, tc := range []struct {
		f       *Flavor
		project string
		want    bool
	}{{pub, "", true}, {pub, "p-other", true}, {priv, "p-other", false}, {priv, "", false}} {
		if ok, err := FlavorAccessible(s, tc.f, tc.project); err != nil || ok != tc.want {
			t.Fatalf("accessible(%s, %q) = %v %v", tc.f.ID, tc.project, ok, err)
		}
	}
	r = h.ok(&AddFlavorAccess{FlavorID: "p", ProjectID: "p-other", RefusePublic: true})
	var list []string
	if err := r.Decode(&list); err != nil || !slices.Equal(list, []string{"p-other"}) {
		t.Fatalf("add access response %v %v", list, err)
	}
	r = h.ok(&AddFlavorAccess{FlavorID: "p", ProjectID: "p-admin"})
	if err := r.Decode(&list); err != nil || !slices.Equal(list, []string{"p-admin", "p-other"}) {
		t.Fatalf("add access response %v %v", list, err)
	}
	// Before 2.7 Nova stores access to a public flavor.
	h.ok(&AddFlavorAccess{FlavorID: "1", ProjectID: "p-other"})
	if ok, _ := FlavorAccessible(s, priv, "p-other"); !ok {
		t.Fatal("p-other cannot use the private flavor it was given")
	}
	if got, _ := FlavorAccess(s, "p"); !slices.Equal(got, []string{"p-admin", "p-other"}) {
		t.Fatalf("access list %v", got)
	}
	r = h.ok(&RemoveFlavorAccess{FlavorID: "p", ProjectID: "p-admin"})
	if err := r.Decode(&list); err != nil || !slices.Equal(list, []string{"p-other"}) {
		t.Fatalf("remove access response %v %v", list, err)
	}

	// Deleting takes the access list and the name with it.
	h.ok(&DeleteFlavor{ID: "p"})
	if _, _, err := GetFlavor(s, "p"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("deleted flavor: %v", err)
	}
	if got, _ := FlavorAccess(s, "p"); len(got) != 0 {
		t.Fatalf("access list of a deleted flavor: %v", got)
	}
	if _, err := FlavorByName(s, "private"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("name of a deleted flavor: %v", err)
	}
	p.Name = "private again"
	h.ok(&CreateFlavor{Flavor: p})
	if got, _ := FlavorAccess(s, "p"); len(got) != 0 {
		t.Fatalf("a re-created flavor inherited an access list: %v", got)
	}
	if got, _ := FlavorAccess(s, "1"); !slices.Equal(got, []string{"p-other"}) {
		t.Fatalf("access list of another flavor changed: %v", got)
	}
}

func TestCreateDefaultFlavors(t *testing.T) {
	h := newFlavorFSM(t)
	s := h.f.State()
	if done, _ := DefaultFlavorsHandled(s); done {
		t.Fatal("defaults handled before the command")
	}
	var n uint64
	if err := h.ok(&CreateDefaultFlavors{Now: 77}).Decode(&n); err != nil || n != 5 {
		t.Fatalf("created %d %v", n, err)
	}
	list, _ := ListFlavors(s)
	want := []struct {
		id, name         string
		vcpus, ram, disk int
	}{{"1", "m1.tiny", 1, 512, 1}, {"2", "m1.small", 1, 2048, 20}, {"3", "m1.medium", 2, 4096, 40}, {"4", "m1.large", 4, 8192, 80}, {"5", "m1.xlarge", 8, 16384, 160}}
	if len(list) != len(want) {
		t.Fatalf("defaults: %+v", list)
	}
	for i, w := range want {
		f := list[i]
		if f.ID != w.id || f.Name != w.name || f.VCPUs != w.vcpus || f.RAM != w.ram || f.Disk != w.disk || !f.IsPublic || f.RxTxFactor != 1 || f.CreatedAt != 77 {
			t.Fatalf("default %d: %+v, want %+v", i, f, w)
		}
	}
	if done, _ := DefaultFlavorsHandled(s); !done {
		t.Fatal("defaults not marked handled")
	}
	// Once handled, never again: not even after the operator deleted them.
	for _, f := range list {
		h.ok(&DeleteFlavor{ID: f.ID})
	}
	before := stateHash(t, h.f)
	if err := h.ok(&CreateDefaultFlavors{Now: 78}).Decode(&n); err != nil || n != 0 {
		t.Fatalf("second time: created %d %v", n, err)
	}
	if stateHash(t, h.f) != before {
		t.Fatal("a second CreateDefaultFlavors changed the state")
	}

	// A cluster that has flavors already gets none, but is marked.
	h2 := newFlavorFSM(t)
	h2.ok(&CreateFlavor{Flavor: testFlavor("x", "mine")})
	if err := h2.ok(&CreateDefaultFlavors{Now: 1}).Decode(&n); err != nil || n != 0 {
		t.Fatalf("with a flavor: created %d %v", n, err)
	}
	if list, _ := ListFlavors(h2.f.State()); len(list) != 1 {
		t.Fatalf("with a flavor: %+v", list)
	}
	if done, _ := DefaultFlavorsHandled(h2.f.State()); !done {
		t.Fatal("not marked handled when flavors existed")
	}
}

// Every flavor command survives encoding: the types are registered with
// the numbers of the flavor range.
func TestFlavorCommandTypes(t *testing.T) {
	for _, c := range []Command{&CreateFlavor{}, &DeleteFlavor{}, &UpdateFlavorDescription{}, &SetFlavorExtraSpecs{},
		&DeleteFlavorExtraSpec{}, &AddFlavorAccess{}, &RemoveFlavorAccess{}, &CreateDefaultFlavors{}} {
		if ct := c.CommandType(); ct < 40 || ct > 59 {
			t.Errorf("%T has type %d, outside 40-59", c, ct)
		}
		if _, ok := registry[c.CommandType()]; !ok {
			t.Errorf("%T is not registered", c)
		}
		if strings.HasPrefix(c.CommandType().String(), "command(") {
			t.Errorf("%T has no name", c)
		}
	}
}
