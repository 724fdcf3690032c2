package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/keel-cloud/keel/internal/clusterauth"
)

func TestKeygen(t *testing.T) {
	clearEnv(t)
	r := keelctl(t, "keygen")
	if r.code != 0 || r.stderr != "" {
		t.Fatalf("keygen: exit %d, stderr %q", r.code, r.stderr)
	}
	if strings.Count(r.stdout, "\n") != 1 || !strings.HasSuffix(r.stdout, "\n") {
		t.Fatalf("keygen printed %q, want exactly one line", r.stdout)
	}
	if k := decodeKey(t, r.stdout); len(k) != 32 {
		t.Fatalf("key decodes to %d bytes, want 32", len(k))
	}
	if _, err := clusterauth.ParseKey(strings.TrimSpace(r.stdout)); err != nil {
		t.Fatalf("the controllers would refuse the key: %v", err)
	}
	if r2 := keelctl(t, "keygen"); r2.stdout == r.stdout {
		t.Fatal("two keygen runs printed the same key")
	}
}

func TestUsage(t *testing.T) {
	clearEnv(t)
	for _, tc := range []struct {
		args []string
		code int
		want string // in stderr, or stdout for help
	}{
		{nil, 1, "no command given"},
		{[]string{"help"}, 0, "snapshot restore FILE"},
		{[]string{"frobnicate"}, 1, `unknown command "frobnicate"`},
		{[]string{"cluster"}, 1, `"cluster" needs a subcommand: status, remove-peer`},
		{[]string{"snapshot", "load", "x"}, 1, `unknown command "snapshot load"`},
		{[]string{"snapshot", "save"}, 1, "want 1 argument(s), got 0"},
		{[]string{"cluster", "remove-peer", "a", "b"}, 1, "want 1 argument(s), got 2"},
		{[]string{"cluster", "status", "--bogus"}, 1, "flag provided but not defined: -bogus"},
		{[]string{"cluster", "status", "-h"}, 0, "Usage: keelctl cluster status [flags]"},
		{[]string{"--timeout", "soon", "version"}, 1, `invalid value "soon"`},
	} {
		r := keelctl(t, tc.args...)
		out := r.stderr
		if tc.args != nil && tc.args[0] == "help" {
			out = r.stdout
		}
		if r.code != tc.code || !strings.Contains(out, tc.want) {
			t.Errorf("keelctl %q: exit %d, output:\n%s\nwant exit %d and %q", tc.args, r.code, out, tc.code, tc.want)
		}
		if tc.code != 0 && len(tc.args) < 2 && !strings.Contains(r.stderr, "Usage: keelctl") {
			t.Errorf("keelctl %q: no usage on stderr", tc.args)
		}
	}
	if r := keelctl(t, "version"); r.code != 0 || !strings.HasPrefix(r.stdout, "keelctl ") {
		t.Errorf("version: exit %d, %q", r.code, r.stdout)
	}
}

func TestKeySources(t *testing.T) {
	clearEnv(t)
	s1, k1 := testKey(t)
	s2, _ := testKey(t)
	f := newFakeController(t, k1, serveStatus(t, healthyStatus()))
	dir := t.TempDir()
	t.Chdir(dir)

	// No key anywhere.
	r := keelctl(t, "--url", f.URL, "cluster", "status")
	if r.code != 1 || !strings.Contains(r.stderr, "no cluster key") || !strings.Contains(r.stderr, "--cluster-key") {
		t.Fatalf("without a key: exit %d, stderr %q", r.code, r.stderr)
	}
	// ./keel-data/cluster.key, as a single-node controller writes it.
	if err := os.MkdirAll("keel-data", 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join("keel-data", "cluster.key"), []byte(s1+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if r := keelctl(t, "--url", f.URL, "cluster", "status"); r.code != 0 {
		t.Fatalf("key from ./keel-data/cluster.key: exit %d, stderr %q", r.code, r.stderr)
	}
	// KEEL_CLUSTER_KEY_FILE wins over the default file.
	other := filepath.Join(dir, "other.key")
	os.WriteFile(other, []byte(s2), 0o600)
	t.Setenv("KEEL_CLUSTER_KEY_FILE", other)
	if r := keelctl(t, "--url", f.URL, "cluster", "status"); r.code != 1 || !strings.Contains(r.stderr, "cluster key does not match") {
		t.Fatalf("key from KEEL_CLUSTER_KEY_FILE (wrong key): exit %d, stderr %q", r.code, r.stderr)
	}
	// KEEL_CLUSTER_KEY wins over files, and KEEL_URL gives the URL.
	t.Setenv("KEEL_CLUSTER_KEY", s1)
	t.Setenv("KEEL_URL", f.URL)
	if r := keelctl(t, "cluster", "status"); r.code != 0 {
		t.Fatalf("key from KEEL_CLUSTER_KEY: exit %d, stderr %q", r.code, r.stderr)
	}
	// A flag wins over the environment, before or after the command.
	if r := keelctl(t, "--cluster-key", s2, "cluster", "status"); r.code != 1 {
		t.Fatalf("--cluster-key before the command was ignored: exit %d", r.code)
	}
	if r := keelctl(t, "cluster", "status", "--cluster-key", s2); r.code != 1 {
		t.Fatalf("--cluster-key after the command was ignored: exit %d", r.code)
	}
	// A malformed key is reported before any request.
	before := f.verified.Load() + f.rejected.Load()
	r = keelctl(t, "cluster", "status", "--cluster-key", "c2hvcnQ=")
	if r.code != 1 || !strings.Contains(r.stderr, "32 bytes") {
		t.Fatalf("short key: exit %d, stderr %q", r.code, r.stderr)
	}
	if f.verified.Load()+f.rejected.Load() != before {
		t.Fatal("a request was sent with a malformed key")
	}
}

func TestNormalizeURL(t *testing.T) {
	for in, want := range map[string]string{
		"http://127.0.0.1:8774":      "http://127.0.0.1:8774",
		"127.0.0.1:8774":             "http://127.0.0.1:8774",
		"https://keel.example/api/":  "https://keel.example/api",
		" http://[::1]:8774/ ":       "http://[::1]:8774",
		"ftp://x":                    "",
		"http://":                    "",
		"http://h:1/?q=1":            "",
		"http://bad host name:1/x%%": "",
	} {
		got, err := normalizeURL(in)
		if want == "" {
			if err == nil || !strings.Contains(err.Error(), "KEEL_URL") {
				t.Errorf("normalizeURL(%q) = %q, %v; want an error that mentions KEEL_URL", in, got, err)
			}
			continue
		}
		if err != nil || got != want {
			t.Errorf("normalizeURL(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
}
