package chaos

import (
	"fmt"
	"math"
	"net/http"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/anishathalye/porcupine"
)

// The recorded history of server operations and its linearizability check.
//
// Every server is one record (partitioned by server id: servers are
// independent objects, so the history is linearizable exactly when each
// server's sub-history is). Its state in the sequential specification:
//
//	absent   before the create took effect
//	present  name and metadata item "k" as last written
//	deleting the delete was accepted; the server is still shown, with
//	         task_state "deleting", until its host confirms
//	gone     404 from then on
//
// "deleting" may turn into "gone" at any time (the host's confirmation is not
// a client operation), so the model is nondeterministic: an accepted delete
// leads to deleting or gone, a 404 observed in deleting means gone.

type opKind int

const (
	opCreate  opKind = iota // POST /servers (name)
	opRename                // PUT /servers/{id} {"server": {"name"}}
	opSetMeta               // PUT /servers/{id}/metadata/k
	opRead                  // GET /servers/{id}
	opDelete                // DELETE /servers/{id}
)

func (k opKind) String() string {
	return [...]string{"create", "rename", "set-meta", "read", "delete"}[k]
}

func (k opKind) write() bool { return k != opRead }

type outcome int

const (
	outOK      outcome = iota // 2xx: it happened
	outFail                   // 4xx: it did not happen (Status says why)
	outUnknown                // no answer, a timeout or a 5xx: it may or may not have happened
)

func (o outcome) String() string { return [...]string{"ok", "fail", "unknown"}[o] }

// op is one operation as the client saw it. Times are nanoseconds since the
// workload started (monotonic clock).
type op struct {
	Client   int
	Kind     opKind
	ServerID string // known before the call, except for creates (from the answer, or the final list)
	Project  string // "main" or "quota"
	Name     string // create and rename: the name sent
	Value    string // set-meta: the value sent
	Call     int64
	Return   int64
	Outcome  outcome
	Status   int    // HTTP status; 0 when there was no answer
	Err      string // transport error or fault body (shortened)
	RetryAft bool   // the answer carried Retry-After
	// Probe: a rename of the prober's own server, sent every 50 ms
	// whatever the previous one's fate, to measure recovery. Left out of
	// the linearizability check: hundreds of concurrent writes of unknown
	// outcome on one record would make the search exponential.
	Probe bool
	// What a read saw (Found false: 404).
	Found        bool
	SeenName     string
	SeenMeta     string
	SeenDeleting bool
}

func (o *op) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "c%d %s", o.Client, o.Kind)
	switch o.Kind {
	case opCreate, opRename:
		fmt.Fprintf(&b, "(%q)", o.Name)
	case opSetMeta:
		fmt.Fprintf(&b, "(k=%q)", o.Value)
	}
	fmt.Fprintf(&b, " -> %s", o.Outcome)
	if o.Status != 0 {
		fmt.Fprintf(&b, " HTTP %d", o.Status)
	}
	if o.Kind == opRead && o.Outcome == outOK {
		fmt.Fprintf(&b, " {name=%q k=%q deleting=%v}", o.SeenName, o.SeenMeta, o.SeenDeleting)
	}
	if o.Err != "" {
		fmt.Fprintf(&b, " (%s)", o.Err)
	}
	ret := "∞"
	if o.Return != math.MaxInt64 {
		ret = fmt.Sprintf("%.3fs", float64(o.Return)/1e9)
	}
	fmt.Fprintf(&b, " [%.3fs, %s]", float64(o.Call)/1e9, ret)
	return b.String()
}

// recorder collects the operations of every worker.
type recorder struct {
	start time.Time
	mu    sync.Mutex
	ops   []*op
	// quotaSamples: the quota project's server count in each list taken
	// during the run.
	quotaSamples []quotaSample
}

type quotaSample struct {
	At    int64
	Count int
}

func newRecorder() *recorder { return &recorder{start: time.Now()} }

func (r *recorder) now() int64 { return int64(time.Since(r.start)) }

func (r *recorder) add(o *op) {
	r.mu.Lock()
	r.ops = append(r.ops, o)
	r.mu.Unlock()
}

func (r *recorder) snapshot() []*op {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]*op(nil), r.ops...)
}

// classify sets Outcome from an HTTP answer (status 0: no answer).
func classify(status int) outcome {
	switch {
	case status == 0 || status >= 500:
		return outUnknown
	case status >= 200 && status < 300:
		return outOK
	}
	return outFail
}

type phase int

const (
	absent phase = iota
	present
	deleting
	gone
)

func (p phase) String() string { return [...]string{"absent", "present", "deleting", "gone"}[p] }

// srvState is one server's state in the model (comparable: porcupine's
// default equality works).
type srvState struct {
	Phase phase
	Name  string
	Meta  string
}

