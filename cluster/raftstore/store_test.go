package raftstore_test

import (
	"bytes"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/raft"

	"github.com/keel-cloud/keel/cluster/raftstore"
)

// openStore opens a store in a fresh temporary directory and closes it when
// the test ends.
func openStore(t testing.TB, opts raftstore.Options) (*raftstore.Store, string) {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "raft")
	s, err := raftstore.Open(dir, opts)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return s, dir
}

// entry builds a deterministic log entry whose contents depend on index and
// term, so readers can check what they get back.
func entry(index, term uint64) *raft.Log {
	return &raft.Log{
		Index:      index,
		Term:       term,
		Type:       raft.LogCommand,
		Data:       []byte(fmt.Sprintf("data-%d-%d", index, term)),
		Extensions: []byte(fmt.Sprintf("ext-%d", index)),
		AppendedAt: time.Unix(1_700_000_000+int64(index), int64(index)*1000).UTC(),
	}
}

func entries(from, to, term uint64) []*raft.Log {
	var out []*raft.Log
	for i := from; i <= to; i++ {
		out = append(out, entry(i, term))
	}
	return out
}

func mustStore(t testing.TB, s *raftstore.Store, logs []*raft.Log) {
	t.Helper()
	if err := s.StoreLogs(logs); err != nil {
		t.Fatalf("StoreLogs: %v", err)
	}
}

func checkBounds(t testing.TB, s *raftstore.Store, wantFirst, wantLast uint64) {
	t.Helper()
	first, err := s.FirstIndex()
	if err != nil {
		t.Fatalf("FirstIndex: %v", err)
	}
	last, err := s.LastIndex()
	if err != nil {
		t.Fatalf("LastIndex: %v", err)
	}
	if first != wantFirst || last != wantLast {
		t.Fatalf("bounds = [%d, %d], want [%d, %d]", first, last, wantFirst, wantLast)
	}
}

func sameLog(t testing.TB, got, want *raft.Log) {
	t.Helper()
	if got.Index != want.Index || got.Term != want.Term || got.Type != want.Type {
		t.Fatalf("log header = (index %d, term %d, type %v), want (index %d, term %d, type %v)",
			got.Index, got.Term, got.Type, want.Index, want.Term, want.Type)
	}
	if !bytes.Equal(got.Data, want.Data) {
		t.Fatalf("log %d Data = %q, want %q", want.Index, got.Data, want.Data)
	}
	if !bytes.Equal(got.Extensions, want.Extensions) {
		t.Fatalf("log %d Extensions = %q, want %q", want.Index, got.Extensions, want.Extensions)
	}
	if !got.AppendedAt.Equal(want.AppendedAt) {
		t.Fatalf("log %d AppendedAt = %v, want %v", want.Index, got.AppendedAt, want.AppendedAt)
	}
}

// present reports whether index can be read; any error other than
// raft.ErrLogNotFound fails the test.
func present(t testing.TB, s *raftstore.Store, index uint64) bool {
	t.Helper()
	var l raft.Log
	err := s.GetLog(index, &l)
	switch {
	case err == nil:
		if l.Index != index {
			t.Fatalf("GetLog(%d) returned index %d", index, l.Index)
		}
		return true
	case err == raft.ErrLogNotFound:
		return false
	default:
		t.Fatalf("GetLog(%d): %v", index, err)
		return false
	}
}

func TestEmptyStore(t *testing.T) {
	s, _ := openStore(t, raftstore.Options{})
	checkBounds(t, s, 0, 0)
	for _, i := range []uint64{0, 1, 100} {
		if present(t, s, i) {
			t.Fatalf("empty store has log %d", i)
		}
	}
}

