// Package raftstore is a durable hashicorp/raft LogStore and StableStore
// backed by a Pebble database.
//
// Log entries and stable keys live in separate key namespaces of one Pebble
// instance. Every write that raft relies on for safety (StoreLog, StoreLogs,
// DeleteRange, Set, SetUint64) is committed as a single Pebble batch and
// fsynced before it returns, unless Options.NoSync is set. See README.md for
// the on-disk layout.
package raftstore

import (
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"sync"
	"sync/atomic"

	"github.com/cockroachdb/pebble/v2"

	"github.com/hashicorp/raft"
	"github.com/keel-cloud/keel/internal/logging"
)

// Options tune the store; the zero value is production-safe.
type Options struct {
	// Logger receives Pebble's own log lines and notable Pebble events
	// (background errors, slow disk, write stalls). Nil discards them.
	Logger *slog.Logger

	// NoSync disables fsync on writes.
	//
	// UNSAFE: with NoSync a crash or power loss can lose writes that raft
	// was told are durable (log entries it acknowledged, the current term,
	// the vote it cast), which can break raft's safety guarantees and lose
	// committed data. Use it only for benchmarks and tests.
	NoSync bool
}

// ErrKeyNotFound is returned by Get and GetUint64 for a key that was never
// set. Its text is exactly "not found" because hashicorp/raft recognises a
// missing stable key by comparing the error string.
var ErrKeyNotFound = errors.New("not found")

// ErrClosed is returned by every operation on a Store after Close.
var ErrClosed = errors.New("store is closed")

// Key namespaces. A log key is logPrefix followed by the index as 8 bytes
// big-endian, so Pebble's byte order is index order. A stable key is
// stablePrefix followed by the caller's key.
const (
	logPrefix    byte = 'l'
	stablePrefix byte = 's'

	logKeyLen = 1 + 8
)

var (
	// logLowerBound and logUpperBound bracket exactly the log namespace.
	logLowerBound = []byte{logPrefix}
	logUpperBound = []byte{logPrefix + 1}
)

// formatMajorVersion pins Pebble's on-disk format. It is set explicitly,
// rather than following pebble.FormatNewest, so that upgrading the Pebble
// dependency never silently ratchets existing stores to a format an older
// binary cannot open. FormatWALSyncChunks lets WAL replay tell a torn tail
// apart from real corruption, which matters for a sync-heavy log workload.
const formatMajorVersion = pebble.FormatWALSyncChunks

// indexRange is an immutable snapshot of the stored index range. The zero
// value means the log is empty.
type indexRange struct {
	first, last uint64
}

// Store is a raft.LogStore and raft.StableStore backed by Pebble. It is safe
// for concurrent use.
type Store struct {
	// lifeMu guards db against Close: operations hold it shared, Close holds
	// it exclusively. Pebble panics when used after Close, so nothing may
	// touch db without holding lifeMu.
	lifeMu sync.RWMutex
	db     *pebble.DB
	closed atomic.Bool // set (under lifeMu) by Close

	writeOpts *pebble.WriteOptions

	// logMu serialises log mutations so that the committed data and the
	// cached index range are updated as one step.
	logMu sync.Mutex
	// bounds caches the first and last stored index. It is written only
	// with logMu held and read lock-free.
	bounds atomic.Pointer[indexRange]
}

var (
	_ raft.LogStore    = (*Store)(nil)
	_ raft.StableStore = (*Store)(nil)
)

// Open opens, creating if necessary, the store in directory dir.
func Open(dir string, opts Options) (*Store, error) {
	if dir == "" {
		return nil, errors.New("raftstore: open: empty directory path")
	}
	popts := &pebble.Options{
		FormatMajorVersion: formatMajorVersion,
		Logger:             logging.PebbleLogger(opts.Logger),
		EventListener:      logging.PebbleEvents(opts.Logger),
	}
	db, err := pebble.Open(dir, popts)
	if err != nil {
		return nil, fmt.Errorf("raftstore: open %s: %w", dir, err)
	}
	s := &Store{db: db, writeOpts: pebble.Sync}
	if opts.NoSync {
		s.writeOpts = pebble.NoSync
	}
	r, err := s.scanBounds()
	if err != nil {
		_ = db.Close()
		return nil, fmt.Errorf("raftstore: open %s: read log bounds: %w", dir, err)
	}
	s.bounds.Store(r)
	return s, nil
}

