package fsm

import (
	"fmt"
	"math"
	"strings"
)

// Instance actions (Nova's os-instance-actions): every request that changes
// a server leaves an action with the events of its steps, written in the
// same Apply as the change itself.

// TableInstanceAction holds actions keyed "<server id>/<inverted sequence>",
// so a forward scan of a server's prefix lists its newest action first.
const TableInstanceAction = "instance_action"

// InstanceAction is one request on a server.
type InstanceAction struct {
	ServerID  string                `json:"server_id"`
	Action    string                `json:"action"` // create, delete, stop, start, reboot, ...
	RequestID string                `json:"request_id"`
	UserID    string                `json:"user_id"`
	ProjectID string                `json:"project_id"`
	StartTime int64                 `json:"start_time"`
	UpdatedAt int64                 `json:"updated_at"`
	Message   string                `json:"message,omitempty"` // "Error" once an event failed
	Events    []InstanceActionEvent `json:"events,omitempty"`
	Seq       uint64                `json:"seq"`
}

// InstanceActionEvent is one step of an action.
type InstanceActionEvent struct {
	Event      string `json:"event"`
	Host       string `json:"host,omitempty"`
	StartTime  int64  `json:"start_time"`
	FinishTime int64  `json:"finish_time,omitempty"`
	Result     string `json:"result,omitempty"` // "Success" or "Error"; "" while running
	Traceback  string `json:"traceback,omitempty"`
	Details    string `json:"details,omitempty"`
}

func actionKey(serverID string, seq uint64) string {
	return fmt.Sprintf("%s/%016x", serverID, math.MaxUint64-seq)
}

// newAction starts the server's next action (the caller saves the server,
// whose ActionSeq it advances, and the action).
func newAction(s *Server, action, requestID, userID, projectID string, now int64) *InstanceAction {
	s.ActionSeq++
	return &InstanceAction{
		ServerID: s.ID, Action: action, RequestID: requestID, UserID: userID, ProjectID: projectID,
		StartTime: now, UpdatedAt: now, Seq: s.ActionSeq,
	}
}

func (a *InstanceAction) startEvent(name, host string, now int64) {
	a.Events = append(a.Events, InstanceActionEvent{Event: name, Host: host, StartTime: now})
	a.UpdatedAt = now
}

// finishEvent closes the newest running event of that name; errMsg marks it
// (and the action) failed.
func (a *InstanceAction) finishEvent(name string, now int64, errMsg string) {
	for i := len(a.Events) - 1; i >= 0; i-- {
		e := &a.Events[i]
		if e.Event != name || e.FinishTime != 0 {
			continue
		}
		e.FinishTime, e.Result = now, "Success"
		if errMsg != "" {
			e.Result, e.Traceback, e.Details = "Error", errMsg, errMsg
			a.Message = "Error"
		}
		a.UpdatedAt = now
		return
	}
}

func putAction(tx *Txn, a *InstanceAction) error {
	return tx.Put(TableInstanceAction, actionKey(a.ServerID, a.Seq), a)
}

// recordAction writes a new action for a server, with its first event when
// event is set.
func recordAction(tx *Txn, s *Server, action, requestID, userID, projectID string, now int64, event string) error {
	a := newAction(s, action, requestID, userID, projectID, now)
	if event != "" {
		a.startEvent(event, s.Host, now)
	}
	return putAction(tx, a)
}

// withAction changes the server's current action (the newest) in one read
// and one write: reads in an Apply do not see its own writes, so every
// change of one command to one action must go through a single call.
func withAction(tx *Txn, s *Server, fn func(a *InstanceAction)) error {
	if s.ActionSeq == 0 {
		return nil
	}
	a, _, err := Get[InstanceAction](tx, TableInstanceAction, actionKey(s.ID, s.ActionSeq))
	if IsNotFound(err) {
		return nil
	} else if err != nil {
		return err
	}
	fn(a)
	return putAction(tx, a)
}

// ListInstanceActions returns a server's actions, newest first.
func ListInstanceActions(r Reader, serverID string) ([]*InstanceAction, error) {
	var out []*InstanceAction
	var derr error
	err := r.Scan(TableInstanceAction, serverID+"/", func(rec Record) bool {
		var a InstanceAction
		if derr = rec.Decode(&a); derr != nil {
			return false
		}
		out = append(out, &a)
		return true
	})
	if err == nil {
		err = derr
	}
	return out, err
}

// GetInstanceAction returns a server's action by request id.
func GetInstanceAction(r Reader, serverID, requestID string) (*InstanceAction, error) {
	all, err := ListInstanceActions(r, serverID)
	if err != nil {
		return nil, err
	}
	for _, a := range all {
		if strings.EqualFold(a.RequestID, requestID) {
			return a, nil
		}
	}
	return nil, Errorf(KindNotFound, "Action for request_id %s on instance %s not found", requestID, serverID)
}
