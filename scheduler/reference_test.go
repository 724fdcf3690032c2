package scheduler

import (
	"slices"
	"strings"
)

// referencePlace is the specification Place must meet, written the plain
// way Nova's filter scheduler works: for each request, every filter on
// every host, every weigher normalised over the survivors, the best
// HostSubsetSize hosts by (weight, name), a random choice, a claim. No
// caches, no heaps, no fast path.
func referencePlace(cfg Config, hosts []Host, reqs []Request) []Placement {
	cfg = cfg.withDefaults()
	states := make([]hostState, len(hosts))
	for i := range hosts {
		states[i] = newHostState(&hosts[i], i, &cfg)
	}
	order := make([]int, len(hosts)) // host indices in name order
	for i := range order {
		order[i] = i
	}
	slices.SortStableFunc(order, func(a, b int) int { return strings.Compare(hosts[a].Name, hosts[b].Name) })
	rank := make([]int, len(hosts))
	for r, i := range order {
		rank[i] = r
	}
	lookup := func(name string) (int32, bool) { // the first host of that name
		for i := range hosts {
			if hosts[i].Name == name {
				return int32(i), true
			}
		}
		return 0, false
	}
	groups := map[string]*groupState{}
	rng := newRand(cfg.Seed)
	chain := append(slices.Clone(staticFilters), requestFilters...)

	out := make([]Placement, len(reqs))
	for ri := range reqs {
		r := &reqs[ri]
		rc := reqCtx{
			r: r, spec: specFor(cfg, r),
			exclude:       makeHostSet(r.ExcludeHosts, lookup),
			sameHost:      makeHostSet(r.SameHost, lookup),
			differentHost: makeHostSet(r.DifferentHost, lookup),
		}
		if r.RequestedHost != "" {
			rc.requested = makeHostSet([]string{r.RequestedHost}, lookup)
		}
		if r.Group != nil {
			if groups[r.Group.ID] == nil {
				groups[r.Group.ID] = newGroupState(r.Group, lookup)
			}
			rc.group = groups[r.Group.ID]
		}
		filters := chain
		candidates := order // any order: ties are broken by rank below
		if r.ForcedHost != "" {
			filters, candidates = forcedFilters, nil
			for _, i := range order {
				if hosts[i].Name == r.ForcedHost {
					candidates = []int{i}
					break
				}
			}
			rc.spec = &shapeSpec{}
		}
		var pass []int
		last := -1
		for _, i := range candidates {
			ok := true
			for k, f := range filters {
				if !f.passes(&states[i], &rc) {
					last, ok = max(last, k), false
					break
				}
			}
			if ok {
				pass = append(pass, i)
			}
		}
		if len(pass) == 0 {
			filtered := ""
			switch {
			case r.ForcedHost != "" && len(candidates) == 0:
				filtered = FilterForcedHost
			case last >= 0:
				filtered = filters[last].name
			}
			out[ri] = Placement{ServerID: r.ServerID, Err: &NoValidHost{Reason: ReasonNotEnoughHosts, Filtered: filtered}}
			continue
		}

		weights := make([]float64, len(pass))
		if len(pass) > 1 {
			for _, w := range weighers {
				vals := make([]float64, len(pass))
				for k, i := range pass {
					if w.group == "" || (rc.group != nil && rc.group.policy == w.group) {
						vals[k] = w.raw(&states[i], &rc)
					}
					if w.minZero && vals[k] < 0 {
						vals[k] = 0
					}
				}
				lo, hi := slices.Min(vals), slices.Max(vals)
				if w.minZero {
					lo = 0
				}
				m := w.multiplier(&cfg)
				for k := range vals {
					var n float64
					if lo != hi {
						n = (vals[k] - lo) / (hi - lo)
					}
					weights[k] = float64(weights[k] + float64(m*n))
				}
			}
		}
		byWeight := make([]int, len(pass)) // positions in pass
		for k := range byWeight {
			byWeight[k] = k
		}
		slices.SortFunc(byWeight, func(a, b int) int {
			if weights[a] != weights[b] {
				if weights[a] > weights[b] {
					return -1
				}
				return 1
			}
			return rank[pass[a]] - rank[pass[b]]
		})
		subset := byWeight[:min(cfg.HostSubsetSize, len(byWeight))]
		chosen := pass[subset[0]]
		if len(subset) > 1 {
			chosen = pass[subset[rng.IntN(len(subset))]]
		}
		states[chosen].consume(r)
		if rc.group != nil {
			rc.group.members[int32(chosen)]++
		}
		out[ri] = Placement{ServerID: r.ServerID, Host: hosts[chosen].Name}
	}
	return out
}

// specFor is the request's shape as Place reads it under cfg.
func specFor(cfg Config, r *Request) *shapeSpec {
	sp := parseShape(r)
	if !cfg.AggregateInstanceExtraSpecs {
		sp.aggs = nil
	}
	return sp
}