// Close releases the database. Every write was already committed when its
// method returned, so Close has nothing left to make durable. It waits for
// operations in flight; later operations fail with ErrClosed. Calling Close
// again returns nil.
func (s *Store) Close() error {
	s.lifeMu.Lock()
	defer s.lifeMu.Unlock()
	if s.closed.Load() {
		return nil
	}
	s.closed.Store(true)
	if err := s.db.Close(); err != nil {
		return fmt.Errorf("raftstore: close: %w", err)
	}
	return nil
}

// acquire takes a shared hold on the open database. Every successful call
// must be paired with s.lifeMu.RUnlock.
func (s *Store) acquire() error {
	s.lifeMu.RLock()
	if s.closed.Load() {
		s.lifeMu.RUnlock()
		return ErrClosed
	}
	return nil
}

func logKey(index uint64) []byte {
	k := make([]byte, logKeyLen)
	putLogKey(k, index)
	return k
}

func putLogKey(dst []byte, index uint64) {
	dst[0] = logPrefix
	binary.BigEndian.PutUint64(dst[1:], index)
}

func parseLogKey(k []byte) (uint64, error) {
	if len(k) != logKeyLen || k[0] != logPrefix {
		return 0, fmt.Errorf("malformed log key %x", k)
	}
	return binary.BigEndian.Uint64(k[1:]), nil
}

func stableKey(key []byte) []byte {
	k := make([]byte, 1+len(key))
	k[0] = stablePrefix
	copy(k[1:], key)
	return k
}

// newLogIter returns an iterator confined to the log namespace.
func (s *Store) newLogIter() (*pebble.Iterator, error) {
	return s.db.NewIter(&pebble.IterOptions{
		LowerBound: logLowerBound,
		UpperBound: logUpperBound,
	})
}

// iterIndex returns the index under a positioned iterator, or ok=false if
// the iterator is exhausted.
func iterIndex(it *pebble.Iterator, valid bool) (index uint64, ok bool, err error) {
	if !valid {
		return 0, false, it.Error()
	}
	index, err = parseLogKey(it.Key())
	return index, err == nil, err
}

// scanBounds reads the first and last stored index from disk.
func (s *Store) scanBounds() (r *indexRange, err error) {
	it, err := s.newLogIter()
	if err != nil {
		return nil, err
	}
	defer func() {
		if cerr := it.Close(); err == nil && cerr != nil {
			err = cerr
		}
	}()
	first, ok, err := iterIndex(it, it.First())
	if err != nil || !ok {
		return &indexRange{}, err
	}
	last, _, err := iterIndex(it, it.Last())
	if err != nil {
		return nil, err
	}
	return &indexRange{first: first, last: last}, nil
}

// FirstIndex returns the lowest stored index, or 0 if the log is empty. It
// reads an in-memory cache and never touches the disk.
func (s *Store) FirstIndex() (uint64, error) {
	if s.closed.Load() {
		return 0, fmt.Errorf("raftstore: first index: %w", ErrClosed)
	}
	return s.bounds.Load().first, nil
}

// LastIndex returns the highest stored index, or 0 if the log is empty. It
// reads an in-memory cache and never touches the disk.
func (s *Store) LastIndex() (uint64, error) {
	if s.closed.Load() {
		return 0, fmt.Errorf("raftstore: last index: %w", ErrClosed)
	}
	return s.bounds.Load().last, nil
}

// GetLog reads the entry at index into log. A missing index yields
// raft.ErrLogNotFound itself, unwrapped.
func (s *Store) GetLog(index uint64, log *raft.Log) error {
	if err := s.acquire(); err != nil {
		return fmt.Errorf("raftstore: get log %d: %w", index, err)
	}
	defer s.lifeMu.RUnlock()

	val, closer, err := s.db.Get(logKey(index))
	if errors.Is(err, pebble.ErrNotFound) {
		return raft.ErrLogNotFound
	}
	if err != nil {
		return fmt.Errorf("raftstore: get log %d: %w", index, err)
	}
	// decodeLog copies everything it keeps, so val may be released after.
	err = decodeLog(val, log)
	if cerr := closer.Close(); err == nil && cerr != nil {
		return fmt.Errorf("raftstore: get log %d: release value: %w", index, cerr)
	}
	if err != nil {
		return fmt.Errorf("raftstore: get log %d: %w", index, err)
	}
	if log.Index != index {
		return fmt.Errorf("raftstore: get log %d: %w: entry stored under this index claims index %d",
			index, ErrCorrupt, log.Index)
	}
	return nil
}

