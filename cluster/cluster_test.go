package cluster

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/raft"

	"github.com/keel-cloud/keel/fsm"
)

func ctxT(t testing.TB, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

func put(t testing.TB, n *Node, key, value string) *fsm.Response {
	t.Helper()
	resp, err := n.Apply(ctxT(t, 10*time.Second), &fsm.KVPut{Key: key, Value: []byte(value)})
	if err != nil {
		t.Fatalf("put %s on %s: %v", key, n.Name(), err)
	}
	return resp
}

func readKV(t testing.TB, n *Node, key string) (string, bool) {
	t.Helper()
	st, err := n.Read(ctxT(t, 10*time.Second), false)
	if err != nil {
		t.Fatalf("consistent read on %s: %v", n.Name(), err)
	}
	v, _, err := fsm.Get[fsm.KVEntry](st, fsm.TableKV, key)
	if errors.Is(err, fsm.ErrNotFound) {
		return "", false
	}
	if err != nil {
		t.Fatal(err)
	}
	return string(v.Value), true
}

// Acceptance 2: a write proposed on a follower is applied everywhere, and a
// linearizable read on the other follower right after the acknowledgement
// sees it.
func TestFollowerWriteIsReadOnOtherFollower(t *testing.T) {
	c := NewTestCluster(t, 3)
	c.WaitLeader(10 * time.Second)
	fs := c.Followers()
	if len(fs) != 2 {
		t.Fatalf("want 2 followers, got %d", len(fs))
	}
	for i := 0; i < 50; i++ {
		key := fmt.Sprintf("k%d", i)
		resp := put(t, fs[0].Node, key, strconv.Itoa(i))
		if resp.Index == 0 {
			t.Fatal("response carries no raft index")
		}
		// The forwarding node has applied its own write when Apply returns:
		// even a stale local read sees it.
		if _, ok, _ := fs[0].State().Get(fsm.TableKV, key); !ok {
			t.Fatalf("write %d not applied on the node that proposed it when Apply returned", i)
		}
		if v, ok := readKV(t, fs[1].Node, key); !ok || v != strconv.Itoa(i) {
			t.Fatalf("read-your-writes across followers broken at %d: got %q %v", i, v, ok)
		}
	}
	c.WaitConverged(10 * time.Second)
}

// Acceptance 3: kill the leader; a new one is elected, writes continue, and
// every acknowledged write is on every survivor.
func TestLeaderKillKeepsAcknowledgedWrites(t *testing.T) {
	c := NewTestCluster(t, 3)
	leader := c.WaitLeader(10 * time.Second)
	var idx int
	for _, n := range c.Nodes {
		if n == leader {
			break
		}
		idx++
	}
	// Writers on the followers run throughout the kill.
	var mu sync.Mutex
	acked := map[string]bool{}
	ctx, stop := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	for w, f := range c.Followers() {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ctx.Err() == nil; i++ {
				key := fmt.Sprintf("w%d-%d", w, i)
				actx, cancel := context.WithTimeout(ctx, 5*time.Second)
				_, err := f.Apply(actx, &fsm.KVPut{Key: key, Value: []byte("v")})
				cancel()
				if err == nil {
					mu.Lock()
					acked[key] = true
					mu.Unlock()
				}
			}
		}()
	}
	time.Sleep(300 * time.Millisecond) // let some writes land before the kill
	killed := time.Now()
	c.Kill(idx)
	survivor := c.Followers()[0]
	var firstWrite time.Duration
	WaitFor(t, 15*time.Second, "a write accepted after the leader kill", func() bool {
		actx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		_, err := survivor.Apply(actx, &fsm.KVPut{Key: "after-kill", Value: []byte("x")})
		if err == nil {
			firstWrite = time.Since(killed)
		}
		return err == nil
	})
	t.Logf("leader %s killed: first write acknowledged %s later", leader.Cfg.Name, firstWrite.Round(time.Millisecond))
	newLeader := c.WaitLeader(10 * time.Second)
	if newLeader.Cfg.Name == leader.Cfg.Name {
		t.Fatal("the killed node is still leader")
	}
	time.Sleep(200 * time.Millisecond)
	stop()
	wg.Wait()
	c.WaitConverged(10 * time.Second)
	mu.Lock()
	defer mu.Unlock()
	if len(acked) < 10 {
		t.Fatalf("only %d writes acknowledged; the workload did not run", len(acked))
	}
	for _, n := range c.Running() {
		for key := range acked {
			if _, ok, _ := n.State().Get(fsm.TableKV, key); !ok {
				t.Fatalf("acknowledged write %s missing on %s", key, n.Name())
			}
		}
	}
	t.Logf("%d acknowledged writes present on both survivors", len(acked))
}

