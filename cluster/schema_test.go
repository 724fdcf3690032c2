package cluster

import (
	"context"
	"errors"
	"maps"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/raft"

	"github.com/keel-cloud/keel/fsm"
)

// gateKVPut makes KVPut need FSM schema 2 for the rest of the test, as if
// a newer release had introduced it. Call it before starting the cluster:
// the nodes read the lookup on every proposal.
func gateKVPut(t testing.TB) {
	prev := commandSchema
	commandSchema = func(data []byte) (fsm.Header, error) {
		h, err := prev(data)
		if err == nil && h.Type == fsm.CmdKVPut {
			h.Schema = 2
		}
		return h, err
	}
	t.Cleanup(func() { commandSchema = prev }) // after the cluster's Close, registered later
}

// advertiseSchema changes the FSM schema a node advertises in gossip, as
// restarting it on another binary would.
func advertiseSchema(t testing.TB, n *Node, schema string) {
	t.Helper()
	tags := maps.Clone(n.serf.LocalMember().Tags)
	tags[TagSchema] = schema
	if err := n.serf.SetTags(tags); err != nil {
		t.Fatalf("%s: set gossip tags: %v", n.Name(), err)
	}
}

// waitSchemaView waits until every running node's gate sees the schemas
// want (server name → schema) and returns nothing else: the gate's cached
// view must follow gossip events.
func waitSchemaView(t testing.TB, c *TestCluster, want map[string]int) {
	t.Helper()
	WaitFor(t, 10*time.Second, "every node's schema gate to see the advertised schemas", func() bool {
		for _, n := range c.Running() {
			got := map[string]int{}
			for _, r := range n.schemaView().rows {
				got[r.name] = r.schema
			}
			if !maps.Equal(got, want) {
				return false
			}
		}
		return true
	})
}

func wantUpgradeRefusal(t *testing.T, via string, err error, wants ...string) {
	t.Helper()
	if !errors.Is(err, ErrUpgradeIncomplete) {
		t.Fatalf("gated command via %s: got %v, want ErrUpgradeIncomplete", via, err)
	}
	for _, w := range append(wants, "needs every controller at FSM schema 2", "finish upgrading the controllers", "Nothing was written") {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("refusal via %s %q does not say %q", via, err, w)
		}
	}
}

// The leader proposes a command only when every controller of the Raft
// configuration advertises the schema it needs: with one controller behind,
// the command is refused everywhere (on the leader, forwarded, and sent to
// the leader by a controller that does not check) and writes nothing, while
// schema-1 commands go on; once all advertise it, it is accepted. A
// controller that left keeps holding the command back with its last tags.
func TestSchemaGateHoldsNewCommandsUntilEveryControllerIsUpgraded(t *testing.T) {
	gateKVPut(t)
	c := NewTestCluster(t, 3)
	leader := c.WaitLeader(10 * time.Second)
	lag := c.Followers()[0]
	lagName := lag.Name()
	all := func(s int) map[string]int {
		m := map[string]int{}
		for _, n := range c.Nodes {
			m[n.Name()] = s
		}
		return m
	}
	waitSchemaView(t, c, all(fsm.Schema()))
	if fsm.Schema() != 1 {
		t.Fatalf("fsm.Schema() = %d; this test assumes the real commands are all schema 1", fsm.Schema())
	}

	// Two upgraded, one behind.
	for _, n := range c.Nodes {
		if n != lag {
			advertiseSchema(t, n.Node, "2")
		}
	}
	want := all(2)
	want[lag.Name()] = 1
	waitSchemaView(t, c, want)
	for _, n := range c.Running() {
		_, err := n.Apply(ctxT(t, 10*time.Second), &fsm.KVPut{Key: "new", Value: []byte("x")})
		wantUpgradeRefusal(t, n.Name(), err, lag.Name()+" is at schema 1 (Keel test, gossip alive)")
		var seq uint64
		if resp, err := n.Apply(ctxT(t, 10*time.Second), &fsm.SequenceNext{Name: "s"}); err != nil {
			t.Fatalf("schema-1 command via %s: %v", n.Name(), err)
		} else if err := resp.Decode(&seq); err != nil || seq == 0 {
			t.Fatalf("schema-1 command via %s: value %d, %v", n.Name(), seq, err)
		}
	}
	// A controller that forwards without checking (an older binary): the
	// leader's own gate refuses, and the refusal travels back.
	data, _ := fsm.EncodeCommand(&fsm.KVPut{Key: "new", Value: []byte("x")})
	resp, err := lag.client.apply(ctxT(t, 10*time.Second), leader.Cfg.APIAddr, data)
	if err != nil || resp.Index != 0 || resp.Err == nil || resp.Err.Kind != fsm.KindConflict ||
		!strings.Contains(resp.Err.Message, lag.Name()+" is at schema 1") {
		t.Fatalf("unchecked forward to the leader: resp %+v, err %v; want a refusal with index 0 naming %s", resp, err, lag.Name())
	}
	c.WaitConverged(10 * time.Second)
	for _, n := range c.Running() {
		if _, ok, _ := n.State().Get(fsm.TableKV, "new"); ok {
			t.Fatalf("a refused command wrote on %s", n.Name())
		}
	}

	// The last one upgraded: accepted everywhere.
	advertiseSchema(t, lag.Node, "2")
	waitSchemaView(t, c, all(2))
	for _, n := range c.Running() {
		put(t, n.Node, "new-"+n.Name(), "x")
	}
	c.WaitConverged(10 * time.Second)
	for _, n := range c.Running() {
		if _, ok, _ := n.State().Get(fsm.TableKV, "new-"+lag.Name()); !ok {
			t.Fatalf("accepted command missing on %s", n.Name())
		}
	}

	// A controller that left gossip (stopped for its upgrade) still counts
	// at the schema it last advertised.
	advertiseSchema(t, lag.Node, "1")
	waitSchemaView(t, c, want)
	c.Stop(indexOf(c, lag))
	WaitFor(t, 10*time.Second, "the others to see the stopped controller as left", func() bool {
		for _, n := range c.Running() {
			if n.GossipStatus(lagName) != "left" {
				return false
			}
		}
		return true
	})
	waitSchemaView(t, c, want)
	_, err = c.Running()[0].Apply(ctxT(t, 10*time.Second), &fsm.KVPut{Key: "after-leave", Value: []byte("x")})
	wantUpgradeRefusal(t, "a survivor", err, lagName+" is at schema 1 (Keel test, gossip left)")
}

