package cluster

import (
	"context"
	"math/rand/v2"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/raft"

	"github.com/keel-cloud/keel/fsm"
)

// ReadIndex returns an index such that, once this node's FSM has applied it,
// local reads reflect every write acknowledged before the call: the
// leader's commit index, confirmed by a heartbeat round that shows it still
// leads (Raft's read-index protocol, section 6.4 of the Raft thesis).
func (n *Node) ReadIndex(ctx context.Context) (uint64, error) {
	var idx uint64
	err := n.withLeader(ctx, func(leaderAPI string, self bool) error {
		var err error
		if self {
			idx, err = n.leaderReadIndex(ctx)
		} else {
			idx, err = n.client.readIndex(ctx, leaderAPI)
		}
		return err
	})
	return idx, err
}

func (n *Node) leaderReadIndex(ctx context.Context) (uint64, error) {
	if err := n.waitEstablished(ctx); err != nil {
		if err == raft.ErrNotLeader {
			return 0, errRetryLeader{err}
		}
		return 0, err
	}
	// Capture the index before confirming leadership. The commit index,
	// not this FSM's applied index: a follower may apply an entry (and a
	// client read it there) before the leader's own FSM gets to it, and
	// a read through this leader must not then go back in time. Once
	// established, the commit index covers every entry of earlier terms.
	idx := n.raft.CommitIndex()
	if err := n.verifier.verify(); err != nil {
		return 0, errRetryLeader{err}
	}
	return idx, nil
}

// UnsafeStaleReadsEnv names the environment variable that, set to "1",
// BREAKS LINEARIZABILITY ON PURPOSE: Consistent returns at once, so every
// read is served from whatever this controller has applied, without the
// read-index check, even on a follower that is behind or cut off. It exists
// only so the chaos suite (e2e/chaos) can show that its linearizability
// check catches such a build. Never set it on a real deployment.
const UnsafeStaleReadsEnv = "KEEL_UNSAFE_STALE_READS"

// unsafeStaleReads is read once at start; tests may flip it.
var unsafeStaleReads = func() *atomic.Bool {
	var b atomic.Bool
	b.Store(os.Getenv(UnsafeStaleReadsEnv) == "1")
	return &b
}()

var unsafeStaleReadsWarned sync.Once

// Consistent makes the next local read linearizable: it obtains a read index
// and waits until this node has applied it.
func (n *Node) Consistent(ctx context.Context) error {
	if unsafeStaleReads.Load() {
		unsafeStaleReadsWarned.Do(func() {
			n.log.Error("UNSAFE: " + UnsafeStaleReadsEnv + "=1: reads skip the read-index check and may return stale data; " +
				"this build is for the chaos suite's negative test only, unset it")
		})
		return nil
	}
	idx, err := n.ReadIndex(ctx)
	if err != nil {
		return err
	}
	return n.WaitApplied(ctx, idx)
}

// Read returns the state to read from: after Consistent (linearizable) by
// default, or at once with stale set, for the few callers that prefer an
// answer from a node cut off from the leader to no answer (its data may be
// behind the cluster's).
func (n *Node) Read(ctx context.Context, stale bool) (*fsm.State, error) {
	if !stale {
		if err := n.Consistent(ctx); err != nil {
			return nil, err
		}
	}
	return n.fsm.State(), nil
}

// WaitApplied waits until the FSM has applied index.
func (n *Node) WaitApplied(ctx context.Context, index uint64) error {
	for {
		ch := n.fsm.Changed()
		if n.fsm.AppliedIndex() >= index {
			return nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		case <-n.ctx.Done():
			return ErrShutdown
		}
	}
}

// MaxBlockingWait caps a blocking query's wait.
const MaxBlockingWait = 10 * time.Minute

// Watch is the blocking query: it returns as soon as any of tables changes at
// an index above minIndex, or when timeout (plus up to 1/16 jitter, so many
// watchers do not all return at once) runs out. It returns the tables'
// current index either way; callers pass it back as their next minIndex.
// It never polls: it sleeps on the FSM's change channel.
func (n *Node) Watch(ctx context.Context, tables []string, minIndex uint64, timeout time.Duration) (uint64, error) {
	if timeout <= 0 || timeout > MaxBlockingWait {
		timeout = MaxBlockingWait
	}
	timeout += rand.N(timeout/16 + 1)
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	for {
		ch := n.fsm.Changed()
		idx := n.fsm.TableIndex(tables...)
		if idx > minIndex {
			return idx, nil
		}
		select {
		case <-ch:
		case <-timer.C:
			return idx, nil
		case <-ctx.Done():
			return idx, ctx.Err()
		case <-n.ctx.Done():
			return idx, ErrShutdown
		}
	}
}

// verifier coalesces leadership checks: every caller waits for a heartbeat
// round that started after it arrived, and one round serves all callers
// that arrived while the previous round ran.
type verifier struct {
	node    *Node
	mu      sync.Mutex
	next    *verifyRound
	running bool
}

type verifyRound struct {
	done chan struct{}
	err  error
}

func (v *verifier) verify() error {
	v.mu.Lock()
	if v.next == nil {
		v.next = &verifyRound{done: make(chan struct{})}
	}
	r := v.next
	if !v.running {
		v.running = true
		go v.run()
	}
	v.mu.Unlock()
	<-r.done
	return r.err
}

func (v *verifier) run() {
	for {
		v.mu.Lock()
		r := v.next
		v.next = nil
		if r == nil {
			v.running = false
			v.mu.Unlock()
			return
		}
		v.mu.Unlock()
		r.err = v.node.raft.VerifyLeader().Error()
		close(r.done)
	}
}
