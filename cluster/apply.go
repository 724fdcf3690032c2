package cluster

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strings"
	"sync/atomic"
	"time"

	"github.com/hashicorp/raft"
	"github.com/hashicorp/serf/serf"

	"github.com/keel-cloud/keel/fsm"
)

// ErrOutcomeUnknown: leadership changed while the write was in flight; it
// may or may not have been applied. Callers re-read before retrying.
var ErrOutcomeUnknown = errors.New("the write may or may not have been applied: the leader changed while it was in flight; read the object back before retrying")

// Apply is the one write path: it encodes the command, proposes it (on the
// leader directly, forwarded otherwise) and returns the FSM's response. A
// command the FSM refused returns its *fsm.Error (with the response).
func (n *Node) Apply(ctx context.Context, c fsm.Command) (*fsm.Response, error) {
	data, err := fsm.EncodeCommand(c)
	if err != nil {
		return nil, err
	}
	if len(data) > 512<<10 {
		n.log.Warn("large raft entry", "command", c.CommandType().String(), "bytes", len(data))
	}
	return n.ApplyEncoded(ctx, data)
}

// ApplyEncoded proposes an already encoded command (a forwarded one). A
// command that some controller of the Raft configuration cannot apply yet
// (the schema gate, below) is refused with ErrUpgradeIncomplete.
func (n *Node) ApplyEncoded(ctx context.Context, data []byte) (*fsm.Response, error) {
	var resp *fsm.Response
	err := n.withLeader(ctx, func(leaderAPI string, self bool) error {
		var err error
		if self {
			resp, err = n.applyLocal(ctx, data)
		} else if resp, err = n.checkSchema(data); resp == nil && err == nil {
			// Checked here too: during an upgrade the leader may run the
			// older binary, which does not know the command's schema.
			resp, err = n.client.apply(ctx, leaderAPI, data)
		}
		return err
	})
	if err != nil {
		return resp, err
	}
	if resp.Index == 0 && resp.Err != nil {
		// Refused before it was proposed, here or by the leader.
		return resp, &upgradeError{msg: resp.Err.Message}
	}
	// Read-your-writes on this controller too: a forwarded write returns
	// once the leader applied it; wait until this node has as well, so the
	// caller's next request here (a token check reading local state, say)
	// sees it.
	if werr := n.WaitApplied(ctx, resp.Index); werr != nil {
		return resp, werr
	}
	if resp.Err != nil {
		return resp, resp.Err
	}
	return resp, nil
}

// applyLocal proposes on this node, which must lead. It is the one place
// entries are proposed (writes forwarded by other controllers come here
// too), so it is where the schema gate holds: a refusal is a Response with
// Index 0, which travels back to a forwarding controller like an FSM
// refusal.
func (n *Node) applyLocal(ctx context.Context, data []byte) (*fsm.Response, error) {
	if resp, err := n.checkSchema(data); resp != nil || err != nil {
		return resp, err
	}
	timeout := 30 * time.Second
	if d, ok := ctx.Deadline(); ok {
		timeout = time.Until(d)
	}
	f := n.raft.Apply(data, timeout)
	if err := f.Error(); err != nil {
		switch {
		case errors.Is(err, raft.ErrNotLeader), errors.Is(err, raft.ErrLeadershipTransferInProgress):
			return nil, errRetryLeader{err}
		case errors.Is(err, raft.ErrLeadershipLost):
			return nil, ErrOutcomeUnknown
		case errors.Is(err, raft.ErrEnqueueTimeout):
			return nil, fmt.Errorf("%w: the leader's queue stayed full", ErrNoLeader)
		case errors.Is(err, raft.ErrRaftShutdown):
			return nil, ErrShutdown
		}
		return nil, err
	}
	resp, ok := f.Response().(*fsm.Response)
	if !ok {
		return nil, fmt.Errorf("cluster: unexpected FSM response %T at index %d", f.Response(), f.Index())
	}
	return resp, nil
}

