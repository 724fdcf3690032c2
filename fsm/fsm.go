// Package fsm is Keel's replicated state machine: typed, versioned commands
// applied to a Pebble store, and the read-only State the API serves from.
//
// Apply is deterministic: no clocks, no randomness and no I/O but Pebble.
// Every rule that must hold under concurrency (quota, capacity, state
// transitions) is checked here, inside Apply, so two racing proposals on two
// controllers can never both win. See README.md in this folder.
package fsm

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"runtime/debug"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/cockroachdb/pebble/v2"
	"github.com/hashicorp/raft"

	"github.com/keel-cloud/keel/internal/logging"
	"github.com/keel-cloud/keel/internal/version"
)

// Options configure Open.
type Options struct {
	// Logger receives the FSM's own log lines and Pebble's. Nil discards.
	Logger *slog.Logger
	// Stop, if set, is called instead of the default panic when the FSM
	// meets a committed entry it cannot understand (see StopError), after
	// the stop is logged. For tests: a controller must not go on as if
	// nothing happened, so if Stop returns, the FSM stays stopped and
	// commits nothing of that batch or of any later one.
	Stop func(*StopError)
}

// FSM implements raft.BatchingFSM over a Pebble store.
type FSM struct {
	dir    string
	log    *slog.Logger
	onStop func(*StopError)

	// stopped is set when an entry could not be understood: nothing is
	// applied after it (see StopError).
	stopped atomic.Pointer[StopError]

	// mu guards h: readers and Apply hold it shared; Restore swaps the
	// store under it exclusively.
	mu sync.RWMutex
	h  *store

	// applied is the Raft index of the last entry this FSM has applied
	// (or 0 right after a restore whose index was not known).
	applied atomic.Uint64

	notifyMu   sync.Mutex
	tableIndex map[string]uint64 // Raft index of each table's last change
	changed    chan struct{}     // closed (and replaced) on every change
	// keyWaiters are closed when their record ("table/key", of a table in
	// keyedTables) is written or deleted: a blocking query about one
	// record then wakes for that record only.
	keyWaiters map[string]chan struct{}
}

// keyedTables are the tables whose records can be waited on one by one
// (KeyChanged). Written by the files of their domains at init.
var keyedTables = map[string]bool{}

// store is one open Pebble database. refs counts snapshots still reading it,
// so Restore closes a replaced store only once they are released.
type store struct {
	db   *pebble.DB
	name string
	refs sync.WaitGroup
}

// Response is what Apply returns for a command, locally through raft's
// ApplyFuture or to a follower that forwarded the proposal. Plain data.
type Response struct {
	// Index is the Raft index at which the command was applied. It is 0
	// only in a refusal made before the command was proposed (the cluster
	// package's schema gate): then nothing was written anywhere.
	Index uint64 `json:"index"`
	// Value is the applier's result, encoded with Marshal (nil if none).
	Value []byte `json:"value,omitempty"`
	// Err is set when the command was refused; then nothing was written.
	Err *Error `json:"error,omitempty"`
}

// Decode unmarshals the response value into v.
func (r *Response) Decode(v any) error {
	if len(r.Value) == 0 {
		return fmt.Errorf("fsm: response at index %d has no value", r.Index)
	}
	return Unmarshal(r.Value, v)
}

const currentFile = "CURRENT"

// Open opens (or creates) the FSM store in dir.
func Open(dir string, opts Options) (*FSM, error) {
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("fsm: create %s: %w", dir, err)
	}
	name, err := readCurrent(dir)
	if err != nil {
		return nil, err
	}
	if name == "" {
		name = "db-000001"
		if err := writeCurrent(dir, name); err != nil {
			return nil, err
		}
	}
	// Leftovers of a restore that did not finish are not the current store.
	if entries, err := os.ReadDir(dir); err == nil {
		for _, e := range entries {
			if e.IsDir() && strings.HasPrefix(e.Name(), "db-") && e.Name() != name {
				log.Warn("removing an unfinished FSM restore", "dir", filepath.Join(dir, e.Name()))
				_ = os.RemoveAll(filepath.Join(dir, e.Name()))
			}
		}
	}
	db, err := openPebble(filepath.Join(dir, name), log)
	if err != nil {
		return nil, err
	}
	f := &FSM{dir: dir, log: log, onStop: opts.Stop, h: &store{db: db, name: name}, changed: make(chan struct{}), keyWaiters: map[string]chan struct{}{}}
	if err := f.loadMeta(); err != nil {
		db.Close()
		return nil, err
	}
	return f, nil
}

