package api

import (
	"fmt"
	"maps"
	"net/http"
	"slices"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/keel-cloud/keel/fsm"
	"github.com/keel-cloud/keel/internal/ids"
)

// Host aggregates (os-aggregates), administrators only. The rules (unique
// names, one zone per host, no zone change for hosts with servers, no
// deletion with hosts) are the FSM's (fsm/aggregate.go); here bodies are
// validated as Nova's JSON schemas do, with its messages, and the aggregate
// is rendered per microversion (2.41 adds "uuid"). Ids in URLs are the
// integer ids, as in Nova.

func (s *Server) registerAggregates() {
	const p = "/compute/v2.1/os-aggregates"
	s.handle(Route{Method: "GET", Path: p, Service: ServiceCompute, Policy: Admin, Handle: s.listAggregates})
	s.handle(Route{Method: "POST", Path: p, Service: ServiceCompute, Policy: Admin, Handle: s.createAggregate})
	s.handle(Route{Method: "GET", Path: p + "/{aggregate_id}", Service: ServiceCompute, Policy: Admin, Handle: s.showAggregate})
	s.handle(Route{Method: "PUT", Path: p + "/{aggregate_id}", Service: ServiceCompute, Policy: Admin, Handle: s.updateAggregate})
	s.handle(Route{Method: "DELETE", Path: p + "/{aggregate_id}", Service: ServiceCompute, Policy: Admin, Handle: s.deleteAggregate})
	s.handle(Route{Method: "POST", Path: p + "/{aggregate_id}/action", Service: ServiceCompute, Policy: Admin, Handle: s.aggregateAction})
	s.handle(Route{Method: "POST", Path: p + "/{aggregate_id}/images", Service: ServiceCompute, Policy: Admin, Handle: s.aggregateImages})
}

// aggregateView is Nova's aggregate document. create leaves out hosts and
// metadata, as Nova's create answer does.
func aggregateView(c *Call, a *fsm.Aggregate, create bool) map[string]any {
	v := map[string]any{
		"id":         a.ID,
		"name":       a.Name,
		"created_at": usageTime(a.CreatedAt),
		"updated_at": usageTime(a.UpdatedAt),
		"deleted":    false, // Nova deletes aggregates for good
		"deleted_at": nil,
	}
	if z := a.AvailabilityZone(); z != "" {
		v["availability_zone"] = z
	} else {
		v["availability_zone"] = nil
	}
	if !create {
		hosts := a.Hosts
		if hosts == nil {
			hosts = []string{}
		}
		meta := a.Metadata
		if meta == nil {
			meta = map[string]string{}
		}
		v["hosts"], v["metadata"] = hosts, meta
	}
	if c.Version.AtLeast(2, 41) {
		v["uuid"] = a.UUID
	}
	return v
}

// aggregateID is Nova's validate_integer of the {aggregate_id} parameter:
// a 400 when it is not an integer; an integer no aggregate can have is a
// 404.
func aggregateID(c *Call) (int64, error) {
	raw := c.Param("aggregate_id")
	n, ok := flvPyInt(raw)
	if !ok {
		return 0, flvInvalidInput("id must be an integer")
	}
	if !n.IsInt64() {
		return 0, notFound("Aggregate %s could not be found.", raw)
	}
	return n.Int64(), nil
}

func (s *Server) listAggregates(c *Call) error {
	if err := s.node.Consistent(c.Context()); err != nil {
		return err
	}
	all, err := fsm.ListAggregates(s.node.State())
	if err != nil {
		return err
	}
	out := make([]any, 0, len(all))
	for _, a := range all {
		out = append(out, aggregateView(c, a, false))
	}
	return c.JSON(http.StatusOK, map[string]any{"aggregates": out})
}

func (s *Server) showAggregate(c *Call) error {
	id, err := aggregateID(c)
	if err != nil {
		return err
	}
	if err := s.node.Consistent(c.Context()); err != nil {
		return err
	}
	a, _, err := fsm.GetAggregate(s.node.State(), id)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, map[string]any{"aggregate": aggregateView(c, a, false)})
}

