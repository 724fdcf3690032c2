package api

import (
	"net/http"
	"net/url"
	"strconv"

	"github.com/keel-cloud/keel/fsm"
)

// os-instance-actions: the actions taken on a server and the events of each.

func (s *Server) registerInstanceActions(route func(method, path string, rule Rule, h HandlerFunc)) {
	route("GET", "/{server_id}/os-instance-actions", ProjectReader, s.listInstanceActions)
	route("GET", "/{server_id}/os-instance-actions/{request_id}", ProjectReader, s.showInstanceAction)
}

// actionServer loads the server whose actions are asked for: from 2.21 a
// deleted server's actions can be read too.
func (s *Server) actionServer(c *Call) (*fsm.Server, error) {
	id := c.Param("server_id")
	if err := s.node.Consistent(c.Context()); err != nil {
		return nil, err
	}
	srv, _, err := fsm.GetServer(s.node.State(), id)
	if err != nil || !c.Auth.CanAccessProject(srv.ProjectID) || srv.Deleted && !c.Version.AtLeast(2, 21) {
		return nil, notFound("Instance %s could not be found.", id)
	}
	return srv, nil
}

func (s *Server) actionView(c *Call, a *fsm.InstanceAction) map[string]any {
	var msg any
	if a.Message != "" {
		msg = a.Message
	}
	v := map[string]any{
		"action": a.Action, "instance_uuid": a.ServerID, "message": msg, "project_id": a.ProjectID,
		"request_id": a.RequestID, "start_time": usageTime(a.StartTime), "user_id": a.UserID,
	}
	if c.Version.AtLeast(2, 58) {
		v["updated_at"] = usageTime(a.UpdatedAt)
	}
	return v
}

func (s *Server) listInstanceActions(c *Call) error {
	srv, err := s.actionServer(c)
	if err != nil {
		return err
	}
	q := c.R.URL.Query()
	limit, marker := -1, ""
	var since, before int64
	if c.Version.AtLeast(2, 58) {
		if v := q.Get("limit"); v != "" {
			n, err := strconv.Atoi(v)
			if err != nil || n < 0 {
				return badRequest("Invalid input for query parameters limit. Value: %s. %s does not match '^[0-9]*$'", v, pyRepr(v))
			}
			limit = n
		}
		marker = q.Get("marker")
		if v := q.Get("changes-since"); v != "" {
			if since, err = parseChangesSince(v); err != nil {
				return badRequest("Invalid input for query parameters changes-since. Value: %s. %s", v, err)
			}
		}
		if v := q.Get("changes-before"); v != "" && c.Version.AtLeast(2, 66) {
			if before, err = parseChangesSince(v); err != nil {
				return badRequest("Invalid input for query parameters changes-before. Value: %s. %s", v, err)
			}
			if since != 0 && before < since {
				return badRequest("The value of changes-since must be less than or equal to changes-before.")
			}
		}
	}
	all, err := fsm.ListInstanceActions(s.node.State(), srv.ID)
	if err != nil {
		return err
	}
	var out []map[string]any
	found := marker == ""
	for _, a := range all {
		if !found {
			found = a.RequestID == marker
			continue
		}
		if since != 0 && a.UpdatedAt < since || before != 0 && a.UpdatedAt > before {
			continue
		}
		if limit >= 0 && len(out) == limit {
			break
		}
		out = append(out, s.actionView(c, a))
	}
	if !found {
		return badRequest("Marker %s could not be found.", marker)
	}
	if out == nil {
		out = []map[string]any{}
	}
	body := map[string]any{"instanceActions": out}
	if limit > 0 && len(out) == limit {
		next := url.Values{}
		for k, v := range q {
			next[k] = v
		}
		next.Set("marker", out[len(out)-1]["request_id"].(string))
		body["links"] = []map[string]string{{"rel": "next",
			"href": s.publicURL(c.R) + "/compute/v2.1/servers/" + srv.ID + "/os-instance-actions?" + next.Encode()}}
	}
	return c.JSON(http.StatusOK, body)
}

func (s *Server) showInstanceAction(c *Call) error {
	srv, err := s.actionServer(c)
	if err != nil {
		return err
	}
	a, err := fsm.GetInstanceAction(s.node.State(), srv.ID, c.Param("request_id"))
	if err != nil {
		return notFound("Action %s not found", c.Param("request_id"))
	}
	v := s.actionView(c, a)
	admin := c.Auth.IsAdmin()
	// Before 2.51 only administrators see the events; from 2.51 everyone
	// does, without tracebacks (and, from 2.62, without the host name).
	if admin || c.Version.AtLeast(2, 51) {
		events := make([]map[string]any, 0, len(a.Events))
		for _, e := range a.Events {
			var result any
			if e.Result != "" {
				result = e.Result
			}
			ev := map[string]any{"event": e.Event, "start_time": usageTime(e.StartTime), "finish_time": usageTime(e.FinishTime), "result": result}
			if admin {
				var tb any
				if e.Traceback != "" {
					tb = e.Traceback
				}
				ev["traceback"] = tb
			}
			if c.Version.AtLeast(2, 62) {
				ev["hostId"] = hostID(srv.ProjectID, e.Host)
				if admin {
					ev["host"] = e.Host
				}
			}
			if c.Version.AtLeast(2, 84) {
				var d any
				if e.Details != "" {
					d = e.Details
				}
				ev["details"] = d
			}
			events = append(events, ev)
		}
		v["events"] = events
	}
	return c.JSON(http.StatusOK, map[string]any{"instanceAction": v})
}
