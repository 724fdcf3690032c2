package agent

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"maps"
	"net"
	"net/http"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/keel-cloud/keel/internal/clusterauth"
	"github.com/keel-cloud/keel/internal/hostapi"
)

// fakeController implements the controllers' side of the host contract in
// memory, as the tests of this package assume it (see hostapi.go):
//
//   - a host's answer is blocked until the host's own index passes ?index=,
//     or ?wait= elapses; ?index=0 answers at once;
//   - a report is refused with 409 unless its generation and task are the
//     server's current ones (task "" is an observation of a server with no
//     task), with 404 for a server not assigned to the host;
//   - a finished task clears the task and sets vm_state; a failed spawn
//     takes the server off the host (rescheduled); deleting removes it;
//   - ?fresh=1 answers with Fresh (unless staleOnly); Host.Up is
//     registered, not forced down and not marked down (setUp);
//   - an evacuated entry stays in the host's answers until its migration
//     is completed (POST .../migrations/{id}/complete; idempotent).
type fakeController struct {
	t   testing.TB
	key []byte
	url string
	srv *http.Server

	mu      sync.Mutex
	index   uint64
	changed chan struct{} // closed on every change
	hosts   map[string]*fakeHost
	images  map[string][]byte

	// failNext answers the next n calls with status (0: none).
	failN, failStatus int
	// reportStatus, when set, may answer a report with a status of its
	// choosing instead of applying it (0: apply).
	reportStatus func(host, id string, r hostapi.Report) int
	// mutate, when set, edits an answer before it is sent.
	mutate func(host string, a *hostapi.Assignments)

	// unreachable answers every call with 503, as if no controller could
	// be reached (the agent retries, and gets no answer).
	unreachable bool
	// staleOnly: answers never say Fresh (a controller cut off from the
	// leader).
	staleOnly bool
	// completeStatus, when set, may answer a completion with a status of
	// its choosing (0: apply).
	completeStatus func(host, migrationID string) int

	requests      int
	queries       []fakeQuery
	reports       []fakeReport
	registrations []hostapi.Registration
	completions   []string // migration ids, one per accepted call
}

type fakeHost struct {
	status    hostapi.HostStatus
	down      bool // gossip says the host is down
	index     uint64
	servers   map[string]*hostapi.Assignment
	evacuated map[string]hostapi.Evacuated // migration id → entry
}

type fakeQuery struct {
	host  string
	index uint64
	wait  string
	fresh bool
}

type fakeReport struct {
	host, id string
	r        hostapi.Report
	status   int
}

func newFakeController(t testing.TB, key []byte) *fakeController {
	fc := &fakeController{t: t, key: key, changed: make(chan struct{}), hosts: map[string]*fakeHost{}, images: map[string][]byte{}}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /internal/v1/hosts/{host}", fc.register)
	mux.HandleFunc("GET /internal/v1/hosts/{host}/servers", fc.servers)
	mux.HandleFunc("POST /internal/v1/hosts/{host}/servers/{id}/report", fc.report)
	mux.HandleFunc("POST /internal/v1/hosts/{host}/migrations/{id}/complete", fc.complete)
	mux.HandleFunc("GET /internal/v1/images/{id}/file", fc.image)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	fc.url = "http://" + ln.Addr().String()
	fc.srv = &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := clusterauth.Verify(r, fc.key); err != nil {
			writeError(w, http.StatusUnauthorized, "unauthorized", err.Error())
			return
		}
		fc.mu.Lock()
		fc.requests++
		if fc.unreachable {
			fc.mu.Unlock()
			writeError(w, http.StatusServiceUnavailable, "unreachable", "injected: no controller answers")
			return
		}
		if fc.failN > 0 {
			fc.failN--
			st := fc.failStatus
			fc.mu.Unlock()
			writeError(w, st, "injected", "injected failure")
			return
		}
		fc.mu.Unlock()
		mux.ServeHTTP(w, r)
	})}
	go func() { _ = fc.srv.Serve(ln) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		_ = fc.srv.Shutdown(ctx)
		fc.srv.Close()
	})
	return fc
}

// bump records a change of host h; the caller holds mu.
func (fc *fakeController) bump(h *fakeHost) {
	fc.index++
	if h != nil {
		h.index = fc.index
	}
	close(fc.changed)
	fc.changed = make(chan struct{})
}

func (fc *fakeController) host(name string) *fakeHost {
	h := fc.hosts[name]
	if h == nil {
		h = &fakeHost{status: hostapi.HostStatus{Host: name}, servers: map[string]*hostapi.Assignment{}, evacuated: map[string]hostapi.Evacuated{}}
		fc.hosts[name] = h
	}
	return h
}

