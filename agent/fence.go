package agent

import (
	"context"
	"errors"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/keel-cloud/keel/agent/driver"
	"github.com/keel-cloud/keel/internal/hostapi"
)

// Self-fencing. The agent holds a lease on its host's right to run guests:
// lastContact is when it sent the last query whose answer was fresh (the
// controller confirmed its state with the Raft leader), said the host is
// registered and said it is up. A lease older than FenceAfter fences the
// host: every domain is powered off hard (disks kept) and nothing starts
// until a fresh "up" answer renews the lease. The controllers allow
// evacuating a host that gossip reports down only after its FenceAfter plus
// a margin, so by then the old copies are off even if this host can reach
// no controller at all.
//
// The check runs on a timer (fenceLoop), not when answers come: an agent
// cut off from every controller gets none.

// fence is the agent's lease and fencing state.
type fence struct {
	// mu serialises the timer's checks and sweeps with renewals, so that
	// a sweep never stops a domain after the lease was renewed.
	mu          sync.Mutex
	lastContact time.Time
	fenced      bool
	since       time.Time // when the lease ran out (fenced)
	// stopped: servers whose domains fencing powered off, with the
	// domain's generation; started again once contact is back (if the
	// controllers still want them running here).
	stopped map[string]uint64
	// failed: domains fencing could not stop, logged once per episode.
	failed map[string]bool
	// listFailed: driver.List failed during this episode (logged once).
	listFailed bool
}

// leaseAge is how old the lease is.
func (a *Agent) leaseAge() time.Duration {
	a.fence.mu.Lock()
	defer a.fence.mu.Unlock()
	return time.Since(a.fence.lastContact)
}

// wantFresh: the next query asks for a fresh answer, because the lease is
// older than a third of the window.
func (a *Agent) wantFresh() bool {
	return a.cfg.FenceAfter > 0 && a.leaseAge() >= a.cfg.FenceAfter/3
}

// renewsLease: the answer proves the cluster considered the host up when
// it answered.
func renewsLease(ans hostapi.Assignments) bool {
	return ans.Fresh && ans.Host.Registered && ans.Host.Up
}

// renewLease records contact as of sent (when the query was sent: the
// cluster's word holds from no earlier than that) and ends fencing if the
// lease is valid again.
func (a *Agent) renewLease(sent time.Time) {
	if a.cfg.FenceAfter <= 0 {
		return
	}
	f := &a.fence
	f.mu.Lock()
	defer f.mu.Unlock()
	if sent.After(f.lastContact) {
		f.lastContact = sent
	}
	if !f.fenced || time.Since(f.lastContact) > a.cfg.FenceAfter {
		return
	}
	f.fenced = false
	a.fenced.Store(false)
	clear(f.failed)
	f.listFailed = false
	a.log.Warn("contact with the controllers is back (a fresh answer says this host is up): self-fencing ended; servers stopped by fencing that are still meant to run here are started again",
		"fenced_since", f.since.Format(time.RFC3339), "fenced_for", time.Since(f.since).Round(time.Millisecond),
		"stopped_by_fencing", len(f.stopped))
}

// isFenced reports whether the host is fenced now (any goroutine).
func (a *Agent) isFenced() bool { return a.fenced.Load() }

// fenceStopped is a copy of the servers fencing stopped.
func (a *Agent) fenceStopped() map[string]uint64 {
	a.fence.mu.Lock()
	defer a.fence.mu.Unlock()
	return maps.Clone(a.fence.stopped)
}

// forgetFenceStopped drops a server from the fence-stopped set: it was
// started again, or it is no longer meant to run here as it was.
func (a *Agent) forgetFenceStopped(id string, gen uint64) {
	a.fence.mu.Lock()
	defer a.fence.mu.Unlock()
	if g, ok := a.fence.stopped[id]; ok && g == gen {
		delete(a.fence.stopped, id)
	}
}

