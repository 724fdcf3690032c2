package main

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/keel-cloud/keel/cluster"
	"github.com/keel-cloud/keel/internal/clusterauth"
)

// clearEnv unsets every KEEL_* variable for the test, so the developer's
// environment cannot change what keelctl does.
func clearEnv(t *testing.T) {
	t.Helper()
	for _, kv := range os.Environ() {
		if k, _, _ := strings.Cut(kv, "="); strings.HasPrefix(k, "KEEL_") {
			t.Setenv(k, "") // restored after the test
			os.Unsetenv(k)
		}
	}
}

type result struct {
	stdout, stderr string
	code           int
}

// keelctl runs a command line in-process.
func keelctl(t *testing.T, args ...string) result {
	t.Helper()
	var out, errb bytes.Buffer
	a := &app{stdout: &out, stderr: &errb}
	code := a.run(args)
	return result{stdout: out.String(), stderr: errb.String(), code: code}
}

func testKey(t *testing.T) (string, []byte) {
	t.Helper()
	s, err := newKey()
	if err != nil {
		t.Fatal(err)
	}
	k, err := clusterauth.ParseKey(s)
	if err != nil {
		t.Fatal(err)
	}
	return s, k
}

// checkSignature verifies X-Keel-Auth the way cluster/auth.go documents it:
// "<unix seconds>.<hex HMAC-SHA256(key, "keel/v1\n" METHOD "\n" PATH?QUERY "\n" seconds)>",
// within 5 minutes of now.
func checkSignature(r *http.Request, key []byte) error {
	tsStr, sig, ok := strings.Cut(r.Header.Get("X-Keel-Auth"), ".")
	if !ok {
		return fmt.Errorf("no X-Keel-Auth header")
	}
	ts, err := strconv.ParseInt(tsStr, 10, 64)
	if err != nil {
		return fmt.Errorf("malformed timestamp %q", tsStr)
	}
	if d := time.Since(time.Unix(ts, 0)); d > 5*time.Minute || d < -5*time.Minute {
		return fmt.Errorf("timestamp %s off", d)
	}
	m := hmac.New(sha256.New, key)
	fmt.Fprintf(m, "keel/v1\n%s\n%s\n%d", r.Method, r.URL.RequestURI(), ts)
	if !hmac.Equal([]byte(sig), []byte(hex.EncodeToString(m.Sum(nil)))) {
		return fmt.Errorf("signature mismatch")
	}
	return nil
}

// fakeController serves h behind the cluster-key check, answering 401 as a
// controller does when the signature is wrong. verified counts the requests
// that passed the check.
type fakeController struct {
	*httptest.Server
	verified atomic.Int64
	rejected atomic.Int64
}

func newFakeController(t *testing.T, key []byte, h http.HandlerFunc) *fakeController {
	t.Helper()
	f := &fakeController{}
	f.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := checkSignature(r, key); err != nil {
			f.rejected.Add(1)
			writeJSON(w, http.StatusUnauthorized, map[string]string{"code": "unauthorized", "error": cluster.ErrUnauthorized.Error()})
			return
		}
		f.verified.Add(1)
		h(w, r)
	}))
	t.Cleanup(f.Close)
	return f
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// serveStatus answers GET /internal/v1/status with st.
func serveStatus(t *testing.T, st cluster.ClusterStatus) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet || r.URL.Path != "/internal/v1/status" {
			t.Errorf("unexpected request %s %s", r.Method, r.URL.Path)
			http.NotFound(w, r)
			return
		}
		writeJSON(w, http.StatusOK, st)
	}
}

func decodeKey(t *testing.T, s string) []byte {
	t.Helper()
	k, err := base64.StdEncoding.DecodeString(strings.TrimSpace(s))
	if err != nil {
		t.Fatalf("key %q is not base64: %v", s, err)
	}
	return k
}
