package fsm

import (
	"fmt"
	"slices"

	"github.com/keel-cloud/keel/internal/hostapi"
)

// The lifecycle of a server, as Nova drives it: the API sets a task
// (ServerAction), the leader's scheduler places servers (PlaceServers), the
// host's agent carries the task out and reports (ReportServer). Every rule
// about which transition is allowed lives here, in Apply, so two racing
// requests on two controllers can never both win.

// Command types of the server lifecycle (servers' range 100–139).
const (
	CmdServerAction  CommandType = 109
	CmdPlaceServers  CommandType = 110
	CmdReportServer  CommandType = 111
	CmdRescheduleAll CommandType = 112 // reserved
)

// IndexServerPending lists servers waiting for the scheduler, oldest
// first: (created, id).
const IndexServerPending = "pending"

// IndexServerHost lists the servers assigned to a host: (host, id).
const IndexServerHost = "host"

// More of Nova's vm_state and task_state values.
const (
	VMActive    = hostapi.VMActive
	VMStopped   = hostapi.VMStopped
	VMPaused    = hostapi.VMPaused
	VMSuspended = hostapi.VMSuspended
	VMError     = hostapi.VMError

	TaskSpawning = hostapi.TaskSpawning
	TaskDeleting = hostapi.TaskDeleting
)

// MaxBuildAttempts is Nova's max_attempts: a server whose build failed on
// this many hosts goes to ERROR.
const MaxBuildAttempts = 3

// NoValidHostMessage is Nova's fault message when no host fits.
const NoValidHostMessage = "No valid host was found. "

// StatusOf is the API status of a vm_state and task_state, Nova's mapping
// (nova/api/openstack/common.py).
func StatusOf(vm, task string) string {
	switch vm {
	case VMActive:
		switch task {
		case "rebooting", "reboot_pending", "reboot_started":
			return "REBOOT"
		case "rebooting_hard", "reboot_pending_hard", "reboot_started_hard":
			return "HARD_REBOOT"
		case "rebuilding", "rebuild_block_device_mapping", "rebuild_spawning":
			return "REBUILD"
		case "migrating":
			return "MIGRATING"
		case "resize_prep", "resize_migrating", "resize_migrated", "resize_finish":
			return "RESIZE"
		case "updating_password":
			return "PASSWORD"
		}
		return StatusActive
	case VMBuilding:
		return StatusBuild
	case VMStopped:
		switch task {
		case "resize_prep", "resize_migrating", "resize_migrated", "resize_finish":
			return "RESIZE"
		case "rebuilding", "rebuild_block_device_mapping", "rebuild_spawning":
			return "REBUILD"
		}
		return "SHUTOFF"
	case VMPaused:
		return "PAUSED"
	case VMSuspended:
		return "SUSPENDED"
	case VMError:
		if task == "rebuilding" {
			return "REBUILD"
		}
		return StatusError
	case VMDeleted:
		return StatusDeleted
	}
	return "UNKNOWN"
}

// setState sets vm_state, task_state and the status that follows.
func (s *Server) setState(vm, task string) {
	s.VMState, s.TaskState, s.Status = vm, task, StatusOf(vm, task)
}

// Claim is what a server of this flavor consumes on its host: vCPUs, RAM
// in MB, and disk in GB (root + ephemeral + swap rounded up to GB).
func (f ServerFlavor) Claim() (vcpus, ramMB, diskGB int) {
	return f.VCPUs, f.RAM, f.Disk + f.Ephemeral + (f.Swap+1023)/1024
}

// saveServer writes a server and wakes its host's agent.
func saveServer(tx *Txn, s *Server) error {
	if err := putServer(tx, s); err != nil {
		return err
	}
	return touchHost(tx, s.Host)
}

// ServerAction is an action on a server that its host's agent carries out
// (or, for lock/unlock, a change of the record alone).
type ServerAction struct {
	ID     string `json:"id"`
	Action string `json:"action"` // one of the Action* constants
	// Admin: the caller is an administrator (who may act on a locked
	// server, and whose lock the owner cannot lift).
	Admin        bool   `json:"admin,omitempty"`
	LockedReason string `json:"locked_reason,omitempty"`
	ResetTo      string `json:"reset_to,omitempty"`
	RequestID    string `json:"request_id"`
	UserID       string `json:"user_id"`
	ProjectID    string `json:"project_id"`
	Now          int64  `json:"now"`
}