func TestLogRoundTrip(t *testing.T) {
	s, _ := openStore(t, raftstore.Options{})

	single := &raft.Log{
		Index:      1,
		Term:       3,
		Type:       raft.LogConfiguration,
		Data:       []byte{0, 1, 2, 0xff},
		Extensions: []byte("trace=abc"),
		AppendedAt: time.Date(2024, 2, 29, 23, 59, 59, 123456789, time.FixedZone("x", 3600)),
	}
	if err := s.StoreLog(single); err != nil {
		t.Fatalf("StoreLog: %v", err)
	}
	batch := []*raft.Log{
		{Index: 2, Term: 3, Type: raft.LogNoop},                                            // no payload, zero time
		{Index: 3, Term: 4, Type: raft.LogBarrier, Data: bytes.Repeat([]byte("x"), 1<<16)}, // large payload
		{Index: 4, Term: 4, Type: raft.LogType(200), Extensions: []byte{9}},                // type raft may add later
		{Index: 5, Term: 1<<64 - 1, Type: raft.LogCommand, Data: []byte("y"),
			AppendedAt: time.Date(1969, 12, 31, 23, 59, 59, 1, time.UTC)}, // before the epoch
	}
	mustStore(t, s, batch)
	checkBounds(t, s, 1, 5)

	for _, want := range append([]*raft.Log{single}, batch...) {
		// Start from a dirty struct: GetLog must overwrite every field.
		got := raft.Log{Index: 99, Term: 99, Type: raft.LogBarrier, Data: []byte("stale"),
			Extensions: []byte("stale"), AppendedAt: time.Now()}
		if err := s.GetLog(want.Index, &got); err != nil {
			t.Fatalf("GetLog(%d): %v", want.Index, err)
		}
		sameLog(t, &got, want)
		if want.AppendedAt.IsZero() && !got.AppendedAt.IsZero() {
			t.Fatalf("log %d: zero AppendedAt came back as %v", want.Index, got.AppendedAt)
		}
	}
}

func TestStoreLogsReplacesExisting(t *testing.T) {
	s, _ := openStore(t, raftstore.Options{})
	mustStore(t, s, entries(1, 3, 1))
	mustStore(t, s, entries(2, 2, 7))
	var got raft.Log
	if err := s.GetLog(2, &got); err != nil {
		t.Fatalf("GetLog: %v", err)
	}
	sameLog(t, &got, entry(2, 7))
	checkBounds(t, s, 1, 3)
}

// TestStoreLogsOutOfOrder stores a batch below and one above the current
// range, and an unsorted batch: the bounds follow the lowest and highest
// index actually stored.
func TestStoreLogsOutOfOrder(t *testing.T) {
	s, _ := openStore(t, raftstore.Options{})
	mustStore(t, s, entries(10, 20, 1))
	mustStore(t, s, entries(5, 7, 1))
	checkBounds(t, s, 5, 20)
	mustStore(t, s, []*raft.Log{entry(30, 1), entry(2, 1), entry(25, 1)})
	checkBounds(t, s, 2, 30)
	for _, i := range []uint64{2, 5, 7, 10, 20, 25, 30} {
		if !present(t, s, i) {
			t.Fatalf("log %d missing", i)
		}
	}
}

func TestStoreLogsRejectsInvalid(t *testing.T) {
	s, _ := openStore(t, raftstore.Options{})
	if err := s.StoreLogs(nil); err != nil {
		t.Fatalf("StoreLogs(nil) = %v, want nil", err)
	}
	if err := s.StoreLogs([]*raft.Log{entry(1, 1), {Index: 0, Term: 1}}); err == nil {
		t.Fatal("StoreLogs accepted index 0")
	}
	if err := s.StoreLogs([]*raft.Log{entry(1, 1), nil}); err == nil {
		t.Fatal("StoreLogs accepted a nil entry")
	}
	// A rejected batch must leave nothing behind.
	checkBounds(t, s, 0, 0)
	if present(t, s, 1) {
		t.Fatal("rejected batch was partly written")
	}
}