// Acceptance 4: stop all three, start them again: same state everywhere,
// applied index not moved back, no entry applied twice.
func TestRestartAllKeepsStateAndAppliesOnce(t *testing.T) {
	c := NewTestCluster(t, 3)
	leader := c.WaitLeader(10 * time.Second)
	const increments = 40
	for i := 0; i < increments; i++ {
		n := c.Running()[i%3]
		resp, err := n.Apply(ctxT(t, 10*time.Second), &fsm.SequenceNext{Name: "counter"})
		if err != nil {
			t.Fatal(err)
		}
		var v uint64
		if err := resp.Decode(&v); err != nil || v != uint64(i+1) {
			t.Fatalf("increment %d returned %d (%v)", i+1, v, err)
		}
	}
	if err := leader.Snapshot(); err != nil { // half the history in a snapshot
		t.Fatal(err)
	}
	for i := 0; i < increments; i++ {
		if _, err := leader.Apply(ctxT(t, 10*time.Second), &fsm.SequenceNext{Name: "counter"}); err != nil {
			t.Fatal(err)
		}
	}
	hash := c.WaitConverged(10 * time.Second)
	before := map[string]uint64{}
	for _, n := range c.Nodes {
		before[n.Cfg.Name] = n.FSM().AppliedIndex()
	}
	for i := range c.Nodes {
		c.Stop(i)
	}
	for i := range c.Nodes {
		c.Restart(i)
		if got := c.Nodes[i].FSM().AppliedIndex(); got < before[c.Nodes[i].Cfg.Name] {
			t.Fatalf("%s applied index went back from %d to %d", c.Nodes[i].Cfg.Name, before[c.Nodes[i].Cfg.Name], got)
		}
	}
	c.WaitLeader(15 * time.Second)
	after := c.WaitConverged(10 * time.Second)
	if after != hash {
		// The new leader's Barrier changes no table: the hash must match.
		t.Fatalf("state hash changed across a full restart")
	}
	for _, n := range c.Running() {
		seq, _, err := fsm.Get[fsm.Sequence](n.State(), fsm.TableSequence, "counter")
		if err != nil || seq.Value != 2*increments {
			t.Fatalf("%s: counter = %v (%v), want %d: an entry was applied twice or lost", n.Name(), seq, err, 2*increments)
		}
	}
}

// Acceptance 5: a node that was down while the log was compacted catches up
// through a snapshot install.
func TestLaggingNodeCatchesUpThroughSnapshot(t *testing.T) {
	c := NewTestCluster(t, 3, func(cfg *Config) {
		cfg.Timing.TrailingLogs = 5
		cfg.Timing.SnapshotThreshold = 1 << 30 // snapshots only when asked
	})
	c.WaitLeader(10 * time.Second)
	lagging := 2
	if c.Nodes[lagging].IsLeader() {
		lagging = 1
	}
	c.Kill(lagging)
	leader := c.WaitLeader(10 * time.Second)
	for i := 0; i < 200; i++ {
		put(t, leader.Node, fmt.Sprintf("k%03d", i), "v")
	}
	if err := leader.Snapshot(); err != nil {
		t.Fatal(err)
	}
	first, _ := leader.logStore.FirstIndex()
	if first <= 10 {
		t.Fatalf("log was not compacted (first index %d)", first)
	}
	c.Restart(lagging)
	c.WaitConverged(20 * time.Second)
	n := c.Nodes[lagging]
	// Raft records the installed snapshot just after the FSM restored it.
	WaitFor(t, 5*time.Second, n.Cfg.Name+" to record the snapshot it installed", func() bool {
		s := n.raft.Stats()["last_snapshot_index"]
		return s != "0" && s != ""
	})
	if v, ok := readKV(t, n.Node, "k199"); !ok || v != "v" {
		t.Fatal("restored node misses the last write")
	}
	// And it keeps replicating normally afterwards.
	put(t, leader.Node, "after", "x")
	c.WaitConverged(10 * time.Second)
}

