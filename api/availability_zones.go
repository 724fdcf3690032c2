package api

import (
	"maps"
	"net/http"
	"slices"

	"github.com/keel-cloud/keel/fsm"
)

// Availability zones (os-availability-zone), as Nova derives them from its
// services: a compute host's zone is its aggregates' (an aggregate with
// "availability_zone" metadata), else the zone its agent registered
// (fsm.Host.AvailabilityZone); the controllers' nova-scheduler and
// nova-conductor are in Nova's "internal" zone. A zone is available when
// one of its services is enabled; a zone whose services are all disabled is
// listed as not available, without hosts. Whether services are up does not
// change a zone's availability (Nova's rule): the detail view shows each
// service's own "available" (alive) flag. Users' listing hides the
// internal zone; a cloud without compute hosts has no zone to offer.

// azInternal is Nova's internal_service_availability_zone.
const azInternal = fsm.ControllerZone

func (s *Server) registerAvailabilityZones() {
	s.handle(Route{Method: "GET", Path: "/compute/v2.1/os-availability-zone", Service: ServiceCompute, Policy: Authenticated, Handle: s.listAvailabilityZones})
	s.handle(Route{Method: "GET", Path: "/compute/v2.1/os-availability-zone/detail", Service: ServiceCompute, Policy: Admin, Handle: s.listAvailabilityZonesDetail})
}

// zoneSet is the zones of a list of services, as Nova's
// get_availability_zones splits them.
type zoneSet struct {
	available    []string // sorted: zones with an enabled service
	notAvailable []string // sorted: zones whose services are all disabled
}

func zonesOf(services []fsm.Service) zoneSet {
	on, off := map[string]bool{}, map[string]bool{}
	for _, svc := range services {
		if svc.Disabled {
			off[svc.Zone] = true
		} else {
			on[svc.Zone] = true
		}
	}
	for z := range on {
		delete(off, z)
	}
	return zoneSet{available: slices.Sorted(maps.Keys(on)), notAvailable: slices.Sorted(maps.Keys(off))}
}

// listAvailabilityZones is GET /os-availability-zone: the zones users may
// pick, without hosts (the internal zone is hidden).
func (s *Server) listAvailabilityZones(c *Call) error {
	if err := s.node.Consistent(c.Context()); err != nil {
		return err
	}
	services, err := fsm.ListServices(s.node.State())
	if err != nil {
		return err
	}
	zs := zonesOf(services)
	out := []any{}
	for _, part := range []struct {
		zones     []string
		available bool
	}{{zs.available, true}, {zs.notAvailable, false}} {
		for _, z := range part.zones {
			if z == azInternal {
				continue
			}
			out = append(out, map[string]any{"zoneName": z, "zoneState": map[string]any{"available": part.available}, "hosts": nil})
		}
	}
	return c.JSON(http.StatusOK, map[string]any{"availabilityZoneInfo": out})
}

// zones are the availability zones a server may ask for: the zones of the
// enabled compute services (Nova's get_only_available).
func (s *Server) zones(r fsm.Reader) (map[string]bool, error) {
	hosts, err := fsm.ListHosts(r)
	if err != nil {
		return nil, err
	}
	zones := map[string]bool{}
	for _, h := range hosts {
		if !h.Disabled {
			zones[h.AvailabilityZone()] = true
		}
	}
	return zones, nil
}

// listAvailabilityZonesDetail is GET /os-availability-zone/detail: every
// available zone with the hosts of its enabled services and their state,
// the internal zone included, then the zones with no enabled service.
func (s *Server) listAvailabilityZonesDetail(c *Call) error {
	if err := s.node.Consistent(c.Context()); err != nil {
		return err
	}
	services, err := fsm.ListServices(s.node.State())
	if err != nil {
		return err
	}
	zs := zonesOf(services)
	hosts := map[string]map[string]map[string]any{} // zone → host → binary → state
	for _, svc := range services {
		if svc.Disabled {
			continue // Nova lists the enabled services only
		}
		if hosts[svc.Zone] == nil {
			hosts[svc.Zone] = map[string]map[string]any{}
		}
		if hosts[svc.Zone][svc.Host] == nil {
			hosts[svc.Zone][svc.Host] = map[string]any{}
		}
		hosts[svc.Zone][svc.Host][svc.Binary] = map[string]any{
			"available": svc.Alive(), "active": true, "updated_at": usageTime(svc.UpdatedAt),
		}
	}
	out := []any{}
	for _, z := range zs.available {
		h := hosts[z]
		if h == nil {
			h = map[string]map[string]any{}
		}
		out = append(out, map[string]any{"zoneName": z, "zoneState": map[string]any{"available": true}, "hosts": h})
	}
	for _, z := range zs.notAvailable {
		out = append(out, map[string]any{"zoneName": z, "zoneState": map[string]any{"available": false}, "hosts": nil})
	}
	return c.JSON(http.StatusOK, map[string]any{"availabilityZoneInfo": out})
}
