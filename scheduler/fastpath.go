package scheduler

import (
	"math"
	"slices"
)

// The fast path.
//
// Filtering and weighing 10,000 hosts for each of 10,000 requests costs
// 10^8 host evaluations. But the requests of a batch come in few shapes
// (flavor, extra specs, image, zone), and one claim changes one host. A
// selector keeps, for one shape, the hosts that pass its filters in a heap
// ordered by weight; a claim re-keys only the claimed host, in every live
// selector (lazily: see heap.go). A placement then costs O(log n), not
// O(n), but for the occasional O(n) rebuild described below.
//
// The catch is Nova's normalisation: a weigher's raw values are divided by
// their maximum over the candidates, so when a claim lowers that maximum
// every host's weight changes. A selector therefore keys its heap on s0,
// the weight computed with the maxima of its last rebuild (max0), and knows
// by how much s0 can be off: with current maxima cur, a host's true weight
// s differs from s0 by at most
//
//	eps = sum over weighers of |multiplier| * (1 - cur/max0)
//
// (raw <= cur, so |raw/cur - raw/max0| <= 1 - cur/max0). To find the best
// hosts it walks the heap from the top, computes the true weight of each
// host it meets, and stops at the first host whose s0 + eps (plus a margin
// for rounding) is below the worst of the best found so far: no host below
// it can do better. When the maxima have not moved (eps = 0), s0 is the
// true weight to the bit and the heap's top is the answer. When the walk
// meets too many hosts, the selector rebuilds (s0 recomputed with the
// current maxima, O(n)) and answers exactly from the fresh heap.
//
// So the fast path is not an approximation: it returns the hosts that
// filtering and weighing every host would, tie breaks and the random
// subset choice included (TestFastPathMatchesReference checks it over
// random batches). Rebuilds are rare: with alike hosts the maxima drop
// once per round of placements (one rebuild a round); with unlike hosts
// the maxima drop by little at a time and the walks stay short (60,000
// placements over 10,000 hosts of three sizes: 16,556 walks, 10 rebuilds).

// maxSelectors bounds the live selectors of a batch (each claim updates
// all of them, and each holds up to ~100 bytes per host), so a batch of
// many shapes evicts the least recently used. selectorBudget caps their
// memory over large views (~100 MB).
const (
	maxSelectors   = 32
	minSelectors   = 4
	selectorBudget = 1 << 20 // hosts × selectors
)

func selectorLimit(numHosts int) int {
	return max(minSelectors, min(maxSelectors, selectorBudget/max(numHosts, 1)))
}

// rebuildVisits is how many heap entries a walk may meet before the
// selector rebuilds: a rebuild costs about as much as a few hundred visits
// per 10,000 hosts, and restores O(1) answers until the maxima move again.
const rebuildVisits = 48

// roundingMargin bounds the floating point error of a weight relative to
// the sum of the multipliers (each term is at most |multiplier|).
const roundingMargin = 1e-9

// fastStats counts what the fast path did, for tests and benchmarks.
type fastStats struct {
	placements int // plain requests answered by a selector
	walks      int // answers that needed a walk (the maxima had moved)
	rebuilds   int // walks that gave up and rebuilt
	builds     int // selectors built
}

// selector answers "the best hosts" for one request shape and size.
type selector struct {
	ss                      *staticSet
	vcpus, memoryMB, diskGB int

	// ver is, by host, the version of the host's current entries; 0 when
	// the host is not a candidate (fails a static filter, or this size no
	// longer fits). live counts the candidates.
	ver  []uint32
	live int
	// score holds the candidates keyed by s0; maxh[d] holds them keyed by
	// the plain weigher d's raw value, for its maximum.
	score scoreHeap
	maxh  [numPlain]valueHeap
	max0  [numPlain]float64

	lastUse uint64
	// reason caches the NoValidHost filter name of an empty selector;
	// any claim since (p.claims != reasonAt) may change it.
	reason   string
	reasonAt int

	// Scratch of the walks.
	held []scoreEntry
	top  []scored
}

// scored is a host with its true weight, in a walk's best list.
type scored struct {
	host  int32
	score float64
}

