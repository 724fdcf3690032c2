// Package cluster runs one controller's membership in the Keel cluster:
// hashicorp/raft over a Pebble log store, serf/memberlist gossip, automatic
// bootstrap, forwarding of writes to the leader, linearizable reads, blocking
// queries and the leader-only loops. See README.md in this folder.
package cluster

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/hashicorp/raft"
	"github.com/hashicorp/serf/serf"

	"github.com/keel-cloud/keel/cluster/raftstore"
	"github.com/keel-cloud/keel/fsm"
	"github.com/keel-cloud/keel/internal/logging"
)

// Node is one controller's view of the cluster.
type Node struct {
	cfg Config
	log *slog.Logger

	fsm       *fsm.FSM
	raft      *raft.Raft
	logStore  *raftstore.Store
	snaps     raft.SnapshotStore
	transport *raft.NetworkTransport
	serf      *serf.Serf
	events    chan serf.Event
	notifyCh  chan bool

	client   *peerClient
	verifier verifier

	// established is closed while this node is a leader whose FSM has
	// applied everything committed before its term (see leader.go).
	estMu       sync.Mutex
	established chan struct{}

	loopsMu     sync.Mutex
	leaderLoops []LeaderLoop
	term        *leaderTerm // the established term's loops, nil when not leading
	reconcileCh chan struct{}
	bootstrapCh chan struct{}

	// schema caches the FSM schema of every controller for the gate on
	// proposals (apply.go); gossip events invalidate it.
	schema schemaGate

	ctx      context.Context
	cancel   context.CancelFunc
	wg       sync.WaitGroup
	stopOnce sync.Once
}

// LeaderLoop is a function run on the leader only: started once leadership is
// established, its context cancelled when leadership is lost or the node
// stops. It must return when ctx is done.
type LeaderLoop struct {
	Name string
	Run  func(ctx context.Context)
}

// New starts a node: opens its stores, starts Raft and joins gossip.
func New(cfg Config) (*Node, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	n := &Node{
		cfg:         cfg,
		log:         cfg.Logger.With("node", cfg.Name),
		events:      make(chan serf.Event, 256),
		notifyCh:    make(chan bool, 16),
		reconcileCh: make(chan struct{}, 1),
		bootstrapCh: make(chan struct{}, 1),
		established: make(chan struct{}),
	}
	n.ctx, n.cancel = context.WithCancel(context.Background())
	n.client = newPeerClient(cfg.ClusterKey)
	n.verifier.node = n
	if err := n.open(); err != nil {
		n.closeStores()
		return nil, err
	}
	n.wg.Add(4)
	go n.monitorLeadership()
	go n.handleSerfEvents()
	go n.bootstrapLoop()
	go n.retryJoin()
	return n, nil
}

func (n *Node) open() error {
	cfg := &n.cfg
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return fmt.Errorf("create data dir %s: %w", cfg.DataDir, err)
	}
	var err error
	if n.fsm, err = fsm.Open(filepath.Join(cfg.DataDir, "fsm"), fsm.Options{Logger: n.log}); err != nil {
		return err
	}
	if n.logStore, err = raftstore.Open(filepath.Join(cfg.DataDir, "raft"), raftstore.Options{Logger: n.log, NoSync: cfg.NoSync}); err != nil {
		return err
	}
	fileSnaps, err := raft.NewFileSnapshotStoreWithLogger(cfg.DataDir, 2, logging.HCLog(n.log, "raft"))
	if err != nil {
		return fmt.Errorf("open snapshot store in %s: %w", cfg.DataDir, err)
	}
	n.snaps = fileSnaps
	if restored, err := catchUpFromSnapshot(n.snaps, n.fsm); err != nil {
		return err
	} else if restored {
		n.log.Warn("FSM was behind the newest Raft snapshot (unclean shutdown?); restored it from the snapshot", "applied_index", n.fsm.AppliedIndex())
	}
	stream, err := newStreamLayer(cfg)
	if err != nil {
		return err
	}
	n.transport = raft.NewNetworkTransportWithConfig(&raft.NetworkTransportConfig{
		Stream:  stream,
		MaxPool: 8,
		Timeout: 10 * time.Second,
		Logger:  logging.HCLog(n.log, "raft-net"),
	})

	t := cfg.Timing
	rc := raft.DefaultConfig()
	rc.LocalID = raft.ServerID(cfg.Name)
	rc.Logger = logging.HCLog(n.log, "raft")
	rc.HeartbeatTimeout = t.HeartbeatTimeout
	rc.ElectionTimeout = t.ElectionTimeout
	rc.LeaderLeaseTimeout = t.LeaderLeaseTimeout
	rc.CommitTimeout = t.CommitTimeout
	rc.SnapshotThreshold = t.SnapshotThreshold
	rc.SnapshotInterval = t.SnapshotInterval
	rc.TrailingLogs = t.TrailingLogs
	rc.MaxAppendEntries = 512
	rc.BatchApplyCh = true
	rc.NotifyCh = n.notifyCh
	// The FSM is persistent and records its applied index: Raft must not
	// wipe it with an older snapshot on every start (see snapshots.go).
	rc.NoSnapshotRestoreOnStart = true
	var rf raft.FSM = n.fsm
	if cfg.wrapFSM != nil {
		rf = cfg.wrapFSM(n.fsm)
	}
	if n.raft, err = raft.NewRaft(rc, rf, n.logStore, n.logStore, n.snaps, n.transport); err != nil {
		return fmt.Errorf("start raft: %w", err)
	}
	return n.setupSerf()
}

