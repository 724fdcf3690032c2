package fsm

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
)

// kpFSM applies commands at increasing Raft indexes.
type kpFSM struct{ *harness }

func newKpFSM(t *testing.T) *kpFSM { return &kpFSM{newHarness(t)} }

func (h *kpFSM) create(project, user, name string) *Keypair {
	h.t.Helper()
	r := h.apply(&CreateKeypair{ProjectID: project, Keypair: kpTest(user, name)})
	if r.Err != nil {
		h.t.Fatalf("create %s/%s refused: %v", user, name, r.Err)
	}
	var k Keypair
	if err := r.Decode(&k); err != nil {
		h.t.Fatal(err)
	}
	return &k
}

func (h *kpFSM) used(user string) int64 {
	h.t.Helper()
	u, err := UserUsage(h.f.State(), "p1", user)
	if err != nil {
		h.t.Fatal(err)
	}
	return u["key_pairs"]
}

func kpTest(user, name string) Keypair {
	return Keypair{
		Name: name, UserID: user, Type: KeypairTypeSSH,
		PublicKey:   "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBvvmEXi0bFDlE9W1DbyX3qOC4Cr0CWnNrYHtd2hEwzu " + name,
		Fingerprint: "a2:2e:8e:ab:c9:aa:87:ea:24:d1:54:67:d8:a5:55:be",
		CreatedAt:   1_700_000_000_000_000,
	}
}

func kpNames(ks []Keypair) []string {
	var out []string
	for _, k := range ks {
		out = append(out, k.Name)
	}
	return out
}

func TestKeypairLifecycle(t *testing.T) {
	h := newKpFSM(t)
	st := h.f.State()
	a := h.create("p1", "u1", "b-key")
	b := h.create("p1", "u1", "a key")
	c := h.create("p2", "u2", "b-key") // the same name for another user
	if a.ID != 1 || b.ID != 2 || c.ID != 3 {
		t.Fatalf("ids %d %d %d, want 1 2 3", a.ID, b.ID, c.ID)
	}
	// A given ID is ignored: ids come from the sequence.
	r := h.apply(&CreateKeypair{ProjectID: "p1", Keypair: func() Keypair { k := kpTest("u1", "c@x.y"); k.ID = 77; return k }()})
	var d Keypair
	if r.Err != nil || r.Decode(&d) != nil || d.ID != 4 {
		t.Fatalf("create with an id: %v %+v", r.Err, d)
	}

	got, meta, err := GetKeypair(st, "u1", "b-key")
	if err != nil || got.ID != 1 || got.UserID != "u1" || got.Type != KeypairTypeSSH || got.PublicKey != a.PublicKey || meta.CreateIndex != 1 {
		t.Fatalf("get: %+v %+v %v", got, meta, err)
	}
	if _, _, err := GetKeypair(st, "u1", "B-KEY"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("names are case-sensitive: %v", err)
	}
	if _, _, err := GetKeypair(st, "u3", "b-key"); !errors.Is(err, ErrNotFound) || err.Error() != "Keypair b-key not found for user u3" {
		t.Fatalf("another user's key: %v", err)
	}

	for _, tc := range []struct {
		user, marker string
		limit        int
		want         []string
	}{
		{"u1", "", -1, []string{"a key", "b-key", "c@x.y"}},
		{"u1", "", 2, []string{"a key", "b-key"}},
		{"u1", "a key", -1, []string{"b-key", "c@x.y"}},
		{"u1", "b-key", 1, []string{"c@x.y"}},
		{"u1", "c@x.y", -1, nil},
		{"u1", "", 0, nil},
		{"u2", "", -1, []string{"b-key"}},
		{"u", "", -1, nil}, // a prefix of another user's id sees nothing
		{"nobody", "", -1, nil},
	} {
		ks, err := ListKeypairs(st, tc.user, tc.marker, tc.limit)
		if err != nil || !slices.Equal(kpNames(ks), tc.want) {
			t.Errorf("list %s after %q limit %d: %v %v, want %v", tc.user, tc.marker, tc.limit, kpNames(ks), err, tc.want)
		}
	}
	if _, err := ListKeypairs(st, "u2", "a key", -1); !errors.Is(err, ErrInvalid) || err.Error() != "Marker a key could not be found." {
		t.Fatalf("marker of another user: %v", err)
	}

	if h.used("u1") != 3 || h.used("u2") != 1 {
		t.Fatalf("usage u1 %d u2 %d, want 3 and 1", h.used("u1"), h.used("u2"))
	}
	r = h.apply(&DeleteKeypair{UserID: "u1", Name: "b-key", ProjectID: "p1"})
	var del Keypair
	if r.Err != nil || r.Decode(&del) != nil || del.ID != 1 {
		t.Fatalf("delete: %v %+v", r.Err, del)
	}
	if _, _, err := GetKeypair(st, "u1", "b-key"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("deleted key: %v", err)
	}
	if _, _, err := GetKeypair(st, "u2", "b-key"); err != nil {
		t.Fatalf("the other user's key of that name went too: %v", err)
	}
	if h.used("u1") != 2 {
		t.Fatalf("usage after delete %d, want 2", h.used("u1"))
	}
	h.refuse("delete again", &DeleteKeypair{UserID: "u1", Name: "b-key", ProjectID: "p1"}, KindNotFound, "Keypair b-key not found for user u1")
	// A re-created key gets a new id.
	if k := h.create("p1", "u1", "b-key"); k.ID != 5 {
		t.Fatalf("re-created key id %d, want 5", k.ID)
	}
}

