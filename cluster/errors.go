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
)
