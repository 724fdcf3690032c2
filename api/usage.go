package api

import (
	"cmp"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/keel-cloud/keel/fsm"
)

// os-simple-tenant-usage: what each project's servers used over a period,
// computed as Nova does from their lifetimes: a server counts from its
// launch (launched_at) to its deletion (terminated_at) or the end of the
// period, clipped to the period; servers that never launched count nothing.
// Deleted servers are read from their tombstones, so a server deleted
// during the period still counts for the time it ran.
//
// Microversions: 2.40 pages the servers (limit, marker = a server's uuid,
// *_links); 2.75 refuses unknown query parameters.

func (s *Server) registerUsage() {
	const p = "/compute/v2.1/os-simple-tenant-usage"
	s.handle(Route{Method: "GET", Path: p, Service: ServiceCompute, Policy: Admin, Handle: s.listUsage})
	// Nova's PROJECT_READER_OR_ADMIN on {tenant_id}: the handler decides.
	s.handle(Route{Method: "GET", Path: p + "/{tenant_id}", Service: ServiceCompute, Policy: Authenticated, Handle: s.showUsage})
}

// usagePeriodRE matches the date-times Nova accepts for start and end:
// "%Y-%m-%dT%H:%M:%S", "%Y-%m-%dT%H:%M:%S.%f" and "%Y-%m-%d %H:%M:%S.%f",
// read as UTC.
var usagePeriodRE = regexp.MustCompile(`^(\d{4})-(\d{1,2})-(\d{1,2})([T ])(\d{1,2}):(\d{1,2}):(\d{1,2})(?:\.(\d{1,6}))?$`)

// parseUsageTime parses one of Nova's usage date-times (unix microseconds).
func parseUsageTime(v string) (int64, bool) {
	m := usagePeriodRE.FindStringSubmatch(v)
	if m == nil || m[4] == " " && m[8] == "" {
		return 0, false
	}
	n := make([]int, 6)
	for i := range n {
		n[i], _ = strconv.Atoi(m[i+1+min(i/3, 1)])
	}
	frac := 0
	if m[8] != "" {
		frac, _ = strconv.Atoi(m[8] + strings.Repeat("0", 6-len(m[8])))
	}
	t := time.Date(n[0], time.Month(n[1]), n[2], n[3], n[4], n[5], frac*1000, time.UTC)
	if t.Year() != n[0] || int(t.Month()) != n[1] || t.Day() != n[2] || t.Hour() != n[3] || t.Minute() != n[4] || t.Second() != n[5] {
		return 0, false // out of range (month 13, February 30, ...)
	}
	return t.UnixMicro(), true
}

// usagePeriod reads start and end (each defaulting to now) and clips the
// end to now, as Nova does.
func usagePeriod(q url.Values) (start, stop int64, err error) {
	read := func(name string) (int64, bool, error) {
		for _, v := range q[name] {
			if v == "" {
				continue // a blank value is no value (Python's parse_qs)
			}
			t, ok := parseUsageTime(v)
			if !ok {
				return 0, false, badRequest("Invalid datetime string: Datetime is in invalid format")
			}
			return t, true, nil
		}
		return 0, false, nil
	}
	start, hasStart, err := read("start")
	if err != nil {
		return 0, 0, err
	}
	if !hasStart {
		start = time.Now().UnixMicro()
	}
	stop, hasStop, err := read("end")
	if err != nil {
		return 0, 0, err
	}
	if !hasStop {
		stop = max(time.Now().UnixMicro(), start+1) // "now", read after start's
	}
	if start >= stop {
		return 0, 0, badRequest("Invalid start time. The start time cannot occur after the end time.")
	}
	return start, min(stop, time.Now().UnixMicro()), nil
}

// usageFormat is the format of the usage times: always with microseconds.
func usageFormat(micros int64) string {
	return time.UnixMicro(micros).UTC().Format("2006-01-02T15:04:05.000000")
}

// usageQuery checks the query schema and returns the period and paging.
func usageQuery(c *Call, allowed []string) (start, stop int64, limit int, marker string, paged bool, err error) {
	q := c.R.URL.Query()
	paged = c.Version.AtLeast(2, 40)
	limit = maxListLimit
	if paged {
		if limit, _, err = opsLimit(q); err != nil {
			return
		}
		marker = q.Get("marker")
		allowed = append(allowed, "limit", "marker")
	}
	if c.Version.AtLeast(2, 75) {
		if err = opsExtraParams(q, allowed...); err != nil {
			return
		}
	}
	start, stop, err = usagePeriod(q)
	return
}