// createAggregate is POST /os-aggregates (200, as Nova answers).
func (s *Server) createAggregate(c *Call) error {
	var body any
	if err := c.Decode(&body); err != nil {
		return err
	}
	agg, err := aggSchemaObject(body, "aggregate")
	if err != nil {
		return err
	}
	cmd := &fsm.CreateAggregate{UUID: ids.UUID(), Now: time.Now().UnixMicro()}
	if v, ok := agg["name"]; ok {
		if cmd.Name, err = aggName(v, false); err != nil {
			return err
		}
	}
	if v, ok := agg["availability_zone"]; ok {
		z, err := aggZone(v)
		if err != nil {
			return err
		}
		if z != nil {
			cmd.AvailabilityZone = *z
		}
	}
	if _, ok := agg["name"]; !ok {
		return flvFieldErr("aggregate", agg, "'name' is a required property")
	}
	if err := aggNoExtra("aggregate", agg, "name", "availability_zone"); err != nil {
		return err
	}
	if err := aggTopExtra(body, "aggregate"); err != nil {
		return err
	}
	var out fsm.Aggregate
	if err := s.apply(c.Context(), cmd, &out); err != nil {
		return err
	}
	return c.JSON(http.StatusOK, map[string]any{"aggregate": aggregateView(c, &out, true)})
}

// updateAggregate is PUT /os-aggregates/{id}: name and/or zone.
func (s *Server) updateAggregate(c *Call) error {
	var body any
	if err := c.Decode(&body); err != nil {
		return err
	}
	agg, err := aggSchemaObject(body, "aggregate")
	if err != nil {
		return err
	}
	cmd := &fsm.UpdateAggregate{Now: time.Now().UnixMicro()}
	if v, ok := agg["name"]; ok {
		n, err := aggName(v, true)
		if err != nil {
			return err
		}
		n = strings.TrimSpace(n) // Nova's normalize_name
		cmd.Name = &n
	}
	if v, ok := agg["availability_zone"]; ok {
		z, err := aggZone(v)
		if err != nil {
			return err
		}
		if z == nil {
			z = new(string) // null: the FSM refuses an empty zone, as Nova does
		}
		cmd.AvailabilityZone = z
	}
	if err := aggNoExtra("aggregate", agg, "name", "availability_zone"); err != nil {
		return err
	}
	if cmd.Name == nil && cmd.AvailabilityZone == nil {
		return flvFieldErr("aggregate", agg, pyRepr(agg)+" is not valid under any of the given schemas")
	}
	if err := aggTopExtra(body, "aggregate"); err != nil {
		return err
	}
	if cmd.ID, err = aggregateID(c); err != nil {
		return err
	}
	var out fsm.Aggregate
	if err := s.apply(c.Context(), cmd, &out); err != nil {
		return err
	}
	return c.JSON(http.StatusOK, map[string]any{"aggregate": aggregateView(c, &out, false)})
}

// deleteAggregate is DELETE /os-aggregates/{id}: 200 with no body, as Nova
// answers.
func (s *Server) deleteAggregate(c *Call) error {
	id, err := aggregateID(c)
	if err != nil {
		return err
	}
	if err := s.apply(c.Context(), &fsm.DeleteAggregate{ID: id}, nil); err != nil {
		return err
	}
	return c.NoContent(http.StatusOK)
}

// aggregateAction is POST /os-aggregates/{id}/action: add_host,
// remove_host or set_metadata.
func (s *Server) aggregateAction(c *Call) error {
	var body any
	if err := c.Decode(&body); err != nil {
		return err
	}
	top, ok := body.(map[string]any)
	if !ok || len(top) != 1 {
		return badRequest("Malformed request body")
	}
	var name string
	for k := range top {
		name = k
	}
	now := time.Now().UnixMicro()
	var cmd fsm.Command
	switch name {
	case "add_host", "remove_host":
		arg, err := aggSchemaObject(body, name)
		if err != nil {
			return err
		}
		host, err := aggHost(arg, name)
		if err != nil {
			return err
		}
		id, err := aggregateID(c)
		if err != nil {
			return err
		}
		if name == "add_host" {
			cmd = &fsm.AddAggregateHost{ID: id, Host: host, Now: now}
		} else {
			cmd = &fsm.RemoveAggregateHost{ID: id, Host: host, Now: now}
		}
	case "set_metadata":
		arg, err := aggSchemaObject(body, name)
		if err != nil {
			return err
		}
		meta, err := aggMetadata(arg)
		if err != nil {
			return err
		}
		id, err := aggregateID(c)
		if err != nil {
			return err
		}
		cmd = &fsm.SetAggregateMetadata{ID: id, Metadata: meta, Now: now}
	default:
		return badRequest("There is no such action: %s", name)
	}
	var out fsm.Aggregate
	if err := s.apply(c.Context(), cmd, &out); err != nil {
		return err
	}
	return c.JSON(http.StatusOK, map[string]any{"aggregate": aggregateView(c, &out, false)})
}

