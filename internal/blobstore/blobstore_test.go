package blobstore

import (
	"bytes"
	"crypto/md5"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/hex"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

func sumsOf(data []byte) Sums {
	m, s, s5 := md5.Sum(data), sha256.Sum256(data), sha512.Sum512(data)
	return Sums{Size: int64(len(data)), MD5: hex.EncodeToString(m[:]), SHA256: hex.EncodeToString(s[:]), SHA512: hex.EncodeToString(s5[:])}
}

func tmpFiles(t *testing.T, s *Store) []string {
	t.Helper()
	entries, err := os.ReadDir(filepath.Join(s.Dir(), "tmp"))
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range entries {
		out = append(out, e.Name())
	}
	return out
}

func TestPutOpenRemove(t *testing.T) {
	s, err := Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	data := bytes.Repeat([]byte("keel image data "), 100000) // 1.6 MB: several reads
	want := sumsOf(data)
	got, err := s.Put(bytes.NewReader(data), "", 0)
	if err != nil {
		t.Fatal(err)
	}
	if got != want {
		t.Fatalf("sums %+v, want %+v", got, want)
	}
	if !s.Has(want.SHA256) {
		t.Fatal("the blob is not in the store after Put")
	}
	f, err := s.Open(want.SHA256)
	if err != nil {
		t.Fatal(err)
	}
	back, _ := io.ReadAll(f)
	f.Close()
	if !bytes.Equal(back, data) {
		t.Fatal("read back other bytes")
	}
	if list, err := s.List(); err != nil || len(list) != 1 || list[0] != want.SHA256 {
		t.Fatalf("list %v %v", list, err)
	}
	if n := tmpFiles(t, s); len(n) != 0 {
		t.Fatalf("temporary files left: %v", n)
	}
	// Storing the same content again succeeds (same address).
	if _, err := s.Put(bytes.NewReader(data), want.SHA256, 0); err != nil {
		t.Fatal(err)
	}
	if err := s.Remove(want.SHA256); err != nil {
		t.Fatal(err)
	}
	if s.Has(want.SHA256) {
		t.Fatal("blob still there after Remove")
	}
	if _, err := s.Open(want.SHA256); !errors.Is(err, ErrNotFound) {
		t.Fatalf("open a removed blob: %v", err)
	}
	if err := s.Remove(want.SHA256); err != nil {
		t.Fatalf("removing a missing blob: %v", err)
	}
}

func TestMismatchKeepsNothing(t *testing.T) {
	s, _ := Open(t.TempDir())
	data := []byte("the real data")
	other := sumsOf([]byte("what the sender claimed"))
	_, err := s.Put(bytes.NewReader(data), other.SHA256, 0)
	if !errors.Is(err, ErrMismatch) {
		t.Fatalf("put with a wrong sha256: %v, want ErrMismatch", err)
	}
	if s.Has(other.SHA256) || s.Has(sumsOf(data).SHA256) {
		t.Fatal("a mismatched blob was kept")
	}
	if n := tmpFiles(t, s); len(n) != 0 {
		t.Fatalf("temporary files left: %v", n)
	}
}

func TestLimitAndAbort(t *testing.T) {
	s, _ := Open(t.TempDir())
	if _, err := s.Put(strings.NewReader("0123456789"), "", 5); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("over the limit: %v", err)
	}
	w, err := s.Create(0)
	if err != nil {
		t.Fatal(err)
	}
	w.Write([]byte("abandoned"))
	w.Abort()
	w.Abort() // twice is fine
	if _, err := w.Commit(""); err == nil {
		t.Fatal("commit after abort succeeded")
	}
	if list, _ := s.List(); len(list) != 0 {
		t.Fatalf("blobs after an abort: %v", list)
	}
	if n := tmpFiles(t, s); len(n) != 0 {
		t.Fatalf("temporary files left: %v", n)
	}
	// An empty blob is a blob.
	sums, err := s.Put(bytes.NewReader(nil), "", 0)
	if err != nil || sums != sumsOf(nil) || !s.Has(sums.SHA256) {
		t.Fatalf("empty blob: %+v %v", sums, err)
	}
}

func TestOpenRemovesLeftoversAndKeepsBlobs(t *testing.T) {
	dir := t.TempDir()
	s, _ := Open(dir)
	sums, err := s.Put(strings.NewReader("kept"), "", 0)
	if err != nil {
		t.Fatal(err)
	}
	w, _ := s.Create(0)
	w.Write([]byte("interrupted")) // a crash: never committed
	if len(tmpFiles(t, s)) != 1 {
		t.Fatal("no temporary file while writing")
	}
	s2, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	if n := tmpFiles(t, s2); len(n) != 0 {
		t.Fatalf("leftovers after reopen: %v", n)
	}
	if !s2.Has(sums.SHA256) {
		t.Fatal("reopen lost a committed blob")
	}
}

func TestVerifyDetectsRot(t *testing.T) {
	s, _ := Open(t.TempDir())
	sums, _ := s.Put(strings.NewReader("pristine"), "", 0)
	if err := s.Verify(sums.SHA256); err != nil {
		t.Fatalf("verify a good blob: %v", err)
	}
	if err := os.WriteFile(filepath.Join(s.Dir(), sums.SHA256), []byte("rotten!!"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := s.Verify(sums.SHA256); !errors.Is(err, ErrMismatch) {
		t.Fatalf("verify a rotten blob: %v", err)
	}
	if s.Has(sums.SHA256) {
		t.Fatal("a rotten blob was kept")
	}
}

func TestInvalidAddresses(t *testing.T) {
	s, _ := Open(t.TempDir())
	for _, a := range []string{"", "abc", "../../etc/passwd", strings.Repeat("A", 64), strings.Repeat("g", 64), "tmp"} {
		if Valid(a) || s.Has(a) {
			t.Errorf("%q accepted as an address", a)
		}
		if _, err := s.Open(a); !errors.Is(err, ErrNotFound) {
			t.Errorf("open %q: %v", a, err)
		}
		if err := s.Remove(a); err == nil {
			t.Errorf("remove %q succeeded", a)
		}
	}
}

func TestConcurrentWritersOfTheSameContent(t *testing.T) {
	s, _ := Open(t.TempDir())
	data := bytes.Repeat([]byte{7}, 300000)
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := s.Put(bytes.NewReader(data), sumsOf(data).SHA256, 0)
			errs <- err
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Verify(sumsOf(data).SHA256); err != nil {
		t.Fatal(err)
	}
}
