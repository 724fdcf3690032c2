package agent

import (
	"github.com/keel-cloud/keel/agent/driver"
	"github.com/keel-cloud/keel/internal/hostapi"
)

// action is what the agent does for one server in one pass.
type action int

const (
	actNone action = iota
	// actSpawn: Spawn (after destroying a domain of an older generation).
	actSpawn
	// actReportDone: the task is already carried out (a spawn finished
	// before the agent restarted): report it without touching the domain.
	actReportDone
	actPowerOff
	actPowerOn
	actReboot
	actRebootHard
	actPause
	actUnpause
	actSuspend
	actResume
	actDestroy
	// actObserve: no task; report the observed power state if it differs
	// from what the controllers recorded.
	actObserve
	// actDestroyStale: the domain here is of an older placement of the
	// server; destroy it without reporting.
	actDestroyStale
	// actHeld: the task would start the guest, and the host is forced down
	// or fenced.
	actHeld
	// actStaleAnswer: the domain is of a newer generation than the answer:
	// the answer is old; do nothing.
	actStaleAnswer
	// actUnknownTask: a task this agent does not know (a newer controller);
	// leave the server alone.
	actUnknownTask
	// actRestart: start again a domain that self-fencing powered off, now
	// that contact is back (no report: the controllers never learnt it
	// stopped).
	actRestart
	// actEvacuated: the server was evacuated away; destroy this host's
	// copy (a domain of the evacuated generation or older) and report the
	// migration complete.
	actEvacuated
)

var actionNames = [...]string{
	actNone: "none", actSpawn: "spawn", actReportDone: "report-done", actPowerOff: "power-off",
	actPowerOn: "power-on", actReboot: "reboot", actRebootHard: "reboot-hard", actPause: "pause",
	actUnpause: "unpause", actSuspend: "suspend", actResume: "resume", actDestroy: "destroy",
	actObserve: "observe", actDestroyStale: "destroy-stale", actHeld: "held", actStaleAnswer: "stale-answer",
	actUnknownTask: "unknown-task", actRestart: "restart-after-fencing", actEvacuated: "evacuated",
}

func (a action) String() string { return actionNames[a] }

// taskActions maps each task to the driver call that carries it out, and
// whether that call starts a guest (held while the host is forced down or
// fenced).
var taskActions = map[string]struct {
	act    action
	starts bool
}{
	hostapi.TaskSpawning:      {actSpawn, true},
	hostapi.TaskPoweringOff:   {actPowerOff, false},
	hostapi.TaskPoweringOn:    {actPowerOn, true},
	hostapi.TaskRebooting:     {actReboot, true},
	hostapi.TaskRebootingHard: {actRebootHard, true},
	hostapi.TaskPausing:       {actPause, false},
	hostapi.TaskUnpausing:     {actUnpause, true},
	hostapi.TaskSuspending:    {actSuspend, false},
	hostapi.TaskResuming:      {actResume, true},
	hostapi.TaskDeleting:      {actDestroy, false},
	// An evacuated server is built on its new host as a new server is.
	hostapi.TaskRebuildSpawning: {actSpawn, true},
}

// decide chooses what to do for assignment a given the domain the driver
// reports (exists false: none) and whether tasks that start a guest are
// held (the host is forced down, or fenced itself). It is level-triggered:
// the same inputs give the same action, so a pass after a restart redoes
// only what is not done.
func decide(a hostapi.Assignment, d driver.Domain, exists, hold bool) action {
	if exists && d.Generation > a.Generation {
		return actStaleAnswer
	}
	stale := exists && d.Generation < a.Generation
	if a.TaskState == "" {
		if stale {
			return actDestroyStale
		}
		if a.VMState == hostapi.VMBuilding {
			return actNone // not spawned yet: nothing to observe
		}
		return actObserve
	}
	t, ok := taskActions[a.TaskState]
	switch {
	case !ok:
		return actUnknownTask
	case t.act == actSpawn && exists && !stale && d.PowerState == hostapi.PowerRunning:
		return actReportDone // reporting starts nothing, even on a fenced host
	case t.starts && hold:
		return actHeld
	case t.act == actSpawn:
		return actSpawn // the operation replaces a stale domain first
	case t.act == actDestroy:
		return actDestroy
	case stale:
		// The task is meant for this generation's domain, which is not
		// here; the old one goes first, and the next pass reports that
		// the domain is missing.
		return actDestroyStale
	}
	return t.act
}

// observedPower is the power state to report for a server: its domain's,
// or NOSTATE when there is none.
func observedPower(d driver.Domain, exists bool) int {
	if !exists {
		return hostapi.PowerNoState
	}
	return d.PowerState
}
