package api

import (
	"cmp"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/keel-cloud/keel/fsm"
)

// os-hypervisors: every compute host is one hypervisor (Keel's node is its
// host). Resources come from the host's registration (capacity) and the
// usage Apply keeps on its record (fsm.Host).
//
// Microversions: 2.28 renders cpu_info as a JSON object (a string before);
// 2.33 pages list and detail (limit, marker, hypervisors_links); 2.53 uses
// uuids for ids, replaces the search and servers routes by the
// hypervisor_hostname_pattern and with_servers query parameters and
// refuses unknown ones; 2.75 always includes "servers" when with_servers
// asked for them; 2.88 drops the resource fields and cpu_info from the
// views, adds "uptime" to detail and show, and removes statistics and
// uptime.
//
// The host's uptime comes from its agent at each request (uptime(1)'s
// line, as Nova's libvirt driver gives it): the uptime route answers 400
// when the host is down or its agent does not answer; the 2.88 "uptime"
// field of show is null then (detail shows null: Keel does not ask every
// host on a listing).

func (s *Server) registerHypervisors() {
	const p = "/compute/v2.1/os-hypervisors"
	for _, r := range []struct {
		path string
		h    HandlerFunc
	}{
		{p, func(c *Call) error { return s.listHypervisors(c, false) }},
		{p + "/detail", func(c *Call) error { return s.listHypervisors(c, true) }},
		{p + "/statistics", s.hypervisorStatistics},
		{p + "/{hypervisor_id}", s.showHypervisor},
		{p + "/{hypervisor_id}/uptime", s.hypervisorUptime},
		{p + "/{hypervisor_hostname_pattern}/search", func(c *Call) error { return s.searchHypervisors(c, false) }},
		{p + "/{hypervisor_hostname_pattern}/servers", func(c *Call) error { return s.searchHypervisors(c, true) }},
	} {
		s.handle(Route{Method: "GET", Path: r.path, Service: ServiceCompute, Policy: Admin, Handle: r.h})
	}
}

// hypervisorHosts returns every compute host by integer id (Nova's order).
func hypervisorHosts(st fsm.Reader) ([]*fsm.Host, error) {
	hosts, err := fsm.ListHosts(st)
	if err != nil {
		return nil, err
	}
	slices.SortFunc(hosts, func(a, b *fsm.Host) int { return cmp.Compare(a.Seq, b.Seq) })
	return hosts, nil
}

// hypervisorID is a hypervisor's id at the microversion: its uuid from
// 2.53, its integer id before.
func hypervisorID(v Microversion, h *fsm.Host) any {
	if v.AtLeast(2, 53) {
		return h.HypervisorID
	}
	return h.Seq
}

func hypervisorIDString(v Microversion, h *fsm.Host) string {
	if v.AtLeast(2, 53) {
		return h.HypervisorID
	}
	return strconv.FormatInt(h.Seq, 10)
}

// hypervisorView renders a host as Nova renders its compute node. servers
// are the host's servers (needed for detail's current_workload); they are
// listed if listServers, and withServers (the query parameter) makes an
// empty list show from 2.75.
func hypervisorView(c *Call, h *fsm.Host, detail bool, servers []*fsm.Server, listServers, withServers bool) map[string]any {
	v := c.Version
	svc := fsm.ServiceOf(h)
	out := map[string]any{
		"id":                  hypervisorID(v, h),
		"hypervisor_hostname": h.Host,
		"state":               "down",
		"status":              "enabled",
	}
	if svc.Alive() {
		out["state"] = "up"
	}
	if svc.Disabled {
		out["status"] = "disabled"
	}
	if detail {
		out["hypervisor_type"] = h.HypervisorType
		out["hypervisor_version"] = h.HypervisorVersion
		out["host_ip"] = opsNullable(h.HostIP)
		svcID := any(svc.Seq)
		if v.AtLeast(2, 53) {
			svcID = svc.ID
		}
		out["service"] = map[string]any{"id": svcID, "host": h.Host, "disabled_reason": opsNullable(svc.DisabledReason)}
		if !v.AtLeast(2, 88) {
			workload := 0
			for _, srv := range servers {
				if srv.TaskState != "" || srv.VMState == fsm.VMBuilding {
					workload++
				}
			}
			free := h.DiskGB - h.DiskGBUsed
			out["vcpus"] = h.VCPUs
			out["memory_mb"] = h.MemoryMB
			out["local_gb"] = h.DiskGB
			out["vcpus_used"] = h.VCPUsUsed
			out["memory_mb_used"] = h.MemoryMBUsed
			out["local_gb_used"] = h.DiskGBUsed
			out["free_ram_mb"] = h.MemoryMB - h.MemoryMBUsed
			out["free_disk_gb"] = free
			out["current_workload"] = workload
			out["running_vms"] = h.RunningVMs
			// Keel cannot see sparse images' real use: the least
			// available disk is what is not claimed.
			out["disk_available_least"] = free
			if v.AtLeast(2, 28) {
				info := map[string]any{}
				if h.CPUInfo != "" {
					if err := json.Unmarshal([]byte(h.CPUInfo), &info); err != nil {
						c.Log.Warn("host registered a cpu_info that is not a JSON object; showing {}", "host", h.Host, "error", err)
						info = map[string]any{}
					}
				}
				out["cpu_info"] = info
			} else {
				out["cpu_info"] = h.CPUInfo
			}
		} else {
			out["uptime"] = nil
		}
	}
	if len(servers) > 0 && listServers {
		list := make([]any, 0, len(servers))
		for _, srv := range servers {
			list = append(list, map[string]any{"name": instanceName(srv), "uuid": srv.ID})
		}
		out["servers"] = list
	} else if withServers && v.AtLeast(2, 75) {
		out["servers"] = []any{}
	}
	return out
}

