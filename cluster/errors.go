package cluster

import (
	"errors"

	"github.com/keel-cloud/keel/internal/clusterauth"
)

// Errors a caller of Node can act on. The API maps them to faults in one
// place; messages say what the operator can do.
var (
	// ErrNoLeader: no leader could be reached within the leader wait. The
	// node may be partitioned from a quorum, or an election is running.
	ErrNoLeader = errors.New("no cluster leader: this controller cannot reach a quorum of its peers; check `keelctl cluster status` and the network between controllers")
	// ErrShutdown: the node is shutting down.
	ErrShutdown = errors.New("this controller is shutting down")
	// ErrUnauthorized: an internal call carried no valid cluster-key signature.
	ErrUnauthorized = clusterauth.ErrUnauthorized
	// ErrUpgradeIncomplete: the command needs an FSM schema that not every
	// controller of the Raft configuration advertises yet, so it was not
	// proposed and nothing was written. It lasts until the operator
	// finishes upgrading the controllers (or removes the old one): not a
	// matter of seconds. The error's message names the controllers behind.
	ErrUpgradeIncomplete = errors.New("not every controller can apply this request yet: finish upgrading the controllers")
)

// upgradeError is the schema gate's refusal: errors.Is(err,
// ErrUpgradeIncomplete), with a message that names the controllers behind.
type upgradeError struct{ msg string }

func (e *upgradeError) Error() string        { return e.msg }
func (e *upgradeError) Is(target error) bool { return target == ErrUpgradeIncomplete }
