package fsm

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"

	"github.com/hashicorp/raft"

	"github.com/keel-cloud/keel/internal/version"
)

// unknownEntries are committed entries this binary cannot understand,
// as a newer Keel could write them.
func unknownEntries(t testing.TB) map[string]struct {
	data []byte
	want []string // what the stop message must name
} {
	good := mustEncode(t, &KVPut{Key: "k", Value: []byte("v")})
	unknownType := bytes.Clone(good)
	unknownType[1], unknownType[2] = 0x7f, 0xf0 // 32752
	unknownVersion := bytes.Clone(good)
	unknownVersion[3] = 9
	return map[string]struct {
		data []byte
		want []string
	}{
		"unknown type":                    {unknownType, []string{"command type 32752", "version 1"}},
		"unknown version of a known type": {unknownVersion, []string{"command type 2 (KVPut) version 9", "applies version 1"}},
		"unknown envelope format":         {append([]byte{2}, good[1:]...), []string{"envelope format 2"}},
		"unknown format, 1 byte":          {[]byte{0x80}, []string{"envelope format 128"}},
	}
}

// recordLogs keeps the records a logger receives.
type recordLogs struct {
	mu      sync.Mutex
	records []slog.Record
}

func (r *recordLogs) Enabled(context.Context, slog.Level) bool { return true }
func (r *recordLogs) Handle(_ context.Context, rec slog.Record) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.records = append(r.records, rec)
	return nil
}
func (r *recordLogs) WithAttrs([]slog.Attr) slog.Handler { return r }
func (r *recordLogs) WithGroup(string) slog.Handler      { return r }

func (r *recordLogs) errors() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []string
	for _, rec := range r.records {
		if rec.Level >= slog.LevelError {
			out = append(out, rec.Message)
		}
	}
	return out
}

// An entry this binary cannot understand stops the FSM: the hook is called
// once, nothing of its batch is committed (not even the good entries before
// it), the applied index and the state stay as they were, and later batches
// are not applied either. Reopened (a restart), the FSM resumes from the
// last index it applied and applies the lost entries again.
func TestUnknownEntryStopsTheFSM(t *testing.T) {
	for name, bad := range unknownEntries(t) {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			var stops []*StopError
			logs := &recordLogs{}
			f, err := Open(dir, Options{Logger: slog.New(logs), Stop: func(e *StopError) { stops = append(stops, e) }})
			if err != nil {
				t.Fatal(err)
			}
			defer func() { f.Close() }()
			if r := mustApply(t, f, entry(t, 1, &SequenceNext{Name: "s"})); r.Err != nil {
				t.Fatal(r.Err)
			}
			hash := stateHash(t, f)

			batch := []*raft.Log{
				entry(t, 2, &SequenceNext{Name: "s"}),
				entry(t, 3, &KVPut{Key: "before", Value: []byte("x")}),
				{Index: 4, Term: 1, Type: raft.LogCommand, Data: bad.data},
				entry(t, 5, &KVPut{Key: "after", Value: []byte("y")}),
			}
			out := f.ApplyBatch(batch)
			if len(stops) != 1 {
				t.Fatalf("stop hook called %d times, want once", len(stops))
			}
			st := stops[0]
			if st.Entry.Index != 4 || st.Applied != 1 || st.Schema != Schema() || st.KeelVersion != version.Version {
				t.Errorf("stop %+v (entry %+v): want index 4, applied 1, this binary's version and schema", st, st.Entry)
			}
			msg := st.Error()
			for _, w := range append(bad.want, "raft index 4", "Keel "+version.Version, fmt.Sprintf("FSM schema %d", Schema()),
				"upgrade it and start it again", "resumes from its last applied index (1)") {
				if !strings.Contains(msg, w) {
					t.Errorf("stop message %q does not say %q", msg, w)
				}
			}
			if errs := logs.errors(); len(errs) != 1 || errs[0] != msg {
				t.Errorf("error log lines %q, want exactly the stop message", errs)
			}
			for i, o := range out {
				if r, ok := o.(*Response); !ok || r.Err == nil || r.Err.Kind != KindInternal {
					t.Errorf("response %d of the stopped batch = %+v, want a refusal", i, o)
				}
			}
			if f.AppliedIndex() != 1 || stateHash(t, f) != hash {
				t.Fatalf("after the stop: applied %d (want 1), state changed %v", f.AppliedIndex(), stateHash(t, f) != hash)
			}
			// Stopped for good: a later batch applies nothing.
			f.ApplyBatch([]*raft.Log{entry(t, 6, &KVPut{Key: "later", Value: []byte("z")})})
			if f.AppliedIndex() != 1 || stateHash(t, f) != hash {
				t.Fatalf("a batch after the stop was applied: applied %d", f.AppliedIndex())
			}

			// Restart: the store says index 1, and the entries raft sends
			// again are applied from there.
			f.Close()
			if f, err = Open(dir, Options{}); err != nil {
				t.Fatal(err)
			}
			if f.AppliedIndex() != 1 {
				t.Fatalf("applied index after reopen = %d, want 1", f.AppliedIndex())
			}
			var n uint64
			if err := mustApply(t, f, batch[0]).Decode(&n); err != nil || n != 2 {
				t.Fatalf("sequence re-applied after the restart = %d (%v), want 2", n, err)
			}
		})
	}
}

