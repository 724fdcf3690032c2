package api

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/keel-cloud/keel/fsm"
)

// novaTime formats a timestamp as Nova's server documents do.
func novaTime(micros int64) string {
	return time.UnixMicro(micros).UTC().Format("2006-01-02T15:04:05Z")
}

// usageTime is the format of OS-SRV-USG times, instance actions and
// service updates (no zone suffix, microseconds); nil for none.
func usageTime(micros int64) any {
	if micros == 0 {
		return nil
	}
	return time.UnixMicro(micros).UTC().Format("2006-01-02T15:04:05.000000")
}

// hostID is Nova's hostId: an opaque per-project hash of the host.
func hostID(project, host string) string {
	if host == "" {
		return ""
	}
	sum := sha256.Sum224([]byte(project + host))
	return hex.EncodeToString(sum[:])
}

// serverView renders a server as Nova does at the request's microversion.
// detail: the full document (show and /detail); else the index entry.
func (s *Server) serverView(c *Call, srv *fsm.Server, detail bool) map[string]any {
	v := map[string]any{"id": srv.ID, "name": srv.Name, "links": s.serverLinks(c, srv.ID)}
	if !detail {
		return v
	}
	admin := c.Auth.IsAdmin()
	base := s.publicURL(c.R) + "/compute"
	var image any = ""
	if srv.ImageID != "" {
		image = map[string]any{"id": srv.ImageID, "links": []map[string]string{{"rel": "bookmark", "href": base + "/images/" + srv.ImageID}}}
	}
	var flavor any = map[string]any{"id": srv.Flavor.ID, "links": []map[string]string{{"rel": "bookmark", "href": base + "/flavors/" + srv.Flavor.ID}}}
	if c.Version.AtLeast(2, 47) {
		f := map[string]any{"original_name": srv.Flavor.Name, "vcpus": srv.Flavor.VCPUs, "ram": srv.Flavor.RAM,
			"disk": srv.Flavor.Disk, "ephemeral": srv.Flavor.Ephemeral, "swap": srv.Flavor.Swap}
		specs := srv.Flavor.ExtraSpecs
		if specs == nil {
			specs = map[string]string{}
		}
		f["extra_specs"] = specs
		flavor = f
	}
	metadata := srv.Metadata
	if metadata == nil {
		metadata = map[string]string{}
	}
	var keyName any
	if srv.KeyName != "" {
		keyName = srv.KeyName
	}
	v["status"] = srv.Status
	v["tenant_id"] = srv.ProjectID
	v["user_id"] = srv.UserID
	v["metadata"] = metadata
	v["hostId"] = hostID(srv.ProjectID, srv.Host)
	v["image"] = image
	v["flavor"] = flavor
	v["created"] = novaTime(srv.CreatedAt)
	v["updated"] = novaTime(srv.UpdatedAt)
	v["addresses"] = map[string]any{}
	v["accessIPv4"] = srv.AccessIPv4
	v["accessIPv6"] = srv.AccessIPv6
	v["OS-DCF:diskConfig"] = "MANUAL"
	v["OS-EXT-AZ:availability_zone"] = srv.AvailabilityZone
	v["config_drive"] = srv.ConfigDrive
	v["key_name"] = keyName
	v["OS-SRV-USG:launched_at"] = usageTime(srv.LaunchedAt)
	v["OS-SRV-USG:terminated_at"] = usageTime(srv.TerminatedAt)
	v["OS-EXT-STS:vm_state"] = srv.VMState
	var task any
	if srv.TaskState != "" {
		task = srv.TaskState
	}
	v["OS-EXT-STS:task_state"] = task
	v["OS-EXT-STS:power_state"] = srv.PowerState
	v["os-extended-volumes:volumes_attached"] = []any{}
	if srv.Status == fsm.StatusBuild || srv.Status == fsm.StatusActive {
		v["progress"] = 0
	}
	if srv.Fault != nil {
		v["fault"] = map[string]any{"code": srv.Fault.Code, "message": srv.Fault.Message, "created": novaTime(srv.Fault.Created)}
	}
	nullable := func(s string) any {
		if s == "" {
			return nil
		}
		return s
	}
	if admin {
		v["OS-EXT-SRV-ATTR:host"] = nullable(srv.Host)
		v["OS-EXT-SRV-ATTR:hypervisor_hostname"] = nullable(srv.Node)
		v["OS-EXT-SRV-ATTR:instance_name"] = instanceName(srv)
		if c.Version.AtLeast(2, 3) {
			v["OS-EXT-SRV-ATTR:reservation_id"] = srv.ReservationID
			v["OS-EXT-SRV-ATTR:launch_index"] = srv.LaunchIndex
			v["OS-EXT-SRV-ATTR:hostname"] = srv.Hostname
			v["OS-EXT-SRV-ATTR:kernel_id"] = ""
			v["OS-EXT-SRV-ATTR:ramdisk_id"] = ""
			v["OS-EXT-SRV-ATTR:root_device_name"] = nil
			v["OS-EXT-SRV-ATTR:user_data"] = nullable(srv.UserData)
		}
	} else if c.Version.AtLeast(2, 90) {
		v["OS-EXT-SRV-ATTR:hostname"] = srv.Hostname
	}
	if c.Version.AtLeast(2, 9) {
		v["locked"] = srv.Locked
	}
	if c.Version.AtLeast(2, 16) && admin {
		v["host_status"] = s.hostStatusOf(srv.Host)
	}
	if c.Version.AtLeast(2, 19) {
		var d any
		if srv.Description != nil {
			d = *srv.Description
		}
		v["description"] = d
	}
	if c.Version.AtLeast(2, 26) {
		tags := srv.Tags
		if tags == nil {
			tags = []string{}
		}
		v["tags"] = tags
	}
	if c.Version.AtLeast(2, 63) {
		v["trusted_image_certificates"] = nil
	}
	if c.Version.AtLeast(2, 73) {
		v["locked_reason"] = nullable(srv.LockedReason)
	}
	if c.Version.AtLeast(2, 96) {
		v["pinned_availability_zone"] = nullable(srv.PinnedAZ)
	}
	if c.Version.AtLeast(2, 100) {
		hints := srv.SchedulerHints
		if hints == nil {
			hints = map[string]any{}
		}
		v["scheduler_hints"] = hints
	}
	return v
}

