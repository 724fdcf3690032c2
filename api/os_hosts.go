package api

import (
	"cmp"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/keel-cloud/keel/fsm"
)

// os-hosts, deprecated in Nova at 2.43 (every route answers 404 from
// there). List and show are Nova's; update's "status" enables or disables
// the host's nova-compute service, so the host takes no new servers (Nova
// with libvirt marks the host's resource provider instead and leaves
// os-services as it was; the effect on scheduling is the same);
// "maintenance_mode" and the power actions (startup, shutdown, reboot)
// answer 501 as Nova's libvirt driver does.

func (s *Server) registerOSHosts() {
	const p = "/compute/v2.1/os-hosts"
	s.handle(Route{Method: "GET", Path: p, Service: ServiceCompute, Policy: Admin, Handle: s.listOSHosts})
	s.handle(Route{Method: "GET", Path: p + "/{host_name}", Service: ServiceCompute, Policy: Admin, Handle: s.showOSHost})
	s.handle(Route{Method: "PUT", Path: p + "/{host_name}", Service: ServiceCompute, Policy: Admin, Handle: s.updateOSHost})
	for _, action := range []string{"startup", "shutdown", "reboot"} {
		s.handle(Route{Method: "GET", Path: p + "/{host_name}/" + action, Service: ServiceCompute, Policy: Admin,
			Handle: func(c *Call) error { return s.osHostPowerAction(c) }})
	}
}

// osHostsGone is the 404 of every os-hosts route from 2.43.
func osHostsGone(c *Call) error {
	if c.Version.AtLeast(2, 43) {
		return opsVersionNotFound()
	}
	return nil
}

// osHostCompute returns the compute host of the path, with Nova's 404 for
// a host that is not a compute host.
func (s *Server) osHostCompute(c *Call) (*fsm.State, *fsm.Host, error) {
	st, err := s.readState(c)
	if err != nil {
		return nil, nil, err
	}
	name := c.Param("host_name")
	h, _, err := fsm.GetHost(st, name)
	if err != nil {
		return nil, nil, notFound("Host '%s' is not mapped to any cell", name)
	}
	return st, h, nil
}

// listOSHosts is GET /os-hosts[?zone=]: one entry per enabled service.
func (s *Server) listOSHosts(c *Call) error {
	if err := osHostsGone(c); err != nil {
		return err
	}
	st, err := s.readState(c)
	if err != nil {
		return err
	}
	all, err := fsm.ListServices(st)
	if err != nil {
		return err
	}
	zone := c.R.URL.Query().Get("zone")
	out := []any{}
	for _, svc := range all {
		if svc.Disabled || zone != "" && svc.Zone != zone {
			continue
		}
		out = append(out, map[string]any{"host_name": svc.Host, "service": strings.TrimPrefix(svc.Binary, "nova-"), "zone": svc.Zone})
	}
	return c.JSON(http.StatusOK, map[string]any{"hosts": out})
}

// showOSHost is GET /os-hosts/{host_name}: the host's capacity, its usage,
// the sum of its servers' flavors and that sum per project.
func (s *Server) showOSHost(c *Call) error {
	if err := osHostsGone(c); err != nil {
		return err
	}
	st, h, err := s.osHostCompute(c)
	if err != nil {
		return err
	}
	servers, err := fsm.HostServers(st, h.Host)
	if err != nil {
		return err
	}
	slices.SortFunc(servers, func(a, b *fsm.Server) int {
		return cmp.Or(cmp.Compare(a.CreatedAt, b.CreatedAt), strings.Compare(a.ID, b.ID))
	})
	res := func(project string, cpu, mem, disk int) map[string]any {
		return map[string]any{"resource": map[string]any{"host": h.Host, "project": project, "cpu": cpu, "memory_mb": mem, "disk_gb": disk}}
	}
	type sum struct{ cpu, mem, disk int }
	var total sum
	byProject := map[string]*sum{}
	var order []string
	for _, srv := range servers {
		f := srv.Flavor
		total.cpu += f.VCPUs
		total.mem += f.RAM
		total.disk += f.Disk + f.Ephemeral
		p := byProject[srv.ProjectID]
		if p == nil {
			p = &sum{}
			byProject[srv.ProjectID] = p
			order = append(order, srv.ProjectID)
		}
		p.cpu += f.VCPUs
		p.mem += f.RAM
		p.disk += f.Disk + f.Ephemeral
	}
	out := []any{
		res("(total)", h.VCPUs, h.MemoryMB, h.DiskGB),
		res("(used_now)", h.VCPUsUsed, h.MemoryMBUsed, h.DiskGBUsed),
		res("(used_max)", total.cpu, total.mem, total.disk),
	}
	for _, p := range order {
		out = append(out, res(p, byProject[p].cpu, byProject[p].mem, byProject[p].disk))
	}
	return c.JSON(http.StatusOK, map[string]any{"host": out})
}

