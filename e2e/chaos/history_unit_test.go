package chaos

import (
	"cmp"
	"fmt"
	"math/rand/v2"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"
)

// These run in every `go test` (no Docker): the linearizability check itself,
// on histories written by hand and on histories of a simulated store.

const sid = "srv-1"

func created(call, ret int64, name string) *op {
	return &op{Kind: opCreate, ServerID: sid, Name: name, Call: call, Return: ret, Outcome: outOK, Status: 202}
}

func renamed(call, ret int64, name string, out outcome) *op {
	return &op{Kind: opRename, ServerID: sid, Name: name, Call: call, Return: ret, Outcome: out, Status: statusOf(out)}
}

func metaSet(call, ret int64, v string, out outcome) *op {
	return &op{Kind: opSetMeta, ServerID: sid, Value: v, Call: call, Return: ret, Outcome: out, Status: statusOf(out)}
}

func deleted(call, ret int64, out outcome) *op {
	return &op{Kind: opDelete, ServerID: sid, Call: call, Return: ret, Outcome: out, Status: statusOf(out)}
}

func read(call, ret int64, name, meta string, deleting bool) *op {
	return &op{Kind: opRead, ServerID: sid, Call: call, Return: ret, Outcome: outOK, Status: 200, Found: true,
		SeenName: name, SeenMeta: meta, SeenDeleting: deleting}
}

func read404(call, ret int64) *op {
	return &op{Kind: opRead, ServerID: sid, Call: call, Return: ret, Outcome: outFail, Status: 404}
}

func statusOf(o outcome) int {
	switch o {
	case outOK:
		return 200
	case outFail:
		return 409
	}
	return 503
}

func TestLinearizabilityModel(t *testing.T) {
	for _, tc := range []struct {
		name string
		ops  []*op
		ok   bool
	}{
		{"sequential life", []*op{
			created(0, 1, "a"), renamed(2, 3, "b", outOK), read(4, 5, "b", "", false), metaSet(6, 7, "v1", outOK),
			read(8, 9, "b", "v1", false), deleted(10, 11, outOK), read(12, 13, "b", "v1", true), read404(14, 15), read404(16, 17),
		}, true},
		{"stale read after an acknowledged rename", []*op{
			created(0, 1, "a"), renamed(2, 3, "b", outOK), read(4, 5, "a", "", false),
		}, false},
		{"stale metadata after an acknowledged update", []*op{
			created(0, 1, "a"), metaSet(2, 3, "v1", outOK), metaSet(4, 5, "v2", outOK), read(6, 7, "a", "v1", false),
		}, false},
		{"read concurrent with a rename sees either", []*op{
			created(0, 1, "a"), renamed(2, 10, "b", outOK), read(3, 4, "b", "", false), read(5, 6, "b", "", false),
		}, true},
		{"new then old value while a rename runs", []*op{
			created(0, 1, "a"), renamed(2, 10, "b", outOK), read(3, 4, "b", "", false), read(5, 6, "a", "", false),
		}, false},
		{"server still shown after an acknowledged delete", []*op{
			created(0, 1, "a"), deleted(2, 3, outOK), read(4, 5, "a", "", false),
		}, false},
		{"server shown again after a 404", []*op{
			created(0, 1, "a"), deleted(2, 3, outOK), read404(4, 5), read(6, 7, "a", "", true),
		}, false},
		{"404 for a server nobody deleted", []*op{
			created(0, 1, "a"), read404(2, 3),
		}, false},
		{"an unknown rename may take effect late", []*op{
			created(0, 1, "a"), renamed(2, 3, "b", outUnknown), read(4, 5, "a", "", false), read(6, 7, "b", "", false),
		}, true},
		{"an unknown rename may never take effect", []*op{
			created(0, 1, "a"), renamed(2, 3, "b", outUnknown), read(4, 5, "a", "", false),
		}, true},
		{"an unknown rename takes effect once", []*op{
			created(0, 1, "a"), renamed(2, 3, "b", outUnknown), read(4, 5, "b", "", false), read(6, 7, "a", "", false),
		}, false},
		{"a refused rename changes nothing", []*op{
			created(0, 1, "a"), renamed(2, 3, "b", outFail), read(4, 5, "b", "", false),
		}, false},
		{"an unknown delete", []*op{
			created(0, 1, "a"), deleted(2, 3, outUnknown), read(4, 5, "a", "", false), read404(6, 7),
		}, true},
		{"an unknown create found later", []*op{
			{Kind: opCreate, ServerID: sid, Name: "a", Call: 0, Return: 1, Outcome: outUnknown, Status: 503}, read(5, 6, "a", "", false),
		}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			bad, finished := linearizable(tc.ops, 10*time.Second)
			if !finished {
				t.Fatal("the checker timed out")
			}
			if got := len(bad) == 0; got != tc.ok {
				t.Fatalf("linearizable = %v, want %v; %s", got, tc.ok, strings.Join(bad, "\n"))
			}
			if !tc.ok && !strings.Contains(bad[0], "server "+sid) {
				t.Errorf("the report does not name the server: %s", bad[0])
			}
		})
	}
}

