package raftstore_test

import (
	"encoding/binary"
	"fmt"
	"io"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/raft"

	"github.com/keel-cloud/keel/cluster/raftstore"
)

// counterFSM counts the commands applied to it.
type counterFSM struct {
	mu    sync.Mutex
	count uint64
}

func (f *counterFSM) Apply(l *raft.Log) any {
	f.mu.Lock()
	defer f.mu.Unlock()
	if l.Type == raft.LogCommand {
		f.count++
	}
	return f.count
}

func (f *counterFSM) Count() uint64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.count
}

func (f *counterFSM) Snapshot() (raft.FSMSnapshot, error) {
	return counterSnapshot(f.Count()), nil
}

func (f *counterFSM) Restore(rc io.ReadCloser) error {
	defer rc.Close()
	var buf [8]byte
	if _, err := io.ReadFull(rc, buf[:]); err != nil {
		return fmt.Errorf("restore counter: %w", err)
	}
	f.mu.Lock()
	f.count = binary.BigEndian.Uint64(buf[:])
	f.mu.Unlock()
	return nil
}

type counterSnapshot uint64

func (c counterSnapshot) Persist(sink raft.SnapshotSink) error {
	if _, err := sink.Write(binary.BigEndian.AppendUint64(nil, uint64(c))); err != nil {
		_ = sink.Cancel()
		return err
	}
	return sink.Close()
}

func (counterSnapshot) Release() {}

// node is one member of the test cluster. The store directory and the
// snapshot store outlive a restart; everything else is replaced.
type node struct {
	id    raft.ServerID
	addr  raft.ServerAddress
	dir   string
	snaps *raft.InmemSnapshotStore
	store *raftstore.Store
	fsm   *counterFSM
	trans *raft.InmemTransport
	raft  *raft.Raft
}

func raftConfig(id raft.ServerID) *raft.Config {
	c := raft.DefaultConfig()
	c.LocalID = id
	c.HeartbeatTimeout = 100 * time.Millisecond
	c.ElectionTimeout = 100 * time.Millisecond
	c.LeaderLeaseTimeout = 50 * time.Millisecond
	c.CommitTimeout = 5 * time.Millisecond
	// Keep few logs behind a snapshot so compaction (DeleteRange) really
	// happens, and snapshot only when the test asks for it.
	c.TrailingLogs = 20
	c.SnapshotThreshold = 1 << 30
	c.SnapshotInterval = time.Hour
	c.LogOutput = io.Discard
	c.LogLevel = "OFF"
	return c
}

// start opens the node's store and starts raft on it.
func (n *node) start(t *testing.T) {
	t.Helper()
	var err error
	if n.store, err = raftstore.Open(n.dir, raftstore.Options{}); err != nil {
		t.Fatalf("%s: open store: %v", n.id, err)
	}
	n.fsm = &counterFSM{}
	n.addr, n.trans = raft.NewInmemTransport(n.addr)
	n.raft, err = raft.NewRaft(raftConfig(n.id), n.fsm, n.store, n.store, n.snaps, n.trans)
	if err != nil {
		t.Fatalf("%s: NewRaft: %v", n.id, err)
	}
}

// stop shuts raft down and closes the store, as a process exit would.
func (n *node) stop(t *testing.T) {
	t.Helper()
	if n.raft == nil {
		return
	}
	if err := n.raft.Shutdown().Error(); err != nil {
		t.Errorf("%s: shutdown: %v", n.id, err)
	}
	if err := n.store.Close(); err != nil {
		t.Errorf("%s: close store: %v", n.id, err)
	}
	n.raft = nil
}

