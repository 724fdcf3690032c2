package fsm

import (
	"bufio"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"hash/crc32"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/cockroachdb/pebble/v2"
	"github.com/hashicorp/raft"
)

// Snapshot stream format (also what `keelctl snapshot save` writes):
//
//	"KEELFSM1"                                   magic and format version
//	applied index (8 bytes, big endian)          the last Raft index applied to this state
//	{uvarint len(key), key, uvarint len(value), value}...   every key but the applied index, in order
//	uvarint 0                                    end of entries (keys are never empty)
//	crc32c (4 bytes, big endian) of every byte before it
const snapshotMagic = "KEELFSM1"

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// Snapshot captures the state at the current applied index (raft.FSM). It is
// called between applies, and the returned snapshot is a Pebble snapshot, so
// Persist can stream while new entries are applied.
func (f *FSM) Snapshot() (raft.FSMSnapshot, error) {
	h := f.acquire()
	defer f.release()
	h.refs.Add(1)
	return &fsmSnapshot{snap: h.db.NewSnapshot(), h: h}, nil
}

type fsmSnapshot struct {
	snap *pebble.Snapshot
	h    *store
}

func (s *fsmSnapshot) Persist(sink raft.SnapshotSink) error {
	if err := writeSnapshot(s.snap, sink); err != nil {
		_ = sink.Cancel()
		return fmt.Errorf("fsm: persist snapshot: %w", err)
	}
	return sink.Close()
}

func (s *fsmSnapshot) Release() {
	s.snap.Close()
	s.h.refs.Done()
}

// snapshotWriter writes the snapshot format: header, entries, trailer.
type snapshotWriter struct {
	w      io.Writer
	crc    hash.Hash32
	bw     *bufio.Writer
	lenBuf [binary.MaxVarintLen64]byte
}

func newSnapshotWriter(w io.Writer, applied uint64) *snapshotWriter {
	sw := &snapshotWriter{w: w, crc: crc32.New(castagnoli)}
	sw.bw = bufio.NewWriterSize(io.MultiWriter(w, sw.crc), 256<<10)
	sw.bw.WriteString(snapshotMagic)
	var idx [8]byte
	binary.BigEndian.PutUint64(idx[:], applied)
	sw.bw.Write(idx[:])
	return sw
}

func (sw *snapshotWriter) entry(k, v []byte) error {
	sw.bw.Write(sw.lenBuf[:binary.PutUvarint(sw.lenBuf[:], uint64(len(k)))])
	sw.bw.Write(k)
	sw.bw.Write(sw.lenBuf[:binary.PutUvarint(sw.lenBuf[:], uint64(len(v)))])
	_, err := sw.bw.Write(v) // bufio keeps the first error: this one reports it
	return err
}

func (sw *snapshotWriter) finish() error {
	sw.bw.WriteByte(0)
	if err := sw.bw.Flush(); err != nil {
		return err
	}
	var sum [4]byte
	binary.BigEndian.PutUint32(sum[:], sw.crc.Sum32())
	_, err := sw.w.Write(sum[:])
	return err
}

// writeSnapshot streams every key of r to w in the snapshot format.
func writeSnapshot(r pebble.Reader, w io.Writer) error {
	var applied uint64
	if v, closer, err := r.Get([]byte(metaApplied)); err == nil {
		applied = binary.BigEndian.Uint64(v)
		closer.Close()
	} else if !errors.Is(err, pebble.ErrNotFound) {
		return err
	}
	sw := newSnapshotWriter(w, applied)
	it, err := r.NewIter(nil)
	if err != nil {
		return err
	}
	defer it.Close()
	for it.First(); it.Valid(); it.Next() {
		if string(it.Key()) == metaApplied {
			continue
		}
		if err := sw.entry(it.Key(), it.Value()); err != nil {
			return err
		}
	}
	if err := it.Error(); err != nil {
		return err
	}
	return sw.finish()
}

func noEOF(err error) error {
	if errors.Is(err, io.EOF) {
		return io.ErrUnexpectedEOF
	}
	return err
}

