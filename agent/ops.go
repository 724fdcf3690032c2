package agent

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/keel-cloud/keel/agent/driver"
	"github.com/keel-cloud/keel/internal/hostapi"
)

// maxReportError bounds the error text sent to the controllers; the whole
// error is in the agent's log.
const maxReportError = 1024

// run carries out one operation and reports it. Only one runs per server at
// a time (reconcile marks the server in flight).
func (a *Agent) run(ctx context.Context, o op) {
	defer func() {
		a.mu.Lock()
		delete(a.inflight, o.a.ID)
		a.mu.Unlock()
		select {
		case a.kick <- struct{}{}:
		default:
		}
		a.ops.Done()
	}()
	log := a.log.With("server", o.a.ID)
	switch {
	case o.orphan:
		a.destroyOrphan(ctx, o)
		return
	case o.act == actDestroyStale:
		log.Warn("destroying this host's copy of an older placement of the server", "domain_generation", o.dom.Generation, "generation", o.a.Generation)
		if err := a.cfg.Driver.Destroy(ctx, o.a.ID); err != nil {
			log.Error("cannot destroy the stale domain; retrying on the next pass", "error", err)
			return
		}
		a.localChange.Store(true)
		return
	case o.act == actEvacuated:
		a.cleanUpEvacuated(ctx, o)
		return
	case startsGuest(o.act) && a.isFenced():
		// Fencing began after this pass decided: start nothing. The task
		// stays, and is carried out once contact is back.
		log.Warn("operation not started: this host fenced itself meanwhile", "action", o.act.String(), "task", o.a.TaskState)
		return
	case o.act == actRestart:
		log.Info("starting again a server that self-fencing powered off", "generation", o.a.Generation)
		if err := a.cfg.Driver.PowerOn(ctx, o.a.ID); err != nil {
			if ctx.Err() != nil {
				return
			}
			log.Error("cannot start again a server that self-fencing powered off; its power state is reported as it is (start it with the API)", "error", err)
		}
		a.forgetFenceStopped(o.a.ID, o.dom.Generation)
		a.localChange.Store(true)
		return
	case o.act == actObserve:
		log.Info("power state differs from the controllers' record; reporting it", "observed", o.power, "recorded", o.a.PowerState, "vm_state", o.a.VMState)
		_, err := a.report(ctx, o.a, hostapi.Report{Generation: o.a.Generation, PowerState: o.power})
		if ctx.Err() == nil || err == nil {
			a.mu.Lock()
			a.lastObs[o.a.ID] = observation{o.a.Generation, o.power}
			a.mu.Unlock()
		}
		return
	}

	log = log.With("task", o.a.TaskState, "generation", o.a.Generation)
	start := time.Now()
	err := a.carryOut(ctx, o)
	if err != nil && ctx.Err() != nil {
		// Stopped by the agent's shutdown: not the server's fault; the
		// task stays and the next agent carries it out.
		log.Warn("operation cut short by shutdown; the task is left for the next start", "error", err)
		return
	}
	rep := hostapi.Report{Generation: o.a.Generation, Task: o.a.TaskState, PowerState: a.powerAfter(ctx, o, err)}
	if err != nil {
		log.Error("task failed", "error", err, "duration", time.Since(start).Round(time.Millisecond))
		rep.Error = err.Error()
		if len(rep.Error) > maxReportError {
			rep.Error = rep.Error[:maxReportError] + "..."
		}
	} else {
		log.Info("task done", "power_state", rep.PowerState, "duration", time.Since(start).Round(time.Millisecond))
	}
	index, err := a.report(ctx, o.a, rep)
	if err != nil && ctx.Err() != nil {
		return
	}
	at := a.clock.Add(1)
	a.mu.Lock()
	a.done[o.a.ID] = doneTask{gen: o.a.Generation, task: o.a.TaskState, at: at, index: index}
	a.mu.Unlock()
}

// startsGuest: the action starts (or restarts) a guest, which a forced-down
// or fenced host must not do.
func startsGuest(act action) bool {
	switch act {
	case actSpawn, actPowerOn, actReboot, actRebootHard, actUnpause, actResume, actRestart:
		return true
	}
	return false
}

// carryOut makes the driver call of a task.
func (a *Agent) carryOut(ctx context.Context, o op) error {
	d, id := a.cfg.Driver, o.a.ID
	var err error
	switch o.act {
	case actReportDone:
		return nil
	case actSpawn:
		if o.exists && o.dom.Generation < o.a.Generation {
			// Rebuild here after the server lived elsewhere: the old
			// domain's disk is not this placement's.
			if err := d.Destroy(ctx, id); err != nil {
				return fmt.Errorf("destroy the domain of an older placement (generation %d) before spawning: %w", o.dom.Generation, err)
			}
		}
		return d.Spawn(ctx, o.a, images{a.client})
	case actDestroy:
		return d.Destroy(ctx, id)
	case actPowerOff:
		if err = d.PowerOff(ctx, id); errors.Is(err, driver.ErrNotFound) {
			return nil // nothing runs: what was asked
		}
		return err
	case actPowerOn:
		err = d.PowerOn(ctx, id)
	case actReboot:
		err = d.Reboot(ctx, id, false)
	case actRebootHard:
		err = d.Reboot(ctx, id, true)
	case actPause:
		err = d.Pause(ctx, id)
	case actUnpause:
		err = d.Unpause(ctx, id)
	case actSuspend:
		err = d.Suspend(ctx, id)
	case actResume:
		err = d.Resume(ctx, id)
	default:
		return fmt.Errorf("agent: no driver call for action %s", o.act)
	}
	if errors.Is(err, driver.ErrNotFound) {
		return fmt.Errorf("server %s has no domain on host %s (lost?): rebuild, evacuate or delete it: %w", id, a.cfg.Name, err)
	}
	return err
}

