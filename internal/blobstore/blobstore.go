// Package blobstore keeps image data on a controller's disk, addressed by
// content: a blob is the file <dir>/<sha256 in hex>. A blob is written to a
// temporary file in <dir>/tmp while its MD5, SHA-256 and SHA-512 are
// computed, fsynced, and only then renamed to its address (and the
// directory fsynced), so a blob that exists under its name is complete and
// its name is its SHA-256: a crash leaves at worst a temporary file, which
// Open removes.
package blobstore

import (
	"crypto/md5"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"io/fs"
	"os"
	"path/filepath"
)

// ErrNotFound: the store holds no blob with that address.
var ErrNotFound = errors.New("blobstore: no such blob")

// ErrMismatch: data written for an address does not hash to it.
var ErrMismatch = errors.New("blobstore: data does not match its sha256")

// ErrTooLarge: data is larger than the limit the writer was given.
var ErrTooLarge = errors.New("blobstore: data exceeds the size limit")

// Store is a directory of blobs.
type Store struct {
	dir string
}

// Open opens (creating it if needed) the store in dir and removes the
// temporary files an interrupted write left.
func Open(dir string) (*Store, error) {
	tmp := filepath.Join(dir, "tmp")
	if err := os.RemoveAll(tmp); err != nil {
		return nil, fmt.Errorf("blobstore: clean %s: %w", tmp, err)
	}
	if err := os.MkdirAll(tmp, 0o700); err != nil {
		return nil, fmt.Errorf("blobstore: create %s: %w", tmp, err)
	}
	return &Store{dir: dir}, nil
}

// Dir is the store's directory.
func (s *Store) Dir() string { return s.dir }

// Valid reports whether sha is a blob address: a SHA-256 in lowercase hex.
func Valid(sha string) bool {
	if len(sha) != sha256.Size*2 {
		return false
	}
	for _, c := range sha {
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return false
		}
	}
	return true
}

func (s *Store) path(sha string) (string, error) {
	if !Valid(sha) {
		return "", fmt.Errorf("blobstore: invalid address %q", sha)
	}
	return filepath.Join(s.dir, sha), nil
}

// Sums are the size and hashes (lowercase hex) of a blob's data.
type Sums struct {
	Size   int64
	MD5    string
	SHA256 string
	SHA512 string
}

// Writer writes one blob. Write the data, then Commit it (or Abort).
type Writer struct {
	s                *Store
	f                *os.File
	md5, sha, sha512 hash.Hash
	mw               io.Writer
	size, limit      int64
	done             bool
}

// Create starts a blob. limit bounds its size (0: no limit).
func (s *Store) Create(limit int64) (*Writer, error) {
	f, err := os.CreateTemp(filepath.Join(s.dir, "tmp"), "blob-*")
	if err != nil {
		return nil, fmt.Errorf("blobstore: %w", err)
	}
	w := &Writer{s: s, f: f, md5: md5.New(), sha: sha256.New(), sha512: sha512.New(), limit: limit}
	w.mw = io.MultiWriter(f, w.md5, w.sha, w.sha512)
	return w, nil
}

// Write appends p to the blob.
func (w *Writer) Write(p []byte) (int, error) {
	if w.done {
		return 0, errors.New("blobstore: write after commit or abort")
	}
	if w.limit > 0 && w.size+int64(len(p)) > w.limit {
		return 0, ErrTooLarge
	}
	n, err := w.mw.Write(p)
	w.size += int64(n)
	return n, err
}

// ReadFrom copies r into the blob.
func (w *Writer) ReadFrom(r io.Reader) (int64, error) {
	buf := make([]byte, 256<<10)
	var total int64
	for {
		n, err := r.Read(buf)
		if n > 0 {
			if _, werr := w.Write(buf[:n]); werr != nil {
				return total, werr
			}
			total += int64(n)
		}
		if err == io.EOF {
			return total, nil
		}
		if err != nil {
			return total, err
		}
	}
}

