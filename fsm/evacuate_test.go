package fsm

import (
	"fmt"
	"testing"

	"github.com/keel-cloud/keel/internal/hostapi"
)

// Times in these tests are unix microseconds; a second is 1e6.
const sec = int64(1_000_000)

// newFencedCloud registers gossip hosts whose agents fence after 30 s.
func newFencedCloud(t *testing.T, hosts ...string) *lifecycle {
	l := &lifecycle{newHarness(t)}
	for _, h := range hosts {
		l.ok(&RegisterHost{Registration: hostapi.Registration{Host: h, VCPUs: 4, MemoryMB: 4096, DiskGB: 40, HostIP: "192.0.2.1",
			Gossip: true, FenceAfterMS: 30_000}, ServiceID: "svc-" + h, HypervisorID: "hv-" + h, Now: 1})
	}
	return l
}

// activeOn creates a server and builds it on host.
func (l *lifecycle) activeOn(srv Server, host string) string {
	l.t.Helper()
	l.ok(&CreateServers{Servers: []Server{srv}, MinCount: 1, RequestID: "req-create-" + srv.ID})
	l.ok(&PlaceServers{Claims: []Claim{{ServerID: srv.ID, Host: host}}, Now: 10})
	if r := l.report(srv.ID, TaskSpawning, hostapi.PowerRunning, ""); r.Err != nil {
		l.t.Fatal(r.Err)
	}
	return srv.ID
}

func (l *lifecycle) migration(id string) *Migration {
	l.t.Helper()
	m, err := GetMigration(l.f.State(), id)
	if err != nil {
		l.t.Fatal(err)
	}
	return m
}

func TestLivenessAndServiceUpdates(t *testing.T) {
	l := newFencedCloud(t, "h1", "h2")
	if h := l.host("h1"); !h.Alive() || h.Seq != 1 || l.host("h2").Seq != 2 {
		t.Fatalf("a new host is up with integer ids 1, 2: %+v", h)
	}
	l.ok(&SetLiveness{Hosts: []HostLiveness{{Host: "h1", Up: false}, {Host: "h2", Up: true}, {Host: "ghost", Up: false}},
		Controllers: []ControllerLiveness{{Name: "c1", Up: true, SchedulerID: "sch-1", ConductorID: "con-1"}}, Now: 5 * sec})
	if h := l.host("h1"); h.Alive() || h.StateChangedAt != 5*sec {
		t.Fatalf("h1 after gossip lost it: %+v", h)
	}
	if h := l.host("h2"); h.StateChangedAt != 1 {
		t.Fatalf("h2 did not change, so its state time must not either: %d", h.StateChangedAt)
	}
	svcs, err := ListServices(l.f.State())
	if err != nil || len(svcs) != 4 {
		t.Fatalf("services %+v %v", svcs, err)
	}
	want := []string{"nova-compute h1 1 down", "nova-compute h2 2 up", "nova-scheduler c1 3 up", "nova-conductor c1 4 up"}
	for i, s := range svcs {
		state := map[bool]string{true: "up", false: "down"}[s.Alive()]
		if got := fmt.Sprintf("%s %s %d %s", s.Binary, s.Host, s.Seq, state); got != want[i] {
			t.Errorf("service %d: %q, want %q", i, got, want[i])
		}
	}
	// A controller's services are created once; later ids are ignored.
	l.ok(&SetLiveness{Controllers: []ControllerLiveness{{Name: "c1", Up: false, SchedulerID: "other", ConductorID: "other"}}, Now: 6 * sec})
	if s, err := GetService(l.f.State(), "sch-1"); err != nil || s.Alive() || s.StateChangedAt != 6*sec {
		t.Fatalf("scheduler service %+v %v", s, err)
	}
	if s, err := GetService(l.f.State(), "3"); err != nil || s.ID != "sch-1" {
		t.Fatalf("service by integer id: %+v %v", s, err)
	}

	// Administrators: disable with a reason, enable clears it, force down.
	yes, no, why := true, false, "maintenance"
	l.ok(&UpdateService{Host: "h2", Binary: BinaryCompute, Disabled: &yes, DisabledReason: &why, Now: 7})
	if h := l.host("h2"); !h.Disabled || h.DisabledReason != why {
		t.Fatalf("disable: %+v", h)
	}
	l.ok(&UpdateService{ID: "svc-h2", Disabled: &no, Now: 8})
	if h := l.host("h2"); h.Disabled || h.DisabledReason != "" {
		t.Fatalf("enable keeps a reason: %+v", h)
	}
	l.ok(&UpdateService{ID: "svc-h2", ForcedDown: &yes, Now: 9})
	if s, _ := GetService(l.f.State(), "svc-h2"); s.Alive() || !s.ForcedDown {
		t.Fatalf("forced down service is up: %+v", s)
	}
	long := string(make([]byte, MaxDisabledReason+1))
	l.refuse(&UpdateService{ID: "svc-h2", DisabledReason: &long}, KindInvalid, "disabled_reason")
	l.refuse(&UpdateService{ID: "sch-1", ForcedDown: &yes}, KindInvalid, "Only nova-compute services")
	l.refuse(&UpdateService{ID: "nope", Disabled: &yes}, KindNotFound, "Service nope could not be found.")
	l.refuse(&UpdateService{Host: "nope", Binary: BinaryCompute, Disabled: &yes}, KindNotFound, "nope")
}

