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
	ProbeInterval  time.Duration
	ProbeTimeout   time.Duration
	SuspicionMult  int
	GossipInterval time.Duration
}

// LAN is the production default: a dead member is suspected within about a
// second and declared failed a few seconds later (Lifeguard's suspicion
// keeps a slow member from being declared dead at once).
func LAN() Timing {
	return Timing{
		ProbeInterval:  500 * time.Millisecond,
		ProbeTimeout:   250 * time.Millisecond,
		SuspicionMult:  3,
		GossipInterval: 100 * time.Millisecond,
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
	ml.GossipInterval = t.GossipInterval
	ml.Logger = logging.Std(log, "memberlist")
	ml.LogOutput = nil
	return ml, nil
}