// blockCacheBytes is the Pebble block cache of the state store. Pebble's
// default (8 MiB) is too small for the hot records of a busy cloud (hosts,
// servers being built): reads then go to the page cache through a system
// call each, the largest cost of booting servers in the benchmarks.
const blockCacheBytes = 64 << 20

func openPebble(path string, log *slog.Logger) (*pebble.DB, error) {
	cache := pebble.NewCache(blockCacheBytes)
	defer cache.Unref() // the DB holds its own reference
	db, err := pebble.Open(path, &pebble.Options{Cache: cache, Logger: logging.PebbleLogger(log), EventListener: logging.PebbleEvents(log)})
	if err != nil {
		return nil, fmt.Errorf("fsm: open store %s: %w (is another keel-controller using this --data-dir?)", path, err)
	}
	return db, nil
}

func readCurrent(dir string) (string, error) {
	b, err := os.ReadFile(filepath.Join(dir, currentFile))
	if errors.Is(err, os.ErrNotExist) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("fsm: read %s: %w", currentFile, err)
	}
	return strings.TrimSpace(string(b)), nil
}

// writeCurrent atomically points CURRENT at the store directory name.
func writeCurrent(dir, name string) error {
	tmp := filepath.Join(dir, currentFile+".tmp")
	f, err := os.OpenFile(tmp, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o600)
	if err != nil {
		return fmt.Errorf("fsm: write %s: %w", tmp, err)
	}
	if _, err := f.WriteString(name + "\n"); err != nil {
		f.Close()
		return fmt.Errorf("fsm: write %s: %w", tmp, err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("fsm: sync %s: %w", tmp, err)
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp, filepath.Join(dir, currentFile)); err != nil {
		return fmt.Errorf("fsm: install %s: %w", currentFile, err)
	}
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// loadMeta reads the applied index and table indexes of the current store.
func (f *FSM) loadMeta() error {
	db := f.h.db
	applied := uint64(0)
	if v, closer, err := db.Get([]byte(metaApplied)); err == nil {
		applied = binary.BigEndian.Uint64(v)
		closer.Close()
	} else if !errors.Is(err, pebble.ErrNotFound) {
		return fmt.Errorf("fsm: read applied index: %w", err)
	}
	tidx := map[string]uint64{}
	lower := []byte(metaTableIndex)
	it, err := db.NewIter(&pebble.IterOptions{LowerBound: lower, UpperBound: upperBound(lower)})
	if err != nil {
		return err
	}
	for it.First(); it.Valid(); it.Next() {
		tidx[string(it.Key()[len(lower):])] = binary.BigEndian.Uint64(it.Value())
	}
	if err := it.Close(); err != nil {
		return fmt.Errorf("fsm: read table indexes: %w", err)
	}
	f.applied.Store(applied)
	f.notifyMu.Lock()
	f.tableIndex = tidx
	f.notifyMu.Unlock()
	return nil
}

// Close closes the store. The FSM must not be used afterwards.
func (f *FSM) Close() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.h == nil {
		return nil
	}
	f.h.refs.Wait()
	err := f.h.db.Close()
	f.h = nil
	return err
}

func (f *FSM) acquire() *store {
	f.mu.RLock()
	return f.h
}

func (f *FSM) release() { f.mu.RUnlock() }

// State returns the read-only view of the committed data.
func (f *FSM) State() *State { return &State{f: f} }

// AppliedIndex is the Raft index of the last entry applied to this FSM.
func (f *FSM) AppliedIndex() uint64 { return f.applied.Load() }

// Changed returns a channel that is closed at the next change of state (an
// applied batch or a restore). Take the channel before reading the state
// you are watching, so no change can slip between the read and the wait.
func (f *FSM) Changed() <-chan struct{} {
	f.notifyMu.Lock()
	defer f.notifyMu.Unlock()
	return f.changed
}

// TableIndex returns the highest Raft index at which any of tables changed
// (0 if none ever did). Blocking queries compare it with the client's index.
func (f *FSM) TableIndex(tables ...string) uint64 {
	f.notifyMu.Lock()
	defer f.notifyMu.Unlock()
	var max uint64
	for _, t := range tables {
		if i := f.tableIndex[t]; i > max {
			max = i
		}
	}
	return max
}

// Apply applies one committed log entry (raft.FSM).
func (f *FSM) Apply(l *raft.Log) any { return f.ApplyBatch([]*raft.Log{l})[0] }

// ApplyBatch applies committed log entries in one Pebble batch, together
// with the new applied index, so a crash leaves either all of them or none
// (raft.BatchingFSM). Entries at or below the applied index were applied
// before a restart and are skipped: nothing is ever applied twice.
//
// An entry this binary cannot understand (an unknown envelope format,
// command type or version: a newer Keel wrote it) stops the FSM: it panics
// with a StopError (or calls Options.Stop) before anything of the batch is
// committed, so the applied index stays at the end of the previous batch. A
// restarted controller resumes there and applies the entries of the lost
// batch again; an upgraded one then applies the entry that stopped it.
func (f *FSM) ApplyBatch(logs []*raft.Log) []any {
	out := make([]any, len(logs))
	if st := f.stopped.Load(); st != nil {
		return stoppedResponses(logs, st)
	}
	h := f.acquire()
	defer f.release()

	applied := f.applied.Load()
	b := h.db.NewIndexedBatch()
	defer b.Close()
	changed, keys := map[string]uint64{}, map[string]struct{}{}
	var last uint64
	for i, l := range logs {
		if l.Index <= applied {
			continue
		}
		last = l.Index
		if l.Type != raft.LogCommand {
			continue
		}
		resp, unknown := f.applyCommand(h.db, b, l, changed, keys)
		if unknown != nil {
			// b is discarded uncommitted (deferred Close): the entries
			// before this one are applied again after the restart.
			return stoppedResponses(logs, f.stop(unknown, applied))
		}
		out[i] = resp
	}
	if last == 0 {
		return out
	}
	var idx [8]byte
	binary.BigEndian.PutUint64(idx[:], last)
	mustWrite(b.Set([]byte(metaApplied), idx[:], nil), last)
	for t, i := range changed {
		// The index of the entry that changed the table, not the batch's
		// last: batches differ between controllers, the state must not.
		var ti [8]byte
		binary.BigEndian.PutUint64(ti[:], i)
		mustWrite(b.Set([]byte(metaTableIndex+t), ti[:], nil), last)
	}
	// NoSync: the Raft log is the durable record. After a crash the FSM
	// resumes from the applied index it finds, and the cluster package
	// restores the newest Raft snapshot first if the FSM is behind it.
	mustWrite(b.Commit(pebble.NoSync), last)

	f.applied.Store(last)
	f.notifyMu.Lock()
	for t, i := range changed {
		f.tableIndex[t] = i
	}
	close(f.changed)
	f.changed = make(chan struct{})
	for k := range keys {
		if ch, ok := f.keyWaiters[k]; ok {
			close(ch)
			delete(f.keyWaiters, k)
		}
	}
	f.notifyMu.Unlock()
	return out
}

// KeyChanged returns a channel closed when table/key is next written or
// deleted (or the state is restored). Only tables in keyedTables are
// tracked. As with Changed, take the channel before reading the record.
func (f *FSM) KeyChanged(table, key string) <-chan struct{} {
	if !keyedTables[table] {
		panic("fsm: KeyChanged on table " + table + ", whose records are not tracked one by one")
	}
	f.notifyMu.Lock()
	defer f.notifyMu.Unlock()
	k := table + "/" + key
	ch, ok := f.keyWaiters[k]
	if !ok {
		ch = make(chan struct{})
		f.keyWaiters[k] = ch
	}
	return ch
}

func mustWrite(err error, index uint64) {
	if err != nil {
		// The state on disk can no longer be trusted to match the other
		// nodes'. Stop rather than diverge; a restart resumes from the
		// last committed batch.
		panic(fmt.Sprintf("fsm: cannot write the batch ending at raft index %d: %v (check the data disk; restarting the controller resumes from its last applied index)", index, err))
	}
}

// applyCommand decodes and applies one command. Its writes reach b only if
// the applier succeeds, so a refused command changes nothing. An entry this
// binary cannot understand is not refused but returned as unknown: the
// controllers that know it apply it, so refusing it here would diverge.
//
// What stays a refusal is what every controller refuses alike: an empty
// entry or a truncated format-1 header (no Keel writes one), and a payload
// that fails to decode as the known type and version it claims to be (its
// layout is fixed by that version: a payload change is a new version).
func (f *FSM) applyCommand(db *pebble.DB, b *pebble.Batch, l *raft.Log, changed map[string]uint64, keys map[string]struct{}) (resp *Response, unknown *UnknownCommandError) {
	resp = &Response{Index: l.Index}
	a, _, _, payload, err := lookup(l.Data)
	if err != nil {
		if u, ok := err.(*UnknownCommandError); ok {
			u.Index = l.Index
			return nil, u
		}
		resp.Err = err.(*Error)
		return resp, nil
	}
	tx := &Txn{pebbleReader: pebbleReader{b}, index: l.Index, w: db.NewBatch(), changed: map[string]struct{}{}}
	defer tx.w.Close()

	value, err := f.runApplier(a, tx, payload)
	if err != nil {
		var e *Error
		if !errors.As(err, &e) {
			// Not a typed refusal: a storage failure. Stop (see mustWrite).
			mustWrite(err, l.Index)
		}
		resp.Err = e
		return resp, nil
	}
	mustWrite(b.Apply(tx.w, nil), l.Index)
	for t := range tx.changed {
		changed[t] = l.Index
	}
	for k := range tx.keys {
		keys[k] = struct{}{}
	}
	if value != nil {
		enc, err := Marshal(value)
		if err != nil {
			resp.Err = Errorf(KindInternal, "%s applied but its result could not be encoded: %v", a.name, err)
			return resp, nil
		}
		resp.Value = enc
	}
	return resp, nil
}

// runApplier turns a panicking applier into a refusal. A panic is a bug, and
// it is deterministic (every node runs the same code on the same entry), so
// refusing the command on every node keeps the state identical, where
// crashing would take the whole cluster down on a poison entry.
func (f *FSM) runApplier(a *versionApplier, tx *Txn, payload []byte) (value any, err error) {
	defer func() {
		if r := recover(); r != nil {
			f.log.Error("BUG: FSM applier panicked; the command is refused on every node", "command", a.name, "index", tx.index, "panic", r, "stack", string(debug.Stack()))
			value, err = nil, Errorf(KindInternal, "internal error applying %s at index %d", a.name, tx.index)
		}
	}()
	return a.apply(tx, payload)
}

// StopError is why the FSM stopped: a committed entry that this binary
// cannot understand. A newer Keel wrote it, and the controllers running it
// apply it, so this one must neither refuse it (its state would silently
// diverge) nor skip it: it applies nothing from that entry on, and the
// controller stops until an operator upgrades it.
type StopError struct {
	// Entry says what was not understood, at which Raft index.
	Entry *UnknownCommandError
	// Applied is the last Raft index this FSM applied, where a restart
	// resumes.
	Applied uint64
	// KeelVersion and Schema are this binary's.
	KeelVersion string
	Schema      int
}

func (e *StopError) Error() string {
	return fmt.Sprintf("FSM STOPPED at raft index %d: %s. This controller runs Keel %s (FSM schema %d) and cannot apply that committed entry; "+
		"it has applied nothing at or after it, rather than diverge from the controllers that can. "+
		"This controller's binary is older than the one that wrote the entry: upgrade it and start it again; "+
		"it resumes from its last applied index (%d). Started again with the same binary, it stops here again",
		e.Entry.Index, e.Entry, e.KeelVersion, e.Schema, e.Applied)
}

func (e *StopError) Unwrap() error { return e.Entry }

// stop records that the FSM cannot go on, logs why, and panics (or calls
// Options.Stop). The panic is raised outside runApplier, whose recover
// (deterministic applier bugs become refusals) must not swallow it.
func (f *FSM) stop(u *UnknownCommandError, applied uint64) *StopError {
	e := &StopError{Entry: u, Applied: applied, KeelVersion: version.Version, Schema: Schema()}
	f.stopped.Store(e)
	attrs := []any{"raft_index", u.Index, "envelope_format", u.Format, "command_type", uint16(u.Type), "command_version", u.Version,
		"keel_version", e.KeelVersion, "fsm_schema", e.Schema, "applied_index", applied}
	if len(u.Known) > 0 {
		attrs = append(attrs, "command", u.Type.String())
	}
	// Logged first: the panic's output may not reach the operator's logs.
	f.log.Error(e.Error(), attrs...)
	if f.onStop != nil {
		f.onStop(e)
		return e
	}
	panic(e)
}

// stoppedResponses answers every command of logs with a refusal that names
// the stop; nothing of them was applied.
func stoppedResponses(logs []*raft.Log, st *StopError) []any {
	out := make([]any, len(logs))
	for i, l := range logs {
		if l.Type == raft.LogCommand {
			out[i] = &Response{Index: l.Index, Err: Errorf(KindInternal, "not applied: this controller's FSM stopped at raft index %d (%s)", st.Entry.Index, st.Entry)}
		}
	}
	return out
}

var _ raft.BatchingFSM = (*FSM)(nil)
var _ io.Closer = (*FSM)(nil)