// selectorFor returns the live selector of r's shape and size, building it
// (and evicting the least recently used one) when there is none.
func (p *placer) selectorFor(ss *staticSet, r *Request) *selector {
	p.useTick++
	var lru *selector
	lruAt := -1
	for i, s := range p.selectors {
		if s.ss == ss && s.vcpus == r.VCPUs && s.memoryMB == r.MemoryMB && s.diskGB == r.DiskGB {
			s.lastUse = p.useTick
			return s
		}
		if lru == nil || s.lastUse < lru.lastUse {
			lru, lruAt = s, i
		}
	}
	s := &selector{
		ss: ss, vcpus: r.VCPUs, memoryMB: r.MemoryMB, diskGB: r.DiskGB,
		lastUse: p.useTick, reasonAt: -1, score: scoreHeap{rank: p.rank},
	}
	if len(p.selectors) < selectorLimit(len(p.hosts)) {
		s.ver = make([]uint32, len(p.hosts))
		p.selectors = append(p.selectors, s)
	} else { // reuse the evicted selector's memory
		s.ver, s.held, s.top = lru.ver, lru.held, lru.top
		clear(s.ver)
		s.score.e = lru.score.e[:0]
		for d := range numPlain {
			s.maxh[d].e = lru.maxh[d].e[:0]
		}
		p.selectors[lruAt] = s
	}
	p.stats.builds++
	s.build(p)
	return s
}

func (s *selector) fits(h *hostState) bool {
	return h.fits(s.vcpus, s.memoryMB, s.diskGB)
}

func (p *placer) rawOf(i int32) [numPlain]float64 {
	return [numPlain]float64{p.raw[0][i], p.raw[1][i], p.raw[2][i]}
}

// build fills the heaps with the candidates.
func (s *selector) build(p *placer) {
	// Room for the compaction limit, so the heaps never grow by copying.
	room := compactLimit(len(s.ss.pass))
	s.score.e = slices.Grow(s.score.e[:0], room)
	for d := range numPlain {
		s.maxh[d].e = slices.Grow(s.maxh[d].e[:0], room)
	}
	for _, i := range s.ss.pass {
		if s.fits(&p.hosts[i]) {
			s.ver[i] = 1
			s.live++
			for d := range numPlain {
				s.maxh[d].e = append(s.maxh[d].e, valueEntry{p.raw[d][i], i})
			}
		}
	}
	for d := range numPlain {
		s.maxh[d].init()
	}
	s.rebuild(p, s.maxima(p))
}

// maxima returns the current maximum of each plain weigher's raw values
// over the candidates (0 with no candidates), dropping stale tops.
func (s *selector) maxima(p *placer) (m [numPlain]float64) {
	for d := range numPlain {
		h := &s.maxh[d]
		for len(h.e) > 0 && !s.validValue(p, d, &h.e[0]) {
			h.pop()
		}
		if len(h.e) > 0 {
			m[d] = h.e[0].v
		}
	}
	return m
}

func (s *selector) validValue(p *placer, d int, e *valueEntry) bool {
	return s.ver[e.host] != 0 && p.raw[d][e.host] == e.v
}

func (s *selector) validScore(e *scoreEntry) bool { return s.ver[e.host] == e.ver }

// rebuild re-keys every candidate on its weight under the maxima cur,
// dropping the stale entries.
func (s *selector) rebuild(p *placer, cur [numPlain]float64) {
	s.max0 = cur
	e := s.score.e[:0]
	for _, i := range s.ss.pass {
		if v := s.ver[i]; v != 0 {
			raw := p.rawOf(i)
			e = append(e, scoreEntry{plainScore(&raw, &s.max0, &p.mult), i, v})
		}
	}
	s.score.e = e
	s.score.init()
}

// update tells the selector about a claim on host i that consumed
// resources; changed says which raw weigher values moved. A host this size
// no longer fits leaves for good: claims only shrink free resources.
func (s *selector) update(p *placer, i int32, changed [numPlain]bool) {
	if s.ver[i] == 0 {
		return
	}
	if !s.fits(&p.hosts[i]) {
		s.ver[i] = 0
		s.live--
		s.compact(p)
		return
	}
	if changed == [numPlain]bool{} {
		return // same raw values: same weight, the entries stay valid
	}
	s.ver[i]++
	for d := range numPlain {
		if changed[d] {
			s.maxh[d].push(valueEntry{p.raw[d][i], i})
		}
	}
	raw := p.rawOf(i)
	s.score.push(scoreEntry{plainScore(&raw, &s.max0, &p.mult), i, s.ver[i]})
	s.compact(p)
}

// compactLimit is how many entries a selector's heap may hold for live
// candidates before compaction: half again as many (stale ones), and a
// slack that keeps small selectors from compacting all the time.
func compactLimit(live int) int { return live + live/2 + 64 }