func TestDisabledAndDownHostsGetNoServers(t *testing.T) {
	l := newFencedCloud(t, "h1", "h2", "h3")
	yes := true
	l.ok(&UpdateService{Host: "h1", Binary: BinaryCompute, Disabled: &yes})
	l.ok(&UpdateService{Host: "h2", Binary: BinaryCompute, ForcedDown: &yes})
	l.ok(&SetLiveness{Hosts: []HostLiveness{{Host: "h3", Up: false}}, Now: 2})
	srvs := testServers(3, "p1")
	l.ok(&CreateServers{Servers: srvs, MinCount: 3})
	r := l.ok(&PlaceServers{Claims: []Claim{{srvs[0].ID, "h1"}, {srvs[1].ID, "h2"}, {srvs[2].ID, "h3"}}})
	var res PlaceServersResult
	if r.Decode(&res); len(res.Placed) != 0 || len(res.Skipped) != 3 {
		t.Fatalf("placements on disabled / forced-down / down hosts: %+v", res)
	}
}

func TestDeleteService(t *testing.T) {
	l := newFencedCloud(t, "h1")
	id := l.activeOn(testServers(1, "p1")[0], "h1")
	l.refuse(&DeleteService{ID: "svc-h1"}, KindConflict, "Unable to delete compute service that is hosting instances.")
	l.ok(&DeleteServer{ID: id, Now: 20})
	l.report(id, TaskDeleting, 0, "")
	l.ok(&DeleteService{ID: "svc-h1"})
	if _, _, err := GetHost(l.f.State(), "h1"); !IsNotFound(err) {
		t.Fatalf("host still there: %v", err)
	}
	l.refuse(&DeleteService{ID: "svc-h1"}, KindNotFound, "could not be found")
}

func TestLocalDeleteOnADownHost(t *testing.T) {
	l := newFencedCloud(t, "h1")
	srvs := testServers(2, "p1")
	a, b := l.activeOn(srvs[0], "h1"), l.activeOn(srvs[1], "h1")
	// b's delete is sent to the agent, which then vanishes.
	l.ok(&DeleteServer{ID: b, Now: 30})
	l.wantState(b, StatusActive, VMActive, TaskDeleting, 1)
	l.ok(&SetLiveness{Hosts: []HostLiveness{{Host: "h1", Up: false}}, Now: 40})
	// Nova's local delete: at once, releasing the host and quota.
	l.ok(&DeleteServer{ID: a, Now: 50})
	if s := l.server(a); !s.Deleted {
		t.Fatalf("server on a down host not deleted at once: %+v", s)
	}
	// Deleting again a server stuck in deleting finishes it locally.
	l.ok(&DeleteServer{ID: b, Now: 51})
	if s := l.server(b); !s.Deleted {
		t.Fatal("a server stuck in deleting on a down host stays")
	}
	if h := l.host("h1"); h.RunningVMs != 0 || h.VCPUsUsed != 0 {
		t.Fatalf("host usage after local deletes: %+v", h)
	}
	if ss, _ := HostServers(l.f.State(), "h1"); len(ss) != 0 {
		t.Fatalf("host still lists %d servers", len(ss))
	}
}

