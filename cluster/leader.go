package cluster

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/hashicorp/raft"
	"github.com/hashicorp/serf/serf"

	"github.com/keel-cloud/keel/fsm"
)

// monitorLeadership runs exactly one leader loop while this node leads.
// raft's NotifyCh (unlike LeaderCh) never drops a transition.
func (n *Node) monitorLeadership() {
	defer n.wg.Done()
	type term struct {
		cancel context.CancelFunc
		done   chan struct{}
	}
	var cur *term
	stopLeading := func() {
		if cur != nil {
			cur.cancel()
			<-cur.done
			cur = nil
		}
	}
	defer stopLeading()
	for {
		select {
		case <-n.ctx.Done():
			return
		case leading := <-n.notifyCh:
			if leading && cur == nil {
				ctx, cancel := context.WithCancel(n.ctx)
				cur = &term{cancel: cancel, done: make(chan struct{})}
				go func(done chan struct{}) {
					defer close(done)
					n.lead(ctx)
				}(cur.done)
			} else if !leading {
				stopLeading()
			}
		}
	}
}

// lead establishes leadership, then runs the leader loops until ctx ends.
func (n *Node) lead(ctx context.Context) {
	n.log.Info("gained leadership; establishing")
	start := time.Now()
	// A Barrier command applied in our term proves our FSM holds every
	// entry committed before it: until then our reads could miss writes
	// acknowledged by the previous leader.
	for {
		data, _ := fsm.EncodeCommand(&fsm.Barrier{Node: n.cfg.Name})
		if _, err := n.applyLocal(ctx, data); err == nil {
			break
		} else if ctx.Err() != nil || errors.Is(err, raft.ErrNotLeader) || errors.Is(err, raft.ErrLeadershipLost) {
			n.log.Warn("lost leadership while establishing it", "error", err)
			return
		} else {
			n.log.Error("could not establish leadership; retrying", "error", err)
			select {
			case <-ctx.Done():
				return
			case <-time.After(100 * time.Millisecond):
			}
		}
	}
	n.setEstablished(true)
	defer n.setEstablished(false)
	n.log.Info("leadership established", "took", time.Since(start).Round(time.Millisecond), "applied_index", n.fsm.AppliedIndex())

	term := &leaderTerm{ctx: ctx}
	n.loopsMu.Lock()
	n.term = term
	for _, l := range append([]LeaderLoop{{Name: "reconcile-members", Run: n.reconcileLoop}}, n.leaderLoops...) {
		term.start(l)
	}
	n.loopsMu.Unlock()
	<-ctx.Done()
	n.loopsMu.Lock()
	n.term = nil
	n.loopsMu.Unlock()
	term.wg.Wait()
	n.log.Info("leadership lost; leader loops stopped")
}

// leaderTerm is one established term's set of running leader loops.
type leaderTerm struct {
	ctx context.Context
	wg  sync.WaitGroup
}

func (t *leaderTerm) start(l LeaderLoop) {
	t.wg.Add(1)
	go func() {
		defer t.wg.Done()
		l.Run(t.ctx)
	}()
}

func (n *Node) setEstablished(on bool) {
	n.estMu.Lock()
	defer n.estMu.Unlock()
	select {
	case <-n.established:
		if !on {
			n.established = make(chan struct{})
		}
	default:
		if on {
			close(n.established)
		}
	}
}

// waitEstablished waits until this node is an established leader.
func (n *Node) waitEstablished(ctx context.Context) error {
	for {
		if !n.IsLeader() {
			return raft.ErrNotLeader
		}
		n.estMu.Lock()
		ch := n.established
		n.estMu.Unlock()
		select {
		case <-ch:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(20 * time.Millisecond):
			// re-check that we still lead
		}
	}
}

// reconcileLoop makes the Raft configuration follow gossip: every alive
// controller becomes a voter. Departed members are not removed: an operator
// does that explicitly (RemovePeer), so a restart never shrinks the cluster.
func (n *Node) reconcileLoop(ctx context.Context) {
	tick := time.NewTicker(n.cfg.Timing.ReconcileInterval)
	defer tick.Stop()
	for {
		n.reconcileMembers()
		select {
		case <-ctx.Done():
			return
		case <-n.reconcileCh:
		case <-tick.C:
		}
	}
}

func (n *Node) reconcileMembers() {
	f := n.raft.GetConfiguration()
	if err := f.Error(); err != nil {
		n.log.Warn("reconcile: cannot read the raft configuration", "error", err)
		return
	}
	known := map[raft.ServerID]raft.ServerAddress{}
	for _, s := range f.Configuration().Servers {
		known[s.ID] = s.Address
	}
	for _, m := range n.Members(RoleController) {
		if m.Status != serf.StatusAlive {
			continue
		}
		id, addr := raft.ServerID(m.Name), raft.ServerAddress(m.Tags[TagRaftAddr])
		if addr == "" {
			continue
		}
		cur, ok := known[id]
		if ok && cur == addr {
			continue
		}
		if ok {
			n.log.Warn("controller's raft address changed; updating the configuration", "member", m.Name, "old", cur, "new", addr)
			if err := n.raft.RemoveServer(id, 0, 0).Error(); err != nil {
				n.log.Error("reconcile: remove stale peer", "member", m.Name, "error", err)
				continue
			}
		}
		if err := n.raft.AddVoter(id, addr, 0, 0).Error(); err != nil {
			n.log.Error("reconcile: could not add controller as a voter", "member", m.Name, "raft_addr", addr, "error", err)
			continue
		}
		n.log.Info("added controller to the raft configuration", "member", m.Name, "raft_addr", addr)
	}
}
