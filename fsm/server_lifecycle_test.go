package fsm

import (
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/keel-cloud/keel/internal/hostapi"
)

// lifecycle is the harness of the lifecycle tests, with hosts registered.
type lifecycle struct{ *harness }

func newLifecycle(t *testing.T, hosts ...string) *lifecycle {
	l := &lifecycle{newHarness(t)}
	for _, h := range hosts {
		l.ok(&RegisterHost{Registration: hostapi.Registration{Host: h, VCPUs: 4, MemoryMB: 4096, DiskGB: 40},
			ServiceID: "svc-" + h, HypervisorID: "hv-" + h, Now: 1})
	}
	return l
}

// refuse is harness.refuse named after the command.
func (l *lifecycle) refuse(c Command, kind Kind, msg string) {
	l.t.Helper()
	l.harness.refuse(fmt.Sprintf("%T", c), c, kind, msg)
}

func (l *lifecycle) server(id string) *Server {
	l.t.Helper()
	s, _, err := GetServer(l.f.State(), id)
	if err != nil {
		l.t.Fatal(err)
	}
	return s
}

func (l *lifecycle) host(name string) *Host {
	l.t.Helper()
	h, _, err := GetHost(l.f.State(), name)
	if err != nil {
		l.t.Fatal(err)
	}
	return h
}

func (l *lifecycle) wantState(id, status, vm, task string, power int) {
	l.t.Helper()
	s := l.server(id)
	if s.Status != status || s.VMState != vm || s.TaskState != task || s.PowerState != power {
		l.t.Fatalf("server %s: %s/%s/%q/%d, want %s/%s/%q/%d", id, s.Status, s.VMState, s.TaskState, s.PowerState, status, vm, task, power)
	}
}

func (l *lifecycle) report(id, task string, power int, errMsg string) *Response {
	l.t.Helper()
	s := l.server(id)
	return l.apply(&ReportServer{ID: id, Host: s.Host, Report: hostapi.Report{Generation: s.Generation, Task: task, PowerState: power, Error: errMsg}, Now: 100})
}

