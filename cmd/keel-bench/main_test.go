package main

import (
	"bytes"
	"context"
	"encoding/json"
	"encoding/xml"
	"errors"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/keel-cloud/keel/bench/fakecloud"
)

func openrc(c *fakecloud.Cloud, extra map[string]string) func(string) string {
	env := map[string]string{
		"OS_AUTH_URL": c.AuthURL(), "OS_USERNAME": "admin", "OS_PASSWORD": c.Password, "OS_PROJECT_NAME": "admin",
		"OS_USER_DOMAIN_NAME": "Default", "OS_PROJECT_DOMAIN_NAME": "Default", "OS_REGION_NAME": "RegionOne",
		"OS_INTERFACE": "public", "OS_IDENTITY_API_VERSION": "3", "OS_AUTH_TYPE": "password",
	}
	for k, v := range extra {
		if v == "" {
			delete(env, k)
		} else {
			env[k] = v
		}
	}
	return func(k string) string { return env[k] }
}

func runCmd(t *testing.T, getenv func(string) string, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var o, e bytes.Buffer
	code = run(context.Background(), args, getenv, &o, &e, false)
	return code, o.String(), e.String()
}

func TestUsageAndEnvironmentErrors(t *testing.T) {
	c := fakecloud.New()
	defer c.Close()
	fast := []string{"--poll", "5ms", "--name-prefix", "kbt-"}
	for _, tc := range []struct {
		name string
		env  map[string]string
		args []string
		code int
		want string
	}{
		{"unknown scenario", nil, []string{"--scenario", "boot"}, exitUsage, `--scenario "boot": want one of boot-and-delete`},
		{"stray argument", nil, []string{"boot-and-delete"}, exitUsage, `unexpected argument "boot-and-delete"`},
		{"negative count", nil, []string{"--count", "-1"}, exitUsage, "--count must not be negative"},
		{"bad network", nil, []string{"--network", "public"}, exitUsage, `--network "public": want none or auto`},
		{"short prefix", nil, []string{"--name-prefix", "k"}, exitUsage, "--name-prefix \"k\""},
		{"actions needs a server per client", nil, []string{"--scenario", "actions", "--concurrency", "4", "--prepare", "2"}, exitUsage,
			"one server per client"},
		{"prepare with a creating scenario", nil, []string{"--prepare", "5"}, exitUsage, "creates its own servers"},
		{"microversion too old for networks none", map[string]string{"OS_COMPUTE_API_VERSION": "2.1"}, nil, exitUsage,
			"OS_COMPUTE_API_VERSION=2.1 is too old for --network none"},
		{"no auth url", map[string]string{"OS_AUTH_URL": ""}, nil, exitError, "OS_AUTH_URL is not set: source your cloud's openrc file (for Keel: eval $(bin/keelctl openrc))"},
		{"no password", map[string]string{"OS_PASSWORD": ""}, nil, exitError, "OS_PASSWORD is not set"},
		{"no project", map[string]string{"OS_PROJECT_NAME": ""}, nil, exitError, "OS_PROJECT_NAME (or OS_PROJECT_ID) is not set"},
		{"token auth", map[string]string{"OS_AUTH_TYPE": "token"}, nil, exitError, "OS_AUTH_TYPE=token is not supported"},
		{"keystone v2", map[string]string{"OS_AUTH_URL": c.URL + "/v2.0"}, nil, exitError, "Keystone v2.0 URL"},
		{"wrong password", map[string]string{"OS_PASSWORD": "nope"}, nil, exitError,
			`refused user "admin" for project "admin" (HTTP 401: The request you have made requires authentication.): check OS_USERNAME, OS_PASSWORD`},
		{"wrong region", map[string]string{"OS_REGION_NAME": "RegionTwo"}, nil, exitError,
			"no compute endpoint with interface public in region RegionTwo (it has: compute public RegionOne"},
		{"unreachable keystone", map[string]string{"OS_AUTH_URL": "http://127.0.0.1:1/v3"}, nil, exitError, "cannot reach Keystone at http://127.0.0.1:1/v3"},
		{"unknown flavor", nil, []string{"--flavor", "m9.huge"}, exitError, `--flavor "m9.huge": no flavor has that id or name (the cloud has: m1.small, m1.tiny)`},
		{"image not active", nil, []string{"--image", "broken"}, exitError, `--image "broken": no active image has that id or name`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, _, stderr := runCmd(t, openrc(c, tc.env), slices.Concat(fast, tc.args)...)
			if code != tc.code || !strings.Contains(stderr, tc.want) {
				t.Errorf("exit %d, want %d; stderr:\n%s\nwant it to contain %q", code, tc.code, stderr, tc.want)
			}
		})
	}
	if n := len(c.ServerNames()); n != 0 {
		t.Errorf("failed starts created %d servers", n)
	}
}