// hostStatusOf is Nova's host_status (2.16): UP, DOWN (forced down),
// MAINTENANCE (disabled), UNKNOWN, or "" for a server without a host.
func (s *Server) hostStatusOf(host string) string {
	if host == "" {
		return ""
	}
	h, _, err := fsm.GetHost(s.node.State(), host)
	switch {
	case err != nil:
		return "UNKNOWN"
	case h.ForcedDown:
		return "DOWN"
	case h.Disabled:
		return "MAINTENANCE"
	}
	return "UP"
}

// instanceName is the libvirt domain name Nova would give the server.
func instanceName(srv *fsm.Server) string {
	return "instance-" + strings.ReplaceAll(srv.ID, "-", "")[:8]
}

// serverStatuses are the statuses Nova accepts as a list filter.
var serverStatuses = map[string]bool{
	"ACTIVE": true, "BUILD": true, "DELETED": true, "ERROR": true, "HARD_REBOOT": true, "MIGRATING": true,
	"PASSWORD": true, "PAUSED": true, "REBOOT": true, "REBUILD": true, "RESCUE": true, "RESIZE": true,
	"REVERT_RESIZE": true, "SHELVED": true, "SHELVED_OFFLOADED": true, "SHUTOFF": true, "SOFT_DELETED": true,
	"SUSPENDED": true, "UNKNOWN": true, "VERIFY_RESIZE": true,
}

// maxListLimit is Nova's osapi_max_limit.
const maxListLimit = 1000

