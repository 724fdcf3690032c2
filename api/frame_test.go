package api

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/keel-cloud/keel/cluster"
	"github.com/keel-cloud/keel/fsm"
)

func TestMicroversionNegotiation(t *testing.T) {
	for _, tc := range []struct {
		name    string
		headers map[string]string
		want    string // negotiated version, or "" when an error is expected
		status  int    // error status
	}{
		{"no header", nil, "2.1", 0},
		{"new header", map[string]string{"OpenStack-API-Version": "compute 2.53"}, "2.53", 0},
		{"new header among services", map[string]string{"OpenStack-API-Version": "image 2.5, compute 2.60"}, "2.60", 0},
		{"other service only", map[string]string{"OpenStack-API-Version": "volume 3.10"}, "2.1", 0},
		{"legacy header", map[string]string{"X-OpenStack-Nova-API-Version": "2.20"}, "2.20", 0},
		{"new wins over legacy", map[string]string{"OpenStack-API-Version": "compute 2.30", "X-OpenStack-Nova-API-Version": "2.20"}, "2.30", 0},
		{"latest", map[string]string{"OpenStack-API-Version": "compute latest"}, MaxVersion.String(), 0},
		{"legacy latest", map[string]string{"X-OpenStack-Nova-API-Version": "latest"}, MaxVersion.String(), 0},
		{"max", map[string]string{"OpenStack-API-Version": "compute " + MaxVersion.String()}, MaxVersion.String(), 0},
		{"above max", map[string]string{"OpenStack-API-Version": "compute 2.999"}, "", 406},
		{"below min", map[string]string{"OpenStack-API-Version": "compute 2.0"}, "", 406},
		{"major 3", map[string]string{"X-OpenStack-Nova-API-Version": "3.0"}, "", 406},
		{"garbage", map[string]string{"OpenStack-API-Version": "compute two.one"}, "", 400},
		{"leading zero", map[string]string{"OpenStack-API-Version": "compute 2.01"}, "", 400},
		{"no minor", map[string]string{"OpenStack-API-Version": "compute 2"}, "", 400},
		{"negative", map[string]string{"OpenStack-API-Version": "compute 2.-1"}, "", 400},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := http.Header{}
			for k, v := range tc.headers {
				h.Set(k, v)
			}
			v, err := requestedMicroversion(h)
			if tc.want != "" {
				if err != nil || v.String() != tc.want {
					t.Fatalf("got %v, %v; want %s", v, err, tc.want)
				}
				return
			}
			if err == nil || err.Status != tc.status {
				t.Fatalf("got %v, %v; want HTTP %d", v, err, tc.status)
			}
			if tc.status == 406 && !strings.Contains(err.Message, "is not supported by the API. Minimum is 2.1 and maximum is "+MaxVersion.String()) {
				t.Fatalf("406 message %q is not Nova's", err.Message)
			}
		})
	}
}

func TestFaultMapping(t *testing.T) {
	for _, tc := range []struct {
		err    error
		status int
		key    string
		msg    string
	}{
		{fsm.Errorf(fsm.KindInvalid, "name too long"), 400, "badRequest", "name too long"},
		{fsm.Errorf(fsm.KindNotFound, "server x not found"), 404, "itemNotFound", "server x not found"},
		{fsm.Errorf(fsm.KindConflict, "in use"), 409, "conflictingRequest", "in use"},
		{fsm.Errorf(fsm.KindQuota, "Quota exceeded for instances"), 403, "forbidden", "Quota exceeded"},
		{fmt.Errorf("wrapped: %w", fsm.Errorf(fsm.KindNotFound, "deep")), 404, "itemNotFound", "deep"},
		{cluster.ErrNoLeader, 503, "serviceUnavailable", "no cluster leader"},
		{cluster.ErrOutcomeUnknown, 503, "serviceUnavailable", "may or may not"},
		{context.DeadlineExceeded, 503, "serviceUnavailable", "did not answer in time"},
		{Errorf(405, "nope"), 405, "badMethod", "nope"},
		{Errorf(413, "big"), 413, "overLimit", "big"},
		{Errorf(415, "xml"), 415, "badMediaType", "xml"},
		{Errorf(501, "later"), 501, "notImplemented", "later"},
		{Errorf(406, "version"), 406, "computeFault", "version"},
		{errors.New("disk on fire"), 500, "computeFault", "req-test"},
	} {
		e := faultFor(tc.err, "req-test")
		body := faultBody(ServiceCompute, e)
		inner, ok := body.(map[string]any)[tc.key].(map[string]any)
		if e.Status != tc.status || !ok || inner["code"] != tc.status || !strings.Contains(inner["message"].(string), tc.msg) {
			t.Errorf("%v: got %d %v, want %d under %q containing %q", tc.err, e.Status, body, tc.status, tc.key, tc.msg)
		}
		if tc.status == 500 && strings.Contains(e.Message, "disk on fire") {
			t.Errorf("a 500 leaks the internal error to the client: %q", e.Message)
		}
		kb := faultBody(ServiceIdentity, e).(map[string]any)["error"].(map[string]any)
		if kb["code"] != tc.status || kb["title"] != http.StatusText(tc.status) {
			t.Errorf("%v: Keystone error body %v", tc.err, kb)
		}
	}
}