func TestGetLogMissing(t *testing.T) {
	s, _ := openStore(t, raftstore.Options{})
	mustStore(t, s, entries(10, 20, 1))
	if err := s.DeleteRange(14, 15); err != nil {
		t.Fatalf("DeleteRange: %v", err)
	}
	for _, i := range []uint64{0, 9, 14, 15, 21, 1 << 63} {
		var l raft.Log
		err := s.GetLog(i, &l)
		if err != raft.ErrLogNotFound || !errors.Is(err, raft.ErrLogNotFound) {
			t.Fatalf("GetLog(%d) = %v, want raft.ErrLogNotFound", i, err)
		}
	}
}

func TestDeleteRange(t *testing.T) {
	cases := []struct {
		name                string
		min, max            uint64
		wantFirst, wantLast uint64
		gone                []uint64 // deleted indexes within 1..10
	}{
		{"head", 1, 4, 5, 10, []uint64{1, 2, 3, 4}},
		{"head-from-zero", 0, 1, 2, 10, []uint64{1}},
		{"tail", 7, 10, 1, 6, []uint64{7, 8, 9, 10}},
		{"tail-past-end", 10, 1<<64 - 1, 1, 9, []uint64{10}},
		{"middle", 3, 8, 1, 10, []uint64{3, 4, 5, 6, 7, 8}},
		{"single", 5, 5, 1, 10, []uint64{5}},
		{"all", 1, 10, 0, 0, []uint64{1, 2, 3, 4, 5, 6, 7, 8, 9, 10}},
		{"all-wider", 0, 1<<64 - 1, 0, 0, []uint64{1, 2, 3, 4, 5, 6, 7, 8, 9, 10}},
		{"below", 0, 0, 1, 10, nil},
		{"above", 11, 50, 1, 10, nil},
		{"inverted", 8, 3, 1, 10, nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s, _ := openStore(t, raftstore.Options{})
			mustStore(t, s, entries(1, 10, 1))
			if err := s.DeleteRange(tc.min, tc.max); err != nil {
				t.Fatalf("DeleteRange(%d, %d): %v", tc.min, tc.max, err)
			}
			checkBounds(t, s, tc.wantFirst, tc.wantLast)
			gone := map[uint64]bool{}
			for _, i := range tc.gone {
				gone[i] = true
			}
			for i := uint64(1); i <= 10; i++ {
				if got := present(t, s, i); got == gone[i] {
					t.Fatalf("log %d present = %v, want %v", i, got, !gone[i])
				}
			}
		})
	}
}

// TestDeleteRangeWithGaps checks that the cached bounds follow the entries
// that really remain when the log is not contiguous.
func TestDeleteRangeWithGaps(t *testing.T) {
	s, _ := openStore(t, raftstore.Options{})
	mustStore(t, s, entries(1, 3, 1))
	mustStore(t, s, entries(10, 12, 1))
	mustStore(t, s, entries(20, 22, 1))
	checkBounds(t, s, 1, 22)

	if err := s.DeleteRange(1, 5); err != nil { // head, ending in a gap
		t.Fatal(err)
	}
	checkBounds(t, s, 10, 22)
	if err := s.DeleteRange(15, 30); err != nil { // tail, starting in a gap
		t.Fatal(err)
	}
	checkBounds(t, s, 10, 12)
}

// TestConflictingSuffix follows what raft does when a follower's log
// diverges from the leader's: drop the suffix, then append the leader's
// entries with a newer term.
func TestConflictingSuffix(t *testing.T) {
	s, _ := openStore(t, raftstore.Options{})
	mustStore(t, s, entries(1, 10, 1))
	if err := s.DeleteRange(6, 10); err != nil {
		t.Fatal(err)
	}
	checkBounds(t, s, 1, 5)
	mustStore(t, s, entries(6, 8, 2))
	checkBounds(t, s, 1, 8)
	var l raft.Log
	if err := s.GetLog(6, &l); err != nil {
		t.Fatal(err)
	}
	sameLog(t, &l, entry(6, 2))
	if present(t, s, 9) {
		t.Fatal("log 9 of the old term survived")
	}
}

