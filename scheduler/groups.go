package scheduler

// Server group policies (Group.Policy).
const (
	PolicyAffinity         = "affinity"
	PolicyAntiAffinity     = "anti-affinity"
	PolicySoftAffinity     = "soft-affinity"
	PolicySoftAntiAffinity = "soft-anti-affinity"
)

// groupState is one server group during a batch: the members the caller
// reported plus the ones placed so far in this batch.
type groupState struct {
	policy     string
	maxPerHost int
	// members counts the group's members by host index; hosts without
	// members have no entry. elsewhere counts members on hosts that are
	// not in the view (they still bind an affinity group).
	members   map[int32]int
	elsewhere int
}

func newGroupState(g *Group, lookup func(string) (int32, bool)) *groupState {
	gs := &groupState{
		policy:     g.Policy,
		maxPerHost: g.MaxServerPerHost,
		members:    make(map[int32]int, len(g.Members)),
	}
	if gs.maxPerHost <= 0 {
		gs.maxPerHost = 1
	}
	for h, n := range g.Members {
		if n <= 0 {
			continue
		}
		if i, ok := lookup(h); ok {
			gs.members[i] += n
		} else {
			gs.elsewhere += n
		}
	}
	return gs
}

// hasMembers reports whether the group has a member anywhere.
func (g *groupState) hasMembers() bool { return len(g.members) > 0 || g.elsewhere > 0 }
