// Package gossip holds what every member of Keel's serf pool (controllers
// and agents) must agree on: the tag names, the failure-detection timing,
// and the memberlist configuration built from them. It links only serf and
// memberlist, so keel-agent shares it without linking Raft and Pebble.
package gossip

import (
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"time"

	"github.com/hashicorp/memberlist"

	"github.com/keel-cloud/keel/internal/logging"
)

// Gossip tags. Gossip is the signal (who is alive, where to reach them);
// Raft is the truth.
const (
	TagRole      = "role"
	TagVersion   = "version"
	TagRaftAddr  = "raft"
	TagAPIAddr   = "api"
	TagZone      = "zone"
	TagBootstrap = "expect"

	RoleController = "controller"
	RoleAgent      = "agent"
)

// Timing tunes memberlist's failure detection. Every member of one pool
// should use the same values: members probing at different rates declare
// failures at different speeds.
type Timing struct {
	ProbeInterval time.Duration
	ProbeTimeout  time.Duration
	SuspicionMult int
	// SuspicionMaxTimeoutMult bounds Lifeguard's suspicion timeout: it
	// starts at this multiple of the minimum (SuspicionMult × probe
	// interval × log10 of the pool size, at least 1) and shrinks as other
	// members confirm the suspicion.
	SuspicionMaxTimeoutMult int
	GossipInterval          time.Duration
}

// LAN is the production default. A dead member is suspected after a failed
// probe (within about a second) and declared failed once the suspicion
// timeout runs out: 1.5 s to 3 s in pools of up to ten members (3 s to 6 s
// at a hundred, growing with log10 of the size), so a host is reported down
// within about 5 s. A member that answers again while it is suspected (a
// process paused for a second, a slow network) refutes the suspicion and
// is never declared failed: suspicion, not instant death.
func LAN() Timing {
	return Timing{
		ProbeInterval:           500 * time.Millisecond,
		ProbeTimeout:            250 * time.Millisecond,
		SuspicionMult:           3,
		SuspicionMaxTimeoutMult: 2,
		GossipInterval:          100 * time.Millisecond,
	}
}

// Memberlist is the memberlist configuration of a member named name that
// binds and advertises addr (host:port), encrypts and verifies gossip with
// key, and logs to log.
func Memberlist(name, addr string, key []byte, t Timing, log *slog.Logger) (*memberlist.Config, error) {
	host, portStr, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, fmt.Errorf("gossip address %q: %w", addr, err)
	}
	port, err := strconv.Atoi(portStr)
	if err != nil {
		return nil, fmt.Errorf("gossip address %q: bad port", addr)
	}
	ml := memberlist.DefaultLANConfig()
	ml.Name = name
	ml.BindAddr, ml.BindPort = host, port
	ml.AdvertiseAddr, ml.AdvertisePort = host, port
	ml.SecretKey = key
	ml.GossipVerifyIncoming, ml.GossipVerifyOutgoing = true, true
	ml.ProbeInterval = t.ProbeInterval
	ml.ProbeTimeout = t.ProbeTimeout
	ml.SuspicionMult = t.SuspicionMult
	if t.SuspicionMaxTimeoutMult > 0 {
		ml.SuspicionMaxTimeoutMult = t.SuspicionMaxTimeoutMult
	}
	ml.GossipInterval = t.GossipInterval
	ml.Logger = logging.Std(log, "memberlist")
	ml.LogOutput = nil
	return ml, nil
}