// Acceptance 6: a node cut off from the other two refuses linearizable reads
// and writes with a clear error within a bounded time.
func TestIsolatedNodeRefusesReadsAndWrites(t *testing.T) {
	c := NewTestCluster(t, 3)
	c.WaitLeader(10 * time.Second)
	put(t, c.Nodes[0].Node, "before", "x")
	c.WaitConverged(10 * time.Second)
	// Keep the current leader alive on purpose when possible: the hardest
	// case is a leader that has not yet noticed it lost its quorum.
	var alone int
	for i, n := range c.Nodes {
		if n.IsLeader() {
			alone = i
		}
	}
	for i := range c.Nodes {
		if i != alone {
			c.Kill(i)
		}
	}
	n := c.Nodes[alone].Node
	start := time.Now()
	_, err := n.Apply(ctxT(t, 30*time.Second), &fsm.KVPut{Key: "during", Value: []byte("x")})
	if !errors.Is(err, ErrNoLeader) && !errors.Is(err, ErrOutcomeUnknown) {
		t.Fatalf("write on an isolated node: got %v, want ErrNoLeader", err)
	}
	t.Logf("write refused after %s: %v", time.Since(start).Round(time.Millisecond), err)
	start = time.Now()
	err = n.Consistent(ctxT(t, 30*time.Second))
	if !errors.Is(err, ErrNoLeader) {
		t.Fatalf("read on an isolated node: got %v, want ErrNoLeader", err)
	}
	if d := time.Since(start); d > 2*n.cfg.Timing.LeaderWait+5*time.Second {
		t.Fatalf("refusal took %s", d)
	}
	t.Logf("read refused after %s: %v", time.Since(start).Round(time.Millisecond), err)
	// A stale read still answers, from local state.
	st, err := n.Read(context.Background(), true)
	if err != nil {
		t.Fatalf("stale read: %v", err)
	}
	if _, ok, _ := st.Get(fsm.TableKV, "before"); !ok {
		t.Fatal("stale read lost local data")
	}
	if _, ok, _ := n.State().Get(fsm.TableKV, "during"); ok {
		// An entry appended by a leader that then lost its quorum is
		// never applied.
		t.Fatal("refused write was applied")
	}
}

// Acceptance 7: a blocking query returns promptly after a change and at its
// timeout otherwise.
func TestWatchReturnsOnChangeOrTimeout(t *testing.T) {
	c := NewTestCluster(t, 3)
	leader := c.WaitLeader(10 * time.Second)
	follower := c.Followers()[0]
	base := follower.FSM().TableIndex(fsm.TableKV)

	start := time.Now()
	idx, err := follower.Watch(context.Background(), []string{fsm.TableKV}, base, 300*time.Millisecond)
	if err != nil || idx != base {
		t.Fatalf("idle watch: idx %d err %v, want %d", idx, err, base)
	}
	if d := time.Since(start); d < 300*time.Millisecond || d > 3*time.Second {
		t.Fatalf("idle watch returned after %s, want its 300ms timeout (+jitter)", d)
	}

	// A change to another table does not wake a KV watcher.
	done := make(chan uint64, 1)
	go func() {
		idx, _ := follower.Watch(context.Background(), []string{fsm.TableKV}, base, 20*time.Second)
		done <- idx
	}()
	if _, err := leader.Apply(ctxT(t, 10*time.Second), &fsm.SequenceNext{Name: "other"}); err != nil {
		t.Fatal(err)
	}
	select {
	case idx := <-done:
		t.Fatalf("watch on kv woke for a sequence change (idx %d)", idx)
	case <-time.After(300 * time.Millisecond):
	}
	start = time.Now()
	resp := put(t, leader.Node, "wake", "up")
	select {
	case idx := <-done:
		if idx < resp.Index {
			t.Fatalf("watch returned index %d before the write at %d", idx, resp.Index)
		}
		t.Logf("watch woke %s after the write was acknowledged on the leader", time.Since(start).Round(time.Millisecond))
	case <-time.After(5 * time.Second):
		t.Fatal("watch did not return after a change")
	}
}

// Acceptance 8: malformed, unknown and wrong-version commands are rejected
// through the cluster and leave state unchanged on every node.
func TestBadCommandsRejectedEverywhere(t *testing.T) {
	c := NewTestCluster(t, 3)
	c.WaitLeader(10 * time.Second)
	put(t, c.Nodes[0].Node, "keep", "x")
	hash := c.WaitConverged(10 * time.Second)
	good, _ := fsm.EncodeCommand(&fsm.KVPut{Key: "k", Value: []byte("v")})
	wrongVersion := bytes.Clone(good)
	wrongVersion[3] = 7
	unknown := bytes.Clone(good)
	unknown[1], unknown[2] = 0x7f, 0x01
	for name, data := range map[string][]byte{
		"garbage":       []byte("definitely not a command"),
		"unknown type":  unknown,
		"wrong version": wrongVersion,
		"bad payload":   append(bytes.Clone(good[:4]), 0xc1),
	} {
		for _, n := range c.Running() { // on the leader and forwarded
			_, err := n.ApplyEncoded(ctxT(t, 10*time.Second), data)
			if !errors.Is(err, fsm.ErrInvalid) {
				t.Errorf("%s via %s: got %v, want fsm.ErrInvalid", name, n.Name(), err)
			}
		}
	}
	put(t, c.Nodes[1].Node, "marker", "y") // so convergence has something to wait for
	c.WaitConverged(10 * time.Second)
	for _, n := range c.Running() {
		if _, ok, _ := n.State().Get(fsm.TableKV, "k"); ok {
			t.Fatalf("a rejected command wrote on %s", n.Name())
		}
	}
	_ = hash
}

