package agent

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/keel-cloud/keel/agent/driver"
	"github.com/keel-cloud/keel/agent/driver/fake"
	"github.com/keel-cloud/keel/internal/hostapi"
)

func TestDecide(t *testing.T) {
	const (
		run  = hostapi.PowerRunning
		off  = hostapi.PowerShutdown
		none = -1 // no domain
	)
	for _, tc := range []struct {
		name     string
		task, vm string
		gen      uint64
		domGen   uint64
		domPower int
		hold     bool // forced down or fenced
		want     action
	}{
		{"spawn, no domain", hostapi.TaskSpawning, hostapi.VMBuilding, 1, 0, none, false, actSpawn},
		{"spawn done before a restart", hostapi.TaskSpawning, hostapi.VMBuilding, 1, 1, run, false, actReportDone},
		{"spawn defined but not started", hostapi.TaskSpawning, hostapi.VMBuilding, 1, 1, off, false, actSpawn},
		{"spawn over an older placement", hostapi.TaskSpawning, hostapi.VMBuilding, 2, 1, run, false, actSpawn},
		{"spawn while forced down", hostapi.TaskSpawning, hostapi.VMBuilding, 1, 0, none, true, actHeld},
		{"spawn done, forced down since", hostapi.TaskSpawning, hostapi.VMBuilding, 1, 1, run, true, actReportDone},
		{"spawn defined, forced down", hostapi.TaskSpawning, hostapi.VMBuilding, 1, 1, off, true, actHeld},
		{"answer older than the domain", hostapi.TaskSpawning, hostapi.VMBuilding, 1, 2, run, false, actStaleAnswer},
		{"answer older than the domain, no task", "", hostapi.VMActive, 1, 2, run, false, actStaleAnswer},
		{"power off", hostapi.TaskPoweringOff, hostapi.VMActive, 1, 1, run, false, actPowerOff},
		{"power off, forced down", hostapi.TaskPoweringOff, hostapi.VMActive, 1, 1, run, true, actPowerOff},
		{"power on", hostapi.TaskPoweringOn, hostapi.VMStopped, 1, 1, off, false, actPowerOn},
		{"power on, forced down", hostapi.TaskPoweringOn, hostapi.VMStopped, 1, 1, off, true, actHeld},
		{"reboot", hostapi.TaskRebooting, hostapi.VMActive, 1, 1, run, false, actReboot},
		{"reboot, forced down", hostapi.TaskRebooting, hostapi.VMActive, 1, 1, run, true, actHeld},
		{"hard reboot", hostapi.TaskRebootingHard, hostapi.VMActive, 1, 1, run, false, actRebootHard},
		{"hard reboot, forced down", hostapi.TaskRebootingHard, hostapi.VMActive, 1, 1, run, true, actHeld},
		{"pause", hostapi.TaskPausing, hostapi.VMActive, 1, 1, run, false, actPause},
		{"pause, forced down", hostapi.TaskPausing, hostapi.VMActive, 1, 1, run, true, actPause},
		{"unpause", hostapi.TaskUnpausing, hostapi.VMPaused, 1, 1, hostapi.PowerPaused, false, actUnpause},
		{"unpause, forced down", hostapi.TaskUnpausing, hostapi.VMPaused, 1, 1, hostapi.PowerPaused, true, actHeld},
		{"suspend", hostapi.TaskSuspending, hostapi.VMActive, 1, 1, run, false, actSuspend},
		{"suspend, forced down", hostapi.TaskSuspending, hostapi.VMActive, 1, 1, run, true, actSuspend},
		{"resume", hostapi.TaskResuming, hostapi.VMSuspended, 1, 1, off, false, actResume},
		{"resume, forced down", hostapi.TaskResuming, hostapi.VMSuspended, 1, 1, off, true, actHeld},
		{"delete", hostapi.TaskDeleting, hostapi.VMActive, 1, 1, run, false, actDestroy},
		{"delete, no domain", hostapi.TaskDeleting, hostapi.VMActive, 1, 0, none, false, actDestroy},
		{"delete, forced down", hostapi.TaskDeleting, hostapi.VMActive, 1, 1, run, true, actDestroy},
		{"delete an older placement", hostapi.TaskDeleting, hostapi.VMActive, 2, 1, run, false, actDestroy},
		{"task on an older placement", hostapi.TaskPoweringOff, hostapi.VMActive, 2, 1, run, false, actDestroyStale},
		{"task without a domain", hostapi.TaskPoweringOn, hostapi.VMStopped, 1, 0, none, false, actPowerOn},
		{"unknown task", "migrating", hostapi.VMActive, 1, 1, run, false, actUnknownTask},
		{"no task", "", hostapi.VMActive, 1, 1, run, false, actObserve},
		{"no task, no domain", "", hostapi.VMActive, 1, 0, none, false, actObserve},
		{"no task, forced down", "", hostapi.VMActive, 1, 1, off, true, actObserve},
		{"no task, older placement", "", hostapi.VMActive, 2, 1, run, false, actDestroyStale},
		{"building without task", "", hostapi.VMBuilding, 1, 0, none, false, actNone},
		{"rebuild after evacuation, no domain", hostapi.TaskRebuildSpawning, hostapi.VMActive, 2, 0, none, false, actSpawn},
		{"rebuild over an older placement here", hostapi.TaskRebuildSpawning, hostapi.VMActive, 3, 1, off, false, actSpawn},
		{"rebuild done before a restart", hostapi.TaskRebuildSpawning, hostapi.VMActive, 2, 2, run, false, actReportDone},
		{"rebuild, held (forced down or fenced)", hostapi.TaskRebuildSpawning, hostapi.VMActive, 2, 0, none, true, actHeld},
		{"rebuild defined but not started, held", hostapi.TaskRebuildSpawning, hostapi.VMActive, 2, 2, off, true, actHeld},
		{"rebuild, answer older than the domain", hostapi.TaskRebuildSpawning, hostapi.VMActive, 2, 3, run, false, actStaleAnswer},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a := hostapi.Assignment{ID: "s", Generation: tc.gen, VMState: tc.vm, TaskState: tc.task}
			d := driver.Domain{ServerID: "s", Generation: tc.domGen, PowerState: tc.domPower}
			if got := decide(a, d, tc.domPower != none, tc.hold); got != tc.want {
				t.Fatalf("decide = %s, want %s", got, tc.want)
			}
		})
	}
}

