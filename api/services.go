package api

import (
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/keel-cloud/keel/fsm"
	"github.com/keel-cloud/keel/internal/ids"
)

// os-services: Nova's services, as the FSM keeps them (fsm/service.go):
// every compute host is a nova-compute service, every controller a
// nova-scheduler and a nova-conductor. Administrators list them, disable
// and enable them, force them down (the fence an evacuation relies on) and
// delete them.
//
// Microversions: 2.11 adds forced_down to the view and the legacy
// force-down action; 2.53 replaces integer ids by uuids and the legacy
// actions (PUT /os-services/{action} with host and binary in the body) by
// PUT /os-services/{service_id}; 2.75 refuses unknown query parameters.

// registerOperations registers the administrators' compute APIs (issue 7):
// os-services, os-hypervisors, os-hosts, os-simple-tenant-usage and
// os-migrations with servers/{id}/migrations.
func (s *Server) registerOperations() {
	s.registerServices()
	s.registerHypervisors()
	s.registerOSHosts()
	s.registerUsage()
	s.registerMigrations()
}

func (s *Server) registerServices() {
	const p = "/compute/v2.1/os-services"
	s.handle(Route{Method: "GET", Path: p, Service: ServiceCompute, Policy: Admin, Handle: s.listServices})
	s.handle(Route{Method: "PUT", Path: p + "/{service_id}", Service: ServiceCompute, Policy: Admin, Handle: s.updateService})
	s.handle(Route{Method: "DELETE", Path: p + "/{service_id}", Service: ServiceCompute, Policy: Admin, Handle: s.deleteService})
}

// --- helpers shared by the administrator APIs (services, hypervisors,
// hosts, usage, migrations) ---------------------------------------------------

// opsVersionNotFound is Nova's answer to a route the requested microversion
// does not have.
func opsVersionNotFound() *Error { return notFound("The resource could not be found.") }

// opsExtraParams is a query schema's additionalProperties=false: any
// parameter not in allowed is a 400 naming it.
func opsExtraParams(q url.Values, allowed ...string) error {
	var extras []string
	for k := range q {
		if !slices.Contains(allowed, k) {
			extras = append(extras, k)
		}
	}
	if len(extras) > 0 {
		return badRequest("%s", flvAdditional(extras))
	}
	return nil
}

// opsLimit reads Nova's limit parameter (a non-negative integer, at most
// osapi_max_limit): the limit to apply and whether one was given.
func opsLimit(q url.Values) (int, bool, error) {
	vs, ok := q["limit"]
	if !ok {
		return maxListLimit, false, nil
	}
	if len(vs) > 1 {
		return 0, false, flvQueryErr("limit", pyRepr(anyList(vs)), pyRepr(anyList(vs))+" is too long")
	}
	v := vs[0]
	switch {
	case v == "":
		return 0, false, flvQueryErr("limit", v, "'' is too short")
	case strings.Trim(v, "0123456789") != "":
		return 0, false, flvQueryErr("limit", v, pyRepr(v)+" does not match '^[0-9]*$'")
	}
	n, err := strconv.Atoi(v)
	if err != nil || n > maxListLimit {
		n = maxListLimit
	}
	return n, true, nil
}

func anyList(vs []string) []any {
	out := make([]any, len(vs))
	for i, v := range vs {
		out[i] = v
	}
	return out
}

// opsQueryBool reads a parameter_types.boolean query parameter (oslo's
// strict bool_from_string): false when absent.
func opsQueryBool(q url.Values, name string) (bool, error) {
	vs, ok := q[name]
	if !ok {
		return false, nil
	}
	v := vs[len(vs)-1]
	if !slices.Contains(flvBooleanEnum, any(v)) {
		return false, flvQueryErr(name, v, pyRepr(v)+" is not one of "+pyRepr(flvBooleanEnum))
	}
	b, _ := flvPyBool(v)
	return b, nil
}

