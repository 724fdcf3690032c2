package api

import (
	"net/http"

	"github.com/keel-cloud/keel/fsm"
)

// GET /limits: a project's absolute limits and usage, as Nova serves them
// from 2.1 to 2.100 (rate limits are long gone: "rate" is always empty):
//
//   - 2.1: every limit, the nova-network ones (maxTotalFloatingIps,
//     maxSecurityGroups, maxSecurityGroupRules, totalFloatingIpsUsed,
//     totalSecurityGroupsUsed; unlimited and unused) included.
//   - 2.36: the nova-network ones are gone.
//   - 2.39: maxImageMeta is gone (image metadata is Glance's).
//   - 2.57: maxPersonality and maxPersonalitySize are gone.
//   - 2.75: unknown query parameters are a 400.
//
// Any token may read its own project's limits; ?tenant_id= reads another
// project's and needs an admin (os_compute_api:limits:other_project).
func (s *Server) registerLimits() {
	s.handle(Route{Method: "GET", Path: "/compute/v2.1/limits", Service: ServiceCompute, Policy: Authenticated, Handle: s.showLimits})
}

// limitsAbsoluteNames maps quota resources to the absolute limits that show them,
// with the microversion (major 2) that drops each; 0 is never.
var limitsAbsoluteNames = []struct {
	resource, name string
	until          int
}{
	{"ram", "maxTotalRAMSize", 0},
	{"instances", "maxTotalInstances", 0},
	{"cores", "maxTotalCores", 0},
	{"key_pairs", "maxTotalKeypairs", 0},
	{"metadata_items", "maxServerMeta", 0},
	{"metadata_items", "maxImageMeta", 39},
	{"server_groups", "maxServerGroups", 0},
	{"server_group_members", "maxServerGroupMembers", 0},
	{"floating_ips", "maxTotalFloatingIps", 36},
	{"security_groups", "maxSecurityGroups", 36},
	{"security_group_rules", "maxSecurityGroupRules", 36},
	{"injected_files", "maxPersonality", 57},
	{"injected_file_content_bytes", "maxPersonalitySize", 57},
}

// limitsUsedNames maps counted resources to the usage they show.
var limitsUsedNames = []struct {
	resource, name string
	until          int
}{
	{"ram", "totalRAMUsed", 0},
	{"cores", "totalCoresUsed", 0},
	{"instances", "totalInstancesUsed", 0},
	{"server_groups", "totalServerGroupsUsed", 0},
	{"floating_ips", "totalFloatingIpsUsed", 36},
	{"security_groups", "totalSecurityGroupsUsed", 36},
}

// showLimits is GET /limits[?tenant_id=].
func (s *Server) showLimits(c *Call) error {
	q := c.R.URL.Query()
	if err := quotaStrictQuery(c, q, "tenant_id"); err != nil {
		return err
	}
	project := c.Auth.ProjectID
	if q.Has("tenant_id") {
		if !c.Auth.IsAdmin() {
			return forbidden("Policy doesn't allow os_compute_api:limits:other_project to be performed.")
		}
		project = q.Get("tenant_id")
	}
	st, err := s.readState(c)
	if err != nil {
		return err
	}
	// Nova does not check the project: an unknown one has the defaults
	// and no usage.
	limits, err := fsm.ProjectQuotas(st, project)
	if err != nil {
		return err
	}
	used, err := fsm.ProjectUsage(st, project, "")
	if err != nil {
		return err
	}
	shown := func(until int) bool { return until == 0 || !c.Version.AtLeast(2, until) }
	absolute := map[string]int64{}
	for _, l := range limitsAbsoluteNames {
		if shown(l.until) {
			absolute[l.name] = limits[l.resource]
		}
	}
	for _, u := range limitsUsedNames {
		if shown(u.until) {
			absolute[u.name] = used[u.resource]
		}
	}
	return c.JSON(http.StatusOK, map[string]any{"limits": map[string]any{"rate": []any{}, "absolute": absolute}})
}