// tenantUsages computes the usage of the servers of project ("" every
// project) over [start, stop]: one summary per project (by project id),
// and every server's usage, ordered by project then server id.
func tenantUsages(st fsm.Reader, project string, start, stop int64, detailed bool, limit int, marker string) ([]map[string]any, []map[string]any, error) {
	var list []*fsm.Server
	err := fsm.ListServers(st, fsm.ServerListing{ProjectID: project, IncludeDeleted: true}, func(srv *fsm.Server) bool {
		if srv.LaunchedAt != 0 && srv.LaunchedAt < stop && (srv.TerminatedAt == 0 || srv.TerminatedAt > start) {
			list = append(list, srv)
		}
		return true
	})
	if err != nil {
		return nil, nil, err
	}
	order := func(a, b *fsm.Server) int {
		return cmp.Or(strings.Compare(a.ProjectID, b.ProjectID), strings.Compare(a.ID, b.ID))
	}
	slices.SortFunc(list, order)
	if marker != "" {
		m, _, err := fsm.GetServer(st, marker)
		if err != nil {
			return nil, nil, badRequest("Marker %s could not be found.", marker)
		}
		i, _ := slices.BinarySearchFunc(list, m, order)
		if i < len(list) && list[i].ID == m.ID {
			i++
		}
		list = list[i:]
	}
	list = list[:min(limit, len(list))]

	now := time.Now().UnixMicro()
	var summaries []map[string]any
	byProject := map[string]map[string]any{}
	var all []map[string]any
	for _, srv := range list {
		from, to := max(srv.LaunchedAt, start), stop
		if srv.TerminatedAt != 0 {
			to = min(stop, srv.TerminatedAt)
		}
		hours := float64(to-from) / float64(time.Hour/time.Microsecond)
		f := srv.Flavor
		info := map[string]any{
			"instance_id": srv.ID, "name": srv.Name, "tenant_id": srv.ProjectID, "flavor": f.Name,
			"hours": hours, "memory_mb": f.RAM, "local_gb": f.Disk + f.Ephemeral, "vcpus": f.VCPUs,
			"started_at": usageFormat(srv.LaunchedAt), "ended_at": nil, "state": srv.VMState,
		}
		uptimeTo := now
		if srv.TerminatedAt != 0 {
			info["ended_at"] = usageFormat(srv.TerminatedAt)
			info["state"] = "terminated"
			uptimeTo = srv.TerminatedAt
		}
		info["uptime"] = (uptimeTo - srv.LaunchedAt) / int64(time.Second/time.Microsecond)
		sum := byProject[srv.ProjectID]
		if sum == nil {
			sum = map[string]any{
				"tenant_id": srv.ProjectID, "total_local_gb_usage": 0.0, "total_vcpus_usage": 0.0,
				"total_memory_mb_usage": 0.0, "total_hours": 0.0, "start": usageFormat(start), "stop": usageFormat(stop),
			}
			if detailed {
				sum["server_usages"] = []any{}
			}
			byProject[srv.ProjectID] = sum
			summaries = append(summaries, sum)
		}
		sum["total_local_gb_usage"] = sum["total_local_gb_usage"].(float64) + float64(f.Disk+f.Ephemeral)*hours
		sum["total_vcpus_usage"] = sum["total_vcpus_usage"].(float64) + float64(f.VCPUs)*hours
		sum["total_memory_mb_usage"] = sum["total_memory_mb_usage"].(float64) + float64(f.RAM)*hours
		sum["total_hours"] = sum["total_hours"].(float64) + hours
		if detailed {
			sum["server_usages"] = append(sum["server_usages"].([]any), info)
		}
		all = append(all, info)
	}
	return summaries, all, nil
}

// listUsage is GET /os-simple-tenant-usage?start=&end=[&detailed=1]: every
// project's usage.
func (s *Server) listUsage(c *Call) error {
	start, stop, limit, marker, paged, err := usageQuery(c, []string{"start", "end", "detailed"})
	if err != nil {
		return err
	}
	detailed := false
	if vs := c.R.URL.Query()["detailed"]; len(vs) > 0 {
		detailed = vs[0] == "1"
	}
	st, err := s.readState(c)
	if err != nil {
		return err
	}
	summaries, all, err := tenantUsages(st, "", start, stop, detailed, limit, marker)
	if err != nil {
		return err
	}
	out := map[string]any{"tenant_usages": orEmpty(summaries)}
	if paged && opsWantNextLink(limit, len(all)) {
		out["tenant_usages_links"] = s.opsNextLink(c, "os-simple-tenant-usage", all[len(all)-1]["instance_id"].(string))
	}
	return c.JSON(http.StatusOK, out)
}

func orEmpty(l []map[string]any) []map[string]any {
	if l == nil {
		return []map[string]any{}
	}
	return l
}

// showUsage is GET /os-simple-tenant-usage/{tenant_id}?start=&end=: one
// project's usage, with its servers ({} when it used nothing).
func (s *Server) showUsage(c *Call) error {
	tenant := c.Param("tenant_id")
	if !c.Auth.IsAdmin() && !(c.Auth.ProjectID == tenant && c.Auth.HasRole(fsm.RoleReader)) {
		return forbidden("Only an admin or a reader of project %s may read its usage (os_compute_api:os-simple-tenant-usage:show).", tenant)
	}
	start, stop, limit, marker, paged, err := usageQuery(c, []string{"start", "end"})
	if err != nil {
		return err
	}
	st, err := s.readState(c)
	if err != nil {
		return err
	}
	summaries, all, err := tenantUsages(st, tenant, start, stop, true, limit, marker)
	if err != nil {
		return err
	}
	var usage any = map[string]any{}
	if len(summaries) > 0 {
		usage = summaries[0]
	}
	out := map[string]any{"tenant_usage": usage}
	if paged && opsWantNextLink(limit, len(all)) {
		out["tenant_usage_links"] = s.opsNextLink(c, "os-simple-tenant-usage/"+tenant, all[len(all)-1]["instance_id"].(string))
	}
	return c.JSON(http.StatusOK, out)
}
