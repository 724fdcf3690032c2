package api

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"testing"
)

// FuzzMicroversionHeader: no header value panics the negotiation, and every
// accepted version is within the served range.
func FuzzMicroversionHeader(f *testing.F) {
	for _, s := range []string{"compute 2.1", "compute latest", "compute 2.100", "image 2.0, compute 2.5", "compute 2.", "compute .1", "compute 99999999999999999999.1", "", "compute", "compute  2.3 "} {
		f.Add(s, "")
		f.Add("", s)
	}
	f.Fuzz(func(t *testing.T, header, legacy string) {
		h := http.Header{}
		h.Set(versionHeader, header)
		h.Set(legacyVersionHeader, legacy)
		v, err := requestedMicroversion(h)
		if err != nil {
			if err.Status != 400 && err.Status != 406 {
				t.Fatalf("status %d", err.Status)
			}
			return
		}
		if v.Less(MinVersion) || MaxVersion.Less(v) {
			t.Fatalf("accepted %v outside [%v, %v]", v, MinVersion, MaxVersion)
		}
	})
}

// FuzzIssueTokenBody sends arbitrary bodies to POST /v3/auth/tokens through
// the whole chain of a real controller: the answer is a well-formed client
// error or a token, never a 500, and the state never changes.
func FuzzIssueTokenBody(f *testing.F) {
	ac := newAPICluster(f, 1)
	s := ac.servers[ac.Nodes[0].Cfg.Name]
	node := ac.Nodes[0]
	good := `{"auth":{"identity":{"methods":["password"],"password":{"user":{"name":"admin","domain":{"id":"default"},"password":"` + testAdminPassword + `"}}},"scope":{"project":{"name":"admin","domain":{"id":"default"}}}}}`
	for _, seed := range []string{
		good, `{}`, `{"auth":null}`, `{"auth":{"identity":{"methods":["token"],"token":{"id":"x"}}}}`,
		`{"auth":{"identity":{"methods":["password"],"password":{"user":{"id":""}}}}}`,
		`{"auth":{"identity":{"methods":["password","token"]}}}`, `[1,2,3]`, `"str"`, `{"auth":{"scope":{"system":{"all":true}}}}`,
		`{"auth":{"identity":{"methods":["password"],"password":{"user":{"name":"admin","password":"x"}}}}}`,
	} {
		f.Add([]byte(seed))
	}
	before, err := node.FSM().Hash()
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		req := httptest.NewRequest("POST", "/identity/v3/auth/tokens", bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		rec := httptest.NewRecorder()
		s.ServeHTTP(rec, req)
		switch rec.Code {
		case 201, 400, 401, 413:
		default:
			t.Fatalf("HTTP %d for %q: %s", rec.Code, body, rec.Body)
		}
		if after, _ := node.FSM().Hash(); after != before {
			t.Fatalf("issuing a token changed the state (body %q)", body)
		}
	})
}
