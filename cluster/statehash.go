package cluster

import "fmt"

// StateHash is one controller's replicated state in a line: equal Hash on
// two controllers means they hold the same state (fsm.FSM.Hash). Served by
// GET /internal/v1/state-hash, for convergence checks (the chaos suite)
// and for operators comparing controllers by hand.
type StateHash struct {
	Name         string `json:"name"`
	AppliedIndex uint64 `json:"applied_index"`
	Hash         string `json:"hash"`
}

// StateHash returns this node's FSM hash together with the applied index it
// belongs to: the index is read before and after hashing, and the hash is
// retried until both agree (an Apply in between would leave the pair
// ambiguous).
func (n *Node) StateHash() (StateHash, error) {
	for attempt := 0; attempt < 20; attempt++ {
		before := n.fsm.AppliedIndex()
		h, err := n.fsm.Hash()
		if err != nil {
			return StateHash{}, fmt.Errorf("hash the state of %s: %w", n.cfg.Name, err)
		}
		if n.fsm.AppliedIndex() == before {
			return StateHash{Name: n.cfg.Name, AppliedIndex: before, Hash: h}, nil
		}
	}
	return StateHash{}, fmt.Errorf("hash the state of %s: it kept changing while being hashed (20 attempts); retry when writes are quieter", n.cfg.Name)
}
