package agent

import (
	"context"

	"github.com/keel-cloud/keel/agent/driver"
	"github.com/keel-cloud/keel/internal/hostapi"
)

// doneTask is the last task an operation reported for a server, stamped
// with the clock when the report finished and, if the controller said it,
// the index at which the report was applied. An answer to a query sent
// before that moment, or with a lower index (a controller that had not
// applied the report yet), may still show the task; the task is then not
// run again, and the loop asks again at once (index=0: a consistent read)
// to see the state after the report.
type doneTask struct {
	gen   uint64
	task  string
	at    uint64
	index uint64
}

// observation is the power state last reported for a server without a
// task, so that a difference is reported once, not on every pass.
type observation struct {
	gen   uint64
	power int
}

// op is one unit of work for one server.
type op struct {
	act    action
	a      hostapi.Assignment // for an orphan: only ID
	dom    driver.Domain
	exists bool
	power  int // actObserve: the power state to report
	orphan bool
	evac   hostapi.Evacuated // actEvacuated
}

// reconcile compares one answer with the driver's domains and starts the
// operations that converge them. It reports whether the loop should ask
// again at once instead of blocking.
func (a *Agent) reconcile(ctx, opCtx context.Context, ans hostapi.Assignments, sent uint64) (refresh bool, err error) {
	a.localChange.Store(false) // this pass sees every change made until List
	doms, err := a.cfg.Driver.List(ctx)
	if err != nil {
		return false, err
	}
	a.setForcedDown(ans.Host.ForcedDown)
	fenced := a.isFenced()
	hold := a.forcedDown || fenced
	stopped := a.fenceStopped()
	byID := make(map[string]driver.Domain, len(doms))
	for _, d := range doms {
		byID[d.ServerID] = d
	}
	assigned := make(map[string]bool, len(ans.Servers))

	a.mu.Lock()
	defer a.mu.Unlock()
	pending := false
	dispatch := func(o op) {
		if len(a.inflight) >= a.cfg.Parallel {
			pending = true // picked up when a slot frees (kick)
			return
		}
		a.inflight[o.a.ID] = true
		a.ops.Add(1)
		go a.run(opCtx, o)
	}
	for _, s := range ans.Servers {
		if s.ID == "" {
			continue
		}
		assigned[s.ID] = true
		if s.Generation < a.seenGen[s.ID] {
			a.log.Debug("assignment of an older generation than one already seen; ignored", "server", s.ID, "generation", s.Generation, "seen", a.seenGen[s.ID])
			continue
		}
		a.seenGen[s.ID] = s.Generation
		if a.inflight[s.ID] {
			pending = true
			continue
		}
		if dt, ok := a.done[s.ID]; ok && dt.gen == s.Generation && dt.task == s.TaskState && s.TaskState != "" &&
			(dt.at > sent || ans.Index < dt.index) {
			refresh = true
			continue
		}
		d, exists := byID[s.ID]
		if gen, ok := stopped[s.ID]; ok {
			// Self-fencing powered this domain off. While the server is
			// still meant to run here as it was, it is started again once
			// the host may start guests, and until then its power state
			// is not reported (it did not stop by itself).
			if exists && d.Generation == gen && s.Generation == gen && s.TaskState == "" && s.VMState == hostapi.VMActive {
				if hold {
					continue
				}
				if d.PowerState != hostapi.PowerRunning {
					dispatch(op{act: actRestart, a: s, dom: d, exists: true})
					continue
				}
			}
			a.forgetFenceStopped(s.ID, gen)
		}
		act := decide(s, d, exists, hold)
		if act != actUnknownTask {
			delete(a.unknownTask, s.ID)
		}
		switch act {
		case actNone:
		case actStaleAnswer:
			a.log.Debug("the domain here is of a newer generation than the answer; waiting for a newer answer", "server", s.ID, "generation", s.Generation, "domain_generation", d.Generation)
		case actHeld:
			a.log.Debug("task held: the host is forced down or fenced", "server", s.ID, "task", s.TaskState, "forced_down", a.forcedDown, "fenced", fenced)
		case actUnknownTask:
			if a.unknownTask[s.ID] != s.TaskState {
				a.log.Warn("task unknown to this agent (is the agent older than the controllers?); the server is left as it is", "server", s.ID, "task", s.TaskState)
				a.unknownTask[s.ID] = s.TaskState
			}
		case actObserve:
			p := observedPower(d, exists)
			if p == s.PowerState {
				delete(a.lastObs, s.ID)
				continue
			}
			if a.lastObs[s.ID] == (observation{s.Generation, p}) {
				continue
			}
			dispatch(op{act: act, a: s, dom: d, exists: exists, power: p})
		default:
			dispatch(op{act: act, a: s, dom: d, exists: exists})
		}
	}
	// Servers evacuated away: destroy the copies of the evacuated
	// generation or older (never a newer domain: the server placed back
	// here since), then report the migration complete. Destroying is
	// allowed while forced down or fenced.
	evacuated := make(map[string]bool, len(ans.Evacuated))
	migrations := make(map[string]bool, len(ans.Evacuated))
	for _, e := range ans.Evacuated {
		if e.ServerID == "" || e.MigrationID == "" {
			continue
		}
		evacuated[e.ServerID], migrations[e.MigrationID] = true, true
		if a.completed[e.MigrationID] || a.inflight[e.ServerID] {
			continue
		}
		d, exists := byID[e.ServerID]
		stale := exists && d.Generation <= e.Generation
		dispatch(op{act: actEvacuated, a: hostapi.Assignment{ID: e.ServerID, Generation: e.Generation}, dom: d, exists: stale, evac: e})
	}
	for _, d := range doms {
		if assigned[d.ServerID] || a.inflight[d.ServerID] || evacuated[d.ServerID] {
			continue
		}
		dispatch(op{act: actDestroy, a: hostapi.Assignment{ID: d.ServerID}, dom: d, exists: true, orphan: true})
	}
	// Forget what no longer concerns this host.
	for id := range a.seenGen {
		if _, ok := byID[id]; !ok && !assigned[id] {
			delete(a.seenGen, id)
		}
	}
	for id := range a.done {
		if _, ok := byID[id]; !ok && !assigned[id] && !a.inflight[id] {
			delete(a.done, id)
		}
	}
	for id := range a.lastObs {
		if !assigned[id] {
			delete(a.lastObs, id)
		}
	}
	for id := range a.unknownTask {
		if !assigned[id] {
			delete(a.unknownTask, id)
		}
	}
	for id := range a.completed {
		if !migrations[id] {
			delete(a.completed, id)
		}
	}
	for id, gen := range stopped {
		if !assigned[id] {
			a.forgetFenceStopped(id, gen)
		}
	}
	a.pending.Store(pending)
	return refresh, nil
}