// A whole run through the command: the table on stdout, the progress on
// stderr, --json and --histogram written; some iterations fail: exit 3.
func TestRunWritesTableJSONAndHistogram(t *testing.T) {
	c := fakecloud.New()
	defer c.Close()
	c.Delay = map[string]time.Duration{fakecloud.CallCreate: 10 * time.Millisecond}
	c.Inject = func(call string, n int) *fakecloud.Fault {
		if call == fakecloud.CallCreate && n == 3 {
			return &fakecloud.Fault{Status: 500, Kind: "computeFault", Message: "Unexpected API Error."}
		}
		return nil
	}
	dir := t.TempDir()
	jp, sp := filepath.Join(dir, "r.json"), filepath.Join(dir, "r.svg")
	code, stdout, stderr := runCmd(t, openrc(c, map[string]string{"OS_COMPUTE_API_VERSION": "2.74"}),
		"--scenario", "boot-and-delete", "--count", "6", "--concurrency", "2", "--flavor", "m1.small", "--image", "cirros",
		"--poll", "5ms", "--name-prefix", "kbt-", "--json", jp, "--histogram", sp)
	if code != exitFailures {
		t.Errorf("exit %d, want %d (one iteration failed); stderr:\n%s", code, exitFailures, stderr)
	}
	for _, want := range []string{"scenario  boot-and-delete: 6 iterations (1 failed), concurrency 2",
		"(compute API 2.74)", "flavor m1.small, image cirros, networks none, names kbt-*", "create->ACTIVE",
		"errors by fault:", "1  create          HTTP 500 computeFault: Unexpected API Error."} {
		if !strings.Contains(stdout, want) {
			t.Errorf("stdout lacks %q:\n%s", want, stdout)
		}
	}
	t.Logf("stdout:\n%s\nstderr:\n%s", stdout, stderr)
	if !strings.Contains(stderr, "boot-and-delete: 6/6 iterations") || !strings.Contains(stderr, "1 of 6 iterations failed") {
		t.Errorf("stderr:\n%s", stderr)
	}
	var rep struct {
		Operations []struct{ Name string } `json:"operations"`
	}
	raw, err := os.ReadFile(jp)
	if err != nil || json.Unmarshal(raw, &rep) != nil || len(rep.Operations) == 0 {
		t.Errorf("--json: %v\n%s", err, raw)
	}
	f, err := os.Open(sp)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for d := xml.NewDecoder(f); ; {
		if _, err := d.Token(); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			t.Fatalf("--histogram is not well-formed: %v", err)
		}
	}
	if n := len(c.ServerNames()); n != 0 {
		t.Errorf("%d servers left", n)
	}

	// --json - writes the JSON instead of the table; a clean run exits 0
	c.Inject = nil
	code, stdout, _ = runCmd(t, openrc(c, nil), "--scenario", "show", "--count", "3", "--poll", "5ms", "--name-prefix", "kbt-", "--json", "-", "--quiet")
	var j map[string]any
	if code != exitOK || json.Unmarshal([]byte(stdout), &j) != nil || j["scenario"] != "show" {
		t.Errorf("--json -: exit %d, stdout:\n%s", code, stdout)
	}
}