func (*ServerAction) CommandType() CommandType { return CmdServerAction }
func (*ServerAction) CommandVersion() uint8    { return 1 }

// Server actions (Nova's method names, which its conflict messages quote).
const (
	ActionStop       = "stop"
	ActionStart      = "start"
	ActionRebootSoft = "reboot"
	ActionRebootHard = "reboot_hard"
	ActionPause      = "pause"
	ActionUnpause    = "unpause"
	ActionSuspend    = "suspend"
	ActionResume     = "resume"
	ActionLock       = "lock"
	ActionUnlock     = "unlock"
	// ActionResetState is an administrator's os-resetState: vm_state set
	// to ResetTo ("active" or "error"), the task cleared, nothing done on
	// the host.
	ActionResetState = "resetState"
)

// actionRule is when an action is allowed and the task it sets.
type actionRule struct {
	vmStates   []string // allowed vm_states
	taskStates []string // allowed task_states ("" = none)
	launched   bool     // the server must have been launched once
	task       string   // the task the agent carries out
	event      string   // the instance action event
}

var actionRules = map[string]actionRule{
	ActionStop:       {[]string{VMActive, VMError}, []string{""}, true, hostapi.TaskPoweringOff, "compute_stop_instance"},
	ActionStart:      {[]string{VMStopped}, []string{""}, true, hostapi.TaskPoweringOn, "compute_start_instance"},
	ActionRebootSoft: {[]string{VMActive}, []string{""}, false, hostapi.TaskRebooting, "compute_reboot_instance"},
	ActionRebootHard: {[]string{VMActive, VMStopped, VMPaused, VMSuspended, VMError}, []string{"", hostapi.TaskRebooting, hostapi.TaskRebootingHard}, false, hostapi.TaskRebootingHard, "compute_reboot_instance"},
	ActionPause:      {[]string{VMActive}, []string{""}, false, hostapi.TaskPausing, "compute_pause_instance"},
	ActionUnpause:    {[]string{VMPaused}, []string{""}, false, hostapi.TaskUnpausing, "compute_unpause_instance"},
	ActionSuspend:    {[]string{VMActive}, []string{""}, false, hostapi.TaskSuspending, "compute_suspend_instance"},
	ActionResume:     {[]string{VMSuspended}, []string{""}, false, hostapi.TaskResuming, "compute_resume_instance"},
}

// invalidState is Nova's InstanceInvalidState conflict.
func invalidState(action, id, attr, state string) error {
	if state == "" {
		state = "None"
	}
	return Errorf(KindConflict, "Cannot '%s' instance %s while it is in %s %s", action, id, attr, state)
}

func applyServerAction(tx *Txn, c *ServerAction) (any, error) {
	s, err := liveServer(tx, c.ID)
	if err != nil {
		return nil, err
	}
	switch c.Action {
	case ActionLock:
		s.Locked, s.LockedReason, s.LockedBy = true, c.LockedReason, "owner"
		if c.Admin && c.ProjectID != s.ProjectID {
			s.LockedBy = "admin"
		}
		s.UpdatedAt = c.Now
		if err := recordAction(tx, s, c.Action, c.RequestID, c.UserID, c.ProjectID, c.Now, ""); err != nil {
			return nil, err
		}
		return s, saveServer(tx, s)
	case ActionUnlock:
		if s.Locked && s.LockedBy == "admin" && !c.Admin {
			return nil, Errorf(KindForbidden, "Policy doesn't allow os_compute_api:os-lock-server:unlock:unlock_override to be performed.")
		}
		s.Locked, s.LockedReason, s.LockedBy = false, "", ""
		s.UpdatedAt = c.Now
		if err := recordAction(tx, s, c.Action, c.RequestID, c.UserID, c.ProjectID, c.Now, ""); err != nil {
			return nil, err
		}
		return s, saveServer(tx, s)
	case ActionResetState:
		if !c.Admin {
			return nil, Errorf(KindForbidden, "Policy doesn't allow os_compute_api:os-admin-actions:reset_state to be performed.")
		}
		if c.ResetTo != VMActive && c.ResetTo != VMError {
			return nil, Errorf(KindInvalid, "Invalid input for field/attribute state. Value: %s. '%s' is not one of ['active', 'error']", c.ResetTo, c.ResetTo)
		}
		if s.pending() {
			// Leaving the scheduler's queue: it will not be placed.
			if err := tx.DeleteIndex(TableServer, IndexServerPending, s.ID, pendingKey(s)...); err != nil {
				return nil, err
			}
		}
		s.setState(c.ResetTo, "")
		s.UpdatedAt = c.Now
		if err := recordAction(tx, s, c.Action, c.RequestID, c.UserID, c.ProjectID, c.Now, ""); err != nil {
			return nil, err
		}
		return s, saveServer(tx, s)
	}
	rule, ok := actionRules[c.Action]
	if !ok {
		return nil, Errorf(KindInvalid, "unknown server action %q", c.Action)
	}
	if s.Locked && !c.Admin {
		return nil, Errorf(KindConflict, "Instance %s is locked", s.ID)
	}
	name := c.Action
	if name == ActionRebootHard {
		name = ActionRebootSoft
	}
	if !slices.Contains(rule.vmStates, s.VMState) {
		return nil, invalidState(name, s.ID, "vm_state", s.VMState)
	}
	if !slices.Contains(rule.taskStates, s.TaskState) {
		return nil, invalidState(name, s.ID, "task_state", s.TaskState)
	}
	if rule.launched && s.LaunchedAt == 0 {
		return nil, invalidState(name, s.ID, "launched_at", "")
	}
	if s.Host == "" {
		return nil, Errorf(KindConflict, "Instance %s is not ready: it has no host (it never built); delete it and create it again", s.ID)
	}
	s.setState(s.VMState, rule.task)
	s.UpdatedAt = c.Now
	if err := recordAction(tx, s, name, c.RequestID, c.UserID, c.ProjectID, c.Now, rule.event); err != nil {
		return nil, err
	}
	return s, saveServer(tx, s)
}