func TestServerLifecycleThroughEveryAction(t *testing.T) {
	l := newLifecycle(t, "h1")
	srv := testServers(1, "p1")[0]
	l.ok(&CreateServers{Servers: []Server{srv}, MinCount: 1, RequestID: "req-create"})
	id := srv.ID
	l.wantState(id, StatusBuild, VMBuilding, TaskScheduling, 0)
	var pending int
	PendingServers(l.f.State(), func(*Server) bool { pending++; return true })
	if pending != 1 {
		t.Fatalf("pending %d, want 1", pending)
	}
	// Actions before the server was built are refused with Nova's words.
	l.refuse(&ServerAction{ID: id, Action: ActionStop}, KindConflict, fmt.Sprintf("Cannot 'stop' instance %s while it is in vm_state building", id))

	r := l.ok(&PlaceServers{Claims: []Claim{{ServerID: id, Host: "h1"}}, Now: 10})
	var pr PlaceServersResult
	if r.Decode(&pr); len(pr.Placed) != 1 {
		t.Fatalf("placement result %+v", pr)
	}
	l.wantState(id, StatusBuild, VMBuilding, TaskSpawning, 0)
	if h := l.host("h1"); h.VCPUsUsed != 2 || h.MemoryMBUsed != 512 || h.RunningVMs != 1 {
		t.Fatalf("host usage after placement %+v", h)
	}
	if s := l.server(id); s.Generation != l.idx || s.AvailabilityZone != DefaultZone {
		t.Fatalf("generation %d (want %d), zone %q", s.Generation, l.idx, s.AvailabilityZone)
	}
	if ss, _ := HostServers(l.f.State(), "h1"); len(ss) != 1 {
		t.Fatalf("host index: %d servers", len(ss))
	}
	// A report of an older generation or another task is stale.
	s := l.server(id)
	l.refuse(&ReportServer{ID: id, Host: "h1", Report: hostapi.Report{Generation: s.Generation - 1, Task: TaskSpawning, PowerState: 1}}, KindConflict, "stale report")
	l.refuse(&ReportServer{ID: id, Host: "h1", Report: hostapi.Report{Generation: s.Generation, Task: hostapi.TaskPoweringOff, PowerState: 1}}, KindConflict, "stale report")
	l.ok(&ReportServer{ID: id, Host: "h1", Report: hostapi.Report{Generation: s.Generation, Task: TaskSpawning, PowerState: 1}, Now: 20})
	l.wantState(id, StatusActive, VMActive, "", 1)
	if l.server(id).LaunchedAt != 20 {
		t.Fatal("launched_at not set")
	}

	steps := []struct {
		action, task, midStatus string
		power                   int
		status, vm              string
	}{
		{ActionStop, hostapi.TaskPoweringOff, "ACTIVE", 4, "SHUTOFF", VMStopped},
		{ActionStart, hostapi.TaskPoweringOn, "SHUTOFF", 1, "ACTIVE", VMActive},
		{ActionRebootSoft, hostapi.TaskRebooting, "REBOOT", 1, "ACTIVE", VMActive},
		{ActionRebootHard, hostapi.TaskRebootingHard, "HARD_REBOOT", 1, "ACTIVE", VMActive},
		{ActionPause, hostapi.TaskPausing, "ACTIVE", 3, "PAUSED", VMPaused},
		{ActionUnpause, hostapi.TaskUnpausing, "PAUSED", 1, "ACTIVE", VMActive},
		{ActionSuspend, hostapi.TaskSuspending, "ACTIVE", 4, "SUSPENDED", VMSuspended},
		{ActionResume, hostapi.TaskResuming, "SUSPENDED", 1, "ACTIVE", VMActive},
	}
	for _, st := range steps {
		before := l.server(id)
		l.ok(&ServerAction{ID: id, Action: st.action, RequestID: "req-" + st.action, Now: 30})
		l.wantState(id, st.midStatus, before.VMState, st.task, before.PowerState)
		// A second action while the task runs is refused.
		l.refuse(&ServerAction{ID: id, Action: ActionPause}, KindConflict, "Cannot 'pause' instance")
		if r := l.report(id, st.task, st.power, ""); r.Err != nil {
			t.Fatalf("%s: report: %v", st.action, r.Err)
		}
		l.wantState(id, st.status, st.vm, "", st.power)
	}
	// Wrong states, in Nova's words.
	l.refuse(&ServerAction{ID: id, Action: ActionStart}, KindConflict, fmt.Sprintf("Cannot 'start' instance %s while it is in vm_state active", id))
	l.refuse(&ServerAction{ID: id, Action: ActionResume}, KindConflict, "while it is in vm_state active")
	l.refuse(&ServerAction{ID: id, Action: ActionUnpause}, KindConflict, "while it is in vm_state active")

	// A failed task leaves the state and marks the action.
	l.ok(&ServerAction{ID: id, Action: ActionPause, RequestID: "req-pause-2", Now: 40})
	l.report(id, hostapi.TaskPausing, 1, "libvirt said no")
	l.wantState(id, StatusActive, VMActive, "", 1)
	a, err := GetInstanceAction(l.f.State(), id, "req-pause-2")
	if err != nil || a.Message != "Error" || a.Events[0].Result != "Error" || a.Events[0].Traceback != "libvirt said no" {
		t.Fatalf("failed action %+v %v", a, err)
	}

	// The domain stopping by itself: Nova's power-state sync stops it.
	l.report(id, "", hostapi.PowerShutdown, "")
	l.wantState(id, "SHUTOFF", VMStopped, "", 4)

	// Delete: the task, then the agent's report removes it and releases
	// the host and the quota.
	l.ok(&DeleteServer{ID: id, RequestID: "req-delete", Now: 50})
	l.wantState(id, "SHUTOFF", VMStopped, TaskDeleting, 4)
	l.ok(&DeleteServer{ID: id, Now: 51}) // again: nothing more to do
	if r := l.report(id, TaskDeleting, 0, ""); r.Err != nil {
		t.Fatal(r.Err)
	}
	if s := l.server(id); !s.Deleted || s.Status != StatusDeleted {
		t.Fatalf("after the delete report: %+v", s)
	}
	if h := l.host("h1"); h.VCPUsUsed != 0 || h.MemoryMBUsed != 0 || h.DiskGBUsed != 0 || h.RunningVMs != 0 {
		t.Fatalf("host usage after delete %+v", h)
	}
	if u, _ := ProjectUsage(l.f.State(), "p1", ""); u["instances"] != 0 || u["cores"] != 0 {
		t.Fatalf("quota usage after delete %v", u)
	}
	if ss, _ := HostServers(l.f.State(), "h1"); len(ss) != 0 {
		t.Fatalf("host index keeps %d servers", len(ss))
	}
	acts, _ := ListInstanceActions(l.f.State(), id)
	var names []string
	for _, a := range acts {
		names = append(names, a.Action)
	}
	want := "delete,pause,resume,suspend,unpause,pause,reboot,reboot,start,stop,create"
	if strings.Join(names, ",") != want {
		t.Fatalf("actions newest first: %s\nwant %s", strings.Join(names, ","), want)
	}
	create := acts[len(acts)-1]
	if len(create.Events) != 2 || create.Events[0].Event != "conductor_schedule_and_build_instances" || create.Events[0].Result != "Success" ||
		create.Events[1].Event != "compute__do_build_and_run_instance" || create.Events[1].Host != "h1" || create.Events[1].Result != "Success" {
		t.Fatalf("create events %+v", create.Events)
	}
}

