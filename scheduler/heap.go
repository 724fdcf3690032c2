package scheduler

// The fast path's heaps are lazy: a host whose key changes gets a new
// entry and its old one goes stale, to be skipped when met and dropped by
// compaction. A push after a claim usually stays at the bottom (weights of
// a spreading claim drop), so an update costs O(1) where re-keying an
// indexed heap costs O(log n), and a claim updates every live selector.

// scoreEntry is a host keyed by its weight s0. It is stale unless ver is
// the selector's current version of the host.
type scoreEntry struct {
	s0   float64
	host int32
	ver  uint32
}

// scoreHeap orders entries by s0, highest first, then by host rank
// (name order), lowest first.
type scoreHeap struct {
	e    []scoreEntry
	rank []int32 // by host index, shared
}

func (h *scoreHeap) before(a, b *scoreEntry) bool {
	return a.s0 > b.s0 || (a.s0 == b.s0 && h.rank[a.host] < h.rank[b.host])
}

func (h *scoreHeap) beforeAt(i, j int) bool { return h.before(&h.e[i], &h.e[j]) }

func (h *scoreHeap) push(x scoreEntry) {
	h.e = append(h.e, x)
	for i := len(h.e) - 1; i > 0; {
		parent := (i - 1) / 2
		if !h.beforeAt(i, parent) {
			break
		}
		h.e[i], h.e[parent] = h.e[parent], h.e[i]
		i = parent
	}
}

func (h *scoreHeap) pop() {
	last := len(h.e) - 1
	h.e[0] = h.e[last]
	h.e = h.e[:last]
	h.down(0)
}

// init restores the heap order over all entries, in O(n).
func (h *scoreHeap) init() {
	for i := len(h.e)/2 - 1; i >= 0; i-- {
		h.down(i)
	}
}

func (h *scoreHeap) down(i int) {
	n := len(h.e)
	for {
		best := i
		if l := 2*i + 1; l < n && h.beforeAt(l, best) {
			best = l
		}
		if r := 2*i + 2; r < n && h.beforeAt(r, best) {
			best = r
		}
		if best == i {
			return
		}
		h.e[i], h.e[best] = h.e[best], h.e[i]
		i = best
	}
}

// valueEntry is a host keyed by one of its raw weigher values. It is stale
// when the host left the candidates or its value changed since.
type valueEntry struct {
	v    float64
	host int32
}

// valueHeap is a max-heap of values: its valid top is the maximum.
type valueHeap struct{ e []valueEntry }

func (h *valueHeap) push(x valueEntry) {
	h.e = append(h.e, x)
	for i := len(h.e) - 1; i > 0; {
		parent := (i - 1) / 2
		if h.e[i].v <= h.e[parent].v {
			break
		}
		h.e[i], h.e[parent] = h.e[parent], h.e[i]
		i = parent
	}
}

func (h *valueHeap) pop() {
	last := len(h.e) - 1
	h.e[0] = h.e[last]
	h.e = h.e[:last]
	h.down(0)
}

func (h *valueHeap) init() {
	for i := len(h.e)/2 - 1; i >= 0; i-- {
		h.down(i)
	}
}

func (h *valueHeap) down(i int) {
	n := len(h.e)
	for {
		best := i
		if l := 2*i + 1; l < n && h.e[l].v > h.e[best].v {
			best = l
		}
		if r := 2*i + 2; r < n && h.e[r].v > h.e[best].v {
			best = r
		}
		if best == i {
			return
		}
		h.e[i], h.e[best] = h.e[best], h.e[i]
		i = best
	}
}