// hostnameMatcher is SQL's LIKE '%pattern%' (case-insensitive, "_" any
// character), as Nova searches hypervisor hostnames.
func hostnameMatcher(pattern string) *regexp.Regexp {
	var b strings.Builder
	b.WriteString("(?is)")
	for _, r := range pattern {
		if r == '_' {
			b.WriteString(".")
		} else {
			b.WriteString(regexp.QuoteMeta(string(r)))
		}
	}
	return regexp.MustCompile(b.String())
}

func matchingHosts(hosts []*fsm.Host, pattern string) []*fsm.Host {
	re := hostnameMatcher(pattern)
	var out []*fsm.Host
	for _, h := range hosts {
		if re.MatchString(h.Host) {
			out = append(out, h)
		}
	}
	return out
}

// hypervisorServers returns the host's servers, oldest first.
func hypervisorServers(st fsm.Reader, host string) ([]*fsm.Server, error) {
	servers, err := fsm.HostServers(st, host)
	if err != nil {
		return nil, err
	}
	slices.SortFunc(servers, func(a, b *fsm.Server) int {
		return cmp.Or(cmp.Compare(a.CreatedAt, b.CreatedAt), strings.Compare(a.ID, b.ID))
	})
	return servers, nil
}

// listHypervisors is GET /os-hypervisors and /os-hypervisors/detail.
func (s *Server) listHypervisors(c *Call, detail bool) error {
	q := c.R.URL.Query()
	v := c.Version
	if v.AtLeast(2, 53) {
		if err := opsExtraParams(q, "limit", "marker", "hypervisor_hostname_pattern", "with_servers"); err != nil {
			return err
		}
	}
	limit, limitGiven, marker := maxListLimit, false, ""
	paging := v.AtLeast(2, 33)
	if paging {
		var err error
		if limit, limitGiven, err = opsLimit(q); err != nil {
			return err
		}
		marker = q.Get("marker")
	}
	var pattern *string
	withServers := false
	if v.AtLeast(2, 53) {
		if vs, ok := q["hypervisor_hostname_pattern"]; ok {
			p, err := opsQueryString("hypervisor_hostname_pattern", vs, 1, 255, fqdnRE, fqdnPattern)
			if err != nil {
				return err
			}
			pattern = &p
		}
		var err error
		if withServers, err = opsQueryBool(q, "with_servers"); err != nil {
			return err
		}
	}
	st, err := s.readState(c)
	if err != nil {
		return err
	}
	hosts, err := hypervisorHosts(st)
	if err != nil {
		return err
	}
	links := paging
	switch {
	case pattern != nil:
		if limitGiven || marker != "" {
			return badRequest("Paging over hypervisors with the hypervisor_hostname_pattern query parameter is not supported.")
		}
		links = false
		if hosts = matchingHosts(hosts, *pattern); len(hosts) == 0 {
			return notFound("No hypervisor matching '%s' could be found.", *pattern)
		}
	case paging:
		if marker != "" {
			i := slices.IndexFunc(hosts, func(h *fsm.Host) bool { return hypervisorIDString(v, h) == marker })
			if i < 0 {
				return badRequest("marker [%s] not found", marker)
			}
			hosts = hosts[i+1:]
		}
		hosts = hosts[:min(limit, len(hosts))]
	}
	views := make([]any, 0, len(hosts))
	for _, h := range hosts {
		var servers []*fsm.Server
		if withServers || detail && !v.AtLeast(2, 88) {
			if servers, err = hypervisorServers(st, h.Host); err != nil {
				return err
			}
		}
		views = append(views, hypervisorView(c, h, detail, servers, withServers, withServers))
	}
	out := map[string]any{"hypervisors": views}
	if links && opsWantNextLink(limit, len(hosts)) {
		coll := "os-hypervisors"
		if detail {
			coll += "/detail"
		}
		out["hypervisors_links"] = s.opsNextLink(c, coll, hypervisorIDString(v, hosts[len(hosts)-1]))
	}
	return c.JSON(http.StatusOK, out)
}