// Acceptance 10: a node started with another cluster key is not admitted.
func TestWrongClusterKeyNotAdmitted(t *testing.T) {
	c := NewTestCluster(t, 3)
	c.WaitLeader(10 * time.Second)
	other := make([]byte, 32)
	rand.Read(other)
	intruder := c.AddNode(0, func(cfg *Config) { cfg.ClusterKey = other })
	time.Sleep(2 * time.Second) // gossip and reconcile rounds
	var leader *TestNode
	for _, n := range c.Nodes[:3] {
		if n.IsLeader() {
			leader = n
		}
	}
	if leader == nil {
		t.Fatal("no leader among the three members")
	}
	for _, m := range leader.Members("") {
		if m.Name == intruder.Cfg.Name {
			t.Fatalf("node with the wrong key is a gossip member (%v)", m.Status)
		}
	}
	cf := leader.raft.GetConfiguration()
	if err := cf.Error(); err != nil {
		t.Fatal(err)
	}
	for _, s := range cf.Configuration().Servers {
		if s.ID == raft.ServerID(intruder.Cfg.Name) {
			t.Fatal("node with the wrong key was added to the raft configuration")
		}
	}
	// Its internal calls are refused too.
	req, _ := NewInternalRequest(context.Background(), other, http.MethodGet, leader.Cfg.APIAddr, "/internal/v1/status", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("internal call with the wrong key: HTTP %d, want 401", resp.StatusCode)
	}
}

func TestStatusReportsEveryController(t *testing.T) {
	c := NewTestCluster(t, 3)
	c.WaitLeader(10 * time.Second)
	var st ClusterStatus
	WaitFor(t, 10*time.Second, "a healthy status with 3 alive voters that applied the leader's barrier", func() bool {
		st = c.Nodes[1].Status(context.Background())
		alive := 0
		for _, s := range st.Servers {
			if s.Gossip == "alive" && s.Voter && s.Error == "" && s.AppliedIndex > 0 {
				alive++
			}
		}
		return st.Healthy && alive == 3
	})
	leaders := 0
	for _, s := range st.Servers {
		if s.Role == "leader" {
			leaders++
		}
		if s.AppliedIndex == 0 || s.Term == 0 || s.Version != "test" {
			t.Errorf("row %+v lacks indexes, term or version", s)
		}
	}
	if leaders != 1 || st.Leader == "" {
		t.Fatalf("status shows %d leaders: %+v", leaders, st)
	}
	c.Kill(0)
	c.Kill(1)
	st = c.Nodes[2].Status(context.Background())
	if st.Healthy || st.Reason == "" {
		t.Fatalf("two of three down but status healthy: %+v", st)
	}
	t.Logf("unhealthy reason: %s", st.Reason)
}

func TestRemovePeer(t *testing.T) {
	c := NewTestCluster(t, 3)
	c.WaitLeader(10 * time.Second)
	victim := 2
	if c.Nodes[victim].IsLeader() {
		victim = 0
	}
	name := c.Nodes[victim].Cfg.Name
	c.Kill(victim)
	via := c.Followers()[0]
	if err := via.RemovePeer(ctxT(t, 10*time.Second), name); err != nil {
		t.Fatal(err)
	}
	leader := c.WaitLeader(10 * time.Second)
	cf := leader.raft.GetConfiguration()
	if err := cf.Error(); err != nil {
		t.Fatal(err)
	}
	if got := len(cf.Configuration().Servers); got != 2 {
		t.Fatalf("configuration has %d servers after removing %s", got, name)
	}
	if err := via.RemovePeer(ctxT(t, 10*time.Second), "nosuch"); !errors.Is(err, fsm.ErrInvalid) {
		t.Fatalf("removing an unknown peer: %v", err)
	}
	put(t, via.Node, "still", "writable")
}