// errRetryLeader marks an error after which the operation certainly did not
// happen and may be retried against the (new) leader.
type errRetryLeader struct{ err error }

func (e errRetryLeader) Error() string { return e.err.Error() }
func (e errRetryLeader) Unwrap() error { return e.err }

// withLeader runs fn against the current leader, waiting up to LeaderWait for
// one to exist, and retrying while fn reports that the target was not (or is
// no longer) the leader.
func (n *Node) withLeader(ctx context.Context, fn func(leaderAPI string, self bool) error) error {
	deadline := time.Now().Add(n.cfg.Timing.LeaderWait)
	var last error
	for attempt := 0; ; attempt++ {
		if n.ctx.Err() != nil {
			return ErrShutdown
		}
		name := n.Leader()
		if name != "" {
			self := name == n.cfg.Name
			addr, ok := n.memberAPI(name)
			if self || ok {
				err := fn(addr, self)
				var retry errRetryLeader
				if !errors.As(err, &retry) {
					return err
				}
				last = retry.err
			} else {
				last = fmt.Errorf("leader %s has no API address in gossip yet", name)
			}
		}
		if time.Now().After(deadline) {
			if last != nil {
				return fmt.Errorf("%w (last attempt: %v)", ErrNoLeader, last)
			}
			return ErrNoLeader
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-n.ctx.Done():
			return ErrShutdown
		case <-time.After(backoff(attempt)):
		}
	}
}

func backoff(attempt int) time.Duration {
	d := 10 * time.Millisecond << min(attempt, 4)
	return min(d, 100*time.Millisecond)
}

// The schema gate. Every controller advertises the FSM schema of its binary
// in gossip (TagSchema); a command whose type and version need a schema that
// some controller of the Raft configuration does not advertise is refused
// before it is proposed: that controller would stop on the entry (see
// fsm.StopError), and with it perhaps the quorum. The check runs where the
// command enters (before it is forwarded: the leader may be the older one
// during an upgrade) and on the leader, the one place that proposes.

// commandSchema reads the schema an encoded command needs. Tests replace it
// (before starting their cluster) to gate a command that every binary
// applies.
var commandSchema = fsm.InspectCommand

// checkSchema returns a refusal (a Response with Index 0, which also
// travels back to a forwarding controller) when a controller of the Raft
// configuration may not apply data, and an error when this controller
// cannot read data at all. nil, nil: propose it.
func (n *Node) checkSchema(data []byte) (*fsm.Response, error) {
	h, err := commandSchema(data)
	if err != nil {
		var u *fsm.UnknownCommandError
		if errors.As(err, &u) {
			return nil, fsm.Errorf(fsm.KindInvalid, "not proposed: %s; controller %s runs Keel %s (FSM schema %d) and would stop on it. "+
				"A newer controller encoded it (or it is corrupt): finish upgrading the controllers, this one included", u, n.cfg.Name, n.cfg.Version, fsm.Schema())
		}
		return nil, err
	}
	if h.Schema <= 1 {
		// Every Keel controller applies schema 1: nothing to compare.
		return nil, nil
	}
	v := n.schemaView()
	if v.min >= h.Schema {
		return nil, nil
	}
	return &fsm.Response{Err: fsm.Errorf(fsm.KindConflict, "%s", v.refusal(n, h))}, nil
}

// schemaView is the FSM schema of every server of the Raft configuration, as
// gossip tells it: computed on the first gated command after a gossip member
// event or a configuration change, and shared until the next one.
type schemaView struct {
	gen     uint64 // gossip generation (schemaGate.gen) it was computed at
	servers []raft.ServerID
	rows    []serverSchema
	// min is the lowest schema of the servers: 0 when one of them is not in
	// gossip or advertises a schema this controller cannot read, or when
	// there is no configuration.
	min int
}