func TestPlaceServersRechecksCapacity(t *testing.T) {
	l := newLifecycle(t, "h1") // 4 vCPUs ×4.0 = 16, 4096 MB ×1.0, 40 GB
	srvs := testServers(3, "p1")
	for i := range srvs {
		srvs[i].Flavor = ServerFlavor{ID: "big", VCPUs: 1, RAM: 1500, Disk: 10}
	}
	l.ok(&CreateServers{Servers: srvs, MinCount: 3})
	r := l.ok(&PlaceServers{Claims: []Claim{{srvs[0].ID, "h1"}, {srvs[1].ID, "h1"}, {srvs[2].ID, "h1"}}})
	var res PlaceServersResult
	r.Decode(&res)
	if len(res.Placed) != 2 || len(res.Skipped) != 1 || res.Skipped[0] != srvs[2].ID {
		t.Fatalf("result %+v: want 2 placed (RAM 2×1500 of 4096) and the third skipped", res)
	}
	if l.server(srvs[2].ID).TaskState != TaskScheduling {
		t.Fatal("a skipped server must stay pending")
	}
	// Placing a placed server again does nothing; unknown hosts are skipped.
	r = l.ok(&PlaceServers{Claims: []Claim{{srvs[0].ID, "h1"}, {srvs[2].ID, "nowhere"}}})
	res = PlaceServersResult{}
	r.Decode(&res)
	if len(res.Placed) != 0 || len(res.Skipped) != 2 {
		t.Fatalf("result %+v", res)
	}
	// No valid host: ERROR with Nova's fault.
	l.ok(&PlaceServers{Failures: []PlaceFailure{{ServerID: srvs[2].ID, Reason: "There are not enough hosts available."}}, Now: 7})
	s := l.server(srvs[2].ID)
	if s.Status != StatusError || s.Fault == nil || s.Fault.Code != 500 || s.Fault.Message != "No valid host was found. There are not enough hosts available." {
		t.Fatalf("no valid host: %+v fault %+v", s, s.Fault)
	}
	a, _ := ListInstanceActions(l.f.State(), s.ID)
	if a[0].Message != "Error" || a[0].Events[0].Result != "Error" {
		t.Fatalf("create action after no valid host: %+v", a[0])
	}
	// Deleting a server in ERROR without a host is immediate.
	l.ok(&DeleteServer{ID: s.ID, Now: 8})
	if !l.server(s.ID).Deleted {
		t.Fatal("an unplaced server in ERROR is deleted at once")
	}
}