func (fc *fakeController) register(w http.ResponseWriter, r *http.Request) {
	var reg hostapi.Registration
	if err := json.NewDecoder(r.Body).Decode(&reg); err != nil || reg.Host != r.PathValue("host") {
		writeError(w, http.StatusBadRequest, "invalid", "bad registration")
		return
	}
	fc.mu.Lock()
	defer fc.mu.Unlock()
	fc.registrations = append(fc.registrations, reg)
	h := fc.host(reg.Host)
	h.status.Registered = true
	fc.bump(h)
	writeJSONTest(w, h.status)
}

func (fc *fakeController) servers(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("host")
	index, _ := strconv.ParseUint(r.URL.Query().Get("index"), 10, 64)
	wait, err := time.ParseDuration(r.URL.Query().Get("wait"))
	if err != nil {
		writeError(w, http.StatusBadRequest, "invalid", "wait: "+err.Error())
		return
	}
	deadline := time.NewTimer(wait)
	defer deadline.Stop()
	fresh := r.URL.Query().Get("fresh") == "1"
	fc.mu.Lock()
	fc.queries = append(fc.queries, fakeQuery{name, index, r.URL.Query().Get("wait"), fresh})
	for {
		h := fc.hosts[name]
		if index == 0 || h == nil || h.index > index {
			break
		}
		ch := fc.changed
		fc.mu.Unlock()
		timedOut := false
		select {
		case <-ch:
		case <-deadline.C:
			timedOut = true
		case <-r.Context().Done():
			return
		}
		fc.mu.Lock()
		if timedOut {
			break
		}
	}
	ans := hostapi.Assignments{Index: fc.index, Host: hostapi.HostStatus{Host: name}, Fresh: fresh && !fc.staleOnly}
	if h := fc.hosts[name]; h != nil {
		ans.Index, ans.Host = h.index, h.status
		ans.Host.Up = h.status.Registered && !h.status.ForcedDown && !h.down
		for _, id := range slices.Sorted(maps.Keys(h.servers)) {
			ans.Servers = append(ans.Servers, *h.servers[id])
		}
		for _, id := range slices.Sorted(maps.Keys(h.evacuated)) {
			ans.Evacuated = append(ans.Evacuated, h.evacuated[id])
		}
	}
	mutate := fc.mutate
	fc.mu.Unlock()
	if mutate != nil {
		mutate(name, &ans)
	}
	writeJSONTest(w, ans)
}

// taskResult is the vm_state a finished task leaves.
var taskResult = map[string]string{
	hostapi.TaskSpawning: hostapi.VMActive, hostapi.TaskPoweringOff: hostapi.VMStopped, hostapi.TaskPoweringOn: hostapi.VMActive,
	hostapi.TaskRebooting: hostapi.VMActive, hostapi.TaskRebootingHard: hostapi.VMActive, hostapi.TaskPausing: hostapi.VMPaused,
	hostapi.TaskUnpausing: hostapi.VMActive, hostapi.TaskSuspending: hostapi.VMSuspended, hostapi.TaskResuming: hostapi.VMActive,
	hostapi.TaskRebuildSpawning: hostapi.VMActive,
}

func (fc *fakeController) report(w http.ResponseWriter, r *http.Request) {
	var rep hostapi.Report
	if err := json.NewDecoder(r.Body).Decode(&rep); err != nil {
		writeError(w, http.StatusBadRequest, "invalid", "bad report")
		return
	}
	name, id := r.PathValue("host"), r.PathValue("id")
	fc.mu.Lock()
	defer fc.mu.Unlock()
	status := fc.applyReport(name, id, rep)
	fc.reports = append(fc.reports, fakeReport{name, id, rep, status})
	if status != http.StatusOK {
		writeError(w, status, "conflict", "stale report")
		return
	}
	writeJSONTest(w, map[string]any{"index": fc.index})
}

func (fc *fakeController) applyReport(name, id string, rep hostapi.Report) int {
	if fc.reportStatus != nil {
		if st := fc.reportStatus(name, id, rep); st != 0 {
			return st
		}
	}
	h := fc.hosts[name]
	if h == nil || h.servers[id] == nil {
		return http.StatusNotFound
	}
	s := h.servers[id]
	if rep.Generation != s.Generation || rep.Task != s.TaskState {
		return http.StatusConflict
	}
	switch {
	case rep.Task == "":
		s.PowerState = rep.PowerState
	case rep.Task == hostapi.TaskDeleting && rep.Error == "":
		delete(h.servers, id)
	case rep.Task == hostapi.TaskSpawning && rep.Error != "":
		delete(h.servers, id) // rescheduled elsewhere
	case rep.Error != "":
		s.TaskState, s.PowerState = "", rep.PowerState
	default:
		s.TaskState, s.VMState, s.PowerState = "", taskResult[rep.Task], rep.PowerState
	}
	fc.bump(h)
	return http.StatusOK
}