// opsQueryString validates a single-valued string query parameter.
func opsQueryString(name string, vs []string, min, max int, re *regexp.Regexp, pattern string) (string, error) {
	if len(vs) > 1 {
		return "", flvQueryErr(name, pyRepr(anyList(vs)), pyRepr(anyList(vs))+" is too long")
	}
	v := vs[0]
	if re != nil && !re.MatchString(v) {
		return "", flvQueryErr(name, v, pyRepr(v)+" does not match '"+pattern+"'")
	}
	switch n := flvLen(v); {
	case n < min:
		return "", flvQueryErr(name, v, pyRepr(v)+" is too short")
	case n > max:
		return "", flvQueryErr(name, v, pyRepr(v)+" is too long")
	}
	return v, nil
}

// findHypervisor resolves a hypervisor id of the path: an integer before
// 2.53 (anything else is not found), a uuid from 2.53 (anything else is a
// 400).
func findHypervisor(v Microversion, st fsm.Reader, raw string) (*fsm.Host, error) {
	var want string
	if v.AtLeast(2, 53) {
		u, ok := opsUUID(raw)
		if !ok {
			return nil, badRequest("Invalid uuid %s", raw)
		}
		want = u
	} else {
		n, ok := opsInt(raw)
		if !ok {
			return nil, notFound("Hypervisor with ID '%s' could not be found.", raw)
		}
		want = strconv.FormatInt(n, 10)
	}
	hosts, err := fsm.ListHosts(st)
	if err != nil {
		return nil, err
	}
	for _, h := range hosts {
		if hypervisorIDString(v, h) == want {
			return h, nil
		}
	}
	return nil, notFound("Hypervisor with ID '%s' could not be found.", raw)
}

// showHypervisor is GET /os-hypervisors/{hypervisor_id}[?with_servers=].
func (s *Server) showHypervisor(c *Call) error {
	q := c.R.URL.Query()
	withServers := false
	if c.Version.AtLeast(2, 53) {
		if err := opsExtraParams(q, "with_servers"); err != nil {
			return err
		}
		var err error
		if withServers, err = opsQueryBool(q, "with_servers"); err != nil {
			return err
		}
	}
	st, err := s.readState(c)
	if err != nil {
		return err
	}
	h, err := findHypervisor(c.Version, st, c.Param("hypervisor_id"))
	if err != nil {
		return err
	}
	servers, err := hypervisorServers(st, h.Host)
	if err != nil {
		return err
	}
	view := hypervisorView(c, h, true, servers, withServers, withServers)
	if c.Version.AtLeast(2, 88) {
		// Nova asks the host at each show; null when it cannot answer.
		if up, err := s.agentUptime(c, h); err == nil {
			view["uptime"] = up
		}
	}
	return c.JSON(http.StatusOK, map[string]any{"hypervisor": view})
}

// hypervisorUptime is GET /os-hypervisors/{hypervisor_id}/uptime (2.1–2.87).
func (s *Server) hypervisorUptime(c *Call) error {
	if c.Version.AtLeast(2, 88) {
		return opsVersionNotFound()
	}
	st, err := s.readState(c)
	if err != nil {
		return err
	}
	h, err := findHypervisor(c.Version, st, c.Param("hypervisor_id"))
	if err != nil {
		return err
	}
	if svc := fsm.ServiceOf(h); !svc.Alive() {
		return badRequest("Compute service of %s is unavailable at this time.", h.Host)
	}
	up, err := s.agentUptime(c, h)
	if err != nil {
		return err
	}
	view := hypervisorView(c, h, false, nil, false, false)
	view["uptime"] = up
	return c.JSON(http.StatusOK, map[string]any{"hypervisor": view})
}

