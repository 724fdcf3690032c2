package main

import (
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/keel-cloud/keel/api"
	"github.com/keel-cloud/keel/fsm"
)

// evacController fakes the admin API of a controller for `host evacuate`.
type evacController struct {
	host     api.HostRow
	servers  []api.HostServer
	refuse   map[string]bool // server ids whose evacuate call is refused
	polls    atomic.Int64
	mu       sync.Mutex
	started  map[string]string // server id -> migration id
	evacuate atomic.Int64
}

func (f *evacController) serve(t *testing.T) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		switch p := r.URL.Path; {
		case r.Method == "GET" && p == "/internal/v1/admin/hosts/h1":
			writeJSON(w, 200, f.host)
		case r.Method == "GET" && p == "/internal/v1/admin/hosts/h1/servers":
			writeJSON(w, 200, map[string]any{"servers": f.servers})
		case r.Method == "POST" && strings.HasPrefix(p, "/internal/v1/admin/servers/") && strings.HasSuffix(p, "/evacuate"):
			f.evacuate.Add(1)
			id := strings.TrimSuffix(strings.TrimPrefix(p, "/internal/v1/admin/servers/"), "/evacuate")
			if f.refuse[id] {
				writeJSON(w, 409, map[string]string{"code": "conflict", "error": "Cannot 'evacuate' instance " + id + " while it is in task_state powering-off"})
				return
			}
			f.mu.Lock()
			f.started[id] = "mig-" + id
			f.mu.Unlock()
			writeJSON(w, 200, api.Evacuation{MigrationID: "mig-" + id, MigrationStatus: "accepted", ServerID: id, ServerStatus: "REBUILD", TaskState: "rebuilding"})
		case r.Method == "GET" && p == "/internal/v1/admin/hosts/h1/evacuations":
			// First poll: one rebuilt; then all.
			n := f.polls.Add(1)
			f.mu.Lock()
			defer f.mu.Unlock()
			var out []api.Evacuation
			i := int64(0)
			for id, mig := range f.started {
				e := api.Evacuation{MigrationID: mig, ServerID: id, MigrationStatus: "pre-migrating", ServerStatus: "REBUILD", TaskState: "rebuild_spawning", Host: "h2"}
				if n > 1 || i == 0 {
					e.MigrationStatus, e.ServerStatus, e.TaskState = "done", "ACTIVE", ""
				}
				if id == "s-err" && n > 1 {
					e.MigrationStatus, e.ServerStatus, e.Fault = "failed", "ERROR", "disk gone"
				}
				out = append(out, e)
				i++
			}
			// An older evacuation of the same host is not this run's.
			out = append(out, api.Evacuation{MigrationID: "old", ServerID: "gone", MigrationStatus: "completed", ServerStatus: "ACTIVE"})
			writeJSON(w, 200, map[string]any{"evacuations": out})
		default:
			t.Errorf("unexpected request %s %s", r.Method, p)
			http.NotFound(w, r)
		}
	}
}

func TestHostEvacuate(t *testing.T) {
	clearEnv(t)
	keyStr, key := testKey(t)
	run := func(f *evacController) result {
		fc := newFakeController(t, key, f.serve(t))
		return keelctl(t, "--url", fc.URL, "--cluster-key", keyStr, "host", "evacuate", "h1")
	}
	servers := []api.HostServer{{ID: "s-1", Name: "one"}, {ID: "s-2", Name: "two"}, {ID: "s-busy", Name: "busy"}, {ID: "s-err", Name: "err"}}

	refusals := []struct {
		name string
		host api.HostRow
		want string
	}{
		{"an up host", api.HostRow{Host: "h1", State: "up", Gossip: "alive", EvacuableInMS: -1}, "the host is up (gossip: alive)"},
		{"inside the fencing window", api.HostRow{Host: "h1", State: "down", Gossip: "failed", FenceAfterMS: 30000, EvacuableInMS: 12400}, "may still run servers for 12s more (fencing window 30s"},
		{"no self-fencing", api.HostRow{Host: "h1", State: "down", EvacuableInMS: -1}, "does not fence itself"},
	}
	for _, c := range refusals {
		f := &evacController{host: c.host, servers: servers, started: map[string]string{}}
		r := run(f)
		if r.code != exitError || !strings.Contains(r.stderr, c.want) || f.evacuate.Load() != 0 {
			t.Errorf("%s: exit %d, %d evacuate calls, stderr %q; want a refusal saying %q", c.name, r.code, f.evacuate.Load(), r.stderr, c.want)
		}
	}

	f := &evacController{host: api.HostRow{Host: "h1", State: "down", ForcedDown: true}, servers: servers,
		refuse: map[string]bool{"s-busy": true}, started: map[string]string{}}
	r := run(f)
	if r.code != exitError {
		t.Fatalf("exit %d, want 1 (one refused, one failed)\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	for _, want := range []string{
		"evacuated 2 of 4 servers from h1", "(1 failed, 1 refused, 0 still rebuilding)",
		"s-busy  busy  refused", "task_state powering-off", "s-err   err   failed (ERROR)  h2", "disk gone", "s-1     one   ACTIVE",
	} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("summary lacks %q:\n%s", want, r.stdout)
		}
	}
	if !strings.Contains(r.stderr, "evacuating 4 servers from h1") || !strings.Contains(r.stderr, "evacuating h1: 3/3 finished, 1 failed") {
		t.Errorf("progress on stderr:\n%s", r.stderr)
	}
	if f.evacuate.Load() != 4 {
		t.Errorf("%d evacuate calls, want 4", f.evacuate.Load())
	}
}

func TestServicesAndHostsListings(t *testing.T) {
	clearEnv(t)
	keyStr, key := testKey(t)
	fc := newFakeController(t, key, func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/internal/v1/admin/services":
			writeJSON(w, 200, map[string]any{"services": []api.ServiceRow{
				{Service: fsm.Service{ID: "u1", Binary: "nova-compute", Host: "h1", Zone: "nova", Disabled: true, DisabledReason: "disks"}, State: "down", Gossip: "failed"},
			}})
		case "/internal/v1/admin/hosts":
			writeJSON(w, 200, map[string]any{"hosts": []api.HostRow{
				{Host: "h1", Zone: "nova", State: "down", ForcedDown: true, Gossip: "failed", Servers: 3, VCPUs: 8, VCPUsUsed: 3, FenceAfterMS: 30000},
			}})
		default:
			http.NotFound(w, r)
		}
	})
	r := keelctl(t, "--url", fc.URL, "--cluster-key", keyStr, "services")
	if r.code != 0 || !strings.Contains(r.stdout, "u1  nova-compute  h1    nova  disabled  down   failed") || !strings.Contains(r.stdout, "disks") {
		t.Fatalf("services: %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	r = keelctl(t, "--url", fc.URL, "--cluster-key", keyStr, "hosts")
	if r.code != 0 || !strings.Contains(r.stdout, "down (forced)") || !strings.Contains(r.stdout, "3/8") || !strings.Contains(r.stdout, "30s") || !strings.Contains(r.stdout, "yes") {
		t.Fatalf("hosts: %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	r = keelctl(t, "--url", fc.URL, "--cluster-key", keyStr, "hosts", "--json")
	if r.code != 0 || !strings.Contains(r.stdout, `"forced_down": true`) {
		t.Fatalf("hosts --json: %d\n%s%s", r.code, r.stdout, r.stderr)
	}
}
