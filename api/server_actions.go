package api

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/keel-cloud/keel/fsm"
)

// Server actions: POST /servers/{id}/action with one member naming the
// action. The state machine (which action is allowed when) is the FSM's;
// here the body is validated and the action proposed.

// notBuiltActions are Nova actions Keel does not offer yet: an honest 501
// rather than a fake success.
var notBuiltActions = map[string]string{
	"resize": "resizing", "confirmResize": "resizing", "revertResize": "resizing",
	"rebuild": "rebuilding", "createImage": "snapshots", "createBackup": "backups",
	"migrate": "migration", "os-migrateLive": "live migration",
	"shelve": "shelving", "shelveOffload": "shelving", "unshelve": "shelving",
	"rescue": "rescue", "unrescue": "rescue", "changePassword": "password changes",
	"forceDelete": "soft delete", "trigger_crash_dump": "crash dumps",
	"resetNetwork": "networking", "injectNetworkInfo": "networking",
	"addFixedIp": "networking", "removeFixedIp": "networking", "addFloatingIp": "networking",
	"removeFloatingIp": "networking", "addSecurityGroup": "security groups", "removeSecurityGroup": "security groups",
	"os-getVNCConsole": "graphical consoles", "os-getSPICEConsole": "graphical consoles",
	"os-getSerialConsole": "interactive consoles", "os-getRDPConsole": "graphical consoles",
}

// rebootTypes are the reboot types Nova's schema accepts.
var rebootTypes = map[string]string{
	"HARD": fsm.ActionRebootHard, "Hard": fsm.ActionRebootHard, "hard": fsm.ActionRebootHard,
	"SOFT": fsm.ActionRebootSoft, "Soft": fsm.ActionRebootSoft, "soft": fsm.ActionRebootSoft,
}

func (s *Server) serverAction(c *Call) error {
	var body map[string]json.RawMessage
	if err := c.Decode(&body); err != nil {
		return err
	}
	if len(body) != 1 {
		return badRequest("Malformed request body: one action is expected, got %d members.", len(body))
	}
	var name string
	var arg json.RawMessage
	for k, v := range body {
		name, arg = k, v
	}
	srv, err := s.serverFor(c, c.Param("server_id"))
	if err != nil {
		return err
	}
	cmd := &fsm.ServerAction{ID: srv.ID, Admin: c.Auth.IsAdmin(), RequestID: c.RequestID,
		UserID: c.Auth.UserID, ProjectID: c.Auth.ProjectID, Now: time.Now().UnixMicro()}
	switch name {
	case "os-start":
		cmd.Action = fsm.ActionStart
	case "os-stop":
		cmd.Action = fsm.ActionStop
	case "reboot":
		var r struct {
			Type *string `json:"type"`
		}
		if err := strictDecode(arg, &r, "reboot"); err != nil {
			return err
		}
		if r.Type == nil {
			return badRequest("Invalid input for field/attribute reboot. Value: %s. 'type' is a required property", arg)
		}
		act, ok := rebootTypes[*r.Type]
		if !ok {
			return badRequest("Invalid input for field/attribute type. Value: %s. '%s' is not one of ['HARD', 'Hard', 'hard', 'SOFT', 'Soft', 'soft']", *r.Type, *r.Type)
		}
		cmd.Action = act
	case "pause":
		cmd.Action = fsm.ActionPause
	case "unpause":
		cmd.Action = fsm.ActionUnpause
	case "suspend":
		cmd.Action = fsm.ActionSuspend
	case "resume":
		cmd.Action = fsm.ActionResume
	case "lock":
		cmd.Action = fsm.ActionLock
		if c.Version.AtLeast(2, 73) && string(arg) != "null" {
			var r struct {
				Reason *string `json:"locked_reason"`
			}
			if err := strictDecode(arg, &r, "lock"); err != nil {
				return err
			}
			if r.Reason != nil {
				if n := utf8.RuneCountInString(*r.Reason); n < 1 || n > 255 {
					return badRequest("Invalid input for field/attribute locked_reason. Value: %s. It must be 1 to 255 characters.", *r.Reason)
				}
				cmd.LockedReason = *r.Reason
			}
		}
	case "unlock":
		cmd.Action = fsm.ActionUnlock
	case "os-getConsoleOutput":
		return s.consoleOutput(c, srv, arg)
	case "evacuate":
		return s.evacuate(c, srv, arg)
	case "os-resetState":
		var r struct {
			State *string `json:"state"`
		}
		if err := strictDecode(arg, &r, "os-resetState"); err != nil {
			return err
		}
		if r.State == nil {
			return badRequest("Invalid input for field/attribute os-resetState. Value: %s. 'state' is a required property", arg)
		}
		cmd.Action, cmd.ResetTo = fsm.ActionResetState, *r.State
	case "restore":
		// Keel never soft-deletes a server (reclaim_instance_interval is
		// 0), so no server is ever in the state restore needs.
		return conflict("Cannot 'restore' instance %s while it is in vm_state %s", srv.ID, srv.VMState)
	default:
		if what, ok := notBuiltActions[name]; ok {
			return Errorf(http.StatusNotImplemented, "The action %s is not offered by this cloud yet (%s is not implemented).", name, what)
		}
		return badRequest("There is no such action: %s", name)
	}
	if err := s.apply(c.Context(), cmd, nil); err != nil {
		return err
	}
	return c.NoContent(http.StatusAccepted)
}

