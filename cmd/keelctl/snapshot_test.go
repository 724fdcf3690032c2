package main

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// serveChunks answers GET /internal/v1/snapshot with data in n flushed
// chunks, pausing between them.
func serveChunks(t *testing.T, data []byte, n int, pause time.Duration) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet || r.URL.Path != "/internal/v1/snapshot" {
			t.Errorf("unexpected request %s %s", r.Method, r.URL.Path)
			return
		}
		w.Header().Set("Content-Type", "application/octet-stream")
		step := (len(data) + n - 1) / n
		for i := 0; i < len(data); i += step {
			if i > 0 {
				time.Sleep(pause)
			}
			w.Write(data[i:min(i+step, len(data))])
			w.(http.Flusher).Flush()
		}
	}
}

func noTmp(t *testing.T, dir string) {
	t.Helper()
	m, _ := filepath.Glob(filepath.Join(dir, "*.tmp"))
	if len(m) > 0 {
		t.Errorf("temporary files left behind: %q", m)
	}
}

func TestSnapshotSaveWritesServedBytes(t *testing.T) {
	clearEnv(t)
	data := realNode(t).snapshot(t)
	ks, key := testKey(t)
	f := newFakeController(t, key, serveChunks(t, data, 3, 0))
	dir := t.TempDir()
	file := filepath.Join(dir, "backup.snap")
	r := keelctl(t, "--url", f.URL, "--cluster-key", ks, "snapshot", "save", file)
	if r.code != 0 {
		t.Fatalf("exit %d, stderr %q", r.code, r.stderr)
	}
	got, err := os.ReadFile(file)
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("file holds %q (%v), served %q", got, err, data)
	}
	if want := "saved " + strconv.Itoa(len(data)) + " bytes to " + file + "\n"; r.stderr != want {
		t.Errorf("stderr %q, want %q (no progress when stderr is not a terminal)", r.stderr, want)
	}
	if r.stdout != "" {
		t.Errorf("stdout %q", r.stdout)
	}
	noTmp(t, dir)
}

// A stream that ends early, or is damaged, is not saved, and an existing
// FILE is left alone.
func TestSnapshotSaveRejectsBadStream(t *testing.T) {
	clearEnv(t)
	data := realNode(t).snapshot(t)
	ks, key := testKey(t)
	corrupt := append([]byte(nil), data...)
	corrupt[len(corrupt)/2] ^= 0x55
	for name, served := range map[string][]byte{
		"truncated": data[:len(data)-3],
		"corrupt":   corrupt,
		"empty":     nil,
		"not-keel":  []byte("<html>hello</html>"),
	} {
		t.Run(name, func(t *testing.T) {
			f := newFakeController(t, key, func(w http.ResponseWriter, r *http.Request) { w.Write(served) })
			dir := t.TempDir()
			file := filepath.Join(dir, "backup.snap")
			os.WriteFile(file, []byte("previous backup"), 0o600)
			r := keelctl(t, "--url", f.URL, "--cluster-key", ks, "snapshot", "save", file)
			if r.code != 1 || !strings.Contains(r.stderr, "incomplete or corrupt") || !strings.Contains(r.stderr, "nothing was written to "+file) {
				t.Fatalf("exit %d, stderr %q", r.code, r.stderr)
			}
			if got, _ := os.ReadFile(file); string(got) != "previous backup" {
				t.Errorf("existing file overwritten with %q", got)
			}
			noTmp(t, dir)
		})
	}
}

func TestSnapshotSaveErrors(t *testing.T) {
	clearEnv(t)
	ks, key := testKey(t)
	dir := t.TempDir()
	file := filepath.Join(dir, "backup.snap")

	// The controller refuses: its message is shown.
	f := newFakeController(t, key, func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusServiceUnavailable, map[string]string{"code": "no_leader", "error": "no cluster leader: this controller cannot reach a quorum"})
	})
	r := keelctl(t, "--url", f.URL, "--cluster-key", ks, "snapshot", "save", file)
	if r.code != 1 || !strings.Contains(r.stderr, "snapshot save: no cluster leader: this controller cannot reach a quorum (HTTP 503, no_leader)") {
		t.Errorf("no leader: exit %d, stderr %q", r.code, r.stderr)
	}

	// The stream stalls: --timeout bounds the stall.
	release := make(chan struct{})
	f = newFakeController(t, key, func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte("KEELFSM1"))
		w.(http.Flusher).Flush()
		select {
		case <-r.Context().Done():
		case <-release:
		}
	})
	defer close(release)
	r = keelctl(t, "--url", f.URL, "--cluster-key", ks, "--timeout", "300ms", "snapshot", "save", file)
	if r.code != 1 || !strings.Contains(r.stderr, "failed after 8 bytes") || !strings.Contains(r.stderr, "stalled") {
		t.Errorf("stall: exit %d, stderr %q", r.code, r.stderr)
	}

	// The directory does not exist.
	r = keelctl(t, "--url", f.URL, "--cluster-key", ks, "snapshot", "save", filepath.Join(dir, "missing", "x.snap"))
	if r.code != 1 || !strings.Contains(r.stderr, "exists and is writable") {
		t.Errorf("missing directory: exit %d, stderr %q", r.code, r.stderr)
	}
	if _, err := os.Stat(file); !os.IsNotExist(err) {
		t.Errorf("%s exists after failed saves", file)
	}
	noTmp(t, dir)
}

