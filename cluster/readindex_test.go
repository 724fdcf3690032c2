package cluster

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/raft"

	"github.com/keel-cloud/keel/fsm"
)

// A read-index call cut off mid-answer (the leader died) is retried against
// the leader there is then, not returned as an unexpected error (which the
// API would answer with a 500).
func TestReadIndexCutOffIsRetried(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		conn, _, err := w.(http.Hijacker).Hijack()
		if err == nil {
			conn.Close() // no answer at all
		}
	}))
	defer srv.Close()
	c := newPeerClient(make([]byte, 32))
	_, err := c.readIndex(context.Background(), strings.TrimPrefix(srv.URL, "http://"))
	var retry errRetryLeader
	if !errors.As(err, &retry) {
		t.Fatalf("a cut-off read index: %v (%T), want a retry", err, err)
	}
}

// gatedFSM holds one node's applies while a gate is set.
type gatedFSM struct {
	raft.BatchingFSM
	mu   sync.Mutex
	gate chan struct{} // non-nil: ApplyBatch waits until it is closed
}

func (g *gatedFSM) ApplyBatch(logs []*raft.Log) []any {
	g.mu.Lock()
	gate := g.gate
	g.mu.Unlock()
	if gate != nil {
		<-gate
	}
	return g.BatchingFSM.ApplyBatch(logs)
}

func (g *gatedFSM) Apply(l *raft.Log) any { return g.ApplyBatch([]*raft.Log{l})[0] }

func (g *gatedFSM) hold(gate chan struct{}) {
	g.mu.Lock()
	g.gate = gate
	g.mu.Unlock()
}

// A follower may apply a committed entry before the leader's own FSM does
// (the leader's apply is slow: a big batch, a slow disk). A client that read
// the write there, then reads through the leader or another follower, must
// still see it: the read index is the leader's commit index, which covers
// everything any follower has applied, not the leader's applied index. (The
// chaos suite caught this: a server seen "deleting" on one controller, then
// not deleting through another.)
func TestReadIndexCoversWhatAFollowerApplied(t *testing.T) {
	var mu sync.Mutex
	gates := map[string]*gatedFSM{}
	c := NewTestCluster(t, 3, func(cfg *Config) {
		name := cfg.Name
		cfg.wrapFSM = func(f raft.BatchingFSM) raft.BatchingFSM {
			g := &gatedFSM{BatchingFSM: f}
			mu.Lock()
			gates[name] = g
			mu.Unlock()
			return g
		}
	})
	leader := c.WaitLeader(10 * time.Second)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := leader.Apply(ctx, &fsm.KVPut{Key: "warm", Value: []byte("up")}); err != nil {
		t.Fatal(err)
	}
	followers := c.Followers()
	WaitFor(t, 5*time.Second, "every node applies the first write", func() bool {
		return followers[0].FSM().AppliedIndex() == leader.FSM().AppliedIndex() &&
			followers[1].FSM().AppliedIndex() == leader.FSM().AppliedIndex()
	})
	before := leader.FSM().AppliedIndex()

	mu.Lock()
	g := gates[leader.Name()]
	mu.Unlock()
	release := make(chan struct{})
	g.hold(release)
	var once sync.Once
	open := func() { once.Do(func() { close(release) }) }
	defer open()
	go leader.Apply(ctx, &fsm.KVPut{Key: "k", Value: []byte("v")})
	WaitFor(t, 5*time.Second, "a follower applies the write the leader's FSM holds", func() bool {
		return followers[0].FSM().AppliedIndex() > before
	})
	seen := followers[0].FSM().AppliedIndex()
	if got := leader.FSM().AppliedIndex(); got != before {
		t.Fatalf("the leader's FSM applied %d while held at %d: the test does not hold it", got, before)
	}

	for _, via := range []*TestNode{leader, followers[1]} {
		idx, err := via.ReadIndex(ctx)
		if err != nil {
			t.Fatalf("read index through %s: %v", via.Name(), err)
		}
		if idx < seen {
			t.Errorf("read index through %s is %d, but %s has already applied (and served) %d: a read there after one on %s would go back in time",
				via.Name(), idx, followers[0].Name(), seen, followers[0].Name())
		}
	}
	open()
	if err := followers[1].Consistent(ctx); err != nil {
		t.Fatalf("a consistent read once the leader's FSM is released: %v", err)
	}
}