// Claim places one server on a host.
type Claim struct {
	ServerID string `json:"server_id"`
	Host     string `json:"host"`
}

// PlaceFailure is a server the scheduler found no host for.
type PlaceFailure struct {
	ServerID string `json:"server_id"`
	Reason   string `json:"reason"` // appended to "No valid host was found. "
}

// PlaceServers is the scheduler's decision for a batch of pending servers.
// Apply re-checks each claim against the host's capacity as it is now: a
// claim that no longer fits (or whose server is gone or no longer pending)
// is skipped, and the server stays pending for the next round.
type PlaceServers struct {
	Claims   []Claim        `json:"claims,omitempty"`
	Failures []PlaceFailure `json:"failures,omitempty"`
	Now      int64          `json:"now"`
}

func (*PlaceServers) CommandType() CommandType { return CmdPlaceServers }
func (*PlaceServers) CommandVersion() uint8    { return 1 }

// PlaceServersResult says which claims were applied and which skipped.
type PlaceServersResult struct {
	Placed  []string `json:"placed,omitempty"`
	Skipped []string `json:"skipped,omitempty"`
	Failed  []string `json:"failed,omitempty"`
}

// pending reports whether the server waits for the scheduler.
func (s *Server) pending() bool {
	return !s.Deleted && s.Host == "" &&
		((s.VMState == VMBuilding && s.TaskState == TaskScheduling) || s.TaskState == TaskRebuilding)
}

