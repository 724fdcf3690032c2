package cluster

import (
	"context"
	"fmt"
	"sort"
	"strconv"
	"sync"
	"time"

	"github.com/hashicorp/raft"
)

// ServerStatus is one controller's row in `keelctl cluster status`.
type ServerStatus struct {
	Name        string `json:"name"`
	RaftAddress string `json:"raft_address"`
	APIAddress  string `json:"api_address,omitempty"`
	// Role: leader, follower, candidate, non-voter, shutdown, or unknown
	// (unreachable), or "not-member" for a controller seen in gossip but
	// absent from the Raft configuration.
	Role   string `json:"role"`
	Voter  bool   `json:"voter"`
	Gossip string `json:"gossip"`
	// LastContactMS: milliseconds since the node last heard from the
	// leader (0 on the leader itself, -1 if never).
	LastContactMS int64  `json:"last_contact_ms"`
	AppliedIndex  uint64 `json:"applied_index"`
	CommitIndex   uint64 `json:"commit_index"`
	Term          uint64 `json:"term"`
	Version       string `json:"version,omitempty"`
	// FSMSchema is the FSM schema the controller advertises (fsm.Schema of
	// its binary; 0 when it predates the tag, which means schema 1). The
	// leader proposes a command only when every controller is at the
	// schema the command needs: during an upgrade, this column shows who
	// is behind.
	FSMSchema int    `json:"fsm_schema,omitempty"`
	Leader    string `json:"leader,omitempty"`
	Error     string `json:"error,omitempty"`
}

// ClusterStatus is the cluster as one controller sees it.
type ClusterStatus struct {
	Leader string `json:"leader"`
	// Healthy: a leader exists and a quorum of voters answered.
	Healthy bool `json:"healthy"`
	// Reason says why not, when not healthy.
	Reason  string         `json:"reason,omitempty"`
	Voters  int            `json:"voters"`
	Servers []ServerStatus `json:"servers"`
	// ReportedBy is the controller that assembled this status.
	ReportedBy string `json:"reported_by"`
}

// Self is this node's own status row (cheap: no network call).
func (n *Node) Self() ServerStatus {
	st := ServerStatus{
		Name:         n.cfg.Name,
		RaftAddress:  string(n.transport.LocalAddr()),
		APIAddress:   n.cfg.APIAddr,
		Role:         roleName(n.raft.State()),
		Gossip:       "alive",
		AppliedIndex: n.fsm.AppliedIndex(),
		CommitIndex:  n.raft.CommitIndex(),
		Version:      n.cfg.Version,
		FSMSchema:    advertisedSchema(n.serf.LocalMember().Tags),
		Leader:       n.Leader(),
	}
	st.Term, _ = strconv.ParseUint(n.raft.Stats()["term"], 10, 64)
	if f := n.raft.GetConfiguration(); f.Error() == nil {
		for _, s := range f.Configuration().Servers {
			if s.ID == raft.ServerID(n.cfg.Name) {
				st.Voter = s.Suffrage == raft.Voter
			}
		}
	}
	if st.Role == "follower" && !st.Voter {
		st.Role = "non-voter"
	}
	switch lc := n.raft.LastContact(); {
	case st.Role == "leader":
		st.LastContactMS = 0
	case lc.IsZero():
		st.LastContactMS = -1
	default:
		st.LastContactMS = time.Since(lc).Milliseconds()
	}
	return st
}

func roleName(s raft.RaftState) string {
	switch s {
	case raft.Leader:
		return "leader"
	case raft.Follower:
		return "follower"
	case raft.Candidate:
		return "candidate"
	case raft.Shutdown:
		return "shutdown"
	}
	return "unknown"
}

// Status asks every controller in the Raft configuration (and every
// controller gossip knows) for its own view, in parallel with a short
// timeout, and judges whether the cluster can serve writes.
func (n *Node) Status(ctx context.Context) ClusterStatus {
	out := ClusterStatus{ReportedBy: n.cfg.Name}
	type peer struct {
		name, raftAddr string
		voter, member  bool
	}
	peers := map[string]*peer{}
	if f := n.raft.GetConfiguration(); f.Error() == nil {
		for _, s := range f.Configuration().Servers {
			peers[string(s.ID)] = &peer{name: string(s.ID), raftAddr: string(s.Address), voter: s.Suffrage == raft.Voter, member: true}
		}
	}
	for _, m := range n.Members(RoleController) {
		if _, ok := peers[m.Name]; !ok {
			peers[m.Name] = &peer{name: m.Name, raftAddr: m.Tags[TagRaftAddr]}
		}
	}
	rows := make([]ServerStatus, 0, len(peers))
	var mu sync.Mutex
	var wg sync.WaitGroup
	for _, p := range peers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var st ServerStatus
			if p.name == n.cfg.Name {
				st = n.Self()
			} else if addr, ok := n.memberAPI(p.name); !ok {
				st = ServerStatus{Name: p.name, Role: "unknown", Error: "no API address in gossip", LastContactMS: -1}
			} else {
				cctx, cancel := context.WithTimeout(ctx, time.Second)
				err := n.client.get(cctx, addr, "/internal/v1/self", &st)
				cancel()
				if err != nil {
					st = ServerStatus{Name: p.name, APIAddress: addr, Role: "unknown", LastContactMS: -1, Error: err.Error()}
				}
			}
			st.Name, st.RaftAddress, st.Voter = p.name, p.raftAddr, p.voter
			if !p.member {
				st.Role = "not-member"
			}
			st.Gossip = n.gossipStatus(p.name)
			if st.FSMSchema == 0 {
				// Unreachable: what it last advertised.
				st.FSMSchema = n.memberSchemaTag(p.name)
			}
			mu.Lock()
			rows = append(rows, st)
			mu.Unlock()
		}()
	}
	wg.Wait()
	sort.Slice(rows, func(i, j int) bool { return rows[i].Name < rows[j].Name })
	out.Servers = rows

	reachable := 0
	for _, r := range rows {
		if r.Voter {
			out.Voters++
			if r.Error == "" && r.Role != "shutdown" {
				reachable++
			}
		}
		if r.Role == "leader" && r.Error == "" {
			out.Leader = r.Name
		}
	}
	quorum := out.Voters/2 + 1
	switch {
	case out.Voters == 0:
		out.Reason = "no raft configuration yet: the cluster has not bootstrapped (are --bootstrap-expect controllers running and joined?)"
	case out.Leader == "":
		out.Reason = fmt.Sprintf("no leader: %d of %d voters reachable, %d needed for a quorum", reachable, out.Voters, quorum)
	case reachable < quorum:
		out.Reason = fmt.Sprintf("no quorum: %d of %d voters reachable, %d needed", reachable, out.Voters, quorum)
	default:
		out.Healthy = true
	}
	return out
}

// advertisedSchema is the schema tag as is: 0 when absent or unreadable.
func advertisedSchema(tags map[string]string) int {
	s, _ := strconv.Atoi(tags[TagSchema])
	return max(s, 0)
}

// memberSchemaTag is the schema a controller last advertised in gossip.
func (n *Node) memberSchemaTag(name string) int {
	for _, m := range n.serf.Members() {
		if m.Name == name && m.Tags[TagRole] == RoleController {
			return advertisedSchema(m.Tags)
		}
	}
	return 0
}