func (fc *fakeController) complete(w http.ResponseWriter, r *http.Request) {
	name, id := r.PathValue("host"), r.PathValue("id")
	fc.mu.Lock()
	defer fc.mu.Unlock()
	if fc.completeStatus != nil {
		if st := fc.completeStatus(name, id); st != 0 {
			writeError(w, st, "injected", "injected completion failure")
			return
		}
	}
	fc.completions = append(fc.completions, id)
	if h := fc.hosts[name]; h != nil {
		if _, ok := h.evacuated[id]; ok {
			delete(h.evacuated, id)
			fc.bump(h)
		}
	}
	writeJSONTest(w, map[string]string{"status": "completed"})
}

func (fc *fakeController) image(w http.ResponseWriter, r *http.Request) {
	fc.mu.Lock()
	data, ok := fc.images[r.PathValue("id")]
	fc.mu.Unlock()
	if !ok {
		writeError(w, http.StatusNotFound, "not_found", "no such image")
		return
	}
	sum := sha256.Sum256(data)
	w.Header().Set(ImageHeaderSHA256, hex.EncodeToString(sum[:]))
	w.Header().Set("Content-Type", "application/octet-stream")
	_, _ = w.Write(data)
}

func writeJSONTest(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(v)
}

// --- test helpers ---

// assign places (or replaces) a server on a host.
func (fc *fakeController) assign(host string, a hostapi.Assignment) {
	fc.mu.Lock()
	defer fc.mu.Unlock()
	h := fc.host(host)
	c := a
	h.servers[a.ID] = &c
	fc.bump(h)
}

// setTask gives a server a task.
func (fc *fakeController) setTask(host, id, task string) {
	fc.mu.Lock()
	defer fc.mu.Unlock()
	h := fc.hosts[host]
	h.servers[id].TaskState = task
	fc.bump(h)
}

// unassign takes a server off a host (moved elsewhere, or gone).
func (fc *fakeController) unassign(host, id string) {
	fc.mu.Lock()
	defer fc.mu.Unlock()
	h := fc.hosts[host]
	delete(h.servers, id)
	fc.bump(h)
}

func (fc *fakeController) setForcedDown(host string, v bool) {
	fc.mu.Lock()
	defer fc.mu.Unlock()
	h := fc.host(host)
	h.status.ForcedDown = v
	fc.bump(h)
}

// setUp says whether gossip sees the host (HostStatus.Up, with registered
// and not forced down).
func (fc *fakeController) setUp(host string, v bool) {
	fc.mu.Lock()
	defer fc.mu.Unlock()
	h := fc.host(host)
	h.down = !v
	fc.bump(h)
}

func (fc *fakeController) setUnreachable(v bool) {
	fc.mu.Lock()
	defer fc.mu.Unlock()
	fc.unreachable = v
}

// evacuate records that a server was evacuated away from host: it leaves
// the host's servers and is listed in Evacuated until completed.
func (fc *fakeController) evacuate(host, id, migrationID string, gen uint64) {
	fc.mu.Lock()
	defer fc.mu.Unlock()
	h := fc.host(host)
	delete(h.servers, id)
	h.evacuated[migrationID] = hostapi.Evacuated{ServerID: id, MigrationID: migrationID, Generation: gen}
	fc.bump(h)
}

// completionsOf is how many accepted completion calls named the migration.
func (fc *fakeController) completionsOf(migrationID string) int {
	fc.mu.Lock()
	defer fc.mu.Unlock()
	n := 0
	for _, id := range fc.completions {
		if id == migrationID {
			n++
		}
	}
	return n
}

// forget drops a host's registration (a cluster rebuilt from scratch).
func (fc *fakeController) forget(host string) {
	fc.mu.Lock()
	defer fc.mu.Unlock()
	h := fc.host(host)
	h.status.Registered = false
	fc.bump(h)
}

func (fc *fakeController) server(host, id string) (hostapi.Assignment, bool) {
	fc.mu.Lock()
	defer fc.mu.Unlock()
	h := fc.hosts[host]
	if h == nil || h.servers[id] == nil {
		return hostapi.Assignment{}, false
	}
	return *h.servers[id], true
}

func (fc *fakeController) reportsOf(id string) []fakeReport {
	fc.mu.Lock()
	defer fc.mu.Unlock()
	var out []fakeReport
	for _, r := range fc.reports {
		if r.id == id {
			out = append(out, r)
		}
	}
	return out
}

func (fc *fakeController) queriesOf(host string) []fakeQuery {
	fc.mu.Lock()
	defer fc.mu.Unlock()
	var out []fakeQuery
	for _, q := range fc.queries {
		if q.host == host {
			out = append(out, q)
		}
	}
	return out
}

func (fc *fakeController) registrationsOf(host string) []hostapi.Registration {
	fc.mu.Lock()
	defer fc.mu.Unlock()
	var out []hostapi.Registration
	for _, r := range fc.registrations {
		if r.Host == host {
			out = append(out, r)
		}
	}
	return out
}

func (fc *fakeController) with(fn func()) {
	fc.mu.Lock()
	defer fc.mu.Unlock()
	fn()
}

var errTimeout = errors.New("timed out")

// waitFor polls cond until it holds or the timeout passes.
func waitFor(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%v waiting for %s", errTimeout, what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