// fenceLoop checks the lease until ctx is done.
func (a *Agent) fenceLoop(ctx context.Context) {
	period := min(max(a.cfg.FenceAfter/10, time.Millisecond), time.Second)
	t := time.NewTicker(period)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			a.checkFence(ctx)
		}
	}
}

// checkFence fences the host when the lease ran out, and while fenced
// stops whatever runs (an operation that began before fencing may have
// started a guest since).
func (a *Agent) checkFence(ctx context.Context) {
	f := &a.fence
	f.mu.Lock()
	defer f.mu.Unlock()
	if time.Since(f.lastContact) <= a.cfg.FenceAfter {
		return
	}
	first := !f.fenced
	if first {
		f.fenced, f.since = true, f.lastContact.Add(a.cfg.FenceAfter)
		a.fenced.Store(true)
	}
	stopped, failed, listErr := a.sweep(ctx)
	if ctx.Err() != nil {
		return
	}
	if first {
		var problems []string
		if listErr != nil {
			problems = append(problems, "cannot list the domains: "+listErr.Error())
		}
		problems = append(problems, failed...)
		a.log.Error("SELF-FENCED: no fresh answer from the controllers saying this host is up for longer than --fence-after; "+
			"the servers running on this host were powered off (disks kept) and nothing will start here until a controller answers again. "+
			"The servers may be evacuated to other hosts meanwhile. Check: the network between this host and the controllers "+
			"(--controllers), that the controllers have a Raft leader (keelctl services), and whether an operator forced this host down",
			"last_contact", f.lastContact.Format(time.RFC3339), "fenced_since", f.since.Format(time.RFC3339),
			"fence_after", a.cfg.FenceAfter, "servers_stopped", len(stopped), "servers_not_stopped", len(failed),
			"problems", strings.Join(problems, "; "))
		return
	}
	if len(stopped) > 0 {
		a.log.Warn("fenced host: powered off servers that were running (an operation under way when fencing began?)", "servers", strings.Join(stopped, ","))
	}
	if listErr != nil && !f.listFailed {
		a.log.Error("fenced host: cannot list the domains to make sure none runs; retrying (is the hypervisor running? for libvirt: systemctl status libvirtd)", "error", listErr)
	}
	f.listFailed = f.listFailed || listErr != nil
}

// sweep powers off every active domain, in parallel; the caller holds
// fence.mu. It returns the servers it stopped and the failures (new ones
// are logged once per episode).
func (a *Agent) sweep(ctx context.Context) (stopped, failed []string, err error) {
	doms, err := a.cfg.Driver.List(ctx)
	if err != nil {
		return nil, nil, err
	}
	if a.fence.stopped == nil {
		a.fence.stopped, a.fence.failed = map[string]uint64{}, map[string]bool{}
	}
	stop := a.cfg.Driver.PowerOff
	if fo, ok := a.cfg.Driver.(driver.ForceOffer); ok {
		stop = fo.ForceOff
	}
	var mu sync.Mutex
	var wg sync.WaitGroup
	for _, d := range doms {
		if d.PowerState != hostapi.PowerRunning && d.PowerState != hostapi.PowerPaused {
			continue
		}
		wg.Go(func() {
			err := stop(ctx, d.ServerID)
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err == nil:
				a.fence.stopped[d.ServerID] = d.Generation
				delete(a.fence.failed, d.ServerID)
				stopped = append(stopped, d.ServerID)
			case errors.Is(err, driver.ErrNotFound) || ctx.Err() != nil:
			default:
				failed = append(failed, d.ServerID+": "+err.Error())
				if !a.fence.failed[d.ServerID] {
					a.fence.failed[d.ServerID] = true
					a.log.Error("fenced host: cannot power off a server; retrying (a guest still running here may run twice once evacuated: stop it by hand, e.g. virsh destroy)",
						"server", d.ServerID, "error", err)
				}
			}
		})
	}
	wg.Wait()
	slices.Sort(stopped)
	return stopped, failed, nil
}
