package agent

import (
	"context"
	"net/http"
	"time"

	"github.com/keel-cloud/keel/internal/hostapi"
)

// loop registers the host, then asks for its assignments with a blocking
// query and reconciles each answer, until ctx is done. Operations run on
// opCtx.
func (a *Agent) loop(ctx, opCtx context.Context) {
	st, ok := a.register(ctx)
	if !ok {
		return
	}
	a.setForcedDown(st.ForcedDown)
	var index uint64
	refresh := true        // the first answer must come at once
	justRegistered := true // a controller that forgets at once is not asked again in a loop
	wait := a.cfg.MinBackoff
	sleep := func() bool {
		t := time.NewTimer(jitter(wait))
		defer t.Stop()
		wait = min(2*wait, a.cfg.MaxBackoff)
		select {
		case <-ctx.Done():
			return false
		case <-t.C:
			return true
		}
	}
	for ctx.Err() == nil {
		q := index
		if refresh {
			q = 0
		}
		refresh = false
		sent := a.clock.Add(1)
		sentAt := time.Now()
		ans, err, kicked := a.query(ctx, q, a.wantFresh())
		switch {
		case ctx.Err() != nil:
			return
		case kicked:
			refresh = true
			continue
		case statusOf(err) == http.StatusNotFound:
			ans.Host.Registered = false // a controller that does not know the host
		case err != nil:
			if !a.queryFailing {
				a.log.Error("the controllers refuse this host's query of its servers; retrying", "error", err)
				a.queryFailing = true
			}
			if !sleep() {
				return
			}
			continue
		}
		a.queryFailing = false
		if renewsLease(ans) {
			a.renewLease(sentAt)
		}
		if ans.Host.Registered {
			justRegistered = false
		}
		if !ans.Host.Registered {
			a.log.Warn("the controllers do not know this host (a new or restored cluster?): registering again")
			if justRegistered && !sleep() {
				return
			}
			justRegistered = true
			st, ok := a.register(ctx)
			if !ok {
				return
			}
			a.setForcedDown(st.ForcedDown)
			refresh = true
			continue
		}
		if !a.fresh(ans.Index) {
			// Ask a controller that is behind to answer only once it has
			// caught up with what was already acted on.
			index = a.maxIndex
			continue
		}
		index = ans.Index
		r, err := a.reconcile(ctx, opCtx, ans, sent)
		if err != nil {
			if !a.listFailing {
				a.log.Error("cannot list the domains on this host; retrying (is the hypervisor running? for libvirt: systemctl status libvirtd)", "error", err)
				a.listFailing = true
			}
			refresh = true
			if !sleep() {
				return
			}
			continue
		}
		if a.listFailing {
			a.log.Info("the hypervisor answers again")
			a.listFailing = false
		}
		wait = a.cfg.MinBackoff
		refresh = r
		a.recheckRegistration(ctx)
	}
}

// query runs one blocking query (fresh: asking the controller to confirm
// its state with the leader, for the fencing lease); it is cut short
// (kicked) when an operation finishes while work waits for it.
func (a *Agent) query(ctx context.Context, index uint64, fresh bool) (ans hostapi.Assignments, err error, kicked bool) {
	qctx, cancel := context.WithCancel(ctx)
	defer cancel()
	type result struct {
		ans hostapi.Assignments
		err error
	}
	ch := make(chan result, 1)
	go func() {
		ans, err := a.client.servers(qctx, a.cfg.Name, index, a.cfg.Wait, fresh)
		ch <- result{ans, err}
	}()
	for {
		select {
		case r := <-ch:
			return r.ans, r.err, false
		case <-a.kick:
			if index != 0 && (a.pending.Load() || a.localChange.Load()) {
				cancel()
				<-ch
				return hostapi.Assignments{}, nil, true
			}
		}
	}
}

// fresh reports whether an answer with this index may be acted on. An
// answer older than one already acted on comes from a controller that is
// behind, and acting on it could undo newer work (destroy a server just
// placed here); but answers that stay behind for StaleIndexReset mean the
// cluster's state was rebuilt, and the agent follows it.
func (a *Agent) fresh(index uint64) bool {
	if index >= a.maxIndex {
		a.maxIndex, a.staleSince = index, time.Time{}
		return true
	}
	if a.staleSince.IsZero() {
		a.staleSince = time.Now()
		a.log.Debug("answer older than one already acted on; waiting for that controller to catch up", "index", index, "acted_on", a.maxIndex)
		return false
	}
	if time.Since(a.staleSince) < a.cfg.StaleIndexReset {
		return false
	}
	a.log.Warn("the controllers' state index went back and stayed back (restored cluster?): following it", "index", index, "was", a.maxIndex)
	a.maxIndex, a.staleSince = index, time.Time{}
	return true
}

// setForcedDown logs the changes of the host's forced-down state: loudly
// when the host becomes fenced, since the agent then starts nothing.
func (a *Agent) setForcedDown(v bool) {
	switch {
	case v && !a.forcedDown:
		a.log.Error("this host is FORCED DOWN by an operator: no server will be started, powered on, resumed, unpaused or rebooted here until an operator clears forced_down; deletes, power-offs and the clean-up of servers that moved away go on; with self-fencing, the running servers are powered off once --fence-after passes without an answer saying this host is up",
			"fence_after", a.cfg.FenceAfter)
	case !v && a.forcedDown:
		a.log.Warn("forced_down cleared: this host starts servers again")
	}
	a.forcedDown = v
}