// TestFrameOverHTTP drives the whole chain on one controller: faults for
// unknown routes and methods, body errors, version headers on every compute
// response, request ids, a panicking handler.
func TestFrameOverHTTP(t *testing.T) {
	ac := newAPICluster(t, 1)
	s := ac.servers[ac.Nodes[0].Cfg.Name]
	// A route whose handler panics, and one that decodes a body.
	s.handle(Route{Method: "POST", Path: "/compute/v2.1/test-panic", Service: ServiceCompute, Policy: Authenticated,
		Handle: func(c *Call) error { panic("boom") }})
	s.handle(Route{Method: "POST", Path: "/compute/v2.1/test-echo", Service: ServiceCompute, Policy: Authenticated,
		Handle: func(c *Call) error {
			var v map[string]any
			if err := c.Decode(&v); err != nil {
				return err
			}
			return c.JSON(200, v)
		}})
	base := ac.url(0)
	tok := login(t, base, "admin", testAdminPassword, projectScope("admin"))
	before, _ := ac.Nodes[0].FSM().Hash()

	for _, tc := range []struct {
		name, method, path string
		body               any
		hdr                []string
		status             int
		key                string
	}{
		{"unknown compute route", "GET", "/compute/v2.1/nothing-here", nil, nil, 404, "itemNotFound"},
		{"unknown identity route", "GET", "/identity/v3/nothing-here", nil, nil, 404, "error"},
		{"wrong method", "DELETE", "/compute/v2.1/", nil, nil, 405, "badMethod"},
		{"malformed JSON", "POST", "/compute/v2.1/test-echo", `{"a": `, nil, 400, "badRequest"},
		{"two documents", "POST", "/compute/v2.1/test-echo", `{"a":1} {"b":2}`, nil, 400, "badRequest"},
		{"empty body", "POST", "/compute/v2.1/test-echo", "", nil, 400, "badRequest"},
		{"too large", "POST", "/compute/v2.1/test-echo", `{"a":"` + strings.Repeat("x", maxBodyBytes) + `"}`, nil, 413, "overLimit"},
		{"wrong media type", "POST", "/compute/v2.1/test-echo", `{}`, []string{"Content-Type", "application/xml"}, 415, "badMediaType"},
		{"version too high", "GET", "/compute/v2.1/", nil, []string{"OpenStack-API-Version", "compute 2.999"}, 406, "computeFault"},
		{"bad version", "GET", "/compute/v2.1/", nil, []string{"OpenStack-API-Version", "compute x"}, 400, "badRequest"},
		{"panic", "POST", "/compute/v2.1/test-panic", `{}`, nil, 500, "computeFault"},
		{"no token", "POST", "/compute/v2.1/test-echo", `{}`, []string{"X-Auth-Token", ""}, 401, "unauthorized"},
		{"bad token", "POST", "/compute/v2.1/test-echo", `{}`, []string{"X-Auth-Token", "gAAAAAbogus"}, 401, "unauthorized"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			token := tok
			hdr := tc.hdr
			if len(hdr) == 2 && hdr[0] == "X-Auth-Token" {
				token, hdr = hdr[1], nil
			}
			r := do(t, tc.method, base+tc.path, token, tc.body, hdr...)
			if r.Status != tc.status {
				t.Fatalf("HTTP %d %s, want %d", r.Status, r.Body, tc.status)
			}
			m := r.json(t)
			f, ok := m[tc.key].(map[string]any)
			if !ok || f["message"] == "" || int(f["code"].(float64)) != tc.status {
				t.Fatalf("body %s lacks %q with code and message", r.Body, tc.key)
			}
			if !strings.HasPrefix(r.Header.Get("X-Openstack-Request-Id"), "req-") {
				t.Fatal("no request id")
			}
			if strings.HasPrefix(tc.path, "/compute") && tc.status != 400 && tc.status != 406 {
				if r.Header.Get("OpenStack-API-Version") == "" || r.Header.Get("X-OpenStack-Nova-API-Version") == "" || len(r.Header.Values("Vary")) == 0 {
					t.Fatalf("compute response without version headers: %v", r.Header)
				}
			}
			if tc.status == 401 && !strings.Contains(r.Header.Get("WWW-Authenticate"), "Keystone uri=") {
				t.Fatal("401 without WWW-Authenticate")
			}
			if tc.status == 405 && r.Header.Get("Allow") == "" {
				t.Fatal("405 without Allow")
			}
		})
	}
	// The process survived the panic and nothing changed state.
	if r := do(t, "GET", base+"/compute/v2.1/", tok, nil, "OpenStack-API-Version", "compute 2.42"); r.Status != 200 ||
		r.Header.Get("OpenStack-API-Version") != "compute 2.42" || r.Header.Get("X-OpenStack-Nova-API-Version") != "2.42" {
		t.Fatalf("after the panic: %d %v", r.Status, r.Header)
	}
	if after, _ := ac.Nodes[0].FSM().Hash(); after != before {
		t.Fatal("failed requests changed the state")
	}
	// Metrics count requests by route and status.
	r := do(t, "GET", base+"/metrics", "", nil)
	if r.Status != 200 || !strings.Contains(string(r.Body), `keel_http_requests_total{code="500",method="POST",route="POST /compute/v2.1/test-panic",service="compute"} 1`) ||
		!strings.Contains(string(r.Body), "keel_raft_applied_index") {
		t.Fatalf("metrics lack the request counter or raft figures:\n%.2000s", r.Body)
	}
}