func TestSnapshotSaveAndRestoreAcrossCluster(t *testing.T) {
	c := NewTestCluster(t, 3)
	leader := c.WaitLeader(10 * time.Second)
	for i := 0; i < 20; i++ {
		put(t, leader.Node, fmt.Sprintf("s%02d", i), "saved")
	}
	var buf bytes.Buffer
	f := c.Followers()[0]
	if err := f.Consistent(ctxT(t, 10*time.Second)); err != nil {
		t.Fatal(err)
	}
	if err := f.FSM().WriteSnapshot(&buf); err != nil {
		t.Fatal(err)
	}
	saved := c.WaitConverged(10 * time.Second)
	put(t, leader.Node, "later", "gone after restore")

	// A corrupt file is refused and changes nothing.
	bad := bytes.Clone(buf.Bytes())
	bad[len(bad)/2] ^= 1
	if _, err := f.RestoreSnapshot(ctxT(t, 10*time.Second), bytes.NewReader(bad)); !errors.Is(err, fsm.ErrInvalid) {
		t.Fatalf("corrupt snapshot: %v", err)
	}
	if v, ok := readKV(t, f.Node, "later"); !ok || v == "" {
		t.Fatal("a refused restore changed the state")
	}

	keys, err := f.RestoreSnapshot(ctxT(t, 30*time.Second), bytes.NewReader(buf.Bytes()))
	if err != nil {
		t.Fatal(err)
	}
	if keys == 0 {
		t.Fatal("restore reported 0 keys")
	}
	after := c.WaitConverged(20 * time.Second)
	if after != saved {
		t.Fatal("restored state differs from the saved one")
	}
	for _, n := range c.Running() {
		if _, ok := readKV(t, n.Node, "later"); ok {
			t.Fatalf("%s still has a write made after the snapshot", n.Name())
		}
	}
	put(t, c.Followers()[1].Node, "post-restore", "ok")
	c.WaitConverged(10 * time.Second)
}

var _ = slog.Default

// A controller whose --join peer is not up yet keeps trying, so a new
// cluster forms whatever order its controllers start in.
func TestJoinRetriesUntilPeerIsUp(t *testing.T) {
	c := NewEmptyTestCluster(t)
	gossip := freeAddr(t)
	c.AddNode(2, func(cfg *Config) { cfg.Join = []string{gossip} }) // nothing listens there yet
	time.Sleep(700 * time.Millisecond)                              // its first attempts fail
	c.AddNode(2, func(cfg *Config) { cfg.GossipAddr, cfg.Join = gossip, nil })
	leader := c.WaitLeader(15 * time.Second)
	put(t, leader.Node, "formed", "yes")
	c.WaitConverged(10 * time.Second)
}

// Leader loops run on the established leader only, and move with leadership.
func TestLeaderLoopsFollowLeadership(t *testing.T) {
	var mu sync.Mutex
	running := map[string]int{}
	loop := func(name string) LeaderLoop {
		return LeaderLoop{Name: "test", Run: func(ctx context.Context) {
			mu.Lock()
			running[name]++
			mu.Unlock()
			<-ctx.Done()
			mu.Lock()
			running[name]--
			mu.Unlock()
		}}
	}
	c := NewTestCluster(t, 3)
	first := c.WaitLeader(10 * time.Second)
	// Registered while a term runs: starts at once on the leader only.
	for _, n := range c.Nodes {
		n.RegisterLeaderLoop(loop(n.Cfg.Name))
	}
	check := func(want map[string]int) bool {
		mu.Lock()
		defer mu.Unlock()
		for _, n := range c.Nodes {
			if running[n.Cfg.Name] != want[n.Cfg.Name] {
				return false
			}
		}
		return true
	}
	WaitFor(t, 5*time.Second, "the loop running on the first leader only", func() bool {
		return check(map[string]int{first.Cfg.Name: 1})
	})
	if err := first.raft.LeadershipTransfer().Error(); err != nil {
		t.Fatal(err)
	}
	var second *TestNode
	WaitFor(t, 10*time.Second, "a new established leader", func() bool {
		for _, n := range c.Running() {
			if n != first && n.IsLeader() && n.isEstablished() {
				second = n
				return true
			}
		}
		return false
	})
	WaitFor(t, 5*time.Second, "the loop running on the new leader only", func() bool {
		return check(map[string]int{second.Cfg.Name: 1})
	})
	idx := slices.Index(c.Nodes, second)
	c.Kill(idx)
	third := c.WaitLeader(10 * time.Second)
	WaitFor(t, 5*time.Second, "the loop running on the third leader only", func() bool {
		return check(map[string]int{third.Cfg.Name: 1})
	})
}