func TestEvacuationRules(t *testing.T) {
	l := newFencedCloud(t, "h1", "h2")
	id := l.activeOn(testServers(1, "p1")[0], "h1")
	ev := func(now int64) *EvacuateServer {
		return &EvacuateServer{ID: id, MigrationID: "mig-1", MarginMS: 10_000, Now: now, RequestID: "req-ev"}
	}
	l.refuse(ev(2*sec), KindConflict, "Compute service of h1 is still in use.")
	l.ok(&SetLiveness{Hosts: []HostLiveness{{Host: "h1", Up: false}}, Now: 100 * sec})
	// Down, but the agent may still run its servers for 30 s + 10 s.
	l.refuse(ev(139*sec), KindConflict, "evacuate again in 1s")
	e := ev(140 * sec)
	e.Host = "h1"
	l.refuse(e, KindInvalid, "The target host can't be the same one.")
	e.Host = "h9"
	l.refuse(e, KindNotFound, "Compute host h9 could not be found.")
	e = ev(140 * sec)
	e.MigrationID = ""
	l.refuse(e, KindInvalid, "migration id")
	// A server with a task is not evacuated.
	l.ok(&ServerAction{ID: id, Action: ActionStop, Now: 130 * sec})
	l.refuse(ev(140*sec), KindConflict, fmt.Sprintf("Cannot 'evacuate' instance %s while it is in task_state powering-off", id))
	l.ok(&ServerAction{ID: id, Action: ActionResetState, ResetTo: VMActive, Admin: true})

	l.ok(ev(140 * sec))
	l.wantState(id, "REBUILD", VMActive, TaskRebuilding, 1)
	if h := l.host("h1"); h.RunningVMs != 0 || h.VCPUsUsed != 0 {
		t.Fatalf("the old host keeps the claim: %+v", h)
	}
	m := l.migration("mig-1")
	if m.Status != MigrationAccepted || m.SourceCompute != "h1" || m.Type != MigrationEvacuation || m.Seq != 1 {
		t.Fatalf("migration %+v", m)
	}
	if ev, _ := EvacuatedFrom(l.f.State(), "h1"); len(ev) != 1 || ev[0].SourceGeneration != m.SourceGeneration {
		t.Fatalf("evacuated from h1: %+v", ev)
	}
	// A second evacuate while the first runs is refused.
	e = ev(141 * sec)
	e.MigrationID = "mig-2"
	l.refuse(e, KindConflict, "task_state rebuilding")
	// An operator's forced_down makes a host evacuable at once.
	l2 := newFencedCloud(t, "a", "b")
	id2 := l2.activeOn(testServers(1, "p1")[0], "a")
	yes := true
	l2.ok(&UpdateService{Host: "a", Binary: BinaryCompute, ForcedDown: &yes})
	l2.ok(&EvacuateServer{ID: id2, MigrationID: "m", Now: 3})
	// A host without self-fencing is evacuable only once forced down.
	l3 := &lifecycle{newHarness(t)}
	for _, h := range []string{"x", "y"} {
		l3.ok(&RegisterHost{Registration: hostapi.Registration{Host: h, VCPUs: 4, MemoryMB: 4096, DiskGB: 40, Gossip: true}, ServiceID: h, HypervisorID: h, Now: 1})
	}
	id3 := l3.activeOn(testServers(1, "p1")[0], "x")
	l3.ok(&SetLiveness{Hosts: []HostLiveness{{Host: "x", Up: false}}, Now: 2})
	l3.refuse(&EvacuateServer{ID: id3, MigrationID: "m", Now: 1 << 50}, KindConflict, "does not fence itself")
}