func indexOf(c *TestCluster, tn *TestNode) int {
	for i, n := range c.Nodes {
		if n == tn {
			return i
		}
	}
	return -1
}

// A server of the configuration that gossip does not know, or whose schema
// tag cannot be read, holds back every gated command.
func TestSchemaGateUnknownControllers(t *testing.T) {
	for _, tc := range []struct {
		tags map[string]string
		want int
	}{
		{map[string]string{}, 1}, // before the tag existed
		{map[string]string{TagSchema: "1"}, 1},
		{map[string]string{TagSchema: "3"}, 3},
		{map[string]string{TagSchema: "x"}, 0},
		{map[string]string{TagSchema: "0"}, 0},
	} {
		if got := memberSchema(tc.tags); got != tc.want {
			t.Errorf("memberSchema(%v) = %d, want %d", tc.tags, got, tc.want)
		}
	}

	c := NewTestCluster(t, 3)
	leader := c.WaitLeader(10 * time.Second)
	waitSchemaView(t, c, map[string]int{"n1": 1, "n2": 1, "n3": 1})
	servers := leader.raft.GetConfiguration().Configuration().Servers
	v := leader.computeSchemaView(0, append(servers, raft.Server{ID: "ghost"}))
	if v.min != 0 {
		t.Fatalf("a server unknown to gossip: min schema %d, want 0 (unknown)", v.min)
	}
	// Gated at schema 1 for the message: only the unknown one is behind.
	msg := v.refusal(leader.Node, fsm.Header{Type: fsm.CmdKVPut, Version: 1, Schema: 1})
	for _, w := range []string{"ghost is in the Raft configuration but not in this controller's gossip", "keelctl cluster remove-peer ghost"} {
		if !strings.Contains(msg, w) {
			t.Errorf("refusal %q does not say %q", msg, w)
		}
	}
	if strings.Contains(msg, " is at schema") {
		t.Errorf("refusal %q names a controller that is not behind", msg)
	}

	advertiseSchema(t, c.Nodes[1].Node, "x")
	WaitFor(t, 10*time.Second, "the leader to see the unreadable tag", func() bool { return leader.schemaView().min == 0 })
	if !strings.Contains(leader.schemaView().refusal(leader.Node, fsm.Header{Type: fsm.CmdKVPut, Version: 1, Schema: 2}), `n2 advertises FSM schema "x", which cannot be read`) {
		t.Error("the refusal does not name the unreadable tag")
	}

	// Status shows each controller's schema.
	st := c.Nodes[0].Status(context.Background())
	for _, s := range st.Servers {
		if want := map[string]int{"n1": 1, "n2": 0, "n3": 1}[s.Name]; s.FSMSchema != want {
			t.Errorf("status row %s: fsm_schema %d, want %d", s.Name, s.FSMSchema, want)
		}
	}
}

// BenchmarkSchemaGate measures the gate's share of a proposal: the common
// case (a schema-1 command: the header is read, nothing compared) and a
// gated command with the view cached.
func BenchmarkSchemaGate(b *testing.B) {
	c := NewTestCluster(b, 3)
	leader := c.WaitLeader(10 * time.Second)
	data, _ := fsm.EncodeCommand(&fsm.KVPut{Key: "bench", Value: make([]byte, 100)})
	b.Run("schema1", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if resp, err := leader.checkSchema(data); resp != nil || err != nil {
				b.Fatal(resp, err)
			}
		}
	})
	b.Run("gated-cached", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if v := leader.schemaView(); v.min != 1 {
				b.Fatal(v.min)
			}
		}
	})
}