func applyPlaceServers(tx *Txn, c *PlaceServers) (any, error) {
	res := PlaceServersResult{}
	// Hosts are read once and charged in memory, so claims of one batch
	// see each other (reads do not see the command's own writes).
	hosts := map[string]*Host{}
	for _, cl := range c.Claims {
		s, _, err := Get[Server](tx, TableServer, cl.ServerID)
		if IsNotFound(err) {
			res.Skipped = append(res.Skipped, cl.ServerID)
			continue
		} else if err != nil {
			return nil, err
		}
		if !s.pending() {
			res.Skipped = append(res.Skipped, cl.ServerID)
			continue
		}
		h := hosts[cl.Host]
		if h == nil {
			if h, _, err = Get[Host](tx, TableHost, cl.Host); IsNotFound(err) {
				res.Skipped = append(res.Skipped, cl.ServerID)
				continue
			} else if err != nil {
				return nil, err
			}
			hosts[cl.Host] = h
		}
		vcpus, ram, disk := s.Flavor.Claim()
		// The host as it is now: enabled, up, with room, not one the build
		// failed on or the server is evacuated from, and still in the zone
		// the server asked for (an aggregate may have moved it since the
		// scheduler looked).
		if h.Disabled || !h.Alive() || !h.Fits(vcpus, ram, disk) || slices.Contains(s.RetryHosts, h.Host) || h.Host == s.EvacuatedFrom ||
			(s.PinnedAZ != "" && h.AvailabilityZone() != s.PinnedAZ) {
			res.Skipped = append(res.Skipped, cl.ServerID)
			continue
		}
		h.charge(s.Flavor, +1)
		s.Host, s.Node = h.Host, h.Host
		if s.AvailabilityZone == "" {
			s.AvailabilityZone = h.AvailabilityZone()
		}
		s.Generation = tx.Index()
		s.UpdatedAt = c.Now
		if err := tx.DeleteIndex(TableServer, IndexServerPending, s.ID, pendingKey(s)...); err != nil {
			return nil, err
		}
		if err := tx.PutIndex(TableServer, IndexServerHost, s.ID, s.Host); err != nil {
			return nil, err
		}
		if s.TaskState == TaskRebuilding {
			if err := placeEvacuated(tx, s, h, c.Now); err != nil {
				return nil, err
			}
		} else {
			s.Attempts++
			s.setState(VMBuilding, TaskSpawning)
			if err := withAction(tx, s, func(a *InstanceAction) {
				a.finishEvent("conductor_schedule_and_build_instances", c.Now, "")
				a.startEvent("compute__do_build_and_run_instance", s.Host, c.Now)
			}); err != nil {
				return nil, err
			}
		}
		if err := saveServer(tx, s); err != nil {
			return nil, err
		}
		res.Placed = append(res.Placed, s.ID)
	}
	for name, h := range hosts {
		if err := tx.Put(TableHost, name, h); err != nil {
			return nil, err
		}
	}
	for _, f := range c.Failures {
		s, _, err := Get[Server](tx, TableServer, f.ServerID)
		if IsNotFound(err) {
			continue
		} else if err != nil {
			return nil, err
		}
		if !s.pending() {
			continue
		}
		msg := NoValidHostMessage + f.Reason
		if s.TaskState == TaskRebuilding {
			if err := failEvacuation(tx, s, msg, c.Now); err != nil {
				return nil, err
			}
			res.Failed = append(res.Failed, s.ID)
			continue
		}
		if s.Attempts > 0 {
			// Nova's reschedule verdict: the earlier hosts failed the build
			// and no other host is left.
			msg = fmt.Sprintf("Exceeded maximum number of retries. Exhausted all hosts available for retrying build failures for instance %s.", s.ID)
		}
		if err := failBuild(tx, s, msg, c.Now, "conductor_schedule_and_build_instances"); err != nil {
			return nil, err
		}
		res.Failed = append(res.Failed, s.ID)
	}
	return res, nil
}

// pendingKey orders the scheduler's queue oldest first.
func pendingKey(s *Server) []string {
	return []string{fmt.Sprintf("%020d", s.CreatedAt)}
}

// failBuild puts a server that will not build into ERROR with a fault.
func failBuild(tx *Txn, s *Server, msg string, now int64, event string) error {
	if err := tx.DeleteIndex(TableServer, IndexServerPending, s.ID, pendingKey(s)...); err != nil {
		return err
	}
	s.setState(VMError, "")
	s.Fault = &ServerFault{Code: 500, Message: msg, Created: now}
	s.UpdatedAt = now
	if err := withAction(tx, s, func(a *InstanceAction) { a.finishEvent(event, now, msg) }); err != nil {
		return err
	}
	return saveServer(tx, s)
}

// ReportServer is an agent's report: the task it carried out (or failed),
// or, with an empty Task, what it observes of a server without a task.
type ReportServer struct {
	ID     string         `json:"id"`
	Host   string         `json:"host"`
	Report hostapi.Report `json:"report"`
	Now    int64          `json:"now"`
}

func (*ReportServer) CommandType() CommandType { return CmdReportServer }
func (*ReportServer) CommandVersion() uint8    { return 1 }

// taskDone is the vm_state a successful task leaves.
var taskDone = map[string]string{
	hostapi.TaskSpawning:      VMActive,
	hostapi.TaskPoweringOff:   VMStopped,
	hostapi.TaskPoweringOn:    VMActive,
	hostapi.TaskRebooting:     VMActive,
	hostapi.TaskRebootingHard: VMActive,
	hostapi.TaskPausing:       VMPaused,
	hostapi.TaskUnpausing:     VMActive,
	hostapi.TaskSuspending:    VMSuspended,
	hostapi.TaskResuming:      VMActive,
}