// VerifySnapshot checks a snapshot stream end to end (format and checksum)
// without restoring it, and returns its applied index and number of keys.
func VerifySnapshot(r io.Reader) (index uint64, keys int, err error) {
	index, err = readSnapshot(r, func(k, v []byte) error { keys++; return nil })
	return index, keys, err
}

// CopySnapshot verifies the snapshot read from r while writing it to w with
// its applied index replaced by index. A snapshot restored by an operator
// (`keelctl snapshot restore`) gets index 0: the index it was saved at means
// nothing in the Raft log it is restored into, and 0 never skips an entry.
func CopySnapshot(w io.Writer, r io.Reader, index uint64) (keys int, err error) {
	sw := newSnapshotWriter(w, index)
	if _, err = readSnapshot(r, func(k, v []byte) error { keys++; return sw.entry(k, v) }); err != nil {
		return keys, err
	}
	return keys, sw.finish()
}

// SnapshotIndex reads only the header of a snapshot stream: the Raft index
// of the last entry applied to the state it holds.
func SnapshotIndex(r io.Reader) (uint64, error) {
	var hdr [len(snapshotMagic) + 8]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return 0, fmt.Errorf("not a Keel snapshot: %w", err)
	}
	if string(hdr[:len(snapshotMagic)]) != snapshotMagic {
		return 0, fmt.Errorf("not a Keel snapshot (header %q, want %q)", hdr[:len(snapshotMagic)], snapshotMagic)
	}
	return binary.BigEndian.Uint64(hdr[len(snapshotMagic):]), nil
}

// readSnapshot calls fn for every key and value of the stream, and returns
// the applied index from its header, or an error if the stream is malformed
// or its checksum does not match. The checksum is computed over the bytes as
// parsed (the writer's encoding is canonical), so bufio's read-ahead of the
// trailer does not disturb it.
func readSnapshot(r io.Reader, fn func(k, v []byte) error) (uint64, error) {
	crc := crc32.New(castagnoli)
	br := bufio.NewReaderSize(r, 256<<10)
	var hdr [len(snapshotMagic) + 8]byte
	if _, err := io.ReadFull(br, hdr[:]); err != nil {
		return 0, fmt.Errorf("not a Keel snapshot: %w", err)
	}
	if string(hdr[:len(snapshotMagic)]) != snapshotMagic {
		return 0, fmt.Errorf("not a Keel snapshot (header %q, want %q)", hdr[:len(snapshotMagic)], snapshotMagic)
	}
	crc.Write(hdr[:])
	index := binary.BigEndian.Uint64(hdr[len(snapshotMagic):])
	var lenBuf [binary.MaxVarintLen64]byte
	readChunk := func() ([]byte, error) {
		n, err := binary.ReadUvarint(br)
		if err != nil {
			return nil, fmt.Errorf("truncated snapshot: %w", noEOF(err))
		}
		crc.Write(lenBuf[:binary.PutUvarint(lenBuf[:], n)])
		if n > 1<<30 {
			return nil, fmt.Errorf("corrupt snapshot: entry of %d bytes", n)
		}
		b := make([]byte, n)
		if _, err := io.ReadFull(br, b); err != nil {
			return nil, fmt.Errorf("truncated snapshot: %w", noEOF(err))
		}
		crc.Write(b)
		return b, nil
	}
	for {
		k, err := readChunk()
		if err != nil {
			return 0, err
		}
		if len(k) == 0 {
			break
		}
		v, err := readChunk()
		if err != nil {
			return 0, err
		}
		if string(k) == metaApplied {
			return 0, fmt.Errorf("corrupt snapshot: applied index stored as an entry")
		}
		if err := fn(k, v); err != nil {
			return 0, err
		}
	}
	var trailer [4]byte
	if _, err := io.ReadFull(br, trailer[:]); err != nil {
		return 0, fmt.Errorf("truncated snapshot: missing checksum: %w", noEOF(err))
	}
	if got, want := binary.BigEndian.Uint32(trailer[:]), crc.Sum32(); got != want {
		return 0, fmt.Errorf("corrupt snapshot: checksum %08x, computed %08x", got, want)
	}
	return index, nil
}