// StoreLog stores a single entry, durably.
func (s *Store) StoreLog(log *raft.Log) error {
	return s.StoreLogs([]*raft.Log{log})
}

// StoreLogs stores entries atomically in one synced Pebble batch. Entries
// replace any already stored at the same index. Index 0 is rejected because
// raft reserves it to mean "no entry".
func (s *Store) StoreLogs(logs []*raft.Log) error {
	if len(logs) == 0 {
		return nil
	}
	lo, hi := uint64(math.MaxUint64), uint64(0)
	size := 0
	for i, l := range logs {
		if l == nil {
			return fmt.Errorf("raftstore: store logs: entry %d of %d is nil", i, len(logs))
		}
		if l.Index == 0 {
			return fmt.Errorf("raftstore: store logs: entry %d of %d has index 0, which raft reserves", i, len(logs))
		}
		lo, hi = min(lo, l.Index), max(hi, l.Index)
		// Per record: kind byte, two length varints, key and value.
		size += 1 + 2*binary.MaxVarintLen32 + logKeyLen + encodedLogSize(l)
	}
	fail := func(what string, err error) error {
		return fmt.Errorf("raftstore: store logs [%d..%d]: %s: %w", lo, hi, what, err)
	}

	if err := s.acquire(); err != nil {
		return fmt.Errorf("raftstore: store logs [%d..%d]: %w", lo, hi, err)
	}
	defer s.lifeMu.RUnlock()

	b := s.db.NewBatchWithSize(size)
	defer b.Close()
	for _, l := range logs {
		// Encode straight into the batch's buffer: no per-entry allocation.
		op := b.SetDeferred(logKeyLen, encodedLogSize(l))
		putLogKey(op.Key, l.Index)
		if err := encodeLogInto(op.Value, l); err != nil {
			return fail("encode", err)
		}
		if err := op.Finish(); err != nil {
			return fail("batch", err)
		}
	}

	s.logMu.Lock()
	defer s.logMu.Unlock()
	if err := b.Commit(s.writeOpts); err != nil {
		return fail("commit", err)
	}
	// Widen the cached bounds only now that the entries are readable.
	cur := s.bounds.Load()
	next := &indexRange{first: lo, last: hi}
	if cur.last != 0 {
		next.first = min(cur.first, lo)
		next.last = max(cur.last, hi)
	}
	s.bounds.Store(next)
	return nil
}

// DeleteRange deletes the entries with index minIdx through maxIdx, both
// inclusive, in one synced batch. A range with minIdx > maxIdx deletes
// nothing.
func (s *Store) DeleteRange(minIdx, maxIdx uint64) error {
	if minIdx > maxIdx {
		return nil
	}
	fail := func(what string, err error) error {
		return fmt.Errorf("raftstore: delete logs [%d..%d]: %s: %w", minIdx, maxIdx, what, err)
	}
	if err := s.acquire(); err != nil {
		return fmt.Errorf("raftstore: delete logs [%d..%d]: %w", minIdx, maxIdx, err)
	}
	defer s.lifeMu.RUnlock()

	// Pebble's DeleteRange excludes its end key, so end is the key just
	// past maxIdx; for the largest possible index that is the end of the
	// whole log namespace.
	end := logUpperBound
	if maxIdx < math.MaxUint64 {
		end = logKey(maxIdx + 1)
	}
	b := s.db.NewBatch()
	defer b.Close()
	if err := b.DeleteRange(logKey(minIdx), end, nil); err != nil {
		return fail("batch", err)
	}

	s.logMu.Lock()
	defer s.logMu.Unlock()
	// Narrow the cached bounds before committing (and widen them only after
	// committing in StoreLogs), so FirstIndex and LastIndex never name an
	// entry that has already been deleted. Entries outside [minIdx, maxIdx]
	// are not touched by this batch and logMu excludes other log writers,
	// so the bounds can be computed from the disk before the commit.
	next, err := s.boundsAfterDelete(s.bounds.Load(), minIdx, maxIdx)
	if err != nil {
		return fail("compute log bounds", err)
	}
	s.bounds.Store(next)
	if err := b.Commit(s.writeOpts); err != nil {
		// The batch may or may not have been applied: trust the disk.
		if r, serr := s.scanBounds(); serr == nil {
			s.bounds.Store(r)
		} else {
			err = errors.Join(err, fmt.Errorf("refresh log bounds: %w", serr))
		}
		return fail("commit", err)
	}
	return nil
}