// Sums returns the size and hashes of what was written so far.
func (w *Writer) Sums() Sums {
	return Sums{
		Size:   w.size,
		MD5:    hex.EncodeToString(w.md5.Sum(nil)),
		SHA256: hex.EncodeToString(w.sha.Sum(nil)),
		SHA512: hex.EncodeToString(w.sha512.Sum(nil)),
	}
}

// Commit makes the data a blob under its SHA-256. With want set, data whose
// SHA-256 is not want is discarded and ErrMismatch returned. Committing
// data the store already holds succeeds (the content is the same).
func (w *Writer) Commit(want string) (Sums, error) {
	if w.done {
		return Sums{}, errors.New("blobstore: commit after commit or abort")
	}
	sums := w.Sums()
	if want != "" && want != sums.SHA256 {
		w.Abort()
		return sums, fmt.Errorf("%w: got %s, want %s", ErrMismatch, sums.SHA256, want)
	}
	w.done = true
	name := w.f.Name()
	err := w.f.Sync()
	if cerr := w.f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(name, filepath.Join(w.s.dir, sums.SHA256))
	}
	if err == nil {
		err = syncDir(w.s.dir)
	}
	if err != nil {
		os.Remove(name)
		return sums, fmt.Errorf("blobstore: store %s: %w", sums.SHA256, err)
	}
	return sums, nil
}

// Abort discards the data. It may be called after Commit (it does nothing
// then), so `defer w.Abort()` is the idiom.
func (w *Writer) Abort() {
	if w.done {
		return
	}
	w.done = true
	name := w.f.Name()
	w.f.Close()
	os.Remove(name)
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// Put stores the data of r as a blob (see Create and Commit).
func (s *Store) Put(r io.Reader, want string, limit int64) (Sums, error) {
	w, err := s.Create(limit)
	if err != nil {
		return Sums{}, err
	}
	defer w.Abort()
	if _, err := w.ReadFrom(r); err != nil {
		return w.Sums(), err
	}
	return w.Commit(want)
}

// Has reports whether the store holds blob sha.
func (s *Store) Has(sha string) bool {
	p, err := s.path(sha)
	if err != nil {
		return false
	}
	fi, err := os.Stat(p)
	return err == nil && fi.Mode().IsRegular()
}

// Open opens blob sha for reading (ErrNotFound if the store has none).
func (s *Store) Open(sha string) (*os.File, error) {
	p, err := s.path(sha)
	if err != nil {
		return nil, ErrNotFound
	}
	f, err := os.Open(p)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, ErrNotFound
	}
	return f, err
}

// Remove deletes blob sha; removing a missing blob succeeds.
func (s *Store) Remove(sha string) error {
	p, err := s.path(sha)
	if err != nil {
		return err
	}
	if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("blobstore: %w", err)
	}
	return nil
}

// Verify re-reads blob sha and checks that it still hashes to its address
// (a disk can rot). A blob that does not is removed and ErrMismatch
// returned.
func (s *Store) Verify(sha string) error {
	f, err := s.Open(sha)
	if err != nil {
		return err
	}
	h := sha256.New()
	_, err = io.Copy(h, f)
	f.Close()
	if err != nil {
		return fmt.Errorf("blobstore: read %s: %w", sha, err)
	}
	if got := hex.EncodeToString(h.Sum(nil)); got != sha {
		s.Remove(sha)
		return fmt.Errorf("%w: blob %s hashes to %s; removed", ErrMismatch, sha, got)
	}
	return nil
}

// List returns the addresses of every blob in the store.
func (s *Store) List() ([]string, error) {
	entries, err := os.ReadDir(s.dir)
	if err != nil {
		return nil, fmt.Errorf("blobstore: %w", err)
	}
	var out []string
	for _, e := range entries {
		if e.Type().IsRegular() && Valid(e.Name()) {
			out = append(out, e.Name())
		}
	}
	return out, nil
}