// Every task of the contract has an action: a new task constant without
// one would leave servers stuck.
func TestEveryContractTaskHasAnAction(t *testing.T) {
	for _, task := range []string{hostapi.TaskSpawning, hostapi.TaskPoweringOff, hostapi.TaskPoweringOn,
		hostapi.TaskRebooting, hostapi.TaskRebootingHard, hostapi.TaskPausing, hostapi.TaskUnpausing,
		hostapi.TaskSuspending, hostapi.TaskResuming, hostapi.TaskDeleting, hostapi.TaskRebuildSpawning} {
		if _, ok := taskActions[task]; !ok {
			t.Errorf("task %q has no action", task)
		}
	}
}

func TestFreshIndex(t *testing.T) {
	a := &Agent{log: slog.New(slog.DiscardHandler), cfg: Config{StaleIndexReset: 50 * time.Millisecond}}
	steps := []struct {
		index uint64
		sleep time.Duration
		want  bool
	}{
		{10, 0, true},
		{10, 0, true}, // a timed-out wait: same index
		{12, 0, true},
		{11, 0, false}, // a controller behind
		{11, 0, false},
		{13, 0, true}, // caught up
		{5, 0, false},
		{5, 60 * time.Millisecond, true}, // behind for longer than the reset: a rebuilt cluster
		{6, 0, true},
	}
	for i, st := range steps {
		time.Sleep(st.sleep)
		if got := a.fresh(st.index); got != st.want {
			t.Fatalf("step %d: fresh(%d) = %v, want %v", i, st.index, got, st.want)
		}
	}
}

// A task whose report landed at index 20 shows up again in an answer at
// index 15 from a controller that had not applied it: not run again, and
// the loop asks again at once.
func TestReportedTaskNotRerunFromOlderAnswer(t *testing.T) {
	d := fake.New(fake.Config{})
	_ = d.Spawn(context.Background(), hostapi.Assignment{ID: "s1", Generation: 1}, nil)
	a, err := New(Config{Name: "h1", Controllers: []string{"http://127.0.0.1:1"}, ClusterKey: testKey, Driver: d, ListenAddr: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	opCtx, cancel := context.WithCancel(ctx) // reports go nowhere: cut them at the end
	defer func() {
		cancel()
		a.ops.Wait()
	}()
	a.done["s1"] = doneTask{gen: 1, task: hostapi.TaskRebooting, at: 1, index: 20}
	asg := hostapi.Assignment{ID: "s1", Generation: 1, VMState: hostapi.VMActive, TaskState: hostapi.TaskRebooting, PowerState: hostapi.PowerRunning}
	ans := hostapi.Assignments{Index: 15, Host: hostapi.HostStatus{Host: "h1", Registered: true}, Servers: []hostapi.Assignment{asg}}
	refresh, err := a.reconcile(ctx, opCtx, ans, 5)
	if err != nil || !refresh {
		t.Fatalf("refresh %v, err %v; want a refresh", refresh, err)
	}
	time.Sleep(50 * time.Millisecond)
	if n := d.Calls(fake.OpReboot); n != 0 {
		t.Fatalf("%d reboots from an answer older than the report", n)
	}
	// An answer at or after the report's index that still has the task
	// is a new request of the same task.
	ans.Index = 21
	if refresh, _ = a.reconcile(ctx, opCtx, ans, 6); refresh {
		t.Fatal("refresh asked for an answer newer than the report")
	}
	waitFor(t, 5*time.Second, "reboot", func() bool { return d.Calls(fake.OpReboot) == 1 })
}