// agentUptime asks the host's agent for the machine's uptime, as Nova asks
// the compute service (uptime(1)'s line).
func (s *Server) agentUptime(c *Call, h *fsm.Host) (string, error) {
	unavailable := badRequest("Compute service of %s is unavailable at this time.", h.Host)
	if h.AgentAddr == "" {
		return "", unavailable
	}
	ctx, cancel := context.WithTimeout(c.Context(), 2*time.Second)
	defer cancel()
	req, err := s.node.NewPeerRequest(ctx, http.MethodGet, h.AgentAddr, "/internal/v1/uptime", nil)
	if err != nil {
		return "", err
	}
	resp, err := s.hostClient.Do(req)
	if err != nil {
		c.Log.Warn("hypervisor uptime: the host's agent did not answer", "host", h.Host, "agent", h.AgentAddr, "error", err)
		return "", unavailable
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 4096))
	if err != nil || resp.StatusCode != http.StatusOK {
		c.Log.Warn("hypervisor uptime: the host's agent cannot tell", "host", h.Host, "status", resp.StatusCode, "answer", string(body))
		return "", Errorf(http.StatusNotImplemented, "The requested functionality is not supported. (keel-agent on %s cannot read the host's uptime.)", h.Host)
	}
	return string(body), nil
}

// searchHypervisors is GET /os-hypervisors/{pattern}/search and
// /os-hypervisors/{pattern}/servers (2.1–2.52).
func (s *Server) searchHypervisors(c *Call, withServers bool) error {
	if c.Version.AtLeast(2, 53) {
		return opsVersionNotFound()
	}
	pattern := c.Param("hypervisor_hostname_pattern")
	st, err := s.readState(c)
	if err != nil {
		return err
	}
	hosts, err := hypervisorHosts(st)
	if err != nil {
		return err
	}
	if hosts = matchingHosts(hosts, pattern); len(hosts) == 0 {
		return notFound("No hypervisor matching '%s' could be found.", pattern)
	}
	views := make([]any, 0, len(hosts))
	for _, h := range hosts {
		var servers []*fsm.Server
		if withServers {
			if servers, err = hypervisorServers(st, h.Host); err != nil {
				return err
			}
		}
		views = append(views, hypervisorView(c, h, false, servers, true, false))
	}
	return c.JSON(http.StatusOK, map[string]any{"hypervisors": views})
}

// hypervisorStatistics is GET /os-hypervisors/statistics (2.1–2.87): the
// sums over the enabled compute hosts.
func (s *Server) hypervisorStatistics(c *Call) error {
	if c.Version.AtLeast(2, 88) {
		return opsVersionNotFound()
	}
	st, err := s.readState(c)
	if err != nil {
		return err
	}
	hosts, err := hypervisorHosts(st)
	if err != nil {
		return err
	}
	keys := []string{"count", "vcpus", "memory_mb", "local_gb", "vcpus_used", "memory_mb_used", "local_gb_used",
		"free_ram_mb", "free_disk_gb", "current_workload", "running_vms", "disk_available_least"}
	sum := make(map[string]int, len(keys))
	for _, k := range keys {
		sum[k] = 0
	}
	for _, h := range hosts {
		if h.Disabled {
			continue
		}
		servers, err := fsm.HostServers(st, h.Host)
		if err != nil {
			return err
		}
		for _, srv := range servers {
			if srv.TaskState != "" || srv.VMState == fsm.VMBuilding {
				sum["current_workload"]++
			}
		}
		sum["count"]++
		sum["vcpus"] += h.VCPUs
		sum["memory_mb"] += h.MemoryMB
		sum["local_gb"] += h.DiskGB
		sum["vcpus_used"] += h.VCPUsUsed
		sum["memory_mb_used"] += h.MemoryMBUsed
		sum["local_gb_used"] += h.DiskGBUsed
		sum["free_ram_mb"] += h.MemoryMB - h.MemoryMBUsed
		sum["free_disk_gb"] += h.DiskGB - h.DiskGBUsed
		sum["running_vms"] += h.RunningVMs
		sum["disk_available_least"] += h.DiskGB - h.DiskGBUsed
	}
	return c.JSON(http.StatusOK, map[string]any{"hypervisor_statistics": sum})
}