// opsNextLink is Nova's "next" collection link: the request's query with
// the marker set to the last item's id, under coll (e.g. "os-hypervisors").
func (s *Server) opsNextLink(c *Call, coll, marker string) []map[string]string {
	next := url.Values{}
	for k, vs := range c.R.URL.Query() {
		next[k] = []string{vs[len(vs)-1]}
	}
	next.Set("marker", marker)
	return []map[string]string{{"rel": "next", "href": s.publicURL(c.R) + "/compute/v2.1/" + coll + "?" + next.Encode()}}
}

// opsWantNextLink is Nova's rule for a "next" link: the page is full (as
// many items as the limit asked for, or as osapi_max_limit).
func opsWantNextLink(limit, n int) bool { return limit > 0 && n == limit }

// opsUUID normalizes an id Nova's is_uuid_like accepts (canonical, or 32
// hex digits), lower case and canonical; ok is false for anything else.
func opsUUID(id string) (string, bool) {
	switch {
	case ids.IsUUID(id):
		return strings.ToLower(id), true
	case isDashlessUUID(id):
		l := strings.ToLower(id)
		return l[:8] + "-" + l[8:12] + "-" + l[12:16] + "-" + l[16:20] + "-" + l[20:], true
	}
	return "", false
}

// opsInt reads a decimal integer id as Nova's validate_integer does.
func opsInt(id string) (int64, bool) {
	n, err := strconv.ParseInt(strings.TrimSpace(id), 10, 64)
	return n, err == nil
}

// opsNullable renders "" as null.
func opsNullable(s string) any {
	if s == "" {
		return nil
	}
	return s
}

// opsObject checks that a request body is a JSON object (Nova's "type":
// "object" schema).
func opsObject(raw any) (map[string]any, error) {
	body, ok := raw.(map[string]any)
	if !ok {
		return nil, badRequest("%s is not of type 'object'", pyRepr(raw))
	}
	return body, nil
}

// opsString validates a string property of a body: length in characters
// from min to max and, if re is set, its pattern (shown as pattern).
func opsString(field string, v any, min, max int, re *regexp.Regexp, pattern string) (string, error) {
	str, ok := v.(string)
	if !ok {
		return "", flvFieldErr(field, v, flvTypeMsg(v, "string"))
	}
	// jsonschema's order: pattern, then the lengths.
	if re != nil && !re.MatchString(str) {
		return "", flvFieldErr(field, v, pyRepr(str)+" does not match '"+pattern+"'")
	}
	switch n := flvLen(str); {
	case n < min:
		return "", flvFieldErr(field, v, pyRepr(str)+" is too short")
	case n > max:
		return "", flvFieldErr(field, v, pyRepr(str)+" is too long")
	}
	return str, nil
}

// fqdnRE is Nova's parameter_types.fqdn pattern (host names).
const fqdnPattern = `^[a-zA-Z0-9-._]*$`

var fqdnRE = regexp.MustCompile(fqdnPattern)

// --- views ---------------------------------------------------------------------

// serviceView is one entry of os-services at the request's microversion.
func serviceView(v Microversion, svc fsm.Service) map[string]any {
	out := map[string]any{
		"binary": svc.Binary, "host": svc.Host, "zone": svc.Zone,
		"status": "enabled", "state": "down",
		"updated_at":      usageTime(svc.UpdatedAt),
		"disabled_reason": opsNullable(svc.DisabledReason),
	}
	if svc.Disabled {
		out["status"] = "disabled"
	}
	if svc.Alive() {
		out["state"] = "up"
	}
	if v.AtLeast(2, 53) {
		out["id"] = svc.ID
	} else {
		out["id"] = svc.Seq
	}
	if v.AtLeast(2, 11) {
		out["forced_down"] = svc.ForcedDown
	}
	return out
}

// listServices is GET /os-services[?host=][&binary=].
func (s *Server) listServices(c *Call) error {
	q := c.R.URL.Query()
	if c.Version.AtLeast(2, 75) {
		if err := opsExtraParams(q, "host", "binary"); err != nil {
			return err
		}
	}
	st, err := s.readState(c)
	if err != nil {
		return err
	}
	all, err := fsm.ListServices(st)
	if err != nil {
		return err
	}
	host, binary := q.Get("host"), q.Get("binary")
	out := []any{}
	for _, svc := range all {
		if host != "" && svc.Host != host || binary != "" && svc.Binary != binary {
			continue
		}
		out = append(out, serviceView(c.Version, svc))
	}
	return c.JSON(http.StatusOK, map[string]any{"services": out})
}

