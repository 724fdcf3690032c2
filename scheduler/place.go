package scheduler

import (
	"math/rand/v2"
	"slices"
	"strings"
)

// ReasonNotEnoughHosts is Nova's NoValidHost reason for a request that no
// host can take.
const ReasonNotEnoughHosts = "There are not enough hosts available."

// Place places the requests in order and returns one Placement per
// request, in the same order. Each placement consumes the resources of its
// host in Place's private copy of the host view, so later requests of the
// batch see the earlier claims: resources, and server group members (a
// request of group X placed on host h counts as a member on h for the
// following requests of group X). Zero fields of cfg take DefaultConfig's
// values. hosts and reqs are not modified.
//
// Requests without hints, group, retries or forced host take a fast path
// that gives the same placements as filtering and weighing every host for
// every request (see selector); the others are filtered and weighed host
// by host, as Nova does.
func Place(cfg Config, hosts []Host, reqs []Request) []Placement {
	p := newPlacer(cfg.withDefaults(), hosts)
	out := make([]Placement, len(reqs))
	for i := range reqs {
		out[i] = p.place(&reqs[i])
	}
	return out
}

// placer is the state of one Place call.
type placer struct {
	cfg   Config
	mult  [numPlain]float64 // the plain weighers' multipliers
	hosts []hostState
	// raw holds the plain weighers' raw values by weigher and host index,
	// kept current as claims are made.
	raw  [numPlain][]float64
	rank []int32 // by host index: position in name order

	byName map[string]int32 // built on first use

	statics map[string]*staticSet // by shapeKey
	// The previous request and its staticSet: consecutive requests of a
	// batch usually share their shape.
	lastReq    *Request
	lastStatic *staticSet
	selectors  []*selector
	useTick    uint64
	claims     int // placements made so far
	stats      fastStats

	groups map[string]*groupState
	rng    *rand.Rand

	// Scratch buffers of the host-by-host path.
	cands           []int32
	scores, scratch []float64
	top             []int32
}

func newPlacer(cfg Config, hosts []Host) *placer {
	n := len(hosts)
	p := &placer{
		cfg:     cfg,
		mult:    [numPlain]float64{cfg.RAMWeightMultiplier, cfg.CPUWeightMultiplier, cfg.DiskWeightMultiplier},
		hosts:   make([]hostState, n),
		statics: make(map[string]*staticSet),
		groups:  make(map[string]*groupState),
		rng:     newRand(cfg.Seed),
	}
	for d := range numPlain {
		p.raw[d] = make([]float64, n)
	}
	for i := range hosts {
		p.hosts[i] = newHostState(&hosts[i], i, &p.cfg)
		p.refreshRaw(int32(i))
	}
	p.rank = nameRanks(hosts)
	for i := range p.hosts {
		p.hosts[i].rank = p.rank[i]
	}
	return p
}

// newRand is the generator of the HostSubsetSize choice: one draw per
// placement that has more than one host to choose from.
func newRand(seed uint64) *rand.Rand {
	return rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
}

// nameRanks returns each host's position in name order (index order among
// equal names), the tie break between hosts of equal weight.
func nameRanks(hosts []Host) []int32 {
	rank := make([]int32, len(hosts))
	sorted := true
	for i := 1; i < len(hosts); i++ {
		if hosts[i-1].Name > hosts[i].Name {
			sorted = false
			break
		}
	}
	if sorted { // views are often built in name order: skip the sort
		for i := range rank {
			rank[i] = int32(i)
		}
		return rank
	}
	order := make([]int32, len(hosts))
	for i := range order {
		order[i] = int32(i)
	}
	slices.SortStableFunc(order, func(a, b int32) int { return strings.Compare(hosts[a].Name, hosts[b].Name) })
	for r, i := range order {
		rank[i] = int32(r)
	}
	return rank
}

func (p *placer) refreshRaw(i int32) {
	h := &p.hosts[i]
	p.raw[0][i], p.raw[1][i], p.raw[2][i] = h.freeRAM(), h.freeVCPUs(), h.freeDisk()
}

func (p *placer) hostByName(name string) (int32, bool) {
	if p.byName == nil {
		p.byName = make(map[string]int32, len(p.hosts))
		for i := len(p.hosts) - 1; i >= 0; i-- { // the first of equal names wins
			p.byName[p.hosts[i].h.Name] = int32(i)
		}
	}
	i, ok := p.byName[name]
	return i, ok
}

// plain reports whether a request can take the fast path: nothing about
// it but its shape and size decides where it goes.
func plain(r *Request) bool {
	return r.ForcedHost == "" && r.Group == nil && len(r.SameHost) == 0 &&
		len(r.DifferentHost) == 0 && len(r.ExcludeHosts) == 0 && r.RequestedHost == ""
}

func (p *placer) place(r *Request) Placement {
	if r.VCPUs < 0 || r.MemoryMB < 0 || r.DiskGB < 0 {
		// A negative claim would give hosts capacity back, which the fast
		// path (and common sense) rules out.
		return noValidHost(r, FilterInvalidSize)
	}
	if r.ForcedHost != "" {
		return p.placeForced(r)
	}
	ss := p.staticFor(r)
	if plain(r) {
		return p.placeFast(r, ss)
	}
	return p.placeSlow(r, ss)
}

func noValidHost(r *Request, filtered string) Placement {
	return Placement{ServerID: r.ServerID, Err: &NoValidHost{Reason: ReasonNotEnoughHosts, Filtered: filtered}}
}