func TestKeypairUniquePerUser(t *testing.T) {
	h := newKpFSM(t)
	h.create("p1", "u1", "k")
	h.refuse("same user, same name", &CreateKeypair{ProjectID: "p1", Keypair: kpTest("u1", "k")}, KindConflict, "Key pair 'k' already exists.")
	h.refuse("same user, other project", &CreateKeypair{ProjectID: "p2", Keypair: kpTest("u1", "k")}, KindConflict, "already exists")
	h.create("p1", "u2", "k")
	h.create("p1", "u1", "K")
	if h.used("u1") != 2 {
		t.Fatalf("usage %d after refused duplicates, want 2", h.used("u1"))
	}
}

// key_pairs are counted per user, across projects; at the limit the quota
// is what a create hears about, even for a taken name; a delete frees one.
func TestKeypairQuota(t *testing.T) {
	h := newKpFSM(t)
	limit := DefaultQuotas["key_pairs"]
	for i := range limit {
		project := "p1"
		if i%2 == 1 {
			project = "p2"
		}
		h.create(project, "u1", fmt.Sprintf("k%03d", i))
	}
	if h.used("u1") != limit {
		t.Fatalf("usage %d, want %d", h.used("u1"), limit)
	}
	want := fmt.Sprintf("Quota exceeded for key_pairs: Requested 1, but already used %d of %d key_pairs", limit, limit)
	h.refuse("one over the limit", &CreateKeypair{ProjectID: "p1", Keypair: kpTest("u1", "extra")}, KindQuota, want)
	h.refuse("over the limit in another project", &CreateKeypair{ProjectID: "p3", Keypair: kpTest("u1", "extra")}, KindQuota, "Quota exceeded for key_pairs")
	h.refuse("over the limit with a taken name", &CreateKeypair{ProjectID: "p1", Keypair: kpTest("u1", "k000")}, KindQuota, "Quota exceeded for key_pairs")
	h.create("p1", "u2", "extra") // another user has its own count
	if r := h.apply(&DeleteKeypair{UserID: "u1", Name: "k007", ProjectID: "p2"}); r.Err != nil {
		t.Fatal(r.Err)
	}
	if h.used("u1") != limit-1 {
		t.Fatalf("usage after delete %d, want %d", h.used("u1"), limit-1)
	}
	h.create("p1", "u1", "extra")
	h.refuse("at the limit again", &CreateKeypair{ProjectID: "p1", Keypair: kpTest("u1", "extra2")}, KindQuota, "Quota exceeded")
	ks, err := ListKeypairs(h.f.State(), "u1", "", -1)
	if err != nil || int64(len(ks)) != limit {
		t.Fatalf("u1 has %d key pairs (%v), want %d", len(ks), err, limit)
	}
}

func TestKeypairRefusalsChangeNothing(t *testing.T) {
	h := newKpFSM(t)
	h.create("p1", "u1", "keep")
	mod := func(f func(k *Keypair)) Keypair {
		k := kpTest("u1", "new")
		f(&k)
		return k
	}
	for _, tc := range []struct {
		name string
		k    Keypair
		msg  string
	}{
		{"empty name", mod(func(k *Keypair) { k.Name = "" }), "invalid key pair name"},
		{"long name", mod(func(k *Keypair) { k.Name = strings.Repeat("a", 256) }), "1 to 255 characters"},
		{"slash in name", mod(func(k *Keypair) { k.Name = "a/b" }), "only letters"},
		{"non-ASCII name", mod(func(k *Keypair) { k.Name = "clé" }), "only letters"},
		{"leading space", mod(func(k *Keypair) { k.Name = " a" }), "cannot start or end"},
		{"trailing space", mod(func(k *Keypair) { k.Name = "a " }), "cannot start or end"},
		{"no owner", mod(func(k *Keypair) { k.UserID = "" }), "invalid key pair owner"},
		{"slash in owner", mod(func(k *Keypair) { k.UserID = "u1/x" }), "invalid key pair owner"},
		{"bad type", mod(func(k *Keypair) { k.Type = "rsa" }), "invalid key pair type"},
		{"no public key", mod(func(k *Keypair) { k.PublicKey = "" }), "no public key"},
		{"no fingerprint", mod(func(k *Keypair) { k.Fingerprint = "" }), "fingerprint"},
		{"no creation time", mod(func(k *Keypair) { k.CreatedAt = 0 }), "creation time"},
	} {
		h.refuse(tc.name, &CreateKeypair{ProjectID: "p1", Keypair: tc.k}, KindInvalid, tc.msg)
	}
	h.refuse("bad project", &CreateKeypair{ProjectID: "p/1", Keypair: kpTest("u1", "new")}, KindInvalid, "invalid project id")
	h.refuse("delete missing", &DeleteKeypair{UserID: "u1", Name: "nope"}, KindNotFound, "Keypair nope not found for user u1")
	h.refuse("delete another user's", &DeleteKeypair{UserID: "u2", Name: "keep"}, KindNotFound, "not found")
	h.refuse("delete with a bad name", &DeleteKeypair{UserID: "u1", Name: "a\x00b"}, KindNotFound, "not found")
	if h.used("u1") != 1 {
		t.Fatalf("usage %d, want 1", h.used("u1"))
	}
}