// strictDecode decodes an action's argument object, refusing members Nova's
// schema does not know (additionalProperties: false).
func strictDecode(arg json.RawMessage, v any, action string) error {
	if len(arg) == 0 || string(arg) == "null" {
		return badRequest("Invalid input for field/attribute %s. Value: None. None is not of type 'object'", action)
	}
	dec := json.NewDecoder(strings.NewReader(string(arg)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		if strings.Contains(err.Error(), "unknown field") {
			return badRequest("Invalid input for field/attribute %s. Additional properties are not allowed (%s)", action, strings.TrimPrefix(err.Error(), "json: "))
		}
		return badRequest("Invalid input for field/attribute %s. Value: %s. %s", action, arg, jsonTypeHint(err))
	}
	return nil
}

// maxConsoleBytes bounds the console output relayed from a host.
const maxConsoleBytes = 1 << 20

// consoleOutput is the os-getConsoleOutput action: the last lines of the
// server's serial console, read from its host's agent.
func (s *Server) consoleOutput(c *Call, srv *fsm.Server, arg json.RawMessage) error {
	length := -1
	if len(arg) > 0 && string(arg) != "null" {
		var r struct {
			Length json.RawMessage `json:"length"`
		}
		if err := strictDecode(arg, &r, "os-getConsoleOutput"); err != nil {
			return err
		}
		if len(r.Length) > 0 && string(r.Length) != "null" {
			raw := strings.Trim(string(r.Length), `"`)
			n, err := strconv.Atoi(raw)
			if err != nil || n < -1 {
				return badRequest("Invalid input for field/attribute length. Value: %s. It must be an integer greater than or equal to -1.", r.Length)
			}
			length = n
		}
	}
	if srv.Host == "" { // Nova's check_instance_host
		return conflict("Instance %s is not ready", srv.ID)
	}
	if srv.TaskState == fsm.TaskDeleting {
		return conflict("Cannot 'get_console_output' instance %s while it is in task_state deleting", srv.ID)
	}
	h, _, err := fsm.GetHost(s.node.State(), srv.Host)
	if err != nil || h.AgentAddr == "" {
		return conflict("Instance %s is not ready: its host %s has no reachable agent", srv.ID, srv.Host)
	}
	req, err := s.node.NewPeerRequest(c.Context(), http.MethodGet, h.AgentAddr, fmt.Sprintf("/internal/v1/servers/%s/console?length=0", srv.ID), nil)
	if err != nil {
		return err
	}
	resp, err := s.hostClient.Do(req)
	if err != nil {
		c.Log.Warn("console output: the host's agent did not answer", "server_id", srv.ID, "host", srv.Host, "agent", h.AgentAddr, "error", err)
		return Errorf(http.StatusServiceUnavailable, "The console of instance %s cannot be read: its host %s does not answer. Retry later; check keel-agent on %s.", srv.ID, srv.Host, srv.Host)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxConsoleBytes))
	if err != nil {
		return Errorf(http.StatusServiceUnavailable, "Reading the console of instance %s from host %s failed: %v", srv.ID, srv.Host, err)
	}
	switch resp.StatusCode {
	case http.StatusOK:
	case http.StatusNotFound:
		return conflict("Instance %s is not ready", srv.ID)
	default:
		c.Log.Warn("console output: the host's agent refused", "server_id", srv.ID, "host", srv.Host, "status", resp.StatusCode, "body", string(body))
		return Errorf(http.StatusServiceUnavailable, "The console of instance %s cannot be read from host %s (HTTP %d).", srv.ID, srv.Host, resp.StatusCode)
	}
	return c.JSON(http.StatusOK, map[string]string{"output": tailLog(string(body), length)})
}

// tailLog keeps the last n newline-separated pieces of a console log, as
// Nova's compute manager does (a log ending in a newline counts an empty
// last piece); n < 0 keeps everything, 0 nothing.
func tailLog(log string, n int) string {
	if n < 0 {
		return log
	}
	if n == 0 {
		return ""
	}
	parts := strings.Split(log, "\n")
	return strings.Join(parts[max(0, len(parts)-n):], "\n")
}