func TestSnapshotSaveProgress(t *testing.T) {
	clearEnv(t)
	data := realNode(t).snapshot(t)
	ks, key := testKey(t)
	f := newFakeController(t, key, serveChunks(t, data, 3, 2*progressEvery))
	file := filepath.Join(t.TempDir(), "backup.snap")
	var out, errb bytes.Buffer
	a := &app{stdout: &out, stderr: &errb, progress: true}
	if code := a.run([]string{"--url", f.URL, "--cluster-key", ks, "snapshot", "save", file}); code != 0 {
		t.Fatalf("exit %d, stderr %q", code, errb.String())
	}
	s := errb.String()
	if !strings.Contains(s, "\r\x1b[Ksaving snapshot: ") || !strings.HasSuffix(s, "\r\x1b[K"+fmt.Sprintf("saved %d bytes to %s\n", len(data), file)) {
		t.Errorf("stderr %q: want progress updates, erased, then the final line", s)
	}
	if n := strings.Count(s, "saving snapshot"); n > 3 {
		t.Errorf("%d progress updates for a 1s transfer", n)
	}
}

func TestSnapshotRestore(t *testing.T) {
	clearEnv(t)
	ks, key := testKey(t)
	content := bytes.Repeat([]byte("KEELFSM1-snapshot-bytes"), 5000)
	file := filepath.Join(t.TempDir(), "backup.snap")
	os.WriteFile(file, content, 0o600)
	f := newFakeController(t, key, func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(r.Body)
		switch {
		case r.Method != http.MethodPost || r.URL.Path != "/internal/v1/snapshot":
			t.Errorf("unexpected request %s %s", r.Method, r.URL.Path)
		case err != nil || !bytes.Equal(body, content):
			t.Errorf("uploaded %d bytes (%v), want the file's %d", len(body), err, len(content))
		case r.ContentLength != int64(len(content)):
			t.Errorf("Content-Length %d, want %d", r.ContentLength, len(content))
		}
		writeJSON(w, http.StatusOK, map[string]any{"restored_keys": 3, "applied_index": 42})
	})
	r := keelctl(t, "--url", f.URL, "--cluster-key", ks, "snapshot", "restore", file)
	if r.code != 0 || r.stdout != "restored 3 keys from "+file+": the whole cluster state was replaced (applied index 42)\n" {
		t.Fatalf("exit %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
	}

	f = newFakeController(t, key, func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		writeJSON(w, http.StatusBadRequest, map[string]string{"code": "invalid", "error": "invalid: corrupt snapshot: checksum 1, computed 2"})
	})
	r = keelctl(t, "--url", f.URL, "--cluster-key", ks, "snapshot", "restore", file)
	if r.code != 1 || !strings.Contains(r.stderr, "snapshot restore: invalid: corrupt snapshot: checksum 1, computed 2") {
		t.Fatalf("refused: exit %d, stderr %q", r.code, r.stderr)
	}

	// The wrong key is reported as such even though the upload is cut short.
	other, _ := testKey(t)
	r = keelctl(t, "--url", f.URL, "--cluster-key", other, "snapshot", "restore", file)
	if r.code != 1 || !strings.Contains(r.stderr, "cluster key does not match") {
		t.Fatalf("wrong key: exit %d, stderr %q", r.code, r.stderr)
	}

	r = keelctl(t, "--url", f.URL, "--cluster-key", ks, "snapshot", "restore", filepath.Join(t.TempDir(), "nope.snap"))
	if r.code != 1 || !strings.Contains(r.stderr, "no such file") {
		t.Fatalf("missing file: exit %d, stderr %q", r.code, r.stderr)
	}
}