// step returns every state the server may be in after o, from s; none when
// o could not have happened from s.
func step(s srvState, o *op) []srvState {
	alive := s.Phase == present || s.Phase == deleting
	one := func(x srvState) []srvState { return []srvState{x} }
	switch o.Kind {
	case opCreate:
		// Only creates that took effect are in a server's history (an
		// unknown one whose server was found later included).
		if o.Outcome == outFail || s.Phase != absent {
			return nil
		}
		return one(srvState{Phase: present, Name: o.Name})
	case opRename, opSetMeta:
		set := s
		if o.Kind == opRename {
			set.Name = o.Name
		} else {
			set.Meta = o.Value
		}
		switch o.Outcome {
		case outOK:
			if !alive {
				return nil
			}
			return one(set)
		case outUnknown:
			if alive {
				return []srvState{s, set}
			}
			return one(s)
		}
		return failStep(s, o)
	case opRead:
		if o.Outcome != outOK {
			return failStep(s, o)
		}
		want := present
		if o.SeenDeleting {
			want = deleting
		}
		if s.Phase != want || s.Name != o.SeenName || s.Meta != o.SeenMeta {
			return nil
		}
		return one(s)
	case opDelete:
		del := func(p phase) srvState { return srvState{Phase: p, Name: s.Name, Meta: s.Meta} }
		switch o.Outcome {
		case outOK:
			if !alive {
				return nil
			}
			return []srvState{del(deleting), del(gone)}
		case outUnknown:
			switch s.Phase {
			case present:
				return []srvState{s, del(deleting), del(gone)}
			case deleting:
				return []srvState{s, del(gone)}
			}
			return one(s)
		}
		return failStep(s, o)
	}
	return nil
}

// failStep: a refused operation changed nothing; a 404 says the server is
// gone (possible only once it was being deleted).
func failStep(s srvState, o *op) []srvState {
	if s.Phase == absent {
		return nil
	}
	if o.Outcome == outFail && o.Status == http.StatusNotFound {
		if s.Phase == present {
			return nil
		}
		return []srvState{{Phase: gone, Name: s.Name, Meta: s.Meta}}
	}
	return []srvState{s}
}

// serverModel is the porcupine model of the servers.
func serverModel() porcupine.Model {
	nm := &porcupine.NondeterministicModel{
		Partition: func(h []porcupine.Operation) [][]porcupine.Operation {
			by := map[string][]porcupine.Operation{}
			var keys []string
			for _, o := range h {
				id := o.Input.(*op).ServerID
				if _, ok := by[id]; !ok {
					keys = append(keys, id)
				}
				by[id] = append(by[id], o)
			}
			sort.Strings(keys)
			out := make([][]porcupine.Operation, 0, len(keys))
			for _, k := range keys {
				out = append(out, by[k])
			}
			return out
		},
		Init: func() []any { return []any{srvState{}} },
		Step: func(state, input, _ any) []any {
			next := step(state.(srvState), input.(*op))
			out := make([]any, len(next))
			for i, s := range next {
				out[i] = s
			}
			return out
		},
		DescribeOperation: func(input, _ any) string { return input.(*op).String() },
		DescribeState: func(state any) string {
			s := state.(srvState)
			return fmt.Sprintf("%s name=%q k=%q", s.Phase, s.Name, s.Meta)
		},
	}
	return nm.ToModel()
}

// linearizable checks the history: ops with an unknown outcome get an
// infinite return time (they may take effect at any point after their call);
// reads that failed, and creates that did not take effect, are left out.
// It returns a description of every server whose history is not
// linearizable (empty when all are), and whether the checker finished.
func linearizable(ops []*op, timeout time.Duration) (bad []string, finished bool) {
	var hist []porcupine.Operation
	for _, o := range ops {
		if o.ServerID == "" || o.Probe {
			continue // a create with no server; the prober's writes
		}
		if o.Kind == opRead && o.Outcome != outOK && !(o.Outcome == outFail && o.Status == http.StatusNotFound) {
			continue
		}
		if o.Kind == opCreate && o.Outcome == outFail {
			continue
		}
		ret := o.Return
		if o.Outcome == outUnknown {
			ret = math.MaxInt64
			o.Return = ret
		}
		hist = append(hist, porcupine.Operation{ClientId: o.Client, Input: o, Call: o.Call, Output: nil, Return: ret})
	}
	model := serverModel()
	res, info := porcupine.CheckOperationsVerbose(model, hist, timeout)
	if res == porcupine.Ok {
		return nil, true
	}
	if res == porcupine.Unknown {
		return nil, false
	}
	// Name the servers whose own history is illegal, with their operations.
	for _, part := range model.Partition(hist) {
		if porcupine.CheckOperations(model, part) {
			continue
		}
		sorted := append([]porcupine.Operation(nil), part...)
		sort.Slice(sorted, func(i, j int) bool { return sorted[i].Call < sorted[j].Call })
		var b strings.Builder
		fmt.Fprintf(&b, "server %s: no order of its %d operations is legal:", part[0].Input.(*op).ServerID, len(part))
		for _, p := range sorted {
			fmt.Fprintf(&b, "\n    %s", p.Input.(*op))
		}
		bad = append(bad, b.String())
	}
	_ = info
	if len(bad) == 0 {
		bad = append(bad, "the history is not linearizable, but no single server's is (a bug in the partitioning)")
	}
	return bad, true
}
