package cluster

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/hashicorp/memberlist"
	"github.com/hashicorp/serf/serf"

	"github.com/keel-cloud/keel/fsm"
	"github.com/keel-cloud/keel/internal/gossip"
	"github.com/keel-cloud/keel/internal/logging"
)

// Gossip tags (internal/gossip), under the names the rest of the
// controller uses.
const (
	TagRole      = gossip.TagRole
	TagVersion   = gossip.TagVersion
	TagRaftAddr  = gossip.TagRaftAddr
	TagAPIAddr   = gossip.TagAPIAddr
	TagZone      = gossip.TagZone
	TagBootstrap = gossip.TagBootstrap
	// TagSchema is a controller's FSM schema (fsm.Schema): the leader
	// proposes a command only when every controller of the Raft
	// configuration advertises at least the schema it needs (apply.go).
	// A controller without it predates the tag: schema 1.
	TagSchema = "schema"

	RoleController = gossip.RoleController
	RoleAgent      = gossip.RoleAgent
)

func (n *Node) setupSerf() error {
	cfg := &n.cfg
	ml, err := gossip.Memberlist(cfg.Name, cfg.GossipAddr, cfg.ClusterKey, cfg.Timing.Gossip, n.log)
	if err != nil {
		return err
	}

	sc := serf.DefaultConfig()
	sc.NodeName = cfg.Name
	sc.MemberlistConfig = ml
	sc.EventCh = n.events
	sc.Logger = logging.Std(n.log, "serf")
	sc.RejoinAfterLeave = true
	sc.Tags = map[string]string{
		TagRole:    RoleController,
		TagVersion: cfg.Version,
		TagAPIAddr: cfg.APIAddr,
		TagZone:    cfg.Zone,
		TagSchema:  strconv.Itoa(fsm.Schema()),
	}
	sc.Tags[TagRaftAddr] = string(n.transport.LocalAddr())
	if cfg.BootstrapExpect > 0 {
		sc.Tags[TagBootstrap] = strconv.Itoa(cfg.BootstrapExpect)
	}
	dir := filepath.Join(cfg.DataDir, "serf")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	sc.SnapshotPath = filepath.Join(dir, "local.snapshot")
	if n.serf, err = serf.Create(sc); err != nil {
		return fmt.Errorf("start gossip on %s: %w (is another process using --gossip-addr?)", cfg.GossipAddr, err)
	}
	if ml.BindPort == 0 {
		m := n.serf.LocalMember()
		n.log.Info("gossip listening", "addr", net.JoinHostPort(m.Addr.String(), strconv.Itoa(int(m.Port))))
	}
	return nil
}

// GossipAddr is the address other nodes use to join this node's gossip pool.
func (n *Node) GossipAddr() string {
	m := n.serf.LocalMember()
	return net.JoinHostPort(m.Addr.String(), strconv.Itoa(int(m.Port)))
}

// Join contacts existing members by gossip address.
func (n *Node) Join(addrs []string) error {
	joined, err := n.serf.Join(addrs, true)
	if err != nil {
		if strings.Contains(err.Error(), "decrypt") || strings.Contains(err.Error(), "encrypt") || strings.Contains(err.Error(), "EOF") {
			return fmt.Errorf("join %v: %w (do all controllers use the same --cluster-key?)", addrs, err)
		}
		return fmt.Errorf("join %v: %w", addrs, err)
	}
	n.log.Info("joined gossip", "contacted", joined, "addrs", addrs)
	return nil
}

// retryJoin joins the --join addresses, retrying with backoff until one of
// them answers: controllers of a new cluster start in any order, and a peer
// that is not up yet must not leave this node alone for good.
func (n *Node) retryJoin() {
	defer n.wg.Done()
	if len(n.cfg.Join) == 0 {
		return
	}
	wait := 250 * time.Millisecond
	for attempt := 1; ; attempt++ {
		err := n.Join(n.cfg.Join)
		if err == nil {
			return
		}
		if attempt == 1 || attempt%10 == 0 {
			n.log.Warn("cannot join the cluster yet; retrying", "join", n.cfg.Join, "attempt", attempt, "error", err)
		}
		select {
		case <-n.ctx.Done():
			return
		case <-time.After(wait):
		}
		wait = min(2*wait, 5*time.Second)
	}
}

// Members returns the gossip members with the given role ("" for all).
func (n *Node) Members(role string) []serf.Member {
	var out []serf.Member
	for _, m := range n.serf.Members() {
		if role == "" || m.Tags[TagRole] == role {
			out = append(out, m)
		}
	}
	return out
}

// memberAPI returns the API address that controller name published.
func (n *Node) memberAPI(name string) (string, bool) {
	if name == n.cfg.Name {
		return n.cfg.APIAddr, true
	}
	for _, m := range n.serf.Members() {
		if m.Name == name && m.Tags[TagRole] == RoleController {
			return m.Tags[TagAPIAddr], m.Tags[TagAPIAddr] != ""
		}
	}
	return "", false
}

// gossipStatus is the status of a member as an operator reads it.
func (n *Node) gossipStatus(name string) string {
	for _, m := range n.serf.Memberlist().Members() {
		if m.Name == name && m.State == memberlist.StateSuspect {
			return "suspect"
		}
	}
	for _, m := range n.serf.Members() {
		if m.Name != name {
			continue
		}
		switch m.Status {
		case serf.StatusAlive:
			return "alive"
		case serf.StatusLeaving:
			return "leaving"
		case serf.StatusLeft:
			return "left"
		case serf.StatusFailed:
			return "failed"
		}
	}
	return "unknown"
}

// handleSerfEvents turns membership changes into nudges for the leader's
// reconcile loop and the bootstrap loop, and invalidates the schema gate's
// view (a member joined, failed, left or changed its tags); it never blocks.
func (n *Node) handleSerfEvents() {
	defer n.wg.Done()
	for {
		select {
		case <-n.ctx.Done():
			return
		case e := <-n.events:
			me, ok := e.(serf.MemberEvent)
			if !ok {
				continue
			}
			n.schema.gen.Add(1)
			for _, m := range me.Members {
				n.log.Info("gossip member "+strings.TrimPrefix(me.EventType().String(), "member-"), "member", m.Name, "role", m.Tags[TagRole], "addr", m.Addr.String())
			}
			nudge(n.reconcileCh)
			nudge(n.bootstrapCh)
		}
	}
}

func nudge(ch chan struct{}) {
	select {
	case ch <- struct{}{}:
	default:
	}
}

// Peers returns the names of the controllers in the Raft configuration.
func (n *Node) Peers() []string {
	f := n.raft.GetConfiguration()
	if f.Error() != nil {
		return nil
	}
	var out []string
	for _, s := range f.Configuration().Servers {
		out = append(out, string(s.ID))
	}
	return out
}

// GossipStatus is this node's gossip view of a member: alive, suspect,
// leaving, left, failed, or unknown (never seen).
func (n *Node) GossipStatus(name string) string { return n.gossipStatus(name) }