// osHostEnum are the values Nova's schema admits for status and
// maintenance_mode.
var osHostEnum = []any{"enable", "disable", "Enable", "Disable", "ENABLE", "DISABLE"}

// updateOSHost is PUT /os-hosts/{host_name} {"status": "enable"|"disable",
// "maintenance_mode": ...}.
func (s *Server) updateOSHost(c *Call) error {
	if err := osHostsGone(c); err != nil {
		return err
	}
	var raw any
	if err := c.Decode(&raw); err != nil {
		return err
	}
	body, err := opsObject(raw)
	if err != nil {
		return err
	}
	for _, k := range []string{"status", "maintenance_mode"} {
		v, ok := body[k]
		if !ok {
			continue
		}
		if _, isStr := v.(string); !isStr {
			return flvFieldErr(k, v, flvTypeMsg(v, "string"))
		}
		if !slices.Contains(osHostEnum, v) {
			return flvFieldErr(k, v, pyRepr(v)+" is not one of "+pyRepr(osHostEnum))
		}
	}
	_, hasStatus := body["status"]
	_, hasMaint := body["maintenance_mode"]
	if !hasStatus && !hasMaint {
		return badRequest("%s is not valid under any of the given schemas", pyRepr(raw))
	}
	if err := opsBodyExtras(body, "status", "maintenance_mode"); err != nil {
		return err
	}
	_, h, err := s.osHostCompute(c)
	if err != nil {
		return err
	}
	if hasMaint {
		// Checked before status is applied: a refused request changes
		// nothing (Nova would have applied status first).
		return Errorf(http.StatusNotImplemented, "The requested functionality is not supported. (Maintenance mode is not supported by Keel's hosts, as by Nova's libvirt driver: disable the host's compute service and evacuate or delete its servers instead.)")
	}
	enable := strings.EqualFold(body["status"].(string), "enable")
	disabled := !enable
	cmd := &fsm.UpdateService{Host: h.Host, Binary: fsm.BinaryCompute, Disabled: &disabled, Now: time.Now().UnixMicro()}
	if err := s.apply(c.Context(), cmd, nil); err != nil {
		return err
	}
	status := "enabled"
	if disabled {
		status = "disabled"
	}
	c.Log.Info("host status set through os-hosts", "host", h.Host, "status", status, "user", c.Auth.UserID)
	return c.JSON(http.StatusOK, map[string]any{"host": h.Host, "status": status})
}

// osHostPowerAction is GET /os-hosts/{host_name}/startup|shutdown|reboot:
// Nova's libvirt driver does not power hosts, and neither does Keel.
func (s *Server) osHostPowerAction(c *Call) error {
	if err := osHostsGone(c); err != nil {
		return err
	}
	if _, _, err := s.osHostCompute(c); err != nil {
		return err
	}
	return Errorf(http.StatusNotImplemented, "The requested functionality is not supported. (Keel does not power hosts on or off, as Nova's libvirt driver does not: use the host's management controller.)")
}