// updateService is PUT /os-services/{service_id}: before 2.53 the path
// names a legacy action (enable, disable, disable-log-reason, force-down)
// and the body the host and binary; from 2.53 the path is the service's
// uuid and the body the new status, disabled_reason and forced_down.
func (s *Server) updateService(c *Call) error {
	var raw any
	if err := c.Decode(&raw); err != nil {
		return err
	}
	body, err := opsObject(raw)
	if err != nil {
		return err
	}
	if c.Version.AtLeast(2, 53) {
		return s.updateServiceV253(c, body)
	}
	return s.updateServiceLegacy(c, c.Param("service_id"), body)
}

// updateServiceLegacy is the action form of 2.1–2.52.
func (s *Server) updateServiceLegacy(c *Call, action string, body map[string]any) error {
	allowed := []string{"host", "binary", "disabled_reason"}
	if c.Version.AtLeast(2, 11) {
		allowed = append(allowed, "forced_down")
	}
	var host, binary, reason string
	var err error
	if v, ok := body["host"]; ok {
		if host, err = opsString("host", v, 1, 255, fqdnRE, fqdnPattern); err != nil {
			return err
		}
	}
	if v, ok := body["binary"]; ok {
		if binary, err = opsString("binary", v, 1, 255, nil, ""); err != nil {
			return err
		}
	}
	if v, ok := body["disabled_reason"]; ok {
		if reason, err = opsString("disabled_reason", v, 1, 255, nil, ""); err != nil {
			return err
		}
	}
	if v, ok := body["forced_down"]; ok && c.Version.AtLeast(2, 11) {
		if err := flvCheckBoolean("forced_down", v); err != nil {
			return err
		}
	}
	for _, req := range []string{"host", "binary"} {
		if _, ok := body[req]; !ok {
			return badRequest("'%s' is a required property", req)
		}
	}
	var extras []string
	for k := range body {
		if !slices.Contains(allowed, k) {
			extras = append(extras, k)
		}
	}
	if len(extras) > 0 {
		return badRequest("%s", flvAdditional(extras))
	}

	cmd := &fsm.UpdateService{Host: host, Binary: binary, Now: time.Now().UnixMicro()}
	view := map[string]any{"host": host, "binary": binary}
	yes, no, empty := true, false, ""
	switch action {
	case "enable":
		cmd.Disabled, cmd.DisabledReason = &no, &empty
		view["status"] = "enabled"
	case "disable":
		cmd.Disabled, cmd.DisabledReason = &yes, &empty
		view["status"] = "disabled"
	case "disable-log-reason":
		if _, ok := body["disabled_reason"]; !ok {
			return badRequest("Missing disabled reason field")
		}
		cmd.Disabled, cmd.DisabledReason = &yes, &reason
		view["status"] = "disabled"
		view["disabled_reason"] = reason
	case "force-down":
		if !c.Version.AtLeast(2, 11) {
			return notFound("Unknown action")
		}
		v, ok := body["forced_down"]
		if !ok {
			return badRequest("Missing forced_down field")
		}
		down, _ := flvPyBool(v)
		cmd.ForcedDown = &down
		view["forced_down"] = down
	default:
		return notFound("Unknown action")
	}
	if binary != fsm.BinaryCompute {
		return badRequest("Updating a %s service is not supported. Only nova-compute services can be updated.", binary)
	}
	if err := s.apply(c.Context(), cmd, nil); err != nil {
		return err
	}
	c.Log.Info("service updated", "host", host, "binary", binary, "action", action, "user", c.Auth.UserID)
	return c.JSON(http.StatusOK, map[string]any{"service": view})
}