// taskEvent is the instance action event a task finishes.
var taskEvent = map[string]string{
	hostapi.TaskSpawning:      "compute__do_build_and_run_instance",
	hostapi.TaskPoweringOff:   "compute_stop_instance",
	hostapi.TaskPoweringOn:    "compute_start_instance",
	hostapi.TaskRebooting:     "compute_reboot_instance",
	hostapi.TaskRebootingHard: "compute_reboot_instance",
	hostapi.TaskPausing:       "compute_pause_instance",
	hostapi.TaskUnpausing:     "compute_unpause_instance",
	hostapi.TaskSuspending:    "compute_suspend_instance",
	hostapi.TaskResuming:      "compute_resume_instance",
	hostapi.TaskDeleting:      "compute_terminate_instance",
}

// ErrStaleReport: a report about a task, host or generation the server no
// longer has. The agent drops it; the next query tells it what is wanted.
const staleReport = "stale report"

func applyReportServer(tx *Txn, c *ReportServer) (any, error) {
	s, err := liveServer(tx, c.ID)
	if err != nil {
		return nil, err
	}
	r := c.Report
	if s.Host != c.Host || s.Generation != r.Generation {
		return nil, Errorf(KindConflict, "%s: server %s is on host %q at generation %d, not %q at %d", staleReport, s.ID, s.Host, s.Generation, c.Host, r.Generation)
	}
	if r.Task != s.TaskState {
		return nil, Errorf(KindConflict, "%s: server %s has task %q, the report is about %q", staleReport, s.ID, s.TaskState, r.Task)
	}
	s.UpdatedAt = c.Now
	switch {
	case r.Task == "":
		// Nova's power-state sync: a server that should run but whose
		// domain stopped by itself is stopped.
		s.PowerState = r.PowerState
		if s.VMState == VMActive && (r.PowerState == hostapi.PowerShutdown || r.PowerState == hostapi.PowerCrashed) {
			s.setState(VMStopped, "")
		}
		return s, saveServer(tx, s)
	case r.Task == TaskDeleting:
		if r.Error != "" {
			s.setState(VMError, "")
			s.Fault = &ServerFault{Code: 500, Message: r.Error, Created: c.Now}
			if err := withAction(tx, s, func(a *InstanceAction) { a.finishEvent(taskEvent[r.Task], c.Now, r.Error) }); err != nil {
				return nil, err
			}
			return s, saveServer(tx, s)
		}
		if err := withAction(tx, s, func(a *InstanceAction) { a.finishEvent(taskEvent[r.Task], c.Now, "") }); err != nil {
			return nil, err
		}
		return nil, tombstone(tx, s, c.Now)
	case r.Task == TaskSpawning && r.Error != "":
		return nil, reschedule(tx, s, r.Error, c.Now)
	case r.Task == TaskRebuildSpawning:
		s.PowerState = r.PowerState
		if r.Error == "" {
			s.LaunchedAt = c.Now
		}
		if err := finishEvacuation(tx, s, r.Error, c.Now); err != nil {
			return nil, err
		}
		return s, saveServer(tx, s)
	}
	done, ok := taskDone[r.Task]
	if !ok {
		return nil, Errorf(KindInvalid, "unknown task %q in a report", r.Task)
	}
	s.PowerState = r.PowerState
	if r.Error != "" {
		// The task failed; the server stays as it was, as Nova reverts
		// the task state, and the action records the error.
		s.setState(s.VMState, "")
		if err := withAction(tx, s, func(a *InstanceAction) { a.finishEvent(taskEvent[r.Task], c.Now, r.Error) }); err != nil {
			return nil, err
		}
		return s, saveServer(tx, s)
	}
	if r.Task == TaskSpawning {
		s.LaunchedAt = c.Now
	}
	s.setState(done, "")
	if err := withAction(tx, s, func(a *InstanceAction) { a.finishEvent(taskEvent[r.Task], c.Now, "") }); err != nil {
		return nil, err
	}
	return s, saveServer(tx, s)
}