// aggregateImages is POST /os-aggregates/{id}/images (2.81): caching
// images on the aggregate's hosts ahead of boots. Keel's agents fetch an
// image when a server needs it and have no pre-caching task yet, so a
// valid request for an existing aggregate is an honest 501.
func (s *Server) aggregateImages(c *Call) error {
	if !c.Version.AtLeast(2, 81) {
		return notFound("The resource could not be found.")
	}
	var body any
	if err := c.Decode(&body); err != nil {
		return err
	}
	top, ok := body.(map[string]any)
	if !ok {
		return badRequest("%s", flvTypeMsg(body, "object"))
	}
	cache, has := top["cache"]
	if has {
		list, ok := cache.([]any)
		switch {
		case !ok:
			return flvFieldErr("cache", cache, flvTypeMsg(cache, "array"))
		case len(list) == 0:
			return flvFieldErr("cache", cache, "[] is too short")
		}
		seen := map[string]bool{}
		for _, it := range list {
			m, ok := it.(map[string]any)
			if !ok {
				return flvFieldErr("cache", it, flvTypeMsg(it, "object"))
			}
			id, ok := m["id"].(string)
			if !ok {
				return flvFieldErr("cache", it, "'id' is a required property")
			}
			if err := aggNoExtra("cache", m, "id"); err != nil {
				return err
			}
			if seen[id] {
				return badRequest("Duplicate images in request")
			}
			seen[id] = true
		}
	} else {
		return badRequest("'cache' is a required property")
	}
	if err := aggTopExtra(body, "cache"); err != nil {
		return err
	}
	id, err := aggregateID(c)
	if err != nil {
		return err
	}
	if err := s.node.Consistent(c.Context()); err != nil {
		return err
	}
	if _, _, err := fsm.GetAggregate(s.node.State(), id); err != nil {
		return err
	}
	return Errorf(http.StatusNotImplemented, "Caching images on the hosts of an aggregate (POST /os-aggregates/{id}/images, microversion 2.81) is not offered by this cloud yet: hosts fetch an image when a server first needs it.")
}

// --- Nova's schemas -----------------------------------------------------------

// aggSchemaObject returns body[key] as an object: body must be an object
// and key a member holding an object (the other members are checked by
// aggTopExtra once the object's own errors, which jsonschema reports
// first, are known).
func aggSchemaObject(body any, key string) (map[string]any, error) {
	top, ok := body.(map[string]any)
	if !ok {
		return nil, badRequest("%s", flvTypeMsg(body, "object"))
	}
	raw, has := top[key]
	if !has {
		return nil, badRequest("'%s' is a required property", key)
	}
	m, ok := raw.(map[string]any)
	if !ok {
		return nil, flvFieldErr(key, raw, flvTypeMsg(raw, "object"))
	}
	return m, nil
}

// aggTopExtra refuses members of the body other than key.
func aggTopExtra(body any, key string) error {
	if extras := flvExtras(body.(map[string]any), key); len(extras) > 0 {
		return badRequest("%s", flvAdditional(extras))
	}
	return nil
}

// aggNoExtra refuses members of the object at field other than allowed.
func aggNoExtra(field string, m map[string]any, allowed ...string) error {
	if extras := flvExtras(m, allowed...); len(extras) > 0 {
		return flvFieldErr(field, m, flvAdditional(extras))
	}
	return nil
}

// aggName validates an aggregate name: Nova's "name" format on create,
// "name_with_leading_trailing_spaces" on update.
func aggName(v any, spaces bool) (string, error) {
	s, ok := v.(string)
	switch {
	case !ok:
		return "", flvFieldErr("name", v, flvTypeMsg(v, "string"))
	case spaces && !aggNameWithSpacesOK(s):
		return "", badRequest("An invalid 'name' value was provided. The name must be: printable characters with at least one non space character")
	case !spaces && !flvNameOK(s):
		return "", badRequest(flvNameErr)
	case s == "":
		return "", flvFieldErr("name", v, "'' is too short")
	case flvLen(s) > fsm.AggregateMaxNameLen:
		return "", flvFieldErr("name", v, pyRepr(s)+" is too long")
	}
	return s, nil
}

