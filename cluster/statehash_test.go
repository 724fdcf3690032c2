package cluster

import (
	"context"
	"net/http"
	"testing"
	"time"
)

// GET /internal/v1/state-hash: every controller reports the same hash and
// applied index once converged, equal to its FSM's Hash; unsigned calls are
// refused.
func TestStateHashEndpoint(t *testing.T) {
	c := NewTestCluster(t, 3)
	leader := c.WaitLeader(10 * time.Second)
	put(t, leader.Node, "a", "1")
	put(t, leader.Node, "b", "2")
	want := c.WaitConverged(10 * time.Second)
	for _, n := range c.Running() {
		var got StateHash
		if err := leader.client.get(ctxT(t, 5*time.Second), n.Cfg.APIAddr, "/internal/v1/state-hash", &got); err != nil {
			t.Fatalf("state-hash of %s: %v", n.Cfg.Name, err)
		}
		if got.Name != n.Cfg.Name || got.Hash != want || got.AppliedIndex != n.FSM().AppliedIndex() {
			t.Errorf("state-hash of %s = %+v, want name %s hash %.12s applied %d", n.Cfg.Name, got, n.Cfg.Name, want, n.FSM().AppliedIndex())
		}
	}
	// A write changes the hash everywhere.
	put(t, leader.Node, "a", "3")
	if now := c.WaitConverged(10 * time.Second); now == want {
		t.Errorf("the hash did not change after a write: %.12s", now)
	}
	res, err := http.Get("http://" + leader.Cfg.APIAddr + "/internal/v1/state-hash")
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusUnauthorized {
		t.Errorf("unsigned state-hash: HTTP %d, want 401", res.StatusCode)
	}
}

// KEEL_UNSAFE_STALE_READS: Consistent no longer asks the leader, so a
// follower cut off from the quorum answers reads from its own state (the
// broken build the chaos suite must catch). Without it, the same read fails.
func TestUnsafeStaleReadsSkipsReadIndex(t *testing.T) {
	c := NewTestCluster(t, 3)
	leader := c.WaitLeader(10 * time.Second)
	put(t, leader.Node, "k", "v1")
	c.WaitConverged(10 * time.Second)
	survivor := c.Followers()[0]
	for i, n := range c.Nodes {
		if n != survivor {
			c.Kill(i)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	err := survivor.Consistent(ctx)
	cancel()
	if err == nil {
		t.Fatal("Consistent succeeded on a follower without a quorum")
	}
	unsafeStaleReads.Store(true)
	defer unsafeStaleReads.Store(false)
	ctx, cancel = context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	if err := survivor.Consistent(ctx); err != nil {
		t.Fatalf("with %s=1, Consistent still checked the leader: %v", UnsafeStaleReadsEnv, err)
	}
	if v, ok := readKV(t, survivor.Node, "k"); !ok || v != "v1" {
		t.Fatalf("stale read = %q, %v; want v1", v, ok)
	}
}