// reschedule returns a server whose build failed on its host to the
// scheduler, excluding that host, or puts it in ERROR after
// MaxBuildAttempts.
func reschedule(tx *Txn, s *Server, why string, now int64) error {
	if err := chargeHost(tx, s, -1); err != nil {
		return err
	}
	if err := tx.DeleteIndex(TableServer, IndexServerHost, s.ID, s.Host); err != nil {
		return err
	}
	if err := touchHost(tx, s.Host); err != nil {
		return err
	}
	final := s.Attempts >= MaxBuildAttempts
	if err := withAction(tx, s, func(a *InstanceAction) {
		a.finishEvent("compute__do_build_and_run_instance", now, why)
		if !final {
			a.startEvent("conductor_schedule_and_build_instances", "", now)
		}
	}); err != nil {
		return err
	}
	s.RetryHosts = append(s.RetryHosts, s.Host)
	s.Host, s.Node = "", ""
	s.PowerState = hostapi.PowerNoState
	if final {
		s.setState(VMError, "")
		msg := fmt.Sprintf("Exceeded maximum number of retries. Exceeded max scheduling attempts %d for instance %s. Last exception: %s", MaxBuildAttempts, s.ID, why)
		s.Fault = &ServerFault{Code: 500, Message: msg, Created: now}
		s.UpdatedAt = now
		return putServer(tx, s)
	}
	s.setState(VMBuilding, TaskScheduling)
	s.UpdatedAt = now
	if err := tx.PutIndex(TableServer, IndexServerPending, s.ID, pendingKey(s)...); err != nil {
		return err
	}
	return putServer(tx, s)
}

// tombstone finishes deleting a server: its host claim and quota are
// released, it leaves every index but the tombstones', and the record stays
// for changes-since listings.
func tombstone(tx *Txn, s *Server, now int64) error {
	if err := ChargeQuota(tx, s.ProjectID, s.UserID, map[string]int64{
		"instances": -1, "cores": -int64(s.Flavor.VCPUs), "ram": -int64(s.Flavor.RAM),
	}); err != nil {
		return err
	}
	if err := chargeHost(tx, s, -1); err != nil {
		return err
	}
	if s.Host != "" {
		if err := tx.DeleteIndex(TableServer, IndexServerHost, s.ID, s.Host); err != nil {
			return err
		}
		if err := touchHost(tx, s.Host); err != nil {
			return err
		}
	}
	if s.pending() {
		if err := tx.DeleteIndex(TableServer, IndexServerPending, s.ID, pendingKey(s)...); err != nil {
			return err
		}
	}
	if err := RemoveServerGroupMember(tx, s.ID); err != nil {
		return err
	}
	s.Deleted = true
	s.setState(VMDeleted, "")
	s.PowerState = hostapi.PowerNoState
	s.UpdatedAt, s.TerminatedAt = now, now
	if err := tx.DeleteIndex(TableServer, IndexServerProject, s.ID, append([]string{s.ProjectID}, newestFirst(s)...)...); err != nil {
		return err
	}
	if err := tx.DeleteIndex(TableServer, IndexServerCreated, s.ID, newestFirst(s)...); err != nil {
		return err
	}
	if err := tx.PutIndex(TableServer, IndexServerDeleted, s.ID, s.ProjectID); err != nil {
		return err
	}
	return putServer(tx, s)
}

// PendingServers calls fn with the servers waiting for the scheduler,
// oldest first, until fn returns false.
func PendingServers(r Reader, fn func(*Server) bool) error {
	var ids []string
	if err := r.ScanIndex(TableServer, IndexServerPending, nil, func(pk string) bool { ids = append(ids, pk); return true }); err != nil {
		return err
	}
	for _, id := range ids {
		s, _, err := GetServer(r, id)
		if err != nil {
			continue
		}
		if !fn(s) {
			return nil
		}
	}
	return nil
}

// HostServers returns the servers assigned to a host.
func HostServers(r Reader, host string) ([]*Server, error) {
	var ids []string
	if err := r.ScanIndex(TableServer, IndexServerHost, []string{host}, func(pk string) bool { ids = append(ids, pk); return true }); err != nil {
		return nil, err
	}
	out := make([]*Server, 0, len(ids))
	for _, id := range ids {
		s, _, err := GetServer(r, id)
		if err != nil {
			return nil, fmt.Errorf("fsm: host index of %s names server %s, which cannot be read: %w", host, id, err)
		}
		out = append(out, s)
	}
	return out, nil
}

func init() {
	register("ServerAction", applyServerAction)
	register("PlaceServers", applyPlaceServers)
	register("ReportServer", applyReportServer)
}
