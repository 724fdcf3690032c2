package api

import "net/http"

// Compute (Nova v2.1) routes. Resources are added by later work; each one in
// its own file, registered here.
func (s *Server) registerCompute() {
	s.handle(Route{Method: "GET", Path: "/compute", Service: ServiceCompute, Policy: Public, Handle: s.computeVersions})
	s.handle(Route{Method: "GET", Path: "/compute/{$}", Service: ServiceCompute, Policy: Public, Handle: s.computeVersions})
	s.handle(Route{Method: "GET", Path: "/compute/v2.1", Service: ServiceCompute, Policy: Public, Handle: s.computeVersion})
	s.handle(Route{Method: "GET", Path: "/compute/v2.1/{$}", Service: ServiceCompute, Policy: Public, Handle: s.computeVersion})
	s.registerFlavors()
	s.registerKeypairs()
	s.registerAvailabilityZones()
	s.registerQuotas()
	s.registerServers()
}

// computeVersionUpdated is the "updated" stamp Nova gives v2.1.
const computeVersionUpdated = "2013-07-23T11:33:21Z"

func (s *Server) computeV21(r *http.Request) map[string]any {
	base := s.publicURL(r) + "/compute/v2.1/"
	return map[string]any{
		"id":          "v2.1",
		"status":      "CURRENT",
		"version":     MaxVersion.String(),
		"min_version": MinVersion.String(),
		"updated":     computeVersionUpdated,
		"links": []map[string]string{
			{"rel": "self", "href": base},
			{"rel": "describedby", "type": "text/html", "href": "http://docs.openstack.org/"},
		},
		"media-types": []map[string]string{
			{"base": "application/json", "type": "application/vnd.openstack.compute+json;version=2.1"},
		},
	}
}

// computeVersions is GET /compute/: the versions this endpoint serves. Keel
// serves only v2.1 (Nova's legacy v2.0 compatibility API is not offered).
func (s *Server) computeVersions(c *Call) error {
	v := s.computeV21(c.R)
	return c.JSON(http.StatusOK, map[string]any{"versions": []map[string]any{{
		"id": v["id"], "status": v["status"], "version": v["version"], "min_version": v["min_version"],
		"updated": v["updated"], "links": []map[string]string{{"rel": "self", "href": s.publicURL(c.R) + "/compute/v2.1/"}},
	}}})
}

// computeVersion is GET /compute/v2.1/.
func (s *Server) computeVersion(c *Call) error {
	return c.JSON(http.StatusOK, map[string]any{"version": s.computeV21(c.R)})
}