// listServers is GET /servers and /servers/detail with Nova's filters,
// sorting and limit/marker pagination.
func (s *Server) listServers(c *Call) error {
	detail := strings.HasSuffix(c.R.URL.Path, "/detail")
	q := c.R.URL.Query()
	admin := c.Auth.IsAdmin()
	if err := s.node.Consistent(c.Context()); err != nil {
		return err
	}
	// As in Nova, project_id / tenant_id filter only an all_tenants
	// listing; without it an administrator lists their own project.
	listing := fsm.ServerListing{ProjectID: c.Auth.ProjectID}
	if admin && truthy(q.Get("all_tenants"), q.Has("all_tenants")) {
		listing.ProjectID = first(q.Get("project_id"), q.Get("tenant_id"))
	}
	var match []func(*fsm.Server) bool
	add := func(f func(*fsm.Server) bool) { match = append(match, f) }

	if v := q.Get("status"); v != "" {
		st := strings.ToUpper(v)
		if !serverStatuses[st] {
			// Nova: an unknown status matches nothing before 2.38 and
			// is a 400 from 2.38 on.
			if !c.Version.AtLeast(2, 38) {
				return c.JSON(http.StatusOK, map[string]any{"servers": []any{}})
			}
			return badRequest("Invalid status value %q", v)
		}
		add(func(srv *fsm.Server) bool { return srv.Status == st })
		if st == "DELETED" {
			listing.IncludeDeleted = true
		}
	}
	var sinceTime, beforeTime int64
	if v := q.Get("changes-since"); v != "" {
		t, err := parseChangesSince(v)
		if err != nil {
			return badRequest("Invalid input for query parameters changes-since. Value: %s. %s", v, err)
		}
		sinceTime = t
		listing.IncludeDeleted = true
		add(func(srv *fsm.Server) bool { return srv.UpdatedAt >= sinceTime })
	}
	if v := q.Get("changes-before"); v != "" {
		if !c.Version.AtLeast(2, 66) {
			return badRequest("Invalid filter field: changes-before.")
		}
		t, err := parseChangesSince(v)
		if err != nil {
			return badRequest("Invalid input for query parameters changes-before. Value: %s. %s", v, err)
		}
		beforeTime = t
		if sinceTime != 0 && beforeTime < sinceTime {
			return badRequest("The value of changes-since must be less than or equal to changes-before.")
		}
		listing.IncludeDeleted = true
		add(func(srv *fsm.Server) bool { return srv.UpdatedAt <= beforeTime })
	}
	if !listing.IncludeDeleted {
		add(func(srv *fsm.Server) bool { return !srv.Deleted })
	}
	if v := q.Get("name"); v != "" {
		re, err := regexp.Compile(v)
		if err != nil {
			re = regexp.MustCompile(regexp.QuoteMeta(v))
		}
		add(func(srv *fsm.Server) bool { return re.MatchString(srv.Name) })
	}
	if v := q.Get("flavor"); v != "" {
		add(func(srv *fsm.Server) bool { return srv.Flavor.ID == refID(v) })
	}
	if v := q.Get("image"); v != "" {
		add(func(srv *fsm.Server) bool { return srv.ImageID == refID(v) })
	}
	if v := q.Get("reservation_id"); v != "" {
		add(func(srv *fsm.Server) bool { return srv.ReservationID == v })
	}
	if admin {
		if v := q.Get("host"); v != "" {
			add(func(srv *fsm.Server) bool { return srv.Host == v })
		}
		if v := q.Get("user_id"); v != "" {
			add(func(srv *fsm.Server) bool { return srv.UserID == v })
		}
	}
	if c.Version.AtLeast(2, 26) {
		tagList := func(k string) []string {
			if v := q.Get(k); v != "" {
				return strings.Split(v, ",")
			}
			return nil
		}
		if all := tagList("tags"); all != nil {
			add(func(srv *fsm.Server) bool { return containsAll(srv.Tags, all) })
		}
		if anyOf := tagList("tags-any"); anyOf != nil {
			add(func(srv *fsm.Server) bool { return containsAny(srv.Tags, anyOf) })
		}
		if not := tagList("not-tags"); not != nil {
			add(func(srv *fsm.Server) bool { return !containsAll(srv.Tags, not) })
		}
		if notAny := tagList("not-tags-any"); notAny != nil {
			add(func(srv *fsm.Server) bool { return !containsAny(srv.Tags, notAny) })
		}
	}
	limit := maxListLimit
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			return badRequest("Invalid input for query parameters limit. Value: %s. It must be a non-negative integer.", v)
		}
		limit = min(n, maxListLimit)
	}
	sortKey, sortDir, err := serverSort(q)
	if err != nil {
		return err
	}

	st := s.node.State()
	marker := q.Get("marker")
	// The default order streams from the index: a page costs what it
	// returns. Other orders (and deleted servers) need the whole listing.
	streaming := sortKey == "created_at" && sortDir == "desc" && !listing.IncludeDeleted
	if streaming && marker != "" {
		m, _, err := fsm.GetServer(st, marker)
		if err != nil || m.Deleted || listing.ProjectID != "" && m.ProjectID != listing.ProjectID {
			return badRequest("marker [%s] not found", marker)
		}
		listing.After = m
	}
	var list []*fsm.Server
	err = fsm.ListServers(st, listing, func(srv *fsm.Server) bool {
		for _, m := range match {
			if !m(srv) {
				return true
			}
		}
		list = append(list, srv)
		return !streaming || len(list) <= limit
	})
	if err != nil {
		return err
	}
	if !streaming {
		slices.SortStableFunc(list, func(a, b *fsm.Server) int {
			r := compareServers(a, b, sortKey)
			if sortDir == "desc" {
				r = -r
			}
			return r
		})
		if marker != "" {
			i := slices.IndexFunc(list, func(srv *fsm.Server) bool { return srv.ID == marker })
			if i < 0 {
				return badRequest("marker [%s] not found", marker)
			}
			list = list[i+1:]
		}
	}
	more := len(list) > limit
	if len(list) > limit {
		list = list[:limit]
	}
	views := make([]any, 0, len(list))
	for _, srv := range list {
		views = append(views, s.serverView(c, srv, detail))
	}
	out := map[string]any{"servers": views}
	if (more || len(list) == limit && limit > 0 && q.Get("limit") != "") && len(list) > 0 {
		next := url.Values{}
		for k, vs := range q {
			if k != "marker" {
				next[k] = vs
			}
		}
		next.Set("limit", strconv.Itoa(limit))
		next.Set("marker", list[len(list)-1].ID)
		path := "/compute/v2.1/servers"
		if detail {
			path += "/detail"
		}
		out["servers_links"] = []map[string]string{{"rel": "next", "href": s.publicURL(c.R) + path + "?" + next.Encode()}}
	}
	return c.JSON(http.StatusOK, out)
}