// aggNameWithSpacesOK is Nova's name_with_leading_trailing_spaces format:
// printable characters, at least one of them not a space.
func aggNameWithSpacesOK(s string) bool {
	return flvTextOK(s) && strings.IndexFunc(s, func(r rune) bool { return !unicode.Is(unicode.Zs, r) }) >= 0
}

// aggZone validates availability_zone: null, or Nova's az_name (printable
// characters but ':', not starting or ending with whitespace, 1 to 255).
// jsonschema's oneOf reports any failure the same way.
func aggZone(v any) (*string, error) {
	if v == nil {
		return nil, nil
	}
	s, ok := v.(string)
	if !ok || s == "" || flvLen(s) > 255 || !flvNameOK(s) || strings.Contains(s, ":") {
		return nil, flvFieldErr("availability_zone", v, pyRepr(v)+" is not valid under any of the given schemas")
	}
	return &s, nil
}

// aggHostPattern is Nova's fqdn pattern.
const aggHostPattern = "^[a-zA-Z0-9-._]*$"

// aggHost validates the {"host": fqdn} argument of add_host/remove_host.
func aggHost(arg map[string]any, action string) (string, error) {
	if v, ok := arg["host"]; ok {
		s, ok := v.(string)
		switch {
		case !ok:
			return "", flvFieldErr("host", v, flvTypeMsg(v, "string"))
		case strings.IndexFunc(s, func(r rune) bool {
			return !(r < utf8.RuneSelf && (r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '.' || r == '_'))
		}) >= 0:
			return "", flvFieldErr("host", v, pyRepr(s)+" does not match '"+aggHostPattern+"'")
		case s == "":
			return "", flvFieldErr("host", v, "'' is too short")
		case len(s) > 255:
			return "", flvFieldErr("host", v, pyRepr(s)+" is too long")
		}
	} else {
		return "", flvFieldErr(action, arg, "'host' is a required property")
	}
	if err := aggNoExtra(action, arg, "host"); err != nil {
		return "", err
	}
	return arg["host"].(string), nil
}

// aggMetadata validates set_metadata's {"metadata": {...}}: keys of Nova's
// metadata pattern, values strings of at most 255 characters or null.
func aggMetadata(arg map[string]any) (map[string]*string, error) {
	raw, ok := arg["metadata"]
	if !ok {
		return nil, flvFieldErr("set_metadata", arg, "'metadata' is a required property")
	}
	m, ok := raw.(map[string]any)
	if !ok {
		return nil, flvFieldErr("metadata", raw, flvTypeMsg(raw, "object"))
	}
	out := map[string]*string{}
	var bad []string
	for _, k := range slices.Sorted(maps.Keys(m)) {
		if !aggMetaKeyOK(k) {
			bad = append(bad, k)
			continue
		}
		switch v := m[k].(type) {
		case nil:
			out[k] = nil
		case string:
			if flvLen(v) > fsm.AggregateMaxValueLen {
				return nil, flvFieldErr(k, v, pyRepr(v)+" is too long")
			}
			out[k] = &v
		default:
			return nil, flvFieldErr(k, v, flvTypeMsg(v, "string", "null"))
		}
	}
	if len(bad) > 0 {
		q := make([]string, len(bad))
		for i, k := range bad {
			q[i] = pyRepr(k)
		}
		verb := "does"
		if len(bad) > 1 {
			verb = "do"
		}
		return nil, flvFieldErr("metadata", m, fmt.Sprintf("%s %s not match any of the regexes: '%s'", strings.Join(q, ", "), verb, aggMetaKeyPattern))
	}
	if err := aggNoExtra("set_metadata", arg, "metadata"); err != nil {
		return nil, err
	}
	return out, nil
}

// aggMetaKeyPattern is Nova's metadata key pattern.
const aggMetaKeyPattern = "^[a-zA-Z0-9-_:. ]{1,255}$"

func aggMetaKeyOK(k string) bool {
	if k == "" || len(k) > 255 {
		return false
	}
	for i := 0; i < len(k); i++ {
		b := k[i]
		if !(b >= 'a' && b <= 'z' || b >= 'A' && b <= 'Z' || b >= '0' && b <= '9' || strings.IndexByte("-_:. ", b) >= 0) {
			return false
		}
	}
	return true
}