func TestEvacuationEndToEnd(t *testing.T) {
	l := newFencedCloud(t, "h1", "h2")
	srvs := testServers(3, "p1")
	active, stopped, failing := l.activeOn(srvs[0], "h1"), l.activeOn(srvs[1], "h1"), l.activeOn(srvs[2], "h1")
	l.ok(&ServerAction{ID: stopped, Action: ActionStop})
	l.report(stopped, hostapi.TaskPoweringOff, hostapi.PowerShutdown, "")
	oldGen, failGen := l.server(active).Generation, l.server(failing).Generation
	yes := true
	l.ok(&UpdateService{Host: "h1", Binary: BinaryCompute, ForcedDown: &yes})
	for i, id := range []string{active, stopped, failing} {
		l.ok(&EvacuateServer{ID: id, MigrationID: fmt.Sprintf("mig-%d", i), RequestID: fmt.Sprintf("req-ev-%d", i), Now: 5})
	}
	// The old host's agent no longer sees them.
	if ss, _ := HostServers(l.f.State(), "h1"); len(ss) != 0 {
		t.Fatalf("h1 still has %d servers", len(ss))
	}
	// The scheduler may not put them back on the host they left.
	r := l.ok(&PlaceServers{Claims: []Claim{{active, "h1"}}, Now: 6})
	var res PlaceServersResult
	if r.Decode(&res); len(res.Skipped) != 1 {
		t.Fatalf("placed back on the host it left: %+v", res)
	}
	l.ok(&PlaceServers{Claims: []Claim{{active, "h2"}, {stopped, "h2"}}, Failures: []PlaceFailure{{failing, "There are not enough hosts available."}}, Now: 7})
	l.wantState(active, "REBUILD", VMActive, TaskRebuildSpawning, 1)
	if s := l.server(active); s.Host != "h2" || s.Generation <= oldGen {
		t.Fatalf("placed evacuated server: host %s generation %d (old %d)", s.Host, s.Generation, oldGen)
	}
	if m := l.migration("mig-0"); m.Status != MigrationPreMigrating || m.DestCompute != "h2" || m.DestHost != "192.0.2.1" {
		t.Fatalf("migration after placement %+v", m)
	}
	// No host: back on h1 in ERROR, h1's claim and the old generation
	// restored, migration in error.
	if s := l.server(failing); s.VMState != VMError || s.Host != "h1" || s.Generation != failGen || s.Fault == nil {
		t.Fatalf("failed evacuation %+v", s)
	}
	if m := l.migration("mig-2"); m.Status != MigrationError {
		t.Fatalf("failed evacuation's migration %s", m.Status)
	}
	if h := l.host("h1"); h.RunningVMs != 1 {
		t.Fatalf("h1 usage after a failed evacuation: %+v", h)
	}
	// The old host's stale report is refused.
	l.refuse(&ReportServer{ID: active, Host: "h1", Report: hostapi.Report{Generation: oldGen, Task: ""}}, KindConflict, "stale report")

	l.report(active, TaskRebuildSpawning, hostapi.PowerRunning, "")
	l.wantState(active, StatusActive, VMActive, "", 1)
	// The stopped server is built, then stopped, as Nova does.
	l.report(stopped, TaskRebuildSpawning, hostapi.PowerRunning, "")
	l.wantState(stopped, StatusActive, VMActive, hostapi.TaskPoweringOff, 1)
	l.report(stopped, hostapi.TaskPoweringOff, hostapi.PowerShutdown, "")
	l.wantState(stopped, "SHUTOFF", VMStopped, "", hostapi.PowerShutdown)
	if m := l.migration("mig-0"); m.Status != MigrationDone {
		t.Fatalf("migration after the build: %s", m.Status)
	}
	if h := l.host("h2"); h.RunningVMs != 2 {
		t.Fatalf("h2 usage %+v", h)
	}
	a, err := GetInstanceAction(l.f.State(), active, "req-ev-0")
	if err != nil || a.Action != "evacuate" || len(a.Events) != 2 || a.Events[1].Event != "compute_rebuild_instance" || a.Events[1].Result != "Success" {
		t.Fatalf("evacuate action %+v %v", a, err)
	}

	// h1 returns: its agent destroys its copies and completes.
	open, _ := EvacuatedFrom(l.f.State(), "h1")
	if len(open) != 2 {
		t.Fatalf("open evacuations from h1: %d", len(open))
	}
	l.refuse(&CompleteMigration{ID: "mig-0", Host: "h2"}, KindConflict, "is from host h1")
	l.ok(&CompleteMigration{ID: "mig-0", Host: "h1", Now: 9})
	l.ok(&CompleteMigration{ID: "mig-0", Host: "h1", Now: 10}) // idempotent
	if m := l.migration("mig-0"); m.Status != MigrationCompleted || m.UpdatedAt != 9 {
		t.Fatalf("completed migration %+v", m)
	}
	if open, _ := EvacuatedFrom(l.f.State(), "h1"); len(open) != 1 {
		t.Fatalf("open evacuations after one completed: %d", len(open))
	}
	var all []string
	Migrations(l.f.State(), func(m *Migration) bool { all = append(all, m.ID); return true })
	if len(all) != 3 {
		t.Fatalf("migrations %v", all)
	}
	if ms, _ := ServerMigrations(l.f.State(), active); len(ms) != 1 || ms[0].ID != "mig-0" {
		t.Fatalf("server migrations %+v", ms)
	}
}