func TestVersionDocuments(t *testing.T) {
	ac := newAPICluster(t, 1)
	base := ac.url(0)
	r := do(t, "GET", base+"/compute/", "", nil)
	vs := r.json(t)["versions"].([]any)
	if len(vs) != 2 || vs[0].(map[string]any)["id"] != "v2.0" {
		t.Fatalf("GET /compute/ must list v2.0 first (Tempest checks it): %s", r.Body)
	}
	v := vs[1].(map[string]any)
	if r.Status != 200 || v["id"] != "v2.1" || v["min_version"] != "2.1" || v["version"] != MaxVersion.String() || v["status"] != "CURRENT" {
		t.Fatalf("GET /compute/: %d %s", r.Status, r.Body)
	}
	// Every listed version's link is followable.
	for _, x := range vs {
		href := x.(map[string]any)["links"].([]any)[0].(map[string]any)["href"].(string)
		if r := do(t, "GET", href, "", nil); r.Status != 200 || r.json(t)["version"].(map[string]any)["id"] != x.(map[string]any)["id"] {
			t.Fatalf("GET %s: %d %s", href, r.Status, r.Body)
		}
	}
	for _, p := range []string{"/compute/v2.1", "/compute/v2.1/"} {
		r = do(t, "GET", base+p, "", nil)
		v = r.json(t)["version"].(map[string]any)
		links := v["links"].([]any)
		if r.Status != 200 || v["version"] != MaxVersion.String() || links[0].(map[string]any)["href"] != base+"/compute/v2.1/" {
			t.Fatalf("GET %s: %d %s", p, r.Status, r.Body)
		}
	}
	r = do(t, "GET", base+"/identity/", "", nil)
	vals := r.json(t)["versions"].(map[string]any)["values"].([]any)
	if r.Status != http.StatusMultipleChoices || vals[0].(map[string]any)["id"] != "v3.14" {
		t.Fatalf("GET /identity/: %d %s", r.Status, r.Body)
	}
	r = do(t, "GET", base+"/identity/v3/", "", nil)
	if r.Status != 200 || r.json(t)["version"].(map[string]any)["status"] != "stable" {
		t.Fatalf("GET /identity/v3/: %d %s", r.Status, r.Body)
	}
	_ = httptest.NewRecorder
}