// expectedPower is the power state an action leaves, for when the driver
// cannot be asked.
var expectedPower = map[action]int{
	actSpawn: hostapi.PowerRunning, actReportDone: hostapi.PowerRunning, actPowerOn: hostapi.PowerRunning,
	actReboot: hostapi.PowerRunning, actRebootHard: hostapi.PowerRunning, actUnpause: hostapi.PowerRunning,
	actResume: hostapi.PowerRunning, actPowerOff: hostapi.PowerShutdown, actSuspend: hostapi.PowerShutdown,
	actPause: hostapi.PowerPaused, actDestroy: hostapi.PowerNoState,
}

// powerAfter is the server's power state once the operation ended, as the
// driver lists it.
func (a *Agent) powerAfter(ctx context.Context, o op, opErr error) int {
	if o.act == actDestroy && opErr == nil {
		return hostapi.PowerNoState
	}
	doms, err := a.cfg.Driver.List(ctx)
	if err == nil {
		for _, d := range doms {
			if d.ServerID == o.a.ID {
				return d.PowerState
			}
		}
		return hostapi.PowerNoState
	}
	if opErr != nil {
		return observedPower(o.dom, o.exists)
	}
	return expectedPower[o.act]
}

// report sends a report; the controllers refusing it (409: the task or the
// placement changed meanwhile; 404: the server is gone) ends it, since the
// next answer says what to do now.
func (a *Agent) report(ctx context.Context, s hostapi.Assignment, r hostapi.Report) (uint64, error) {
	log := a.log.With("server", s.ID, "task", r.Task, "generation", r.Generation)
	index, err := a.client.report(ctx, a.cfg.Name, s.ID, r)
	switch st := statusOf(err); {
	case err == nil:
		log.Debug("reported", "power_state", r.PowerState, "failed", r.Error != "")
	case st == http.StatusConflict || st == http.StatusNotFound:
		log.Debug("report refused as stale; dropped", "error", err)
	case ctx.Err() != nil:
		log.Warn("report not sent before shutdown; the task will be reported after the restart", "error", err)
	default:
		log.Error("report refused", "error", err)
	}
	return index, err
}

// destroyOrphan removes a domain of a server not assigned to this host:
// the server was deleted or moved while the agent did not look, and two
// copies of one server must never run.
func (a *Agent) destroyOrphan(ctx context.Context, o op) {
	log := a.log.With("server", o.a.ID, "domain_generation", o.dom.Generation)
	log.Warn("destroying a domain of a server not assigned to this host (deleted, or moved to another host)")
	if err := a.cfg.Driver.Destroy(ctx, o.a.ID); err != nil {
		log.Error("cannot destroy the orphan domain; retrying on the next pass", "error", err)
		return
	}
	a.localChange.Store(true)
}

// cleanUpEvacuated destroys this host's copy of a server evacuated to
// another host (o.exists: a domain of the evacuated generation or older is
// here), then tells the controllers, so that the evacuation's migration is
// completed. A completion that fails for a moment is tried again on a later
// pass; one the controllers refuse (the migration is gone or not this
// host's) is not sent again.
func (a *Agent) cleanUpEvacuated(ctx context.Context, o op) {
	log := a.log.With("server", o.a.ID, "migration", o.evac.MigrationID, "evacuated_generation", o.evac.Generation)
	if o.exists {
		log.Warn("destroying this host's copy of a server evacuated to another host", "domain_generation", o.dom.Generation, "power_state", o.dom.PowerState)
		if err := a.cfg.Driver.Destroy(ctx, o.a.ID); err != nil {
			if ctx.Err() == nil {
				log.Error("cannot destroy the copy of an evacuated server; retrying on the next pass (it must not run here: stop it by hand if this persists, e.g. virsh destroy)", "error", err)
			}
			return
		}
		a.localChange.Store(true)
	}
	cctx, cancel := context.WithTimeout(ctx, a.cfg.RequestTimeout)
	defer cancel()
	err := a.client.completeMigration(cctx, a.cfg.Name, o.evac.MigrationID)
	switch {
	case err == nil:
		log.Info("no copy of the evacuated server left here: evacuation reported complete")
	case statusOf(err) != 0:
		log.Error("the controllers refused to complete the evacuation; not sent again (check the migration with `openstack server migration list`)", "error", err)
	case ctx.Err() != nil:
		return // shutting down: the next start sends it
	default:
		log.Warn("cannot report the evacuation complete yet; retrying on a later pass", "error", err)
		return
	}
	a.mu.Lock()
	a.completed[o.evac.MigrationID] = true
	a.mu.Unlock()
}
