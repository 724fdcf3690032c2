package api

import "net/http"

// Compute (Nova v2.1) routes. Resources are added by later work; each one in
// its own file, registered here.
func (s *Server) registerCompute() {
	s.handle(Route{Method: "GET", Path: "/compute", Service: ServiceCompute, Policy: Public, Handle: s.computeVersions})
	s.handle(Route{Method: "GET", Path: "/compute/{$}", Service: ServiceCompute, Policy: Public, Handle: s.computeVersions})
	s.handle(Route{Method: "GET", Path: "/compute/v2.1", Service: ServiceCompute, Policy: Public, Handle: s.computeVersion})
	s.handle(Route{Method: "GET", Path: "/compute/v2.1/{$}", Service: ServiceCompute, Policy: Public, Handle: s.computeVersion})
	s.handle(Route{Method: "GET", Path: "/compute/v2", Service: ServiceCompute, Policy: Public, Handle: s.computeVersion20})
	s.handle(Route{Method: "GET", Path: "/compute/v2/{$}", Service: ServiceCompute, Policy: Public, Handle: s.computeVersion20})
	s.registerFlavors()
	s.registerKeypairs()
	s.registerAvailabilityZones()
	s.registerQuotas()
	s.registerServers()
	s.registerServerGroups()
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

// computeV20 is the version document of the legacy v2.0 API. Nova lists it
// first and clients (Tempest among them) expect it there; Keel serves its
// version document but none of its resources: clients use v2.1.
func (s *Server) computeV20(r *http.Request) map[string]any {
	return map[string]any{
		"id":          "v2.0",
		"status":      "DEPRECATED",
		"version":     "",
		"min_version": "",
		"updated":     "2025-07-04T12:00:00Z",
		"links": []map[string]string{
			{"rel": "self", "href": s.publicURL(r) + "/compute/v2/"},
			{"rel": "describedby", "type": "text/html", "href": "http://docs.openstack.org/"},
		},
		"media-types": []map[string]string{
			{"base": "application/json", "type": "application/vnd.openstack.compute+json;version=2"},
		},
	}
}

// computeVersions is GET /compute/: the versions, v2.0 first as in Nova.
func (s *Server) computeVersions(c *Call) error {
	var out []map[string]any
	for _, v := range []map[string]any{s.computeV20(c.R), s.computeV21(c.R)} {
		self := v["links"].([]map[string]string)[0]
		out = append(out, map[string]any{
			"id": v["id"], "status": v["status"], "version": v["version"], "min_version": v["min_version"],
			"updated": v["updated"], "links": []map[string]string{self},
		})
	}
	return c.JSON(http.StatusOK, map[string]any{"versions": out})
}

// computeVersion20 is GET /compute/v2/.
func (s *Server) computeVersion20(c *Call) error {
	return c.JSON(http.StatusOK, map[string]any{"version": s.computeV20(c.R)})
}

// computeVersion is GET /compute/v2.1/.
func (s *Server) computeVersion(c *Call) error {
	return c.JSON(http.StatusOK, map[string]any{"version": s.computeV21(c.R)})
}
