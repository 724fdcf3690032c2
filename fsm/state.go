package fsm

import (
	"bytes"
	"errors"
	"fmt"
	"slices"

	"github.com/cockroachdb/pebble/v2"
)

// Record is one stored object: its Raft bookkeeping and its encoded value.
type Record struct {
	Meta
	Key   string
	Value []byte // canonical MessagePack; decode with Decode
}

// Decode unmarshals the record's value into v.
func (r Record) Decode(v any) error { return Unmarshal(r.Value, v) }

// Reader is the read side shared by State (committed data, for API reads)
// and Txn (inside Apply). Its methods are the only ways to read FSM data.
type Reader interface {
	// Get returns the record table/key; ok is false when it does not exist.
	Get(table, key string) (rec Record, ok bool, err error)
	// Scan calls fn for each record of table whose key starts with prefix,
	// in key order, until fn returns false.
	Scan(table, prefix string, fn func(Record) bool) error
	// ScanIndex calls fn with the primary key of every entry of a secondary
	// index whose leading values equal values, in index order.
	ScanIndex(table, index string, values []string, fn func(pk string) bool) error
	// ScanIndexAfter is ScanIndex starting strictly after the entry whose
	// remaining values and primary key are after (nil: from the start).
	ScanIndexAfter(table, index string, values, after []string, fn func(pk string) bool) error
}

// Get decodes table/key into a new T, or returns a KindNotFound *Error.
func Get[T any](r Reader, table, key string) (*T, Meta, error) {
	rec, ok, err := r.Get(table, key)
	if err != nil {
		return nil, Meta{}, err
	}
	if !ok {
		return nil, Meta{}, Errorf(KindNotFound, "%s %q not found", table, key)
	}
	v := new(T)
	if err := rec.Decode(v); err != nil {
		return nil, Meta{}, fmt.Errorf("fsm: decode %s/%s: %w", table, key, err)
	}
	return v, rec.Meta, nil
}

// pebbleReader implements Reader over any Pebble reader (a DB, a snapshot or
// an indexed batch).
type pebbleReader struct{ r pebble.Reader }

func (p pebbleReader) Get(table, key string) (Record, bool, error) {
	v, closer, err := p.r.Get(recordKey(table, key))
	if errors.Is(err, pebble.ErrNotFound) {
		return Record{}, false, nil
	}
	if err != nil {
		return Record{}, false, fmt.Errorf("fsm: read %s/%s: %w", table, key, err)
	}
	defer closer.Close()
	meta, payload, err := decodeRecord(v)
	if err != nil {
		return Record{}, false, fmt.Errorf("fsm: read %s/%s: %w", table, key, err)
	}
	return Record{Meta: meta, Key: key, Value: bytes.Clone(payload)}, true, nil
}

func (p pebbleReader) Scan(table, prefix string, fn func(Record) bool) error {
	tp := tablePrefix(table)
	lower := []byte(tp + prefix)
	it, err := p.r.NewIter(&pebble.IterOptions{LowerBound: lower, UpperBound: upperBound(lower)})
	if err != nil {
		return fmt.Errorf("fsm: scan %s: %w", table, err)
	}
	defer it.Close()
	for it.First(); it.Valid(); it.Next() {
		meta, payload, err := decodeRecord(it.Value())
		if err != nil {
			return fmt.Errorf("fsm: scan %s at %q: %w", table, it.Key(), err)
		}
		rec := Record{Meta: meta, Key: string(it.Key()[len(tp):]), Value: bytes.Clone(payload)}
		if !fn(rec) {
			break
		}
	}
	return it.Error()
}

func (p pebbleReader) ScanIndex(table, index string, values []string, fn func(pk string) bool) error {
	return p.ScanIndexAfter(table, index, values, nil, fn)
}

func (p pebbleReader) ScanIndexAfter(table, index string, values, after []string, fn func(pk string) bool) error {
	prefix := indexKey(table, index, values...)
	if len(values) > 0 {
		prefix = append(prefix, 0)
	}
	lower := prefix
	if len(after) > 0 {
		// The smallest key greater than the entry itself.
		lower = append(indexKey(table, index, append(slices.Clip(values), after...)...), 0)
	}
	it, err := p.r.NewIter(&pebble.IterOptions{LowerBound: lower, UpperBound: upperBound(prefix)})
	if err != nil {
		return fmt.Errorf("fsm: scan index %s/%s: %w", table, index, err)
	}
	defer it.Close()
	for it.First(); it.Valid(); it.Next() {
		k := it.Key()
		pk := k[bytes.LastIndexByte(k, 0)+1:]
		if !fn(string(pk)) {
			break
		}
	}
	return it.Error()
}