// boundsAfterDelete computes the index range that deleting [minIdx, maxIdx]
// from cur leaves. It reads the disk only when the deletion removes the
// first or the last entry, and then does one seek (the remaining entries
// need not be contiguous). Callers hold logMu.
func (s *Store) boundsAfterDelete(cur *indexRange, minIdx, maxIdx uint64) (r *indexRange, err error) {
	switch {
	case cur.last == 0, maxIdx < cur.first, minIdx > cur.last:
		return cur, nil // nothing stored was in range
	case minIdx <= cur.first && maxIdx >= cur.last:
		return &indexRange{}, nil // everything was in range
	case minIdx > cur.first && maxIdx < cur.last:
		return cur, nil // a hole in the middle: both ends survive
	}

	it, err := s.newLogIter()
	if err != nil {
		return nil, err
	}
	defer func() {
		if cerr := it.Close(); err == nil && cerr != nil {
			err = cerr
		}
	}()
	if minIdx <= cur.first {
		// Head goes; cur.last stays, so a new first entry exists.
		first, ok, err := iterIndex(it, it.SeekGE(logKey(maxIdx+1)))
		if err != nil {
			return nil, err
		}
		if !ok {
			return nil, fmt.Errorf("no entry after the deleted head though %d remains", cur.last)
		}
		return &indexRange{first: first, last: cur.last}, nil
	}
	// Tail goes; cur.first stays, so a new last entry exists.
	last, ok, err := iterIndex(it, it.SeekLT(logKey(minIdx)))
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, fmt.Errorf("no entry before the deleted tail though %d remains", cur.first)
	}
	return &indexRange{first: cur.first, last: last}, nil
}

// Set durably stores val under key in the stable namespace.
func (s *Store) Set(key, val []byte) error {
	if err := s.acquire(); err != nil {
		return fmt.Errorf("raftstore: set %q: %w", key, err)
	}
	defer s.lifeMu.RUnlock()
	if err := s.db.Set(stableKey(key), val, s.writeOpts); err != nil {
		return fmt.Errorf("raftstore: set %q: %w", key, err)
	}
	return nil
}

// Get returns a copy of the value stored under key. For a key that was
// never set it returns a nil value and ErrKeyNotFound, whose text is
// exactly "not found" as raft expects. An empty value that was set is
// returned as an empty, non-nil slice.
func (s *Store) Get(key []byte) ([]byte, error) {
	if err := s.acquire(); err != nil {
		return nil, fmt.Errorf("raftstore: get %q: %w", key, err)
	}
	defer s.lifeMu.RUnlock()
	val, closer, err := s.db.Get(stableKey(key))
	if errors.Is(err, pebble.ErrNotFound) {
		return nil, ErrKeyNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("raftstore: get %q: %w", key, err)
	}
	out := append(make([]byte, 0, len(val)), val...)
	if err := closer.Close(); err != nil {
		return nil, fmt.Errorf("raftstore: get %q: release value: %w", key, err)
	}
	return out, nil
}

// SetUint64 durably stores val under key as 8 bytes big-endian.
func (s *Store) SetUint64(key []byte, val uint64) error {
	return s.Set(key, binary.BigEndian.AppendUint64(nil, val))
}

// GetUint64 returns the value SetUint64 stored under key. A missing key
// yields ErrKeyNotFound ("not found"); a value that is not 8 bytes long,
// for example one written with Set, yields a descriptive error.
func (s *Store) GetUint64(key []byte) (uint64, error) {
	val, err := s.Get(key)
	if err != nil {
		return 0, err
	}
	if len(val) != 8 {
		return 0, fmt.Errorf("raftstore: get uint64 %q: stored value is %d bytes, want 8", key, len(val))
	}
	return binary.BigEndian.Uint64(val), nil
}
