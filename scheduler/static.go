package scheduler

// staticPass marks a host that passes every static filter.
const staticPass = 255

// staticSet is the static filters' verdict on every host for one request
// shape (zone, extra specs, image properties). Claims never change it, so
// it is computed once per shape and batch.
type staticSet struct {
	spec *shapeSpec
	// firstFail is, by host index, the index in staticFilters of the first
	// filter the host fails, or staticPass.
	firstFail []uint8
	pass      []int32 // the hosts that pass them all, in index order
	// lastFail is the highest firstFail of the hosts that fail (-1 when
	// none does): with no candidates left, that filter removed the last.
	lastFail int
}

// staticFor returns the staticSet of r's shape, computing it on first use.
func (p *placer) staticFor(r *Request) *staticSet {
	if p.lastReq != nil && sameShape(p.lastReq, r) {
		p.lastReq = r
		return p.lastStatic
	}
	key := shapeKey(r)
	ss := p.statics[key]
	if ss == nil {
		spec := parseShape(r)
		if !p.cfg.AggregateInstanceExtraSpecs {
			spec.aggs = nil
		}
		ss = p.buildStatic(spec)
		p.statics[key] = ss
	}
	p.lastReq, p.lastStatic = r, ss
	return ss
}

func (p *placer) buildStatic(spec *shapeSpec) *staticSet {
	ss := &staticSet{spec: spec, firstFail: make([]uint8, len(p.hosts)), lastFail: -1}
	rc := reqCtx{spec: spec}
	for i := range p.hosts {
		ff := uint8(staticPass)
		for k, f := range staticFilters {
			if !f.passes(&p.hosts[i], &rc) {
				ff = uint8(k)
				break
			}
		}
		ss.firstFail[i] = ff
		if ff == staticPass {
			ss.pass = append(ss.pass, int32(i))
		} else {
			ss.lastFail = max(ss.lastFail, int(ff))
		}
	}
	return ss
}
