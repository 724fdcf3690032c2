package api

import (
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"time"
)

// Identity (Keystone v3 subset) routes. Token issue and validation live in
// identity_tokens.go; projects, users, roles and assignments in their own
// files.
func (s *Server) registerIdentity() {
	s.handle(Route{Method: "GET", Path: "/identity", Service: ServiceIdentity, Policy: Public, Handle: s.identityVersions})
	s.handle(Route{Method: "GET", Path: "/identity/{$}", Service: ServiceIdentity, Policy: Public, Handle: s.identityVersions})
	s.handle(Route{Method: "GET", Path: "/identity/v3", Service: ServiceIdentity, Policy: Public, Handle: s.identityVersion})
	s.handle(Route{Method: "GET", Path: "/identity/v3/{$}", Service: ServiceIdentity, Policy: Public, Handle: s.identityVersion})
	s.registerIdentityTokens()
	s.registerIdentityAdmin()
}

const identityVersionUpdated = "2020-04-07T00:00:00Z"

func (s *Server) identityV3(r *http.Request) map[string]any {
	return map[string]any{
		"id":      "v3.14",
		"status":  "stable",
		"updated": identityVersionUpdated,
		"links":   []map[string]string{{"rel": "self", "href": s.publicURL(r) + "/identity/v3/"}},
		"media-types": []map[string]string{
			{"base": "application/json", "type": "application/vnd.openstack.identity-v3+json"},
		},
	}
}

// identityVersions is GET /identity/: Keystone answers it with 300 Multiple
// Choices and the list of versions.
func (s *Server) identityVersions(c *Call) error {
	return c.JSON(http.StatusMultipleChoices, map[string]any{"versions": map[string]any{"values": []any{s.identityV3(c.R)}}})
}

func (s *Server) identityVersion(c *Call) error {
	return c.JSON(http.StatusOK, map[string]any{"version": s.identityV3(c.R)})
}

// catalog is the service catalog: compute, identity and image, each with
// public, internal and admin endpoints at the public URL (one load balancer
// serves them all). Ids are derived from the URL so every controller gives
// the same catalog.
func (s *Server) catalog(r *http.Request) []map[string]any {
	base := s.publicURL(r)
	svc := func(typ, name, url string) map[string]any {
		var eps []map[string]any
		for _, iface := range []string{"public", "internal", "admin"} {
			eps = append(eps, map[string]any{
				"id": stableID(typ, iface, url), "interface": iface, "region": "RegionOne", "region_id": "RegionOne", "url": url,
			})
		}
		return map[string]any{"id": stableID(typ, url), "type": typ, "name": name, "endpoints": eps}
	}
	return []map[string]any{
		svc("compute", "nova", base+"/compute/v2.1"),
		svc("identity", "keystone", base+"/identity"),
		svc("image", "glance", base+"/image"),
	}
}

func stableID(parts ...string) string {
	h := sha256.New()
	for _, p := range parts {
		h.Write([]byte(p))
		h.Write([]byte{0})
	}
	return hex.EncodeToString(h.Sum(nil))[:32]
}

// keystoneTime formats a time as Keystone does in token bodies.
func keystoneTime(t time.Time) string {
	return t.UTC().Format("2006-01-02T15:04:05.000000Z")
}
