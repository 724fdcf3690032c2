package cluster

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"time"

	"github.com/hashicorp/raft"

	"github.com/keel-cloud/keel/internal/gossip"
)

// Config configures one controller's cluster membership.
type Config struct {
	// Name is this controller's unique name: its Raft server ID and gossip
	// node name.
	Name string
	// DataDir holds the Raft log, snapshots, FSM store and gossip state.
	DataDir string
	// RaftAddr is the Raft transport address (host:port) to bind and
	// advertise. RaftListener, if set, is used instead of binding.
	RaftAddr     string
	RaftListener net.Listener
	// GossipAddr is the serf/memberlist address to bind and advertise; port
	// 0 picks a free port (tests).
	GossipAddr string
	// APIAddr is the address other controllers use to reach this one's
	// HTTP API (forwarded writes, read indexes, status).
	APIAddr string
	// BootstrapExpect: with N > 0, once N controllers with the same
	// setting see each other through gossip and none has Raft state, they
	// form the cluster together. 0: never bootstrap, wait to be added.
	BootstrapExpect int
	// Join lists gossip addresses of existing members to join at start.
	Join []string
	// ClusterKey is the 32-byte shared secret: it encrypts gossip and
	// authenticates controller-to-controller HTTP calls.
	ClusterKey []byte
	// Zone is this node's availability zone, published in gossip.
	Zone string
	// Version is published in gossip and in cluster status.
	Version string
	// Logger receives every log line of the node and its libraries.
	Logger *slog.Logger
	// Timing tunes Raft and gossip; the zero value means LANTiming().
	Timing Timing
	// NoSync turns off fsync of the Raft log. Unsafe: benchmarks only.
	NoSync bool

	// wrapFSM, in tests, stands between Raft and the FSM (to slow one
	// node's applies down, say).
	wrapFSM func(raft.BatchingFSM) raft.BatchingFSM
}

// Timing groups the failure-detection and replication knobs.
type Timing struct {
	HeartbeatTimeout   time.Duration
	ElectionTimeout    time.Duration
	LeaderLeaseTimeout time.Duration
	CommitTimeout      time.Duration
	// SnapshotThreshold: take a Raft snapshot after this many new entries;
	// TrailingLogs entries are kept behind it for slow followers.
	SnapshotThreshold uint64
	SnapshotInterval  time.Duration
	TrailingLogs      uint64
	// Gossip is the failure detection of the serf pool, shared with the
	// agents (internal/gossip).
	Gossip gossip.Timing
	// LeaderWait bounds how long a request waits for a leader to exist
	// before failing with ErrNoLeader.
	LeaderWait time.Duration
	// ReconcileInterval is how often the leader re-checks gossip members
	// against the Raft configuration.
	ReconcileInterval time.Duration
}

// LANTiming is the production default: failover in about a second on a LAN.
func LANTiming() Timing {
	return Timing{
		HeartbeatTimeout:   500 * time.Millisecond,
		ElectionTimeout:    500 * time.Millisecond,
		LeaderLeaseTimeout: 250 * time.Millisecond,
		CommitTimeout:      5 * time.Millisecond,
		SnapshotThreshold:  8192,
		SnapshotInterval:   60 * time.Second,
		TrailingLogs:       10240,
		Gossip:             gossip.LAN(),
		LeaderWait:         5 * time.Second,
		ReconcileInterval:  30 * time.Second,
	}
}

// TestTiming is for in-process test clusters on a loaded 2-core machine.
func TestTiming() Timing {
	t := LANTiming()
	t.HeartbeatTimeout = 300 * time.Millisecond
	t.ElectionTimeout = 300 * time.Millisecond
	t.LeaderLeaseTimeout = 150 * time.Millisecond
	t.SnapshotInterval = 5 * time.Second
	t.Gossip.ProbeInterval = 200 * time.Millisecond
	t.Gossip.ProbeTimeout = 100 * time.Millisecond
	t.Gossip.GossipInterval = 50 * time.Millisecond
	t.LeaderWait = 3 * time.Second
	t.ReconcileInterval = 2 * time.Second
	return t
}

func (c *Config) validate() error {
	switch {
	case c.Name == "":
		return errors.New("cluster: a node name is required (--name)")
	case c.DataDir == "":
		return errors.New("cluster: a data directory is required (--data-dir)")
	case c.RaftAddr == "" && c.RaftListener == nil:
		return errors.New("cluster: a Raft address is required (--raft-addr)")
	case c.APIAddr == "":
		return errors.New("cluster: the API address is required (--listen)")
	case len(c.ClusterKey) != 32:
		return fmt.Errorf("cluster: the cluster key must be 32 bytes, got %d (generate one with `keelctl keygen`)", len(c.ClusterKey))
	case c.BootstrapExpect < 0:
		return errors.New("cluster: --bootstrap-expect must be 0 or more")
	}
	if c.Timing == (Timing{}) {
		c.Timing = LANTiming()
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return nil
}
