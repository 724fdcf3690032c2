package scheduler

import "slices"

// Weigher names, as Nova's weigher classes are named.
const (
	WeigherRAM              = "RAMWeigher"
	WeigherCPU              = "CPUWeigher"
	WeigherDisk             = "DiskWeigher"
	WeigherSoftAffinity     = "ServerGroupSoftAffinityWeigher"
	WeigherSoftAntiAffinity = "ServerGroupSoftAntiAffinityWeigher"
)

// weigher is one of Nova's host weighers. Its raw values over the
// candidate hosts are normalised to 0..1, multiplied by its multiplier and
// added to the hosts' weights; the heaviest host wins.
type weigher struct {
	name string
	// minZero: the weigher's minval is 0 (the resource weighers): raw
	// values are clamped at 0 and normalised over [0, max] rather than
	// [min, max].
	minZero    bool
	raw        func(h *hostState, rc *reqCtx) float64
	multiplier func(c *Config) float64
	// group: the policy the weigher serves; for other requests its raw
	// values are all 0, which normalise to 0 and change nothing.
	group string
}

// weighers in the order their scores are summed. The first three are the
// "plain" weighers that the fast path evaluates with plainScore.
var weighers = []weigher{
	{
		name: WeigherRAM, minZero: true,
		raw:        func(h *hostState, _ *reqCtx) float64 { return h.freeRAM() },
		multiplier: func(c *Config) float64 { return c.RAMWeightMultiplier },
	},
	{
		name: WeigherCPU, minZero: true,
		raw:        func(h *hostState, _ *reqCtx) float64 { return h.freeVCPUs() },
		multiplier: func(c *Config) float64 { return c.CPUWeightMultiplier },
	},
	{
		name: WeigherDisk, minZero: true,
		raw:        func(h *hostState, _ *reqCtx) float64 { return h.freeDisk() },
		multiplier: func(c *Config) float64 { return c.DiskWeightMultiplier },
	},
	{
		// More members of the group on the host: heavier.
		name: WeigherSoftAffinity, group: PolicySoftAffinity,
		raw:        func(h *hostState, rc *reqCtx) float64 { return float64(rc.group.members[h.idx]) },
		multiplier: func(c *Config) float64 { return c.SoftAffinityWeightMultiplier },
	},
	{
		// More members of the group on the host: lighter.
		name: WeigherSoftAntiAffinity, group: PolicySoftAntiAffinity,
		raw:        func(h *hostState, rc *reqCtx) float64 { return -float64(rc.group.members[h.idx]) },
		multiplier: func(c *Config) float64 { return c.SoftAntiAffinityWeightMultiplier },
	},
}

// numPlain is how many of the weighers depend on the host alone.
const numPlain = 3

// normalize maps vals onto 0..1 in place as Nova's weights.normalize does:
// over [min, max] of the values (over [0, max] for a minZero weigher), and
// all zero when the range is empty.
func normalize(vals []float64, minZero bool) {
	if len(vals) == 0 {
		return
	}
	lo, hi := vals[0], vals[0]
	for _, v := range vals[1:] {
		lo, hi = min(lo, v), max(hi, v)
	}
	if minZero {
		lo = 0
	}
	if lo == hi {
		clear(vals)
		return
	}
	for i, v := range vals {
		if minZero {
			// v - 0 is v: the same division as plainScore, bit for bit.
			vals[i] = v / hi
		} else {
			vals[i] = (v - lo) / (hi - lo)
		}
	}
}

// plainScore is a host's weight from the plain weighers, given its raw
// values and their maxima over the candidates. It adds the terms in the
// order weigh does, and the explicit float64 conversions forbid fused
// multiply-adds, so the fast path and the full weighing agree to the bit.
func plainScore(raw, maxv, mult *[numPlain]float64) float64 {
	var s float64
	for d := range numPlain {
		var n float64
		if maxv[d] > 0 {
			n = raw[d] / maxv[d]
		}
		s = float64(s + float64(mult[d]*n))
	}
	return s
}

// weigh computes the weight of every candidate host for rc, as Nova's
// weight handler does: each weigher's raw values normalised over the
// candidates, times its multiplier, summed. A single candidate weighs 0.
// The weights are written to scores.
func (p *placer) weigh(cands []int32, rc *reqCtx, scores []float64) {
	clear(scores)
	if len(cands) <= 1 {
		return
	}
	p.scratch = slices.Grow(p.scratch[:0], len(cands))[:len(cands)]
	vals := p.scratch
	for wi := range weighers {
		w := &weighers[wi]
		if w.group != "" && (rc.group == nil || rc.group.policy != w.group) {
			continue // all raw values 0: adds nothing
		}
		if wi < numPlain {
			raw := p.raw[wi] // kept current by claim, clamped
			for k, c := range cands {
				vals[k] = raw[c]
			}
		} else {
			for k, c := range cands {
				vals[k] = w.raw(&p.hosts[c], rc)
			}
		}
		normalize(vals, w.minZero)
		m := w.multiplier(&p.cfg)
		for k := range cands {
			scores[k] = float64(scores[k] + float64(m*vals[k]))
		}
	}
}