func TestEvacuateToAStoppedServer295(t *testing.T) {
	l := newFencedCloud(t, "h1", "h2")
	id := l.activeOn(testServers(1, "p1")[0], "h1")
	yes := true
	l.ok(&UpdateService{Host: "h1", Binary: BinaryCompute, ForcedDown: &yes})
	l.ok(&EvacuateServer{ID: id, MigrationID: "m", Stop: true, Host: "h2"})
	s := l.server(id)
	if s.RequestedHost != "h2" || s.ForcedHost != "" {
		t.Fatalf("requested host without force: %+v", s)
	}
	l.ok(&PlaceServers{Claims: []Claim{{id, "h2"}}})
	l.report(id, TaskRebuildSpawning, hostapi.PowerRunning, "")
	l.wantState(id, StatusActive, VMActive, hostapi.TaskPoweringOff, 1)
	// A failed rebuild puts the server in ERROR on its new host.
	id2 := l.activeOn(testServers(2, "p1")[1], "h2")
	l.ok(&UpdateService{Host: "h2", Binary: BinaryCompute, ForcedDown: &yes})
	no := false
	l.ok(&CompleteMigration{ID: "m", Host: "h1"})
	l.ok(&UpdateService{Host: "h1", Binary: BinaryCompute, ForcedDown: &no})
	l.ok(&EvacuateServer{ID: id2, MigrationID: "m2", Force: true, Host: "h1"})
	if s := l.server(id2); s.ForcedHost != "h1" {
		t.Fatalf("forced host: %+v", s)
	}
	l.ok(&PlaceServers{Claims: []Claim{{id2, "h1"}}})
	l.report(id2, TaskRebuildSpawning, 0, "disk gone")
	if s := l.server(id2); s.VMState != VMError || s.Host != "h1" || s.Fault == nil || s.Fault.Message != "disk gone" {
		t.Fatalf("failed rebuild %+v", s)
	}
	if m := l.migration("m2"); m.Status != MigrationFailed {
		t.Fatalf("failed rebuild's migration %s", m.Status)
	}
}

func TestPlacementRechecksTheZone(t *testing.T) {
	l := newFencedCloud(t, "h1", "h2")
	srvs := testServers(2, "p1")
	srvs[0].PinnedAZ, srvs[1].PinnedAZ = "az1", DefaultZone
	l.ok(&CreateServers{Servers: srvs, MinCount: 2})
	// The scheduler saw h1 in az1, but an aggregate moved it back since.
	r := l.ok(&PlaceServers{Claims: []Claim{{srvs[0].ID, "h1"}, {srvs[1].ID, "h2"}}})
	var res PlaceServersResult
	if r.Decode(&res); len(res.Skipped) != 1 || res.Skipped[0] != srvs[0].ID || len(res.Placed) != 1 {
		t.Fatalf("a claim in a zone the host is no longer in: %+v", res)
	}
	if s := l.server(srvs[1].ID); s.AvailabilityZone != DefaultZone {
		t.Fatalf("zone of a placed server: %q", s.AvailabilityZone)
	}
}

func TestForceUpAndDeleteWaitForEvacuations(t *testing.T) {
	l := newFencedCloud(t, "h1", "h2")
	id := l.activeOn(testServers(1, "p1")[0], "h1")
	yes, no := true, false
	l.ok(&UpdateService{Host: "h1", Binary: BinaryCompute, ForcedDown: &yes})
	l.ok(&EvacuateServer{ID: id, MigrationID: "m1"})
	// In progress: neither host's service may be deleted.
	l.refuse(&DeleteService{ID: "svc-h1"}, KindConflict, "in-progress migrations")
	l.ok(&PlaceServers{Claims: []Claim{{id, "h2"}}})
	l.refuse(&DeleteService{ID: "svc-h2"}, KindConflict, "hosting instances")
	l.report(id, TaskRebuildSpawning, hostapi.PowerRunning, "")
	// Done: h1 may not be forced up until its agent destroyed its copy.
	l.refuse(&UpdateService{Host: "h1", Binary: BinaryCompute, ForcedDown: &no}, KindInvalid, "Unable to force up host h1 as `done` evacuation migration records remain")
	l.ok(&CompleteMigration{ID: "m1", Host: "h1"})
	l.ok(&UpdateService{Host: "h1", Binary: BinaryCompute, ForcedDown: &no})
	l.ok(&DeleteService{ID: "svc-h1"})
}