// reqCtx builds what the filters see of r.
func (p *placer) reqCtx(r *Request, spec *shapeSpec) reqCtx {
	rc := reqCtx{
		r:             r,
		spec:          spec,
		exclude:       makeHostSet(r.ExcludeHosts, p.hostByName),
		sameHost:      makeHostSet(r.SameHost, p.hostByName),
		differentHost: makeHostSet(r.DifferentHost, p.hostByName),
	}
	if r.RequestedHost != "" {
		rc.requested = makeHostSet([]string{r.RequestedHost}, p.hostByName)
	}
	if r.Group != nil {
		rc.group = p.groups[r.Group.ID]
		if rc.group == nil {
			// The first request of a group brings its members; the
			// following ones see those plus this batch's placements.
			rc.group = newGroupState(r.Group, p.hostByName)
			p.groups[r.Group.ID] = rc.group
		}
	}
	return rc
}

// claim places rc's request on host i: its resources are consumed, its
// group gains a member there, and the fast path's selectors learn.
func (p *placer) claim(i int32, rc *reqCtx) Placement {
	h := &p.hosts[i]
	h.consume(rc.r)
	old := p.rawOf(i)
	p.refreshRaw(i)
	if rc.group != nil {
		rc.group.members[i]++
	}
	p.claims++
	if r := rc.r; r.VCPUs != 0 || r.MemoryMB != 0 || r.DiskGB != 0 {
		var changed [numPlain]bool
		for d := range numPlain {
			changed[d] = p.raw[d][i] != old[d]
		}
		for _, s := range p.selectors {
			s.update(p, i, changed)
		}
	}
	return Placement{ServerID: rc.r.ServerID, Host: h.h.Name}
}

// placeForced places a request pinned to one host: only the retries, the
// ComputeFilter and the resource fit apply to it.
func (p *placer) placeForced(r *Request) Placement {
	i, ok := p.hostByName(r.ForcedHost)
	if !ok {
		return noValidHost(r, FilterForcedHost)
	}
	rc := p.reqCtx(r, &shapeSpec{})
	for _, f := range forcedFilters {
		if !f.passes(&p.hosts[i], &rc) {
			return noValidHost(r, f.name)
		}
	}
	return p.claim(i, &rc)
}

// placeSlow filters and weighs every host for one request, as Nova does.
func (p *placer) placeSlow(r *Request, ss *staticSet) Placement {
	rc := p.reqCtx(r, ss.spec)
	cands, filtered := p.filterAll(ss, &rc)
	if len(cands) == 0 {
		return noValidHost(r, filtered)
	}
	p.scores = slices.Grow(p.scores[:0], len(cands))[:len(cands)]
	p.weigh(cands, &rc, p.scores)
	return p.claim(p.choose(p.bestOf(cands, p.scores)), &rc)
}

// filterAll runs the filters over every host and returns the hosts that
// pass. When none does, filtered names the filter that removed the last
// ones: with filters applied in order to a shrinking list, that is the
// latest filter at which any host fell.
func (p *placer) filterAll(ss *staticSet, rc *reqCtx) (cands []int32, filtered string) {
	// The static verdicts are known; of the request filters, only those
	// that can remove a host for this request run.
	type active struct {
		at     int // index in staticFilters ++ requestFilters
		passes func(*hostState, *reqCtx) bool
	}
	var run [16]active
	filters := run[:0]
	for k, f := range requestFilters {
		if f.applies == nil || f.applies(rc) {
			filters = append(filters, active{len(staticFilters) + k, f.passes})
		}
	}
	cands = p.cands[:0]
	last := ss.lastFail
	for _, i := range ss.pass {
		h, ok := &p.hosts[i], true
		for _, f := range filters {
			if !f.passes(h, rc) {
				last, ok = max(last, f.at), false
				break
			}
		}
		if ok {
			cands = append(cands, i)
		}
	}
	p.cands = cands
	switch {
	case len(cands) > 0 || last < 0:
		return cands, ""
	case last < len(staticFilters):
		return cands, staticFilters[last].name
	default:
		return cands, requestFilters[last-len(staticFilters)].name
	}
}

// bestOf returns the best min(HostSubsetSize, len(cands)) candidates, best
// first: highest weight, then lowest name.
func (p *placer) bestOf(cands []int32, scores []float64) []int32 {
	better := func(a, b int) bool { // positions in cands
		return scores[a] > scores[b] || (scores[a] == scores[b] && p.rank[cands[a]] < p.rank[cands[b]])
	}
	n := min(p.cfg.HostSubsetSize, len(cands))
	top := p.top[:0]
	if n == 1 {
		best := 0
		for i := 1; i < len(cands); i++ {
			if better(i, best) {
				best = i
			}
		}
		p.top = append(top, cands[best])
		return p.top
	}
	order := make([]int, len(cands))
	for i := range order {
		order[i] = i
	}
	slices.SortFunc(order, func(a, b int) int {
		switch {
		case better(a, b):
			return -1
		case better(b, a):
			return 1
		}
		return 0
	})
	for _, i := range order[:n] {
		top = append(top, cands[i])
	}
	p.top = top
	return top
}

// choose picks among the best hosts at random, as Nova's host_subset_size
// does; with one host, no random number is drawn.
func (p *placer) choose(top []int32) int32 {
	if len(top) == 1 {
		return top[0]
	}
	return top[p.rng.IntN(len(top))]
}
