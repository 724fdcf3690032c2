package scheduler

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"time"

	"github.com/keel-cloud/keel/cluster"
	"github.com/keel-cloud/keel/fsm"
)

// BatchSize bounds how many pending servers one round places (and so one
// PlaceServers command's size).
const BatchSize = 1000

// Loop is the leader's scheduler: it wakes when servers or hosts change,
// places the pending servers in batches and proposes the claims. It keeps
// no state between rounds: everything it needs is in the FSM, so a new
// leader simply carries on.
type Loop struct {
	node *cluster.Node
	cfg  Config
	log  *slog.Logger
}

// Register adds the scheduler to the node's leader loops.
func Register(node *cluster.Node, cfg Config, log *slog.Logger) *Loop {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	l := &Loop{node: node, cfg: cfg, log: log.With("loop", "scheduler")}
	node.RegisterLeaderLoop(cluster.LeaderLoop{Name: "scheduler", Run: l.run})
	return l
}

func (l *Loop) run(ctx context.Context) {
	var index uint64
	for wait := 100 * time.Millisecond; ctx.Err() == nil; {
		next, err := l.node.Watch(ctx, []string{fsm.TableServer, fsm.TableHost}, index, time.Minute)
		if err != nil {
			return
		}
		index = next
		progress, err := l.round(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			l.log.Error("scheduling round failed; retrying", "error", err, "retry_in", wait)
			select {
			case <-ctx.Done():
				return
			case <-time.After(wait):
			}
			wait = min(2*wait, 5*time.Second)
			index = 0 // look again even if nothing changed
			continue
		}
		wait = 100 * time.Millisecond
		if progress {
			index = 0 // more may be pending: go round again at once
		}
	}
}

// round places up to BatchSize pending servers. It reports whether it
// placed or failed any (so more rounds may be due).
func (l *Loop) round(ctx context.Context) (bool, error) {
	st := l.node.State()
	var pending []*fsm.Server
	if err := fsm.PendingServers(st, func(s *fsm.Server) bool {
		pending = append(pending, s)
		return len(pending) < BatchSize
	}); err != nil {
		return false, err
	}
	if len(pending) == 0 {
		return false, nil
	}
	hostRecs, err := fsm.ListHosts(st)
	if err != nil {
		return false, err
	}
	// One scan of the aggregates per round gives every host its own.
	aggRecs, err := fsm.ListAggregates(st)
	if err != nil {
		return false, err
	}
	aggs := map[string][]Aggregate{}
	for _, a := range aggRecs {
		for _, h := range a.Hosts {
			aggs[h] = append(aggs[h], Aggregate{Name: a.Name, Metadata: a.Metadata})
		}
	}
	hosts := make([]Host, len(hostRecs))
	for i, h := range hostRecs {
		hosts[i] = hostView(h, aggs[h.Host])
	}
	reqs := make([]Request, 0, len(pending))
	images := map[string]map[string]string{} // a batch's servers mostly share a few images
	for _, s := range pending {
		r, err := requestFor(st, s, images)
		if err != nil {
			return false, err
		}
		reqs = append(reqs, r)
	}
	start := time.Now()
	placements := Place(l.cfg, hosts, reqs)
	took := time.Since(start)
	cmd := &fsm.PlaceServers{Now: time.Now().UnixMicro()}
	for _, p := range placements {
		if p.Err != nil {
			cmd.Failures = append(cmd.Failures, fsm.PlaceFailure{ServerID: p.ServerID, Reason: p.Err.Reason})
			l.log.Warn("no valid host for a server", "server_id", p.ServerID, "filter", p.Err.Filtered, "reason", p.Err.Reason)
			continue
		}
		cmd.Claims = append(cmd.Claims, fsm.Claim{ServerID: p.ServerID, Host: p.Host})
	}
	resp, err := l.node.Apply(ctx, cmd)
	if err != nil {
		return false, fmt.Errorf("propose placements of %d servers: %w", len(pending), err)
	}
	var res fsm.PlaceServersResult
	if err := resp.Decode(&res); err != nil {
		return false, err
	}
	l.log.Debug("scheduled a batch", "servers", len(pending), "hosts", len(hosts), "placed", len(res.Placed),
		"skipped", len(res.Skipped), "failed", len(res.Failed), "place_time", took)
	if len(res.Skipped) > 0 {
		l.log.Info("placements skipped: the hosts changed since the view was read; they are retried", "servers", len(res.Skipped))
	}
	return len(res.Placed)+len(res.Failed) > 0, nil
}

