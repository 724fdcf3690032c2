package api

import (
	"encoding/json"
	"net/http"
	"strings"
	"time"

	"github.com/keel-cloud/keel/fsm"
	"github.com/keel-cloud/keel/internal/ids"
)

// Evacuation: POST /servers/{id}/action {"evacuate": {...}}, admin only.
// Nova's microversion differences:
//
//   - 2.1–2.13: onSharedStorage is required; the answer is 200
//     {"adminPass": ...} (the password given or a generated one; Keel does
//     not inject it into the guest, as with create).
//   - 2.14: onSharedStorage is gone; the answer is 200 with no body.
//   - 2.29: force (with a host: the scheduler's filters are skipped for it).
//   - 2.68: force is gone again.
//   - 2.95: the server ends SHUTOFF at the destination whatever its state.
//
// The rules (the host must be down: forced down, or down past its fencing
// window and the margin) are the FSM's (fsm.EvacuateServer); a host that is
// up is a 409, as this project's issue asks (Nova answers 400 there).

// DefaultEvacuateMargin is the safety margin added to a host's fencing
// window before a host that gossip reports down may be evacuated.
const DefaultEvacuateMargin = 10 * time.Second

func (s *Server) evacuate(c *Call, srv *fsm.Server, arg json.RawMessage) error {
	if !c.Auth.IsAdmin() {
		return Errorf(http.StatusForbidden, "Policy doesn't allow os_compute_api:os-evacuate to be performed.")
	}
	if len(arg) == 0 || string(arg) == "null" || !strings.HasPrefix(strings.TrimSpace(string(arg)), "{") {
		return badRequest("Invalid input for field/attribute evacuate. Value: %s. %s is not of type 'object'", arg, arg)
	}
	var body map[string]any
	dec := json.NewDecoder(strings.NewReader(string(arg)))
	dec.UseNumber()
	if err := dec.Decode(&body); err != nil {
		return badRequest("Malformed request body: %v", err)
	}
	allowed := map[string]bool{"host": true, "adminPass": true}
	switch v := c.Version; {
	case !v.AtLeast(2, 14):
		allowed["onSharedStorage"] = true
	case v.AtLeast(2, 29) && !v.AtLeast(2, 68):
		allowed["force"] = true
	}
	for k := range body {
		if !allowed[k] {
			return badRequest("Invalid input for field/attribute evacuate. Value: %s. Additional properties are not allowed ('%s' was unexpected)", arg, k)
		}
	}
	cmd := &fsm.EvacuateServer{ID: srv.ID, MarginMS: s.evacuateMargin().Milliseconds(), MigrationID: ids.UUID(),
		RequestID: c.RequestID, UserID: c.Auth.UserID, ProjectID: c.Auth.ProjectID, Now: time.Now().UnixMicro(),
		Stop: c.Version.AtLeast(2, 95)}
	if v, ok := body["host"]; ok {
		h, isStr := v.(string)
		if !isStr || h == "" || len(h) > 255 || strings.ContainsAny(h, " \t\r\n") {
			return badRequest("Invalid input for field/attribute host. Value: %v. It must be a host name of 1 to 255 characters without spaces", pyRepr(v))
		}
		cmd.Host = h
	}
	onShared := false
	if !c.Version.AtLeast(2, 14) {
		v, ok := body["onSharedStorage"]
		if !ok {
			return badRequest("Invalid input for field/attribute evacuate. Value: %s. 'onSharedStorage' is a required property", arg)
		}
		b, err := novaBool("onSharedStorage", v)
		if err != nil {
			return err
		}
		onShared = b
	}
	password, hasPass := body["adminPass"]
	if hasPass {
		if _, ok := password.(string); !ok {
			return badRequest("Invalid input for field/attribute adminPass. Value: %v. %v is not of type 'string'", pyRepr(password), pyRepr(password))
		}
		if onShared {
			return badRequest("admin password can't be changed on existing disk")
		}
	}
	if v, ok := body["force"]; ok {
		b, err := novaBool("force", v)
		if err != nil {
			return err
		}
		if b && cmd.Host == "" {
			return badRequest("Can't force to a non-provided destination")
		}
		cmd.Force = b
	}
	if cmd.Host != "" {
		if _, _, err := fsm.GetHost(s.node.State(), cmd.Host); err != nil {
			return notFound("Compute host %s not found.", cmd.Host)
		}
		if cmd.Host == srv.Host {
			return badRequest("The target host can't be the same one.")
		}
	}
	var m fsm.Migration
	if err := s.apply(c.Context(), cmd, &m); err != nil {
		return err
	}
	c.Log.Info("server evacuation accepted", "server_id", srv.ID, "from_host", m.SourceCompute, "to_host", cmd.Host, "migration_id", m.ID)
	if c.Version.AtLeast(2, 14) {
		return c.NoContent(http.StatusOK)
	}
	pass := ""
	if hasPass {
		pass = password.(string)
	} else if !onShared {
		pass = generatePassword()
	}
	out := map[string]any{"adminPass": nil}
	if pass != "" {
		out["adminPass"] = pass
	}
	return c.JSON(http.StatusOK, out)
}

// novaBool reads Nova's parameter_types.boolean.
func novaBool(field string, v any) (bool, error) {
	if err := flvCheckBoolean(field, v); err != nil {
		return false, err
	}
	switch x := v.(type) {
	case bool:
		return x, nil
	case string:
		switch strings.ToLower(x) {
		case "true", "1", "on", "yes":
			return true, nil
		}
	}
	return false, nil
}

func (s *Server) evacuateMargin() time.Duration {
	if s.cfg.EvacuateMargin > 0 {
		return s.cfg.EvacuateMargin
	}
	return DefaultEvacuateMargin
}
