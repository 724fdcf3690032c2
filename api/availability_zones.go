package api

import (
	"maps"
	"net/http"
	"slices"
	"time"

	"github.com/hashicorp/serf/serf"

	"github.com/keel-cloud/keel/cluster"
	"github.com/keel-cloud/keel/fsm"
)

// Availability zones (os-availability-zone). Compute hosts will bring their
// zones; until there are any, the default zone "nova" is the one zone and is
// available. The detail view (admins) adds Nova's "internal" zone, where the
// control services live: here every controller, each running the services
// Nova would show there (scheduler and conductor).

const (
	// azDefault is Nova's default_availability_zone.
	azDefault = "nova"
	// azInternal is Nova's internal_service_availability_zone.
	azInternal = "internal"
)

// azControlServices are the Nova services a controller stands for.
var azControlServices = []string{"nova-conductor", "nova-scheduler"}

func (s *Server) registerAvailabilityZones() {
	s.handle(Route{Method: "GET", Path: "/compute/v2.1/os-availability-zone", Service: ServiceCompute, Policy: Authenticated, Handle: s.listAvailabilityZones})
	s.handle(Route{Method: "GET", Path: "/compute/v2.1/os-availability-zone/detail", Service: ServiceCompute, Policy: Admin, Handle: s.listAvailabilityZonesDetail})
}

// listAvailabilityZones is GET /os-availability-zone: the zones users may
// pick, without hosts (the internal zone is hidden).
func (s *Server) listAvailabilityZones(c *Call) error {
	if err := s.node.Consistent(c.Context()); err != nil {
		return err
	}
	zones, err := s.zones(s.node.State())
	if err != nil {
		return err
	}
	out := []any{}
	for _, z := range slices.Sorted(maps.Keys(zones)) {
		out = append(out, map[string]any{"zoneName": z, "zoneState": map[string]any{"available": true}, "hosts": nil})
	}
	return c.JSON(http.StatusOK, map[string]any{"availabilityZoneInfo": out})
}

// zones are the availability zones servers may ask for: the default zone
// and the zones of the compute hosts.
func (s *Server) zones(r fsm.Reader) (map[string]bool, error) {
	hosts, err := fsm.ListHosts(r)
	if err != nil {
		return nil, err
	}
	zones := map[string]bool{azDefault: true}
	for _, h := range hosts {
		zones[h.Zone] = true
	}
	return zones, nil
}

// listAvailabilityZonesDetail is GET /os-availability-zone/detail: every
// zone with its hosts and their services, the internal zone included.
func (s *Server) listAvailabilityZonesDetail(c *Call) error {
	now := time.Now().UTC().Format("2006-01-02T15:04:05.000000")
	hosts := map[string]any{}
	members := s.node.Members(cluster.RoleController)
	if !slices.ContainsFunc(members, func(m serf.Member) bool { return m.Name == s.node.Name() }) {
		members = append(members, serf.Member{Name: s.node.Name(), Status: serf.StatusAlive})
	}
	for _, m := range members {
		if m.Status == serf.StatusLeft {
			continue // removed from the cluster on purpose
		}
		alive := m.Status == serf.StatusAlive
		var updated any // when the controller was last known alive
		if alive {
			updated = now
		}
		services := map[string]any{}
		for _, svc := range azControlServices {
			services[svc] = map[string]any{"available": alive, "active": true, "updated_at": updated}
		}
		hosts[m.Name] = services
	}
	out := []any{map[string]any{"zoneName": azInternal, "zoneState": map[string]any{"available": true}, "hosts": hosts}}
	computes, err := fsm.ListHosts(s.node.State())
	if err != nil {
		return err
	}
	byZone := map[string]map[string]any{azDefault: {}}
	for _, h := range computes {
		if byZone[h.Zone] == nil {
			byZone[h.Zone] = map[string]any{}
		}
		byZone[h.Zone][h.Host] = map[string]any{"nova-compute": map[string]any{
			"available": !h.ForcedDown, "active": !h.Disabled, "updated_at": usageTime(h.UpdatedAt)}}
	}
	for _, z := range slices.Sorted(maps.Keys(byZone)) {
		out = append(out, map[string]any{"zoneName": z, "zoneState": map[string]any{"available": true}, "hosts": byZone[z]})
	}
	return c.JSON(http.StatusOK, map[string]any{"availabilityZoneInfo": out})
}