// State is the read-only view of committed FSM data that API handlers use.
// It reads whatever this node has applied; linearizable reads are the
// cluster package's job (it waits for the right index before reading).
type State struct{ f *FSM }

func (s *State) Get(table, key string) (Record, bool, error) {
	h := s.f.acquire()
	defer s.f.release()
	return pebbleReader{h.db}.Get(table, key)
}

func (s *State) Scan(table, prefix string, fn func(Record) bool) error {
	h := s.f.acquire()
	defer s.f.release()
	return pebbleReader{h.db}.Scan(table, prefix, fn)
}

func (s *State) ScanIndex(table, index string, values []string, fn func(pk string) bool) error {
	h := s.f.acquire()
	defer s.f.release()
	return pebbleReader{h.db}.ScanIndex(table, index, values, fn)
}

func (s *State) ScanIndexAfter(table, index string, values, after []string, fn func(pk string) bool) error {
	h := s.f.acquire()
	defer s.f.release()
	return pebbleReader{h.db}.ScanIndexAfter(table, index, values, after, fn)
}

// Txn is what an applier sees: reads of the state as it was before this
// command (including earlier commands of the same Raft batch), and writes
// that take effect only if the applier returns no error. Reads do not see the
// command's own writes; appliers read first, validate, then write.
type Txn struct {
	pebbleReader
	index   uint64
	w       *pebble.Batch
	changed map[string]struct{}
	keys    map[string]struct{} // written records of keyedTables: "table/key"
}

// touched records that table/key was written, for KeyChanged waiters.
func (tx *Txn) touched(table, key string) {
	tx.changed[table] = struct{}{}
	if keyedTables[table] {
		if tx.keys == nil {
			tx.keys = map[string]struct{}{}
		}
		tx.keys[table+"/"+key] = struct{}{}
	}
}

// Index is the Raft index of the command being applied. It is the only
// "clock" an applier may use.
func (tx *Txn) Index() uint64 { return tx.index }

// Put stores value (encoded with Marshal) at table/key, keeping the record's
// CreateIndex if it already exists and stamping ModifyIndex with tx.Index().
func (tx *Txn) Put(table, key string, value any) error {
	if !validKeyPart(key) {
		return Errorf(KindInvalid, "invalid %s key %q", table, key)
	}
	payload, err := Marshal(value)
	if err != nil {
		return fmt.Errorf("fsm: encode %s/%s: %w", table, key, err)
	}
	meta := Meta{CreateIndex: tx.index, ModifyIndex: tx.index}
	if old, ok, err := tx.Get(table, key); err != nil {
		return err
	} else if ok {
		meta.CreateIndex = old.CreateIndex
	}
	tx.touched(table, key)
	return tx.w.Set(recordKey(table, key), encodeRecord(meta, payload), nil)
}

// Delete removes table/key (a no-op if absent).
func (tx *Txn) Delete(table, key string) error {
	tx.touched(table, key)
	return tx.w.Delete(recordKey(table, key), nil)
}

// PutIndex adds the secondary index entry (values..., pk) of table.
func (tx *Txn) PutIndex(table, index string, pk string, values ...string) error {
	parts := append(slices.Clip(values), pk)
	for _, v := range parts {
		if !validKeyPart(v) {
			return Errorf(KindInvalid, "invalid %s/%s index value %q", table, index, v)
		}
	}
	tx.changed[table] = struct{}{}
	return tx.w.Set(indexKey(table, index, parts...), nil, nil)
}

// DeleteIndex removes the secondary index entry (values..., pk) of table.
func (tx *Txn) DeleteIndex(table, index string, pk string, values ...string) error {
	tx.changed[table] = struct{}{}
	return tx.w.Delete(indexKey(table, index, append(slices.Clip(values), pk)...), nil)
}
