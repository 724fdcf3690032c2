package fsm

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/raft"

	"github.com/keel-cloud/keel/internal/hostapi"
)

func openTest(t testing.TB) *FSM {
	t.Helper()
	f, err := Open(t.TempDir(), Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return f
}

func entry(t testing.TB, index uint64, c Command) *raft.Log {
	t.Helper()
	data, err := EncodeCommand(c)
	if err != nil {
		t.Fatal(err)
	}
	return &raft.Log{Index: index, Term: 1, Type: raft.LogCommand, Data: data}
}

// harness applies commands to one FSM at increasing Raft indexes; the
// tests of each domain embed it.
type harness struct {
	t   *testing.T
	f   *FSM
	idx uint64
}

func newHarness(t *testing.T) *harness { return &harness{t: t, f: openTest(t)} }

func (h *harness) apply(c Command) *Response {
	h.t.Helper()
	h.idx++
	return mustApply(h.t, h.f, entry(h.t, h.idx, c))
}

// ok applies c and fails the test if it is refused.
func (h *harness) ok(c Command) *Response {
	h.t.Helper()
	r := h.apply(c)
	if r.Err != nil {
		h.t.Fatalf("%T refused: %v (%v)", c, r.Err, r.Err.Kind)
	}
	return r
}

// refuse applies c, wants it refused with kind and a message containing
// msg, and wants the state unchanged.
func (h *harness) refuse(name string, c Command, kind Kind, msg string) {
	h.t.Helper()
	before := stateHash(h.t, h.f)
	r := h.apply(c)
	switch {
	case r.Err == nil:
		h.t.Errorf("%s: accepted, want %v", name, kind)
	case r.Err.Kind != kind:
		h.t.Errorf("%s: %v (%q), want %v", name, r.Err.Kind, r.Err.Message, kind)
	case !strings.Contains(r.Err.Message, msg):
		h.t.Errorf("%s: message %q does not contain %q", name, r.Err.Message, msg)
	}
	if stateHash(h.t, h.f) != before {
		h.t.Fatalf("%s: a refused command changed the state", name)
	}
}

func mustApply(t testing.TB, f *FSM, l *raft.Log) *Response {
	t.Helper()
	r, ok := f.Apply(l).(*Response)
	if !ok {
		t.Fatalf("apply index %d: got %T, want *Response", l.Index, f.Apply(l))
	}
	return r
}

func stateHash(t testing.TB, f *FSM) string {
	t.Helper()
	h, err := f.Hash()
	if err != nil {
		t.Fatal(err)
	}
	return h
}

func TestApplyWritesRecordWithIndexes(t *testing.T) {
	f := openTest(t)
	if r := mustApply(t, f, entry(t, 5, &KVPut{Key: "a", Value: []byte("1")})); r.Err != nil {
		t.Fatal(r.Err)
	}
	if r := mustApply(t, f, entry(t, 7, &KVPut{Key: "a", Value: []byte("2")})); r.Err != nil {
		t.Fatal(r.Err)
	}
	got, meta, err := Get[KVEntry](f.State(), TableKV, "a")
	if err != nil {
		t.Fatal(err)
	}
	if string(got.Value) != "2" || meta.CreateIndex != 5 || meta.ModifyIndex != 7 {
		t.Fatalf("got %q %+v, want value 2 created at 5 modified at 7", got.Value, meta)
	}
	if f.AppliedIndex() != 7 || f.TableIndex(TableKV) != 7 || f.TableIndex(TableSequence) != 0 {
		t.Fatalf("applied %d kv index %d seq index %d", f.AppliedIndex(), f.TableIndex(TableKV), f.TableIndex(TableSequence))
	}
	if _, _, err := Get[KVEntry](f.State(), TableKV, "missing"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("missing key: got %v, want ErrNotFound", err)
	}
}

func TestBadCommandsAreRefusedAndChangeNothing(t *testing.T) {
	f := openTest(t)
	mustApply(t, f, entry(t, 1, &KVPut{Key: "keep", Value: []byte("x")}))
	before := stateHash(t, f)

	// An unknown envelope format, type or version is not refused but stops
	// the FSM: see stop_test.go.
	good, _ := EncodeCommand(&KVPut{Key: "k", Value: []byte("v")})
	badPayload := append(bytes.Clone(good[:4]), 0xc1, 0xff, 0x00)
	cases := map[string][]byte{
		"empty":          nil,
		"short header":   {1, 0},
		"bad payload":    badPayload,
		"invalid key":    mustEncode(t, &KVPut{Key: "", Value: []byte("v")}),
		"cas conflict":   mustEncode(t, &KVPut{Key: "keep", Value: []byte("y"), CAS: true, IfIndex: 99}),
		"delete missing": mustEncode(t, &KVDelete{Key: "nope"}),
	}
	idx := uint64(2)
	for name, data := range cases {
		r := mustApply(t, f, &raft.Log{Index: idx, Type: raft.LogCommand, Data: data})
		idx++
		if r.Err == nil {
			t.Errorf("%s: accepted, want refusal", name)
			continue
		}
		want := KindInvalid
		switch name {
		case "cas conflict":
			want = KindConflict
		case "delete missing":
			want = KindNotFound
		}
		if r.Err.Kind != want {
			t.Errorf("%s: kind %v (%v), want %v", name, r.Err.Kind, r.Err, want)
		}
		if h := stateHash(t, f); h != before {
			t.Fatalf("%s changed the state", name)
		}
	}
	// A good command still works after all that.
	if r := mustApply(t, f, entry(t, idx, &KVPut{Key: "keep", Value: []byte("z"), CAS: true, IfIndex: 1})); r.Err != nil {
		t.Fatal(r.Err)
	}
}

func mustEncode(t testing.TB, c Command) []byte {
	b, err := EncodeCommand(c)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestBatchKeepsGoodCommandsAndDropsRefusedOnes(t *testing.T) {
	f := openTest(t)
	logs := []*raft.Log{
		entry(t, 1, &SequenceNext{Name: "s"}),
		entry(t, 2, &KVPut{Key: "a", Value: []byte("1"), CAS: true}),
		entry(t, 3, &KVPut{Key: "a", Value: []byte("2"), CAS: true}), // sees a at 2: refused
		{Index: 4, Type: raft.LogConfiguration},
		entry(t, 5, &SequenceNext{Name: "s"}),
	}
	out := f.ApplyBatch(logs)
	if r := out[2].(*Response); r.Err == nil || r.Err.Kind != KindConflict {
		t.Fatalf("second CAS create: got %+v, want conflict", r)
	}
	if out[3] != nil {
		t.Fatalf("configuration entry got a response %v", out[3])
	}
	var n uint64
	if err := out[4].(*Response).Decode(&n); err != nil || n != 2 {
		t.Fatalf("sequence after batch = %d (%v), want 2", n, err)
	}
	kv, _, _ := Get[KVEntry](f.State(), TableKV, "a")
	if string(kv.Value) != "1" || f.AppliedIndex() != 5 {
		t.Fatalf("value %q applied %d", kv.Value, f.AppliedIndex())
	}
}

func TestReopenSkipsEntriesAlreadyApplied(t *testing.T) {
	dir := t.TempDir()
	f, err := Open(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	for i := uint64(1); i <= 10; i++ {
		mustApply(t, f, entry(t, i, &SequenceNext{Name: "c"}))
	}
	f.Close()
	f, err = Open(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if f.AppliedIndex() != 10 {
		t.Fatalf("applied index after reopen = %d, want 10", f.AppliedIndex())
	}
	// Raft re-sends entries after its last snapshot on start; they are skipped.
	for i := uint64(3); i <= 12; i++ {
		f.Apply(entry(t, i, &SequenceNext{Name: "c"}))
	}
	seq, _, _ := Get[Sequence](f.State(), TableSequence, "c")
	if seq.Value != 12 {
		t.Fatalf("counter = %d, want 12 (10 + 2 new entries)", seq.Value)
	}
}

type bufSink struct {
	bytes.Buffer
	cancelled bool
}

func (s *bufSink) ID() string    { return "test" }
func (s *bufSink) Cancel() error { s.cancelled = true; return nil }
func (s *bufSink) Close() error  { return nil }

func TestSnapshotRestoreRoundTrip(t *testing.T) {
	src := openTest(t)
	for i := uint64(1); i <= 100; i++ {
		mustApply(t, src, entry(t, i, &KVPut{Key: string(rune('a'+i%26)) + "/" + string(rune('0'+i%10)), Value: bytes.Repeat([]byte{byte(i)}, int(i))}))
	}
	snap, err := src.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	// Writes after the snapshot must not leak into it.
	mustApply(t, src, entry(t, 101, &KVPut{Key: "late", Value: []byte("x")}))
	var sink bufSink
	if err := snap.Persist(&sink); err != nil {
		t.Fatal(err)
	}
	snap.Release()

	dst := openTest(t)
	mustApply(t, dst, entry(t, 1, &KVPut{Key: "stale", Value: []byte("gone after restore")}))
	watch := dst.Changed()
	if err := dst.Restore(io.NopCloser(bytes.NewReader(sink.Bytes()))); err != nil {
		t.Fatal(err)
	}
	select {
	case <-watch:
	default:
		t.Fatal("restore did not wake watchers")
	}
	if _, ok, _ := dst.State().Get(TableKV, "stale"); ok {
		t.Fatal("restore kept a key that was not in the snapshot")
	}
	if _, ok, _ := dst.State().Get(TableKV, "late"); ok {
		t.Fatal("snapshot contains a write made after it was taken")
	}
	if dst.AppliedIndex() != 100 || dst.TableIndex(TableKV) != 100 {
		t.Fatalf("applied %d table index %d after restore, want 100", dst.AppliedIndex(), dst.TableIndex(TableKV))
	}
	// Same state as the source had at index 100.
	mustApply(t, dst, entry(t, 101, &KVPut{Key: "late", Value: []byte("x")}))
	if stateHash(t, dst) != stateHash(t, src) {
		t.Fatal("state hash differs after restore + same entry")
	}
}

func TestCorruptSnapshotLeavesStateUnchanged(t *testing.T) {
	src := openTest(t)
	for i := uint64(1); i <= 20; i++ {
		mustApply(t, src, entry(t, i, &SequenceNext{Name: "n"}))
	}
	var buf bytes.Buffer
	if err := src.WriteSnapshot(&buf); err != nil {
		t.Fatal(err)
	}
	if idx, n, err := VerifySnapshot(bytes.NewReader(buf.Bytes())); err != nil || n == 0 || idx != 20 {
		t.Fatalf("verify good snapshot: index %d, %d keys, %v", idx, n, err)
	}
	// Re-indexing keeps the content and the checksum valid.
	var re bytes.Buffer
	if keys, err := CopySnapshot(&re, bytes.NewReader(buf.Bytes()), 0); err != nil || keys == 0 {
		t.Fatalf("copy snapshot: %d keys, %v", keys, err)
	}
	if idx, err := SnapshotIndex(bytes.NewReader(re.Bytes())); err != nil || idx != 0 {
		t.Fatalf("copied snapshot index %d (%v), want 0", idx, err)
	}
	if _, _, err := VerifySnapshot(bytes.NewReader(re.Bytes())); err != nil {
		t.Fatalf("copied snapshot does not verify: %v", err)
	}
	dst := openTest(t)
	mustApply(t, dst, entry(t, 1, &KVPut{Key: "mine", Value: []byte("x")}))
	before := stateHash(t, dst)
	good := buf.Bytes()
	flipped := bytes.Clone(good)
	flipped[len(flipped)/2] ^= 0x40
	for name, data := range map[string][]byte{
		"truncated": good[:len(good)-10],
		"bit flip":  flipped,
		"not keel":  []byte("hello world, not a snapshot"),
		"no crc":    good[:len(good)-4],
	} {
		if err := dst.Restore(io.NopCloser(bytes.NewReader(data))); err == nil {
			t.Errorf("%s: restore accepted", name)
		}
		if _, _, err := VerifySnapshot(bytes.NewReader(data)); err == nil {
			t.Errorf("%s: verify accepted", name)
		}
		if stateHash(t, dst) != before {
			t.Fatalf("%s: failed restore changed the state", name)
		}
	}
	mustApply(t, dst, entry(t, 2, &KVPut{Key: "still", Value: []byte("writable")}))
}

func TestChangedWakesOnApply(t *testing.T) {
	f := openTest(t)
	ch := f.Changed()
	done := make(chan struct{})
	go func() {
		<-ch
		close(done)
	}()
	mustApply(t, f, entry(t, 1, &Barrier{Node: "n1"}))
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("watcher not woken by an applied entry")
	}
	if f.AppliedIndex() != 1 || f.TableIndex(TableKV) != 0 {
		t.Fatal("barrier must advance the applied index and change no table")
	}
}

func TestEncodingIsDeterministic(t *testing.T) {
	a := mustEncode(t, &KVPut{Key: "k", Value: []byte("v"), CAS: true, IfIndex: 3})
	for i := 0; i < 100; i++ {
		if b := mustEncode(t, &KVPut{Key: "k", Value: []byte("v"), CAS: true, IfIndex: 3}); !bytes.Equal(a, b) {
			t.Fatal("same command encoded two ways")
		}
	}
	m1, _ := Marshal(map[string]int{"b": 2, "a": 1, "c": 3})
	m2, _ := Marshal(map[string]int{"c": 3, "a": 1, "b": 2})
	if !bytes.Equal(m1, m2) {
		t.Fatal("maps are not encoded canonically")
	}
}

func BenchmarkEncodeCommand(b *testing.B) {
	c := &KVPut{Key: "servers/0b5d3c8e-6a35-4f0a-9d2c-1c2a8f0e7b11", Value: bytes.Repeat([]byte("x"), 200)}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := EncodeCommand(c); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkDecodeCommand(b *testing.B) {
	data := mustEncode(b, &KVPut{Key: "servers/0b5d3c8e-6a35-4f0a-9d2c-1c2a8f0e7b11", Value: bytes.Repeat([]byte("x"), 200)})
	b.ReportAllocs()
	for b.Loop() {
		_, _, payload, err := decodeEnvelope(data)
		var c KVPut
		if err == nil {
			err = Unmarshal(payload, &c)
		}
		if err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkApplyBatch measures the FSM's share of a proposal: one Raft batch
// of 64 small commands applied in one Pebble batch.
func BenchmarkApplyBatch64(b *testing.B) {
	f := openTest(b)
	idx := uint64(0)
	logs := make([]*raft.Log, 64)
	b.ReportAllocs()
	for b.Loop() {
		for i := range logs {
			idx++
			logs[i] = entry(b, idx, &KVPut{Key: "k" + string(rune('a'+i%26)), Value: []byte("value")})
		}
		f.ApplyBatch(logs)
	}
	b.ReportMetric(float64(b.N*64)/b.Elapsed().Seconds(), "cmds/s")
}

// KeyChanged wakes for writes of its record only, and on a restore.
func TestKeyChanged(t *testing.T) {
	f := openTest(t)
	a := f.KeyChanged(TableHostAssignments, "h1")
	b := f.KeyChanged(TableHostAssignments, "h2")
	mustApply(t, f, entry(t, 1, &RegisterHost{Registration: hostapi.Registration{Host: "h2", VCPUs: 1, MemoryMB: 1, DiskGB: 1}, ServiceID: "s", HypervisorID: "v"}))
	mustApply(t, f, entry(t, 2, &KVPut{Key: "x", Value: []byte("y")}))
	select {
	case <-a:
		t.Fatal("a change of other records woke a waiter of h1")
	case <-b:
		t.Fatal("a change of host h2's record woke a waiter of its assignments")
	default:
	}
	h2 := f.KeyChanged(TableHost, "h2")
	mustApply(t, f, entry(t, 3, &RegisterHost{Registration: hostapi.Registration{Host: "h2", VCPUs: 2, MemoryMB: 4096, DiskGB: 10}}))
	select {
	case <-h2:
	default:
		t.Fatal("a write of host h2's record did not wake its waiter")
	}
	// Placing a server on h2 wakes h2's assignment waiters, not h1's.
	srv := testServers(1, "p1")[0]
	mustApply(t, f, entry(t, 4, &CreateServers{Servers: []Server{srv}, MinCount: 1}))
	mustApply(t, f, entry(t, 5, &PlaceServers{Claims: []Claim{{srv.ID, "h2"}}}))
	select {
	case <-b:
	default:
		t.Fatal("a placement on h2 did not wake the waiter of h2's assignments")
	}
	select {
	case <-a:
		t.Fatal("a placement on h2 woke the waiter of h1's assignments")
	default:
	}
	defer func() {
		if recover() == nil {
			t.Fatal("KeyChanged on an untracked table must panic")
		}
	}()
	f.KeyChanged(TableServer, "x")
}

// Controllers apply the same log in different batches (a follower catching
// up applies hundreds at once; a restarted one replays): the state must not
// depend on how the entries were batched. The chaos suite found the table
// indexes recorded as each batch's last index, which differed.
func TestStateDoesNotDependOnBatching(t *testing.T) {
	var logs []*raft.Log
	for i := 1; i <= 12; i++ {
		var c Command = &KVPut{Key: fmt.Sprintf("k%d", i%4), Value: []byte{byte(i)}}
		if i%3 == 0 {
			c = &SequenceNext{Name: "s"}
		}
		logs = append(logs, entry(t, uint64(i), c))
	}
	one, each, odd := openTest(t), openTest(t), openTest(t)
	one.ApplyBatch(logs)
	for _, l := range logs {
		each.ApplyBatch([]*raft.Log{l})
	}
	odd.ApplyBatch(logs[:5])
	odd.ApplyBatch(logs[5:11])
	odd.ApplyBatch(logs[11:])
	h := stateHash(t, one)
	if stateHash(t, each) != h || stateHash(t, odd) != h {
		t.Fatal("the same entries applied in different batches give different states")
	}
}