func TestStoreAfterDeletingEverything(t *testing.T) {
	s, _ := openStore(t, raftstore.Options{})
	mustStore(t, s, entries(1, 10, 1))
	if err := s.DeleteRange(1, 10); err != nil {
		t.Fatal(err)
	}
	checkBounds(t, s, 0, 0)
	// As after installing a snapshot: the log restarts at a higher index.
	mustStore(t, s, entries(500, 505, 3))
	checkBounds(t, s, 500, 505)
}

func TestStableStore(t *testing.T) {
	s, _ := openStore(t, raftstore.Options{})

	val, err := s.Get([]byte("CurrentTerm"))
	if err == nil || err.Error() != "not found" {
		t.Fatalf("Get(missing) error = %v, want text %q", err, "not found")
	}
	if val != nil {
		t.Fatalf("Get(missing) value = %q, want nil", val)
	}
	if !errors.Is(err, raftstore.ErrKeyNotFound) {
		t.Fatalf("Get(missing) error %v is not ErrKeyNotFound", err)
	}
	n, err := s.GetUint64([]byte("LastVoteTerm"))
	if err == nil || err.Error() != "not found" || n != 0 {
		t.Fatalf("GetUint64(missing) = %d, %v; want 0, %q", n, err, "not found")
	}

	if err := s.Set([]byte("LastVoteCand"), []byte("node-2")); err != nil {
		t.Fatal(err)
	}
	if err := s.Set([]byte("LastVoteCand"), []byte("node-3")); err != nil { // overwrite
		t.Fatal(err)
	}
	if val, err := s.Get([]byte("LastVoteCand")); err != nil || string(val) != "node-3" {
		t.Fatalf("Get = %q, %v; want %q", val, err, "node-3")
	}

	if err := s.Set([]byte("empty"), nil); err != nil {
		t.Fatal(err)
	}
	if val, err := s.Get([]byte("empty")); err != nil || val == nil || len(val) != 0 {
		t.Fatalf("Get(empty) = %#v, %v; want a non-nil empty slice", val, err)
	}

	for _, v := range []uint64{0, 1, 1 << 40, 1<<64 - 1} {
		if err := s.SetUint64([]byte("CurrentTerm"), v); err != nil {
			t.Fatal(err)
		}
		got, err := s.GetUint64([]byte("CurrentTerm"))
		if err != nil || got != v {
			t.Fatalf("GetUint64 = %d, %v; want %d", got, err, v)
		}
	}

	if err := s.Set([]byte("short"), []byte{1, 2, 3}); err != nil {
		t.Fatal(err)
	}
	_, err = s.GetUint64([]byte("short"))
	if err == nil || err.Error() == "not found" || !strings.Contains(err.Error(), "3 bytes") {
		t.Fatalf("GetUint64(3-byte value) error = %v, want a length error", err)
	}
}

