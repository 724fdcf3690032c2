// Package liveness is the leader's loop that turns gossip membership into
// service state in the FSM (Nova's servicegroup): a compute host whose
// agent gossip declares failed or departed becomes "down", and "up" again
// when it is back; each controller's nova-scheduler and nova-conductor
// follow the controller's own membership.
//
// Gossip is the signal, Raft the truth: the API, the scheduler and the
// evacuation rules read only what this loop committed, so every controller
// gives the same answer. Memberlist's suspicion (internal/gossip.LAN) keeps
// a slow member from being declared failed; this loop adds no delay of its
// own beyond its polling interval.
package liveness

import (
	"context"
	"log/slog"
	"time"

	"github.com/hashicorp/serf/serf"

	"github.com/keel-cloud/keel/cluster"
	"github.com/keel-cloud/keel/fsm"
	"github.com/keel-cloud/keel/internal/ids"
)

// Config tunes the loop.
type Config struct {
	// Interval is how often gossip is compared with the FSM (250ms).
	Interval time.Duration
	// Grace: a host gossip has never seen is not marked down until this
	// long after it registered or after this node became leader (10s): a
	// new leader's or a new agent's gossip view needs a moment to fill.
	Grace time.Duration
}

func (c Config) withDefaults() Config {
	if c.Interval <= 0 {
		c.Interval = 250 * time.Millisecond
	}
	if c.Grace <= 0 {
		c.Grace = 10 * time.Second
	}
	return c
}

// Loop is the liveness leader loop.
type Loop struct {
	node *cluster.Node
	cfg  Config
	log  *slog.Logger
}

// Register adds the liveness loop to the node's leader loops.
func Register(node *cluster.Node, cfg Config, log *slog.Logger) *Loop {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	l := &Loop{node: node, cfg: cfg.withDefaults(), log: log.With("loop", "liveness")}
	node.RegisterLeaderLoop(cluster.LeaderLoop{Name: "liveness", Run: l.run})
	return l
}

func (l *Loop) run(ctx context.Context) {
	since := time.Now()
	tick := time.NewTicker(l.cfg.Interval)
	defer tick.Stop()
	failing := false
	for {
		cmd, err := l.changes(since)
		if err == nil && cmd != nil {
			_, err = l.node.Apply(ctx, cmd)
			if err == nil {
				l.logChanges(cmd)
			}
		}
		switch {
		case ctx.Err() != nil:
			return
		case err != nil && !failing:
			l.log.Error("cannot commit service liveness; retrying", "error", err)
			failing = true
		case err == nil && failing:
			l.log.Info("service liveness committed again")
			failing = false
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// state is a member's gossip verdict: up, down, or unknown (not seen yet).
type state int

const (
	unknown state = iota
	up
	down
)

func verdict(m serf.Member, ok bool) state {
	if !ok {
		return unknown
	}
	switch m.Status {
	case serf.StatusAlive:
		return up
	case serf.StatusFailed, serf.StatusLeft, serf.StatusLeaving:
		return down
	}
	return unknown
}

// changes compares gossip with the FSM and returns the command that makes
// the FSM agree, or nil when it does.
func (l *Loop) changes(leaderSince time.Time) (*fsm.SetLiveness, error) {
	st := l.node.State()
	hosts, err := fsm.ListHosts(st)
	if err != nil {
		return nil, err
	}
	agents, controllers := map[string]serf.Member{}, map[string]serf.Member{}
	for _, m := range l.node.Members("") {
		switch m.Tags[cluster.TagRole] {
		case cluster.RoleAgent:
			agents[m.Name] = m
		case cluster.RoleController:
			controllers[m.Name] = m
		}
	}
	now := time.Now()
	cmd := &fsm.SetLiveness{Now: now.UnixMicro()}
	for _, h := range hosts {
		if !h.Gossip {
			continue // up while its agent registers (fsm.RegisterHost)
		}
		m, ok := agents[h.Host]
		v := verdict(m, ok)
		if v == unknown {
			known := time.UnixMicro(max(h.StateChangedAt, h.CreatedAt))
			if now.Sub(leaderSince) < l.cfg.Grace || now.Sub(known) < l.cfg.Grace {
				continue
			}
			v = down // registered, but gossip has not seen it for a while
		}
		if want := v == up; want != h.Up {
			cmd.Hosts = append(cmd.Hosts, fsm.HostLiveness{Host: h.Host, Up: want})
		}
	}
	services, err := fsm.ControllerServices(st)
	if err != nil {
		return nil, err
	}
	recorded := map[string]fsm.Service{}
	for _, s := range services {
		recorded[s.Host+"/"+s.Binary] = s
	}
	names := map[string]bool{}
	for _, p := range l.node.Peers() {
		names[p] = true
	}
	for _, s := range recorded {
		names[s.Host] = true // a removed controller's services stay, down
	}
	for name := range names {
		m, ok := controllers[name]
		v := verdict(m, ok)
		if name == l.node.Name() {
			v = up
		}
		if v == unknown && now.Sub(leaderSince) < l.cfg.Grace {
			continue
		}
		want := v == up
		sch, okS := recorded[name+"/"+fsm.BinaryScheduler]
		con, okC := recorded[name+"/"+fsm.BinaryConductor]
		if okS && okC && sch.Up == want && con.Up == want {
			continue
		}
		cmd.Controllers = append(cmd.Controllers, fsm.ControllerLiveness{Name: name, Up: want, SchedulerID: ids.UUID(), ConductorID: ids.UUID()})
	}
	if len(cmd.Hosts) == 0 && len(cmd.Controllers) == 0 {
		return nil, nil
	}
	return cmd, nil
}

func (l *Loop) logChanges(cmd *fsm.SetLiveness) {
	for _, h := range cmd.Hosts {
		if h.Up {
			l.log.Info("compute host is up again (gossip): it gets new servers unless disabled", "host", h.Host)
			continue
		}
		l.log.Warn("compute host is DOWN (gossip declared its agent failed or gone): no new servers go there and its servers cannot be managed; "+
			"if it does not come back, evacuate it (keelctl host evacuate) once its fencing window has passed, or force it down first if it is known to be off",
			"host", h.Host)
	}
	for _, c := range cmd.Controllers {
		if c.Up {
			l.log.Info("controller services are up", "controller", c.Name)
		} else {
			l.log.Warn("controller services are down (gossip lost the controller)", "controller", c.Name)
		}
	}
}