// simStore is a replicated register per server, simulated in virtual time:
// a write is acknowledged once the leader applied it; followers apply it
// lag ticks later. A correct build serves reads at the leader's state (what
// the read-index check guarantees); the broken one serves them from a
// follower's own state.
type simStore struct {
	lag     int64
	applied []simWrite // in commit order
}

type simWrite struct {
	at   int64
	name string
}

func (s *simStore) readAt(t int64, follower bool) string {
	name := ""
	for _, w := range s.applied {
		at := w.at
		if follower {
			at += s.lag
		}
		if at <= t {
			name = w.name
		}
	}
	return name
}

// simulate runs clients renaming and reading one server and returns the
// recorded history.
func simulate(seed uint64, staleFollowerReads bool) []*op {
	rng := rand.New(rand.NewPCG(seed, 1))
	s := &simStore{lag: 5}
	ops := []*op{created(0, 1, "n0")}
	s.applied = append(s.applied, simWrite{at: 1, name: "n0"})
	type client struct{ busyUntil int64 }
	clients := make([]client, 4)
	seq := 0
	for t := int64(2); t < 400; t++ {
		for ci := range clients {
			c := &clients[ci]
			if c.busyUntil > t || rng.IntN(3) != 0 {
				continue
			}
			d := 1 + rng.Int64N(3)
			if rng.IntN(2) == 0 {
				seq++
				name := fmt.Sprintf("n%d", seq)
				at := t + rng.Int64N(d) + 1
				// Commit order follows the apply time.
				s.applied = append(s.applied, simWrite{at: at, name: name})
				o := renamed(t, t+d+1, name, outOK)
				o.Client = ci
				ops = append(ops, o)
			} else {
				at := t + rng.Int64N(d+1)
				o := read(t, t+d, "", "", false)
				o.Client = ci
				// The answer is computed when all writes applied by "at" are known.
				o.SeenName = "?" + fmt.Sprint(at)
				ops = append(ops, o)
			}
			c.busyUntil = t + d + 2
		}
	}
	// Fill in what each read saw, now that every write is known (in the
	// order the writes were applied).
	slices.SortStableFunc(s.applied, func(a, b simWrite) int { return cmp.Compare(a.at, b.at) })
	for _, o := range ops {
		if o.Kind == opRead {
			var at int64
			fmt.Sscan(strings.TrimPrefix(o.SeenName, "?"), &at)
			o.SeenName = s.readAt(at, staleFollowerReads)
		}
	}
	return ops
}

// Acceptance 2 at the unit level: histories of a store whose reads skip the
// read-index check (served from a follower that lags) are caught; histories
// of the correct store pass.
func TestLinearizabilityCatchesStaleFollowerReads(t *testing.T) {
	caught := 0
	const seeds = 10
	for seed := uint64(1); seed <= seeds; seed++ {
		bad, finished := linearizable(simulate(seed, false), 30*time.Second)
		if !finished || len(bad) != 0 {
			t.Fatalf("seed %d: the correct store's history was judged not linearizable (finished=%v): %s", seed, finished, strings.Join(bad, "\n"))
		}
		bad, finished = linearizable(simulate(seed, true), 30*time.Second)
		if !finished {
			t.Fatalf("seed %d: the checker timed out", seed)
		}
		if len(bad) > 0 {
			caught++
		}
	}
	if caught != seeds {
		t.Fatalf("stale follower reads caught in %d of %d histories, want all", caught, seeds)
	}
}

func TestClassify(t *testing.T) {
	for status, want := range map[int]outcome{0: outUnknown, 200: outOK, 202: outOK, 204: outOK, 400: outFail,
		403: outFail, 404: outFail, 409: outFail, 500: outUnknown, 502: outUnknown, 503: outUnknown, 504: outUnknown} {
		if got := classify(status); got != want {
			t.Errorf("classify(%d) = %s, want %s", status, got, want)
		}
	}
	_ = http.StatusOK
}