// Without a hook the FSM panics with the StopError (the controller stops),
// after logging it, and before anything is committed. The panic is not
// swallowed by the recover that turns applier bugs into refusals.
func TestUnknownEntryPanicsByDefault(t *testing.T) {
	for name, bad := range unknownEntries(t) {
		t.Run(name, func(t *testing.T) {
			logs := &recordLogs{}
			f, err := Open(t.TempDir(), Options{Logger: slog.New(logs)})
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			mustApply(t, f, entry(t, 7, &KVPut{Key: "a", Value: []byte("1")}))
			hash := stateHash(t, f)

			recovered := func() (r any) {
				defer func() { r = recover() }()
				f.ApplyBatch([]*raft.Log{
					entry(t, 8, &KVPut{Key: "b", Value: []byte("2")}),
					{Index: 9, Type: raft.LogCommand, Data: bad.data},
				})
				return nil
			}()
			var st *StopError
			if err, ok := recovered.(error); !ok || !errors.As(err, &st) {
				t.Fatalf("ApplyBatch did not panic with a *StopError: recovered %v", recovered)
			}
			var u *UnknownCommandError
			if !errors.As(st, &u) || u.Index != 9 {
				t.Errorf("StopError does not wrap the entry at index 9: %v", st)
			}
			if errs := logs.errors(); len(errs) != 1 || errs[0] != st.Error() {
				t.Errorf("error log lines %q, want the stop message before the panic", errs)
			}
			if f.AppliedIndex() != 7 || stateHash(t, f) != hash {
				t.Fatalf("after the panic: applied %d (want 7), state changed %v", f.AppliedIndex(), stateHash(t, f) != hash)
			}
		})
	}
}

// A command the applier panics on stays a refusal on every node (a
// deterministic bug), and the FSM goes on.
func TestApplierPanicIsStillARefusal(t *testing.T) {
	f := openTest(t)
	r := mustApply(t, f, entry(t, 1, &testPanics{}))
	if r.Err == nil || r.Err.Kind != KindInternal {
		t.Fatalf("panicking applier: %+v, want a KindInternal refusal", r)
	}
	if r := mustApply(t, f, entry(t, 2, &KVPut{Key: "k", Value: []byte("v")})); r.Err != nil || f.AppliedIndex() != 2 {
		t.Fatalf("the FSM did not go on after an applier panic: %v, applied %d", r.Err, f.AppliedIndex())
	}
}

type testPanics struct{}

const cmdTestPanics CommandType = 0xfe96

func (*testPanics) CommandType() CommandType { return cmdTestPanics }
func (*testPanics) CommandVersion() uint8    { return 1 }

func init() {
	register("testPanics", func(tx *Txn, c *testPanics) (any, error) { panic("deliberate") })
}