func TestBuildFailureIsRescheduledThenErrors(t *testing.T) {
	l := newLifecycle(t, "h1", "h2", "h3", "h4")
	srv := testServers(1, "p1")[0]
	l.ok(&CreateServers{Servers: []Server{srv}, MinCount: 1})
	for i, h := range []string{"h1", "h2", "h3"} {
		// The host a build failed on is never chosen again.
		for _, prev := range []string{"h1", "h2", "h3"}[:i] {
			r := l.ok(&PlaceServers{Claims: []Claim{{srv.ID, prev}}})
			var res PlaceServersResult
			if r.Decode(&res); len(res.Placed) != 0 {
				t.Fatalf("attempt %d: placed again on %s, where the build failed", i+1, prev)
			}
		}
		l.ok(&PlaceServers{Claims: []Claim{{srv.ID, h}}})
		l.report(srv.ID, TaskSpawning, 0, "domain would not start on "+h)
		if hh := l.host(h); hh.VCPUsUsed != 0 || hh.RunningVMs != 0 {
			t.Fatalf("claim on %s not released: %+v", h, hh)
		}
	}
	s := l.server(srv.ID)
	if s.Status != StatusError || s.Fault == nil || !strings.HasPrefix(s.Fault.Message, "Exceeded maximum number of retries. Exceeded max scheduling attempts 3 for instance "+srv.ID) ||
		!strings.Contains(s.Fault.Message, "domain would not start on h3") {
		t.Fatalf("after 3 failed builds: %s fault %+v", s.Status, s.Fault)
	}
	if s.Host != "" || s.TaskState != "" {
		t.Fatalf("host %q task %q", s.Host, s.TaskState)
	}
	var pending int
	PendingServers(l.f.State(), func(*Server) bool { pending++; return true })
	if pending != 0 {
		t.Fatal("a server in ERROR is not pending")
	}
	a, _ := ListInstanceActions(l.f.State(), srv.ID)
	var builds []string
	for _, e := range a[0].Events {
		if e.Event == "compute__do_build_and_run_instance" {
			builds = append(builds, e.Host+":"+e.Result)
		}
	}
	if strings.Join(builds, ",") != "h1:Error,h2:Error,h3:Error" {
		t.Fatalf("build events %v", builds)
	}
}

func TestLockedServers(t *testing.T) {
	l := newLifecycle(t, "h1")
	srv := testServers(1, "p1")[0]
	l.ok(&CreateServers{Servers: []Server{srv}, MinCount: 1})
	l.ok(&PlaceServers{Claims: []Claim{{srv.ID, "h1"}}})
	l.report(srv.ID, TaskSpawning, 1, "")
	l.ok(&ServerAction{ID: srv.ID, Action: ActionLock, LockedReason: "maintenance", ProjectID: "p1"})
	if s := l.server(srv.ID); !s.Locked || s.LockedReason != "maintenance" || s.LockedBy != "owner" {
		t.Fatalf("lock: %+v", s)
	}
	l.refuse(&ServerAction{ID: srv.ID, Action: ActionStop}, KindConflict, fmt.Sprintf("Instance %s is locked", srv.ID))
	l.refuse(&DeleteServer{ID: srv.ID}, KindConflict, "is locked")
	l.ok(&ServerAction{ID: srv.ID, Action: ActionStop, Admin: true}) // admins may
	l.report(srv.ID, hostapi.TaskPoweringOff, 4, "")
	// An administrator's lock is not the owner's to lift.
	l.ok(&ServerAction{ID: srv.ID, Action: ActionLock, Admin: true, ProjectID: "admin-project"})
	l.refuse(&ServerAction{ID: srv.ID, Action: ActionUnlock, ProjectID: "p1"}, KindForbidden, "unlock_override")
	l.ok(&ServerAction{ID: srv.ID, Action: ActionUnlock, Admin: true})
	if s := l.server(srv.ID); s.Locked || s.LockedReason != "" {
		t.Fatalf("unlock: %+v", s)
	}
}