// TestNamespacesAreSeparate stores stable keys whose bytes look like log
// keys and checks the log never sees them, before and after a reopen.
func TestNamespacesAreSeparate(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "raft")
	s, err := raftstore.Open(dir, raftstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	logLike := []byte{'l', 0, 0, 0, 0, 0, 0, 0, 7}
	if err := s.Set(logLike, []byte("not a log")); err != nil {
		t.Fatal(err)
	}
	if err := s.Set([]byte{0xff, 0xff}, []byte("high key")); err != nil {
		t.Fatal(err)
	}
	if err := s.Set(nil, []byte("empty key")); err != nil {
		t.Fatal(err)
	}
	checkBounds(t, s, 0, 0)
	if present(t, s, 7) {
		t.Fatal("stable key visible as log 7")
	}
	mustStore(t, s, entries(3, 4, 1))
	if err := s.DeleteRange(0, 1<<64-1); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	s, err = raftstore.Open(dir, raftstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	checkBounds(t, s, 0, 0)
	for key, want := range map[string]string{string(logLike): "not a log", "\xff\xff": "high key", "": "empty key"} {
		if got, err := s.Get([]byte(key)); err != nil || string(got) != want {
			t.Fatalf("Get(%q) = %q, %v; want %q (deleting all logs must not touch stable keys)", key, got, err, want)
		}
	}
}

// TestReturnedDataNotAliased mutates everything handed in and out of the
// store and checks the stored values do not change.
func TestReturnedDataNotAliased(t *testing.T) {
	s, _ := openStore(t, raftstore.Options{})
	in := entry(1, 1)
	want := entry(1, 1)
	mustStore(t, s, []*raft.Log{in})
	for i := range in.Data {
		in.Data[i] = 'X'
	}
	in.Extensions[0] = 'X'

	var first raft.Log
	if err := s.GetLog(1, &first); err != nil {
		t.Fatal(err)
	}
	sameLog(t, &first, want)
	// Growing the returned Data must not run into the returned Extensions.
	_ = append(first.Data, "grow"...)
	if !bytes.Equal(first.Extensions, want.Extensions) {
		t.Fatalf("appending to Data changed Extensions to %q", first.Extensions)
	}
	for i := range first.Data {
		first.Data[i] = 'Y'
	}
	for i := range first.Extensions {
		first.Extensions[i] = 'Y'
	}
	var second raft.Log
	if err := s.GetLog(1, &second); err != nil {
		t.Fatal(err)
	}
	sameLog(t, &second, want)

	key, val := []byte("k"), []byte("value")
	if err := s.Set(key, val); err != nil {
		t.Fatal(err)
	}
	copy(val, "XXXXX")
	got, err := s.Get(key)
	if err != nil || string(got) != "value" {
		t.Fatalf("Get = %q, %v; want %q", got, err, "value")
	}
	copy(got, "YYYYY")
	if again, _ := s.Get(key); string(again) != "value" {
		t.Fatalf("Get after mutating a previous result = %q", again)
	}

}

func TestClosedStore(t *testing.T) {
	s, err := raftstore.Open(filepath.Join(t.TempDir(), "raft"), raftstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	mustStore(t, s, entries(1, 2, 1))
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("second Close = %v, want nil", err)
	}
	var l raft.Log
	checks := map[string]error{
		"GetLog":      s.GetLog(1, &l),
		"StoreLog":    s.StoreLog(entry(3, 1)),
		"DeleteRange": s.DeleteRange(1, 1),
		"Set":         s.Set([]byte("k"), []byte("v")),
	}
	_, checks["FirstIndex"] = s.FirstIndex()
	_, checks["LastIndex"] = s.LastIndex()
	_, checks["Get"] = s.Get([]byte("k"))
	_, checks["GetUint64"] = s.GetUint64([]byte("k"))
	for name, err := range checks {
		if !errors.Is(err, raftstore.ErrClosed) {
			t.Errorf("%s after Close = %v, want ErrClosed", name, err)
		}
	}
}

func TestOpenErrors(t *testing.T) {
	if _, err := raftstore.Open("", raftstore.Options{}); err == nil {
		t.Fatal("Open(\"\") succeeded")
	}
	// Two stores on one directory: Pebble's lock must refuse the second.
	dir := filepath.Join(t.TempDir(), "raft")
	s, err := raftstore.Open(dir, raftstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if s2, err := raftstore.Open(dir, raftstore.Options{}); err == nil {
		s2.Close()
		t.Fatal("second Open of a directory in use succeeded")
	} else if !strings.HasPrefix(err.Error(), "raftstore: open ") {
		t.Fatalf("Open error %q lacks context", err)
	}
}

func TestErrorsNameTheOperation(t *testing.T) {
	s, _ := openStore(t, raftstore.Options{})
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	err := s.StoreLogs(entries(5, 9, 1))
	if err == nil || !strings.HasPrefix(err.Error(), "raftstore: store logs [5..9]: ") {
		t.Fatalf("StoreLogs error = %q, want it to name the range", err)
	}
	err = s.DeleteRange(2, 4)
	if err == nil || !strings.HasPrefix(err.Error(), "raftstore: delete logs [2..4]: ") {
		t.Fatalf("DeleteRange error = %q, want it to name the range", err)
	}
}