// Restore replaces the whole state with the snapshot in rc (raft.FSM),
// including the applied index recorded in its header. The new store is built
// beside the current one and swapped in only once the stream has been read
// and verified: a failed or interrupted restore leaves the current state as
// it was.
func (f *FSM) Restore(rc io.ReadCloser) error {
	defer rc.Close()
	f.mu.RLock()
	oldName := f.h.name
	f.mu.RUnlock()
	name, err := nextStoreName(oldName)
	if err != nil {
		return err
	}
	path := filepath.Join(f.dir, name)
	_ = os.RemoveAll(path)
	db, err := openPebble(path, f.log)
	if err != nil {
		return err
	}
	fail := func(err error) error {
		db.Close()
		_ = os.RemoveAll(path)
		return fmt.Errorf("fsm: restore snapshot: %w (the current state is unchanged)", err)
	}
	b := db.NewBatch()
	keys := 0
	index, err := readSnapshot(rc, func(k, v []byte) error {
		keys++
		if err := b.Set(k, v, nil); err != nil {
			return err
		}
		if b.Len() > 4<<20 {
			if err := b.Commit(pebble.NoSync); err != nil {
				return err
			}
			b.Reset()
		}
		return nil
	})
	if err != nil {
		b.Close()
		return fail(err)
	}
	var idx [8]byte
	binary.BigEndian.PutUint64(idx[:], index)
	if err := b.Set([]byte(metaApplied), idx[:], nil); err != nil {
		return fail(err)
	}
	if err := b.Commit(pebble.Sync); err != nil {
		return fail(err)
	}
	b.Close()
	if err := writeCurrent(f.dir, name); err != nil {
		return fail(err)
	}

	f.mu.Lock()
	old := f.h
	f.h = &store{db: db, name: name}
	err = f.loadMeta()
	f.mu.Unlock()
	if err != nil {
		return fmt.Errorf("fsm: restored store unreadable: %w", err)
	}
	f.notifyMu.Lock()
	close(f.changed) // every blocking query wakes and re-reads
	f.changed = make(chan struct{})
	for k, ch := range f.keyWaiters {
		close(ch)
		delete(f.keyWaiters, k)
	}
	f.notifyMu.Unlock()

	old.refs.Wait()
	if err := old.db.Close(); err != nil {
		f.log.Warn("closing the replaced FSM store", "error", err)
	}
	_ = os.RemoveAll(filepath.Join(f.dir, old.name))
	f.log.Info("restored FSM from snapshot", "index", index, "keys", keys)
	return nil
}

func nextStoreName(cur string) (string, error) {
	n, err := strconv.Atoi(strings.TrimPrefix(cur, "db-"))
	if err != nil {
		return "", fmt.Errorf("fsm: unexpected store name %q", cur)
	}
	return fmt.Sprintf("db-%06d", n+1), nil
}

// Hash returns a hex SHA-256 of every record, index entry and table index:
// equal on two nodes exactly when they hold the same state. The applied index
// is left out (it may legitimately differ right after a restore).
func (f *FSM) Hash() (string, error) {
	h := f.acquire()
	snap := h.db.NewSnapshot()
	f.release()
	defer snap.Close()
	sum := sha256.New()
	it, err := snap.NewIter(nil)
	if err != nil {
		return "", err
	}
	defer it.Close()
	var lenBuf [binary.MaxVarintLen64]byte
	for it.First(); it.Valid(); it.Next() {
		if string(it.Key()) == metaApplied {
			continue
		}
		sum.Write(lenBuf[:binary.PutUvarint(lenBuf[:], uint64(len(it.Key())))])
		sum.Write(it.Key())
		sum.Write(lenBuf[:binary.PutUvarint(lenBuf[:], uint64(len(it.Value())))])
		sum.Write(it.Value())
	}
	if err := it.Error(); err != nil {
		return "", err
	}
	return hex.EncodeToString(sum.Sum(nil)), nil
}

// WriteSnapshot streams a consistent snapshot of the current state to w (for
// `keelctl snapshot save`), in the same format Raft snapshots use.
func (f *FSM) WriteSnapshot(w io.Writer) error {
	h := f.acquire()
	h.refs.Add(1)
	snap := h.db.NewSnapshot()
	f.release()
	defer h.refs.Done()
	defer snap.Close()
	return writeSnapshot(snap, w)
}
