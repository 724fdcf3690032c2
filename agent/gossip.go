package agent

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/serf/serf"

	"github.com/keel-cloud/keel/internal/gossip"
	"github.com/keel-cloud/keel/internal/logging"
)

// membership is the agent's membership in the cluster's serf pool: the leader
// turns it into the host's up/down state.
type membership struct {
	serf   *serf.Serf
	log    *slog.Logger
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

// startGossip creates the serf member and starts joining cfg.Join in the
// background: controllers may start after their agents.
func startGossip(ctx context.Context, cfg Config, agentAddr string, log *slog.Logger) (*membership, error) {
	ml, err := gossip.Memberlist(cfg.Name, cfg.GossipAddr, cfg.ClusterKey, cfg.Gossip, log)
	if err != nil {
		return nil, err
	}

	sc := serf.DefaultConfig()
	sc.NodeName = cfg.Name
	sc.MemberlistConfig = ml
	sc.Logger = logging.Std(log, "serf")
	sc.RejoinAfterLeave = true
	sc.Tags = map[string]string{
		gossip.TagRole:    gossip.RoleAgent,
		gossip.TagVersion: cfg.Version,
		gossip.TagAPIAddr: agentAddr,
		gossip.TagZone:    cfg.Zone,
	}
	if cfg.StateDir != "" {
		dir := filepath.Join(cfg.StateDir, "serf")
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return nil, fmt.Errorf("gossip state directory: %w (check --state-dir)", err)
		}
		sc.SnapshotPath = filepath.Join(dir, "local.snapshot")
	}
	s, err := serf.Create(sc)
	if err != nil {
		return nil, fmt.Errorf("start gossip on %s: %w (is another process using --gossip-addr?)", cfg.GossipAddr, err)
	}
	jctx, cancel := context.WithCancel(ctx)
	g := &membership{serf: s, log: log, cancel: cancel}
	log.Info("gossip listening", "addr", g.addr())
	if len(cfg.Join) > 0 {
		g.wg.Add(1)
		go g.retryJoin(jctx, cfg.Join)
	}
	return g, nil
}

// retryJoin joins the addresses, retrying with backoff until one answers.
func (g *membership) retryJoin(ctx context.Context, addrs []string) {
	defer g.wg.Done()
	wait := 250 * time.Millisecond
	for attempt := 1; ; attempt++ {
		n, err := g.serf.Join(addrs, true)
		if err == nil {
			g.log.Info("joined gossip", "contacted", n, "addrs", addrs)
			return
		}
		if attempt == 1 || attempt%10 == 0 {
			hint := "check --join and that a controller runs there"
			if s := err.Error(); strings.Contains(s, "decrypt") || strings.Contains(s, "encrypt") || strings.Contains(s, "EOF") {
				hint = "do the agent and the controllers use the same --cluster-key?"
			}
			g.log.Warn("cannot join the cluster's gossip yet; retrying", "join", addrs, "attempt", attempt, "error", err, "hint", hint)
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		}
		wait = min(2*wait, 5*time.Second)
	}
}

// addr is the gossip address others join.
func (g *membership) addr() string {
	m := g.serf.LocalMember()
	return net.JoinHostPort(m.Addr.String(), strconv.Itoa(int(m.Port)))
}

// leave announces the agent's departure (so the controllers see a clean
// stop, not a failure) and shuts gossip down.
func (g *membership) leave() {
	g.cancel()
	g.wg.Wait()
	if err := g.serf.Leave(); err != nil {
		g.log.Warn("leaving gossip", "error", err)
	}
	if err := g.serf.Shutdown(); err != nil {
		g.log.Warn("stopping gossip", "error", err)
		return
	}
	g.log.Info("left gossip")
}