type serverSchema struct {
	name    string
	schema  int    // 0: unknown
	tag     string // the advertised tag, as is
	version string // its Keel version tag
	gossip  string // its gossip status; "" when not in gossip at all
}

// schemaGate is a node's cache of its schemaView.
type schemaGate struct {
	gen  atomic.Uint64 // bumped by every gossip member event
	view atomic.Pointer[schemaView]
}

// schemaView returns the cached view if neither gossip nor the Raft
// configuration changed since it was computed, else computes a new one.
func (n *Node) schemaView() *schemaView {
	f := n.raft.GetConfiguration()
	if f.Error() != nil {
		return &schemaView{}
	}
	servers := f.Configuration().Servers
	gen := n.schema.gen.Load()
	if v := n.schema.view.Load(); v != nil && v.gen == gen && v.sameServers(servers) {
		return v
	}
	v := n.computeSchemaView(gen, servers)
	n.schema.view.Store(v)
	return v
}

func (v *schemaView) sameServers(servers []raft.Server) bool {
	if len(servers) != len(v.servers) {
		return false
	}
	for i, s := range servers {
		if s.ID != v.servers[i] {
			return false
		}
	}
	return true
}

// computeSchemaView matches every server of the configuration (voter or not:
// each applies the log) to its gossip member by name, as the leader's
// reconcile loop does. Serf keeps failed and left members with their last
// tags; a server gossip does not know at all counts as unknown.
func (n *Node) computeSchemaView(gen uint64, servers []raft.Server) *schemaView {
	v := &schemaView{gen: gen}
	if len(servers) == 0 || n.serf == nil {
		return v
	}
	members := map[string]serf.Member{}
	for _, m := range n.serf.Members() {
		if m.Tags[TagRole] == RoleController {
			members[m.Name] = m
		}
	}
	v.min = math.MaxInt
	for _, s := range servers {
		row := serverSchema{name: string(s.ID)}
		if m, ok := members[row.name]; ok {
			row.gossip = m.Status.String()
			row.version = m.Tags[TagVersion]
			row.tag = m.Tags[TagSchema]
			row.schema = memberSchema(m.Tags)
		}
		v.servers = append(v.servers, s.ID)
		v.rows = append(v.rows, row)
		v.min = min(v.min, row.schema)
	}
	return v
}

// memberSchema is the FSM schema a controller's gossip tags advertise. A
// controller without the tag runs a Keel from before schemas were
// advertised: schema 1. An unreadable one is unknown (0).
func memberSchema(tags map[string]string) int {
	if _, ok := tags[TagSchema]; !ok {
		return 1
	}
	return advertisedSchema(tags)
}

// refusal says which controllers hold the command back and what to do.
func (v *schemaView) refusal(n *Node, h fsm.Header) string {
	var behind []string
	for _, r := range v.rows {
		switch {
		case r.gossip == "":
			behind = append(behind, fmt.Sprintf("%s is in the Raft configuration but not in this controller's gossip (start it with Keel %s or later, or remove it: keelctl cluster remove-peer %s)", r.name, n.cfg.Version, r.name))
		case r.schema == 0:
			behind = append(behind, fmt.Sprintf("%s advertises FSM schema %q, which cannot be read (Keel %s, gossip %s)", r.name, r.tag, r.version, r.gossip))
		case r.schema < h.Schema:
			behind = append(behind, fmt.Sprintf("%s is at schema %d (Keel %s, gossip %s)", r.name, r.schema, r.version, r.gossip))
		}
	}
	if len(v.rows) == 0 {
		behind = append(behind, "the Raft configuration is not known yet")
	}
	return fmt.Sprintf("this request needs every controller at FSM schema %d (Keel %s, which %s runs, or later); %s: finish upgrading the controllers, then retry. "+
		"Nothing was written (command %s version %d was not proposed)",
		h.Schema, n.cfg.Version, n.cfg.Name, strings.Join(behind, "; "), h.Type, h.Version)
}