// Name is this node's name.
func (n *Node) Name() string { return n.cfg.Name }

// FSM returns the node's state machine (read-only use: State, indexes).
func (n *Node) FSM() *fsm.FSM { return n.fsm }

// State is the node's committed state. Call Consistent first for a
// linearizable read.
func (n *Node) State() *fsm.State { return n.fsm.State() }

// IsLeader reports whether this node is the Raft leader now.
func (n *Node) IsLeader() bool { return n.raft.State() == raft.Leader }

// Leader returns the current leader's name, or "" if none is known.
func (n *Node) Leader() string {
	_, id := n.raft.LeaderWithID()
	return string(id)
}

// RegisterLeaderLoop adds a loop to run whenever this node leads; if it
// leads now, the loop starts at once in the current term.
func (n *Node) RegisterLeaderLoop(l LeaderLoop) {
	n.loopsMu.Lock()
	defer n.loopsMu.Unlock()
	n.leaderLoops = append(n.leaderLoops, l)
	if n.term != nil {
		n.term.start(l)
	}
}

// Shutdown leaves gracefully: hands leadership to another voter if this node
// leads, announces the leave through gossip (peers see "left", not
// "failed"), then stops Raft and closes the stores. The node stays in the
// Raft configuration: use RemovePeer (`keelctl cluster remove-peer`) to take
// it out for good.
func (n *Node) Shutdown() error {
	var err error
	n.stopOnce.Do(func() {
		if n.IsLeader() && n.otherVoters() > 0 {
			if ferr := n.raft.LeadershipTransfer().Error(); ferr != nil {
				n.log.Warn("leadership transfer before shutdown failed; the others will elect a leader after the election timeout", "error", ferr)
			} else {
				n.log.Info("transferred leadership before shutdown", "leader", n.Leader())
			}
		}
		if n.serf != nil {
			if lerr := n.serf.Leave(); lerr != nil {
				n.log.Warn("gossip leave failed; peers will see this node as failed", "error", lerr)
			}
		}
		err = n.stop()
	})
	return err
}

// Kill stops the node abruptly, as a crash would, without leaving gossip or
// handing over leadership. For tests.
func (n *Node) Kill() error {
	var err error
	n.stopOnce.Do(func() { err = n.stop() })
	return err
}

func (n *Node) stop() error {
	n.cancel()
	var errs []error
	if n.raft != nil {
		errs = append(errs, n.raft.Shutdown().Error())
	}
	if n.serf != nil {
		errs = append(errs, n.serf.Shutdown())
	}
	n.wg.Wait()
	if n.transport != nil {
		errs = append(errs, n.transport.Close())
	}
	n.client.close()
	errs = append(errs, n.closeStores())
	return errors.Join(errs...)
}

func (n *Node) closeStores() error {
	var errs []error
	if n.logStore != nil {
		errs = append(errs, n.logStore.Close())
	}
	if n.fsm != nil {
		errs = append(errs, n.fsm.Close())
	}
	return errors.Join(errs...)
}

func (n *Node) otherVoters() int {
	f := n.raft.GetConfiguration()
	if f.Error() != nil {
		return 0
	}
	c := 0
	for _, s := range f.Configuration().Servers {
		if s.Suffrage == raft.Voter && s.ID != raft.ServerID(n.cfg.Name) {
			c++
		}
	}
	return c
}

// Snapshot asks Raft to take a snapshot now and compact the log.
func (n *Node) Snapshot() error { return n.raft.Snapshot().Error() }

// Handler serves the internal controller-to-controller API under
// /internal/v1/ (see rpc.go). The api package mounts it.
func (n *Node) Handler() http.Handler { return n.internalHandler() }