// compact drops the stale entries of a heap that outgrew compactLimit, so
// the heaps stay O(candidates) and compaction costs O(1) per update.
func (s *selector) compact(p *placer) {
	limit := compactLimit(s.live)
	if len(s.score.e) > limit {
		e := s.score.e[:0]
		for _, x := range s.score.e {
			if s.validScore(&x) {
				e = append(e, x)
			}
		}
		s.score.e = e
		s.score.init()
	}
	for d := range numPlain {
		h := &s.maxh[d]
		if len(h.e) > limit {
			e := h.e[:0]
			for _, x := range h.e {
				if s.validValue(p, d, &x) {
					e = append(e, x)
				}
			}
			h.e = e
			h.init()
		}
	}
}

// best returns the best min(n, candidates) hosts, best first, appended to
// out: exactly what weighing every candidate would rank first.
func (s *selector) best(p *placer, n int, out []int32) []int32 {
	if s.live == 0 {
		return out
	}
	n = min(n, s.live)
	cur := s.maxima(p)
	if cur != s.max0 {
		var eps, sum float64
		for d := range numPlain {
			m := math.Abs(p.mult[d])
			sum += m
			if cur[d] > 0 { // at 0 every raw value is 0: s0's term is exact
				eps += m * (1 - cur[d]/s.max0[d])
			}
		}
		bound := eps + roundingMargin*(1+sum)
		p.stats.walks++
		if res, ok := s.walk(p, n, &cur, bound, out); ok {
			return res
		}
		p.stats.rebuilds++
		s.rebuild(p, cur)
	}
	if n == 1 {
		for !s.validScore(&s.score.e[0]) {
			s.score.pop()
		}
		return append(out, s.score.e[0].host)
	}
	return s.walkExact(n, out)
}

// walk takes entries off the heap best s0 first, keeping the n best true
// weights, until no entry left can beat them: an entry's s0, stale or
// not, bounds every entry below it, so once s0 + bound is below the n-th
// best, nothing left can win. Stale entries met on the way are dropped for
// good; valid ones go back. ok is false when more than rebuildVisits
// valid entries had to be weighed (the caller rebuilds).
func (s *selector) walk(p *placer, n int, cur *[numPlain]float64, bound float64, out []int32) (res []int32, ok bool) {
	top, held := s.top[:0], s.held[:0]
	ok = true
	for len(s.score.e) > 0 {
		e := s.score.e[0]
		if !s.validScore(&e) {
			s.score.pop()
			continue
		}
		if len(top) == n && e.s0+bound < top[n-1].score {
			break
		}
		if len(held) == rebuildVisits {
			ok = false
			break
		}
		s.score.pop()
		held = append(held, e)
		raw := p.rawOf(e.host)
		top = insertBest(top, n, scored{e.host, plainScore(&raw, cur, &p.mult)}, p.rank)
	}
	for _, e := range held {
		s.score.push(e)
	}
	s.top, s.held = top, held
	if !ok {
		return out, false
	}
	for _, t := range top {
		out = append(out, t.host)
	}
	return out, true
}

// walkExact returns the first n valid entries of the heap's order, which
// is the true order when s0 is exact, dropping the stale entries above
// them.
func (s *selector) walkExact(n int, out []int32) []int32 {
	held := s.held[:0]
	for len(held) < n && len(s.score.e) > 0 {
		e := s.score.e[0]
		s.score.pop()
		if s.validScore(&e) {
			out = append(out, e.host)
			held = append(held, e)
		}
	}
	for _, e := range held {
		s.score.push(e)
	}
	s.held = held
	return out
}

// insertBest adds c to the list of the n best (highest weight, then lowest
// rank), kept sorted best first.
func insertBest(top []scored, n int, c scored, rank []int32) []scored {
	better := func(a, b scored) bool {
		return a.score > b.score || (a.score == b.score && rank[a.host] < rank[b.host])
	}
	if len(top) == n && !better(c, top[n-1]) {
		return top
	}
	if len(top) < n {
		top = append(top, c)
	} else {
		top[n-1] = c
	}
	for i := len(top) - 1; i > 0 && better(top[i], top[i-1]); i-- {
		top[i], top[i-1] = top[i-1], top[i]
	}
	return top
}

// placeFast places a plain request with its shape's selector.
func (p *placer) placeFast(r *Request, ss *staticSet) Placement {
	p.stats.placements++
	s := p.selectorFor(ss, r)
	top := s.best(p, p.cfg.HostSubsetSize, p.top[:0])
	p.top = top
	if len(top) == 0 {
		if s.reasonAt != p.claims {
			// Rare, and the host-by-host path knows which filter it was.
			rc := p.reqCtx(r, ss.spec)
			_, s.reason = p.filterAll(ss, &rc)
			s.reasonAt = p.claims
		}
		return noValidHost(r, s.reason)
	}
	rc := reqCtx{r: r, spec: ss.spec}
	return p.claim(p.choose(top), &rc)
}