// TestPlacementNeverExceedsCapacity proposes random claims, many of which
// do not fit, and checks after each batch that no host's usage exceeds its
// capacity under its allocation ratios.
func TestPlacementNeverExceedsCapacity(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 11))
	l := newLifecycle(t)
	var hosts []string
	for i := range 5 {
		h := fmt.Sprintf("h%d", i)
		hosts = append(hosts, h)
		l.ok(&RegisterHost{Registration: hostapi.Registration{Host: h, VCPUs: 1 + rng.IntN(8), MemoryMB: 512 * (1 + rng.IntN(8)), DiskGB: 5 + rng.IntN(50),
			CPUAllocationRatio: []float64{0, 1, 2, 16}[rng.IntN(4)], RAMAllocationRatio: []float64{0, 1, 1.5}[rng.IntN(3)]},
			ServiceID: "s" + h, HypervisorID: "v" + h})
	}
	l.ok(identTestBootstrap())
	l.ok(&CreateProject{Project: Project{ID: "p1", Name: "one", DomainID: "default", Enabled: true}})
	l.ok(&SetQuota{ProjectID: "p1", Limits: map[string]int64{"instances": -1, "cores": -1, "ram": -1}})
	for round := range 20 {
		srvs := testServers(30, "p1")
		for i := range srvs {
			srvs[i].ID = fmt.Sprintf("%04d%04d-0000-4000-8000-000000000000", round, i)
			srvs[i].Flavor = ServerFlavor{ID: "f", VCPUs: 1 + rng.IntN(4), RAM: 128 * (1 + rng.IntN(8)), Disk: rng.IntN(10), Swap: rng.IntN(2048)}
		}
		l.ok(&CreateServers{Servers: srvs, MinCount: 1})
		var claims []Claim
		for _, s := range srvs {
			claims = append(claims, Claim{s.ID, hosts[rng.IntN(len(hosts))]})
		}
		l.ok(&PlaceServers{Claims: claims})
		for _, h := range hosts {
			hh := l.host(h)
			cpu, ram, disk := hh.Ratios()
			if float64(hh.VCPUsUsed) > float64(hh.VCPUs)*cpu || float64(hh.MemoryMBUsed) > float64(hh.MemoryMB)*ram || float64(hh.DiskGBUsed) > float64(hh.DiskGB)*disk {
				t.Fatalf("round %d: host %s over capacity: %+v", round, h, hh)
			}
			// Usage equals the sum of the claims of its servers.
			ss, _ := HostServers(l.f.State(), h)
			var v, m, d int
			for _, s := range ss {
				a, b, c := s.Flavor.Claim()
				v, m, d = v+a, m+b, d+c
			}
			if v != hh.VCPUsUsed || m != hh.MemoryMBUsed || d != hh.DiskGBUsed || len(ss) != hh.RunningVMs {
				t.Fatalf("round %d: host %s usage %d/%d/%d/%d, its servers claim %d/%d/%d/%d", round, h, hh.VCPUsUsed, hh.MemoryMBUsed, hh.DiskGBUsed, hh.RunningVMs, v, m, d, len(ss))
			}
		}
		// Delete a few placed servers through their agents.
		for _, s := range srvs[:10] {
			if cur := l.server(s.ID); cur.Host != "" {
				l.ok(&DeleteServer{ID: s.ID})
				l.report(s.ID, TaskDeleting, 0, "")
			}
		}
	}
}
