package cluster

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/hashicorp/raft"

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

// ApplyEncoded proposes an already encoded command (a forwarded one).
func (n *Node) ApplyEncoded(ctx context.Context, data []byte) (*fsm.Response, error) {
	var resp *fsm.Response
	err := n.withLeader(ctx, func(leaderAPI string, self bool) error {
		var err error
		if self {
			resp, err = n.applyLocal(ctx, data)
		} else {
			resp, err = n.client.apply(ctx, leaderAPI, data)
		}
		return err
	})
	if err != nil {
		return resp, err
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

// applyLocal proposes on this node, which must lead.
func (n *Node) applyLocal(ctx context.Context, data []byte) (*fsm.Response, error) {
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