// hostView turns a host record and the aggregates it belongs to into the
// scheduler's view of it.
func hostView(h *fsm.Host, aggs []Aggregate) Host {
	cpu, ram, disk := h.Ratios()
	return Host{
		Name: h.Host, Zone: h.AvailabilityZone(),
		Up:       h.Alive(),
		Disabled: h.Disabled,
		VCPUs:    h.VCPUs, MemoryMB: h.MemoryMB, DiskGB: h.DiskGB,
		VCPUsUsed: h.VCPUsUsed, MemoryMBUsed: h.MemoryMBUsed, DiskGBUsed: h.DiskGBUsed,
		CPURatio: cpu, RAMRatio: ram, DiskRatio: disk,
		Servers:      h.RunningVMs,
		Capabilities: h.Capabilities, // the agent's facts (Place never changes them)
		Aggregates:   aggs,
	}
}

// requestFor builds the placement request of a pending server.
func requestFor(st fsm.Reader, s *fsm.Server, images map[string]map[string]string) (Request, error) {
	vcpus, ram, disk := s.Flavor.Claim()
	r := Request{
		ServerID: s.ID, VCPUs: vcpus, MemoryMB: ram, DiskGB: disk,
		ExtraSpecs:   s.Flavor.ExtraSpecs,
		Zone:         s.PinnedAZ,
		ExcludeHosts: s.RetryHosts,
	}
	props, seen := images[s.ImageID]
	if !seen {
		if img, _, err := fsm.GetImage(st, s.ImageID); err == nil {
			props = img.Properties
		}
		images[s.ImageID] = props
	}
	r.ImageProperties = props
	r.ForcedHost = s.ForcedHost
	r.RequestedHost = s.RequestedHost
	if s.EvacuatedFrom != "" {
		r.ExcludeHosts = append(slices.Clone(r.ExcludeHosts), s.EvacuatedFrom)
	}
	hostsOf := func(hint string) []string {
		var out []string
		for _, id := range hintList(s.SchedulerHints[hint]) {
			if o, _, err := fsm.GetServer(st, id); err == nil && !o.Deleted && o.Host != "" {
				out = append(out, o.Host)
			}
		}
		return out
	}
	r.SameHost = hostsOf("same_host")
	r.DifferentHost = hostsOf("different_host")
	if _, ok := s.SchedulerHints["same_host"]; ok && len(r.SameHost) == 0 {
		// Nova's SameHostFilter passes no host when the named servers
		// are on none.
		r.SameHost = []string{""}
	}
	g, err := fsm.ServerGroupOf(st, s.ID)
	if err != nil {
		return r, err
	}
	if g != nil {
		grp := &Group{ID: g.ID, Policy: g.Policy, MaxServerPerHost: g.Rules["max_server_per_host"], Members: map[string]int{}}
		for _, id := range g.Members {
			if id == s.ID {
				continue
			}
			if o, _, err := fsm.GetServer(st, id); err == nil && !o.Deleted && o.Host != "" {
				grp.Members[o.Host]++
			}
		}
		r.Group = grp
	}
	return r, nil
}

// hintList reads a scheduler hint that is one id or a list of ids.
func hintList(v any) []string {
	switch v := v.(type) {
	case string:
		return []string{v}
	case []any:
		out := make([]string, 0, len(v))
		for _, x := range v {
			if s, ok := x.(string); ok {
				out = append(out, s)
			}
		}
		return out
	case []string:
		return v
	}
	return nil
}