// updateServiceV253 is PUT /os-services/{service_id} from 2.53.
func (s *Server) updateServiceV253(c *Call, body map[string]any) error {
	var status, reason string
	var err error
	if v, ok := body["status"]; ok {
		str, isStr := v.(string)
		if !isStr {
			return flvFieldErr("status", v, flvTypeMsg(v, "string"))
		}
		if str != "enabled" && str != "disabled" {
			return flvFieldErr("status", v, pyRepr(str)+" is not one of ['enabled', 'disabled']")
		}
		status = str
	}
	if v, ok := body["disabled_reason"]; ok {
		if reason, err = opsString("disabled_reason", v, 1, 255, nil, ""); err != nil {
			return err
		}
	}
	var forced *bool
	if v, ok := body["forced_down"]; ok {
		if err := flvCheckBoolean("forced_down", v); err != nil {
			return err
		}
		b, _ := flvPyBool(v)
		forced = &b
	}
	if err := opsBodyExtras(body, "status", "disabled_reason", "forced_down"); err != nil {
		return err
	}
	raw := c.Param("service_id")
	id, ok := opsUUID(raw)
	if !ok {
		return badRequest("Invalid uuid %s", raw)
	}
	st, err := s.readState(c)
	if err != nil {
		return err
	}
	svc, err := fsm.GetService(st, id)
	if err != nil || svc.ID != id {
		return notFound("Service %s could not be found.", raw)
	}
	if svc.Binary != fsm.BinaryCompute {
		return badRequest("Updating a %s service is not supported. Only nova-compute services can be updated.", svc.Binary)
	}
	cmd := &fsm.UpdateService{ID: svc.ID, Now: time.Now().UnixMicro()}
	switch status {
	case "enabled":
		if reason != "" {
			return badRequest("Specifying 'disabled_reason' with status 'enabled' is invalid.")
		}
		no, empty := false, ""
		cmd.Disabled, cmd.DisabledReason = &no, &empty
	case "disabled":
		yes := true
		cmd.Disabled, cmd.DisabledReason = &yes, &reason
	}
	if forced != nil {
		cmd.ForcedDown = forced
	}
	if status == "" && forced == nil {
		return badRequest("No updates were requested. Fields 'status' or 'forced_down' should be specified.")
	}
	var out fsm.Service
	if err := s.apply(c.Context(), cmd, &out); err != nil {
		return err
	}
	c.Log.Info("service updated", "service", out.ID, "host", out.Host, "disabled", out.Disabled, "forced_down", out.ForcedDown, "user", c.Auth.UserID)
	return c.JSON(http.StatusOK, map[string]any{"service": serviceView(c.Version, out)})
}

// opsBodyExtras is a body schema's additionalProperties=false.
func opsBodyExtras(body map[string]any, allowed ...string) error {
	var extras []string
	for k := range body {
		if !slices.Contains(allowed, k) {
			extras = append(extras, k)
		}
	}
	if len(extras) > 0 {
		return badRequest("%s", flvAdditional(extras))
	}
	return nil
}

// deleteService is DELETE /os-services/{service_id}: an integer id before
// 2.53, a uuid from 2.53. A compute service that hosts servers, or that an
// evacuation is still moving servers away from, is a 409.
func (s *Server) deleteService(c *Call) error {
	raw := c.Param("service_id")
	id := raw
	if c.Version.AtLeast(2, 53) {
		u, ok := opsUUID(raw)
		if !ok {
			return badRequest("Invalid uuid %s", raw)
		}
		id = u
	} else {
		n, ok := opsInt(raw)
		if !ok {
			return flvInvalidInput("id must be an integer")
		}
		id = strconv.FormatInt(n, 10)
	}
	st, err := s.readState(c)
	if err != nil {
		return err
	}
	svc, err := fsm.GetService(st, id)
	if err != nil {
		return notFound("Service %s not found.", raw)
	}
	if err := s.apply(c.Context(), &fsm.DeleteService{ID: svc.ID, Now: time.Now().UnixMicro()}, nil); err != nil {
		if fe, ok := fsm.AsError(err); ok && fe.Kind == fsm.KindNotFound {
			return notFound("Service %s not found.", raw)
		}
		return err
	}
	c.Log.Info("service deleted", "service", svc.ID, "host", svc.Host, "binary", svc.Binary, "user", c.Auth.UserID)
	return c.NoContent(http.StatusNoContent)
}