// connect wires every pair of transports in both directions, replacing
// any transport a restarted node had before.
func connect(nodes []*node) {
	for _, a := range nodes {
		for _, b := range nodes {
			if a != b {
				a.trans.Disconnect(b.addr)
				a.trans.Connect(b.addr, b.trans)
			}
		}
	}
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func leaderOf(t *testing.T, nodes []*node) *node {
	t.Helper()
	var leader *node
	waitFor(t, 10*time.Second, "a leader", func() bool {
		for _, n := range nodes {
			if n.raft != nil && n.raft.State() == raft.Leader {
				leader = n
				return true
			}
		}
		return false
	})
	return leader
}

// applyAll applies count commands through the leader, pipelined, and
// returns the log index of the last one.
func applyAll(t *testing.T, leader *node, count int) uint64 {
	t.Helper()
	futures := make([]raft.ApplyFuture, count)
	for i := range futures {
		futures[i] = leader.raft.Apply([]byte(fmt.Sprintf("cmd-%d", i)), 5*time.Second)
	}
	for i, f := range futures {
		if err := f.Error(); err != nil {
			t.Fatalf("apply %d: %v", i, err)
		}
	}
	return futures[len(futures)-1].Index()
}

func waitForCount(t *testing.T, nodes []*node, want uint64) {
	t.Helper()
	for _, n := range nodes {
		waitFor(t, 10*time.Second, fmt.Sprintf("%s to apply %d commands", n.id, want), func() bool {
			return n.fsm.Count() == want
		})
	}
}

// TestRaftCluster runs a three-node hashicorp/raft cluster on this store:
// replication, snapshot-driven compaction, and a follower that restarts
// from its store and catches up through an installed snapshot.
func TestRaftCluster(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a raft cluster")
	}
	root := t.TempDir()
	var nodes []*node
	var servers []raft.Server
	for i := 0; i < 3; i++ {
		n := &node{
			id:    raft.ServerID(fmt.Sprintf("node-%d", i)),
			addr:  raft.ServerAddress(fmt.Sprintf("inmem-%d", i)),
			dir:   filepath.Join(root, fmt.Sprintf("node-%d", i)),
			snaps: raft.NewInmemSnapshotStore(),
		}
		n.start(t)
		t.Cleanup(func() { n.stop(t) })
		nodes = append(nodes, n)
		servers = append(servers, raft.Server{ID: n.id, Address: n.addr})
	}
	connect(nodes)
	if err := nodes[0].raft.BootstrapCluster(raft.Configuration{Servers: servers}).Error(); err != nil {
		t.Fatalf("bootstrap: %v", err)
	}

	// Replicate a few hundred commands.
	leader := leaderOf(t, nodes)
	const firstBatch = 300
	lastIndex := applyAll(t, leader, firstBatch)
	waitForCount(t, nodes, firstBatch)
	for _, n := range nodes {
		waitFor(t, 5*time.Second, fmt.Sprintf("%s to store index %d", n.id, lastIndex), func() bool {
			last, err := n.store.LastIndex()
			return err == nil && last >= lastIndex
		})
		first, _ := n.store.FirstIndex()
		if first != 1 {
			t.Fatalf("%s: first index %d before any compaction, want 1", n.id, first)
		}
	}

	// Snapshot every node: raft then deletes all but TrailingLogs entries.
	for _, n := range nodes {
		if err := n.raft.Snapshot().Error(); err != nil {
			t.Fatalf("%s: snapshot: %v", n.id, err)
		}
		first, _ := n.store.FirstIndex()
		last, _ := n.store.LastIndex()
		if first <= 1 || first > last || last < lastIndex {
			t.Fatalf("%s: after compaction bounds are [%d, %d], want 1 < first <= last, last >= %d",
				n.id, first, last, lastIndex)
		}
	}

	// Take a follower down, move the cluster on far enough that the leader
	// compacts past everything the follower has, then restart it.
	var follower *node
	for _, n := range nodes {
		if n != leader {
			follower = n
			break
		}
	}
	followerLast, _ := follower.store.LastIndex()
	follower.stop(t)

	const secondBatch = 200
	lastIndex = applyAll(t, leader, secondBatch)
	if err := leader.raft.Snapshot().Error(); err != nil {
		t.Fatalf("leader snapshot: %v", err)
	}
	if first, _ := leader.store.FirstIndex(); first <= followerLast+1 {
		t.Fatalf("leader still holds index %d the follower needs; the test would not install a snapshot", followerLast+1)
	}

	follower.start(t)
	connect(nodes)
	if term, err := follower.store.GetUint64([]byte("CurrentTerm")); err != nil || term == 0 {
		t.Fatalf("%s: CurrentTerm after restart = %d, %v; want it persisted", follower.id, term, err)
	}
	waitForCount(t, nodes, firstBatch+secondBatch)
	if metas, err := follower.snaps.List(); err != nil || len(metas) == 0 || metas[0].Index < lastIndex {
		t.Fatalf("%s: caught up without installing the leader's snapshot (snapshots %v, err %v)", follower.id, metas, err)
	}

	// The follower now has a snapshot but no entries past it; a final
	// batch gives every store fresh entries to compare.
	const thirdBatch = 50
	lastIndex = applyAll(t, leader, thirdBatch)
	waitForCount(t, nodes, firstBatch+secondBatch+thirdBatch)
	hi := ^uint64(0)
	for _, n := range nodes {
		waitFor(t, 5*time.Second, fmt.Sprintf("%s to store index %d", n.id, lastIndex), func() bool {
			last, err := n.store.LastIndex()
			return err == nil && last >= lastIndex
		})
		last, _ := n.store.LastIndex()
		hi = min(hi, last)
	}

	// Walking back from the newest common index, every store holds the
	// same entries until the first index one of them lacks (the restarted
	// follower's log has a gap where the installed snapshot stands in).
	compared := 0
	for i := hi; i > 0; i-- {
		var want raft.Log
		missing := false
		for j, n := range nodes {
			var got raft.Log
			err := n.store.GetLog(i, &got)
			if err == raft.ErrLogNotFound {
				missing = true
				break
			}
			if err != nil {
				t.Fatalf("%s: GetLog(%d): %v", n.id, i, err)
			}
			if j == 0 {
				want = got
				continue
			}
			if got.Term != want.Term || got.Type != want.Type || string(got.Data) != string(want.Data) {
				t.Fatalf("index %d differs: %s has term %d %q, %s has term %d %q",
					i, nodes[0].id, want.Term, want.Data, n.id, got.Term, got.Data)
			}
		}
		if missing {
			break
		}
		compared++
	}
	if compared < thirdBatch {
		t.Fatalf("only %d trailing entries are on every store, want at least %d", compared, thirdBatch)
	}
}
