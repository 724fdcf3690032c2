package agent

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/keel-cloud/keel/agent/driver/fake"
	"github.com/keel-cloud/keel/internal/clusterauth"
	"github.com/keel-cloud/keel/internal/hostapi"
)

func getConsole(t *testing.T, addr, path string, key []byte) (int, string, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, "http://"+addr+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	if key != nil {
		clusterauth.Sign(req, key)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header.Get("Content-Type"), string(body)
}

func TestConsoleAPI(t *testing.T) {
	fc := newFakeController(t, testKey)
	d := fake.New(fake.Config{})
	ta := startAgent(t, testConfig("h1", d, fc.url))
	fc.assign("h1", spawning("s1", 1))
	waitFor(t, 5*time.Second, "s1 active", settled(fc, "h1", "s1", hostapi.VMActive))
	fc.setTask("h1", "s1", hostapi.TaskRebooting)
	waitFor(t, 5*time.Second, "s1 rebooted", settled(fc, "h1", "s1", hostapi.VMActive))

	// The controllers learn the address from the registration.
	addr := fc.registrationsOf("h1")[0].AgentAddr
	if addr != ta.a.Addr() {
		t.Fatalf("registered agent address %q, agent listens on %q", addr, ta.a.Addr())
	}
	status, ctype, body := getConsole(t, addr, "/internal/v1/servers/s1/console", testKey)
	if status != 200 || !strings.HasPrefix(ctype, "text/plain") || strings.Count(body, "keel-fake: boot") != 2 {
		t.Fatalf("console: %d %s %q", status, ctype, body)
	}
	status, _, body = getConsole(t, addr, "/internal/v1/servers/s1/console?length=1", testKey)
	if status != 200 || body != "vm-s1 login: \n" {
		t.Fatalf("console length=1: %d %q", status, body)
	}

	for _, tc := range []struct {
		name, path string
		key        []byte
		status     int
		code       string
	}{
		{"unsigned", "/internal/v1/servers/s1/console", nil, 401, "unauthorized"},
		{"wrong key", "/internal/v1/servers/s1/console", []byte(strings.Repeat("x", 32)), 401, "unauthorized"},
		{"no domain", "/internal/v1/servers/nope/console", testKey, 404, "not_found"},
		{"bad length", "/internal/v1/servers/s1/console?length=abc", testKey, 400, "invalid"},
		{"unknown path", "/internal/v1/other", testKey, 404, "not_found"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			status, ctype, body := getConsole(t, addr, tc.path, tc.key)
			var e struct{ Code, Error string }
			if err := json.Unmarshal([]byte(body), &e); err != nil || status != tc.status || e.Code != tc.code || ctype != "application/json" {
				t.Fatalf("%d %s %q, want %d %s", status, ctype, body, tc.status, tc.code)
			}
		})
	}
}

// One handler serves the consoles of many simulated hosts.
func TestConsoleHandlerManyDrivers(t *testing.T) {
	d1, d2 := fake.New(fake.Config{}), fake.New(fake.Config{})
	if err := d2.Spawn(context.Background(), spawning("s2", 1), nil); err != nil {
		t.Fatal(err)
	}
	h := ConsoleHandler(testKey, nil, d1, d2)
	req, _ := http.NewRequest(http.MethodGet, "/internal/v1/servers/s2/console", nil)
	clusterauth.Sign(req, testKey)
	w := &recorder{header: http.Header{}}
	h.ServeHTTP(w, req)
	if w.status != 200 || !strings.Contains(w.body.String(), "boot 1 of server s2") {
		t.Fatalf("%d %q", w.status, w.body.String())
	}
}

type recorder struct {
	header http.Header
	status int
	body   strings.Builder
}

func (r *recorder) Header() http.Header { return r.header }
func (r *recorder) Write(b []byte) (int, error) {
	if r.status == 0 {
		r.status = 200
	}
	return r.body.Write(b)
}
func (r *recorder) WriteHeader(s int) { r.status = s }