func serverSort(q url.Values) (string, string, error) {
	key, dir := "created_at", "desc"
	if v := q.Get("sort_key"); v != "" {
		switch v {
		case "created_at", "updated_at", "display_name", "uuid", "launched_at", "vm_state", "task_state",
			"power_state", "availability_zone", "host", "hostname", "key_name", "project_id", "user_id", "instance_type_id":
			key = v
		default:
			return "", "", badRequest("Invalid input for query parameters sort_key. Value: %s. It is not one of the sort keys Nova allows.", v)
		}
	}
	if v := q.Get("sort_dir"); v != "" {
		if v != "asc" && v != "desc" {
			return "", "", badRequest("Invalid input for query parameters sort_dir. Value: %s. It is not 'asc' or 'desc'.", v)
		}
		dir = v
	}
	return key, dir, nil
}

func compareServers(a, b *fsm.Server, key string) int {
	var x, y string
	switch key {
	case "created_at":
		return cmpInt(a.CreatedAt, b.CreatedAt, a.ID, b.ID)
	case "updated_at":
		return cmpInt(a.UpdatedAt, b.UpdatedAt, a.ID, b.ID)
	case "launched_at":
		return cmpInt(a.LaunchedAt, b.LaunchedAt, a.ID, b.ID)
	case "power_state":
		return cmpInt(int64(a.PowerState), int64(b.PowerState), a.ID, b.ID)
	case "display_name":
		x, y = a.Name, b.Name
	case "uuid":
		x, y = a.ID, b.ID
	case "vm_state":
		x, y = a.VMState, b.VMState
	case "task_state":
		x, y = a.TaskState, b.TaskState
	case "availability_zone":
		x, y = a.AvailabilityZone, b.AvailabilityZone
	case "host":
		x, y = a.Host, b.Host
	case "hostname":
		x, y = a.Hostname, b.Hostname
	case "key_name":
		x, y = a.KeyName, b.KeyName
	case "project_id":
		x, y = a.ProjectID, b.ProjectID
	case "user_id":
		x, y = a.UserID, b.UserID
	case "instance_type_id":
		x, y = a.Flavor.ID, b.Flavor.ID
	}
	if r := strings.Compare(x, y); r != 0 {
		return r
	}
	return strings.Compare(a.ID, b.ID)
}

func cmpInt(x, y int64, xid, yid string) int {
	switch {
	case x < y:
		return -1
	case x > y:
		return 1
	}
	return strings.Compare(xid, yid)
}

func containsAll(have, want []string) bool {
	for _, w := range want {
		if !slices.Contains(have, w) {
			return false
		}
	}
	return true
}

func containsAny(have, want []string) bool {
	return slices.ContainsFunc(want, func(w string) bool { return slices.Contains(have, w) })
}

func truthy(v string, present bool) bool {
	switch strings.ToLower(v) {
	case "", "1", "true", "t", "yes", "y", "on":
		return present
	}
	return false
}

func first(vs ...string) string {
	for _, v := range vs {
		if v != "" {
			return v
		}
	}
	return ""
}

// parseChangesSince parses the ISO 8601 forms clients send for changes-since.
func parseChangesSince(v string) (int64, error) {
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04:05", "2006-01-02T15:04:05.999999", "2006-01-02T15:04:05Z0700", "2006-01-02"} {
		if t, err := time.Parse(layout, v); err == nil {
			return t.UnixMicro(), nil
		}
	}
	return 0, fmt.Errorf("it is not an ISO 8601 date-time")
}
