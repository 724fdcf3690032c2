package cluster

import (
	"context"
	"sort"
	"strconv"
	"time"

	"github.com/hashicorp/raft"
	"github.com/hashicorp/serf/serf"
)

// bootstrapLoop forms a new cluster once BootstrapExpect controllers with the
// same setting see each other and none of them has Raft state. Every one of
// them bootstraps with the same configuration (all of them, sorted), which
// Raft accepts. A node with existing state, or one that finds a peer with
// state, never bootstraps: the leader adds it (reconcileMembers).
func (n *Node) bootstrapLoop() {
	defer n.wg.Done()
	expect := n.cfg.BootstrapExpect
	if expect == 0 {
		return
	}
	if has, err := raft.HasExistingState(n.logStore, n.logStore, n.snaps); err != nil || has {
		return
	}
	tick := time.NewTicker(500 * time.Millisecond)
	defer tick.Stop()
	for {
		if n.tryBootstrap(expect) {
			return
		}
		select {
		case <-n.ctx.Done():
			return
		case <-n.bootstrapCh:
		case <-tick.C:
		}
	}
}

// tryBootstrap reports whether bootstrapping is settled (done, or not ours
// to do).
func (n *Node) tryBootstrap(expect int) bool {
	var peers []serf.Member
	for _, m := range n.Members(RoleController) {
		if m.Status != serf.StatusAlive {
			continue
		}
		if got := m.Tags[TagBootstrap]; got != strconv.Itoa(expect) {
			if got != "" {
				n.log.Error("controllers disagree on --bootstrap-expect; not bootstrapping", "member", m.Name, "theirs", got, "ours", expect)
			}
			continue
		}
		peers = append(peers, m)
	}
	if len(peers) < expect {
		return false
	}
	for _, m := range peers {
		if m.Name == n.cfg.Name {
			continue
		}
		var st struct {
			HasState bool `json:"has_state"`
		}
		ctx, cancel := context.WithTimeout(n.ctx, 2*time.Second)
		err := n.client.get(ctx, m.Tags[TagAPIAddr], "/internal/v1/has-state", &st)
		cancel()
		if err != nil {
			n.log.Info("bootstrap: waiting for peer's API", "peer", m.Name, "error", err)
			return false
		}
		if st.HasState {
			n.log.Info("bootstrap: a cluster already exists; waiting for its leader to add this controller", "peer", m.Name)
			return true
		}
	}
	sort.Slice(peers, func(i, j int) bool { return peers[i].Name < peers[j].Name })
	var conf raft.Configuration
	for _, m := range peers {
		conf.Servers = append(conf.Servers, raft.Server{
			ID: raft.ServerID(m.Name), Address: raft.ServerAddress(m.Tags[TagRaftAddr]), Suffrage: raft.Voter,
		})
	}
	if err := n.raft.BootstrapCluster(conf).Error(); err != nil && err != raft.ErrCantBootstrap {
		n.log.Error("bootstrap failed", "error", err)
		return false
	}
	names := make([]string, len(peers))
	for i, m := range peers {
		names[i] = m.Name
	}
	n.log.Info("bootstrapped the cluster", "voters", names)
	return true
}
