package agent

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/keel-cloud/keel/agent/driver/fake"
	"github.com/keel-cloud/keel/internal/hostapi"
)

// fencingConfig is testConfig with a short fence window.
func fencingConfig(name string, d *fake.Driver, fenceAfter time.Duration, controllers ...string) Config {
	cfg := testConfig(name, d, controllers...)
	cfg.FenceAfter = fenceAfter
	return cfg
}

func powerOf(d *fake.Driver, id string) int {
	dom, ok := d.Domain(id)
	if !ok {
		return -1
	}
	return dom.PowerState
}

// spawnDomains defines running domains of generation 1 on the fake host.
func spawnDomains(t *testing.T, d *fake.Driver, ids ...string) {
	t.Helper()
	for _, id := range ids {
		if err := d.Spawn(context.Background(), spawning(id, 1), nil); err != nil {
			t.Fatal(err)
		}
	}
}

func TestRenewsLease(t *testing.T) {
	for _, tc := range []struct {
		name                     string
		fresh, registered, up, w bool
	}{
		{"fresh, registered, up", true, true, true, true},
		{"not fresh", false, true, true, false},
		{"not up (gossip down or forced down)", true, true, false, false},
		{"not registered", true, false, true, false},
		{"nothing", false, false, false, false},
	} {
		ans := hostapi.Assignments{Fresh: tc.fresh, Host: hostapi.HostStatus{Registered: tc.registered, Up: tc.up}}
		if got := renewsLease(ans); got != tc.w {
			t.Errorf("%s: renewsLease = %v, want %v", tc.name, got, tc.w)
		}
	}
}

func TestFenceAfterConfig(t *testing.T) {
	d := fake.New(fake.Config{})
	cfg := fencingConfig("h1", d, 300*time.Millisecond, "http://127.0.0.1:1")
	cfg.Wait = 30 * time.Second
	got, err := cfg.withDefaults()
	if err != nil {
		t.Fatal(err)
	}
	if got.Wait != 100*time.Millisecond {
		t.Fatalf("Wait = %s with FenceAfter 300ms, want 100ms (a third)", got.Wait)
	}
	cfg.FenceAfter = 0
	if got, _ = cfg.withDefaults(); got.Wait != 30*time.Second {
		t.Fatalf("Wait = %s without fencing, want 30s", got.Wait)
	}
	cfg.FenceAfter = -time.Second
	if _, err := cfg.withDefaults(); err == nil {
		t.Fatal("a negative --fence-after was accepted")
	}
}

// A healthy, quiet host keeps its lease: it asks for fresh answers, waits
// at most a third of the window per query, and never fences.
func TestHealthyHostKeepsLease(t *testing.T) {
	fc := newFakeController(t, testKey)
	d := fake.New(fake.Config{})
	spawnDomains(t, d, "s1")
	fc.assign("h1", active("s1", 1))
	const window = time.Second
	ta := startAgent(t, fencingConfig("h1", d, window, fc.url))

	waitFor(t, 5*time.Second, "registration", func() bool { return len(fc.registrationsOf("h1")) == 1 })
	reg := fc.registrationsOf("h1")[0]
	if reg.FenceAfterMS != 1000 || reg.Gossip {
		t.Fatalf("registration: fence_after_ms %d, gossip %v; want 1000, false", reg.FenceAfterMS, reg.Gossip)
	}
	time.Sleep(3 * window)
	if n := d.Calls(fake.OpForceOff); n != 0 || powerOf(d, "s1") != hostapi.PowerRunning {
		t.Fatalf("a healthy host fenced itself: %d force-offs, power %d", n, powerOf(d, "s1"))
	}
	if ta.log.count("SELF-FENCED") != 0 {
		t.Fatal("fencing logged on a healthy host")
	}
	fresh := 0
	for _, q := range fc.queriesOf("h1") {
		if w, _ := time.ParseDuration(q.wait); w > window/3 {
			t.Fatalf("query waits %s, more than a third of the window", q.wait)
		}
		if q.fresh {
			fresh++
		}
	}
	if fresh < 3 {
		t.Fatalf("%d fresh queries in three windows, want several", fresh)
	}
}

// Answers that do not say "fresh and up" never renew the lease: the host
// fences itself one window after the last one that did.
func TestLeaseNotRenewedWithoutFreshUpAnswer(t *testing.T) {
	for _, tc := range []struct {
		name  string
		apply func(fc *fakeController)
	}{
		{"answers not fresh", func(fc *fakeController) { fc.with(func() { fc.staleOnly = true }) }},
		{"gossip reports the host down", func(fc *fakeController) { fc.setUp("h1", false) }},
		{"forced down", func(fc *fakeController) { fc.setForcedDown("h1", true) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fc := newFakeController(t, testKey)
			d := fake.New(fake.Config{})
			spawnDomains(t, d, "s1")
			fc.assign("h1", active("s1", 1))
			ta := startAgent(t, fencingConfig("h1", d, 150*time.Millisecond, fc.url))
			waitFor(t, 5*time.Second, "a fresh query", func() bool {
				for _, q := range fc.queriesOf("h1") {
					if q.fresh {
						return true
					}
				}
				return false
			})
			tc.apply(fc)
			waitFor(t, 5*time.Second, "fenced: s1 powered off", func() bool {
				return powerOf(d, "s1") == hostapi.PowerShutdown && ta.log.count("SELF-FENCED") == 1
			})
			if d.Calls(fake.OpPowerOff) != 0 {
				t.Fatal("fencing used the graceful power-off although the driver can force off")
			}
			// Answers keep coming, and none renews the lease: s1 stays off
			// and is not reported shut off (fencing stopped it).
			time.Sleep(300 * time.Millisecond)
			if powerOf(d, "s1") != hostapi.PowerShutdown || ta.log.count("fencing ended") != 0 {
				t.Fatalf("lease renewed by answers that are not fresh and up: power %d", powerOf(d, "s1"))
			}
			for _, r := range fc.reportsOf("s1") {
				if r.r.Task == "" {
					t.Fatalf("power state of a fenced server reported: %+v", r.r)
				}
			}
		})
	}
}

// With no controller at all, the host fences itself on its timer, starts
// nothing while fenced (even when controllers answer again, but not
// fresh), and when a fresh "up" answer comes back starts again exactly the
// servers fencing stopped that are still meant to run here.
func TestFencingWithoutControllerAndBack(t *testing.T) {
	fc := newFakeController(t, testKey)
	d := fake.New(fake.Config{})
	spawnDomains(t, d, "run1", "run2", "stop3", "moved4", "off5")
	d.SetPowerState("off5", hostapi.PowerShutdown)
	for _, id := range []string{"run1", "run2", "stop3", "moved4"} {
		fc.assign("h1", active(id, 1))
	}
	off := active("off5", 1)
	off.VMState, off.PowerState = hostapi.VMStopped, hostapi.PowerShutdown
	fc.assign("h1", off)
	ta := startAgent(t, fencingConfig("h1", d, 200*time.Millisecond, fc.url))
	waitFor(t, 5*time.Second, "a fresh query", func() bool {
		for _, q := range fc.queriesOf("h1") {
			if q.fresh {
				return true
			}
		}
		return false
	})

	fc.setUnreachable(true)
	waitFor(t, 5*time.Second, "fenced", func() bool { return ta.log.count("SELF-FENCED") == 1 })
	for _, id := range []string{"run1", "run2", "stop3", "moved4", "off5"} {
		if p := powerOf(d, id); p != hostapi.PowerShutdown {
			t.Fatalf("%s: power %d after fencing, want shut off (disk kept)", id, p)
		}
	}
	if n := d.Calls(fake.OpForceOff); n != 4 {
		t.Fatalf("%d force-offs, want 4 (off5 was already off)", n)
	}
	time.Sleep(100 * time.Millisecond) // more checks: logged once
	if n := ta.log.count("SELF-FENCED"); n != 1 {
		t.Fatalf("fencing logged %d times, want once", n)
	}

	// The controllers answer again, but from old state (not fresh); the
	// cluster meanwhile changed the host's servers.
	fc.with(func() { fc.staleOnly = true })
	fc.setTask("h1", "stop3", hostapi.TaskPoweringOff)
	fc.evacuate("h1", "moved4", "m4", 1)
	fc.assign("h1", spawning("new6", 1))
	off.TaskState = hostapi.TaskPoweringOn
	fc.assign("h1", off)
	fc.setUnreachable(false)
	waitFor(t, 5*time.Second, "non-starting work done while fenced", func() bool {
		_, moved := d.Domain("moved4")
		return !moved && fc.completionsOf("m4") == 1 && settled(fc, "h1", "stop3", hostapi.VMStopped)()
	})
	time.Sleep(100 * time.Millisecond)
	if d.Calls(fake.OpSpawn) != 5 || d.Calls(fake.OpPowerOn) != 0 {
		t.Fatalf("a fenced host started something: spawns %d (5 before), power-ons %d", d.Calls(fake.OpSpawn), d.Calls(fake.OpPowerOn))
	}

	// Fresh answers again: fencing ends; run1 and run2 start again, the
	// held tasks run, and nothing else starts.
	fc.with(func() { fc.staleOnly = false })
	waitFor(t, 5*time.Second, "fencing ended", func() bool {
		return powerOf(d, "run1") == hostapi.PowerRunning && powerOf(d, "run2") == hostapi.PowerRunning &&
			settled(fc, "h1", "new6", hostapi.VMActive)() && settled(fc, "h1", "off5", hostapi.VMActive)()
	})
	time.Sleep(100 * time.Millisecond)
	if n := ta.log.count("self-fencing ended"); n != 1 {
		t.Fatalf("end of fencing logged %d times, want once", n)
	}
	// Power-ons: run1, run2 (restarted) and off5 (its task).
	if n := d.Calls(fake.OpPowerOn); n != 3 {
		t.Fatalf("%d power-ons, want 3", n)
	}
	if p := powerOf(d, "stop3"); p != hostapi.PowerShutdown {
		t.Fatalf("stop3 (powered off by its task since) has power %d, want shut off", p)
	}
	if _, ok := d.Domain("moved4"); ok {
		t.Fatal("the evacuated server's copy came back")
	}
	for _, id := range []string{"run1", "run2"} {
		s, _ := fc.server("h1", id)
		if s.PowerState != hostapi.PowerRunning {
			t.Fatalf("%s: recorded power %d, want running", id, s.PowerState)
		}
		for _, r := range fc.reportsOf(id) {
			t.Fatalf("%s restarted after fencing was reported: %+v", id, r.r)
		}
	}
}

// A server still assigned but changed while the host was fenced (another
// generation now) is not started again by the fencing memory.
func TestUnfenceSkipsChangedPlacement(t *testing.T) {
	fc := newFakeController(t, testKey)
	d := fake.New(fake.Config{})
	spawnDomains(t, d, "s1")
	fc.assign("h1", active("s1", 1))
	ta := startAgent(t, fencingConfig("h1", d, 150*time.Millisecond, fc.url))
	waitFor(t, 5*time.Second, "s1 known", func() bool { return len(fc.queriesOf("h1")) > 1 })
	fc.setUnreachable(true)
	waitFor(t, 5*time.Second, "fenced", func() bool { return ta.log.count("SELF-FENCED") == 1 })
	// Evacuated elsewhere and placed back here as a new build.
	fc.assign("h1", spawning("s1", 3))
	fc.setUnreachable(false)
	waitFor(t, 5*time.Second, "rebuilt at generation 3", settled(fc, "h1", "s1", hostapi.VMActive))
	if dom, _ := d.Domain("s1"); dom.Generation != 3 || d.Calls(fake.OpPowerOn) != 0 {
		t.Fatalf("domain %+v, power-ons %d: want a new generation-3 domain and no restart of the old one", dom, d.Calls(fake.OpPowerOn))
	}
}

func TestRebuildSpawning(t *testing.T) {
	fc := newFakeController(t, testKey)
	d := fake.New(fake.Config{})
	startAgent(t, testConfig("h1", d, fc.url))
	s := active("s1", 2)
	s.TaskState, s.PowerState = hostapi.TaskRebuildSpawning, hostapi.PowerNoState
	fc.setForcedDown("h1", true)
	fc.assign("h1", s)
	time.Sleep(100 * time.Millisecond)
	if d.Calls(fake.OpSpawn) != 0 {
		t.Fatal("rebuild_spawning ran on a forced-down host")
	}
	fc.setForcedDown("h1", false)
	waitFor(t, 5*time.Second, "s1 rebuilt", settled(fc, "h1", "s1", hostapi.VMActive))
	dom, ok := d.Domain("s1")
	if !ok || dom.Generation != 2 || dom.PowerState != hostapi.PowerRunning {
		t.Fatalf("domain %+v (exists %v)", dom, ok)
	}
	reps := fc.reportsOf("s1")
	if len(reps) != 1 || reps[0].r.Task != hostapi.TaskRebuildSpawning || reps[0].r.Generation != 2 ||
		reps[0].r.PowerState != hostapi.PowerRunning || reps[0].status != http.StatusOK {
		t.Fatalf("reports %+v", reps)
	}
}

// Evacuated entries: copies of the evacuated generation or older are
// destroyed, a newer domain (placed back here since) never is, and each
// migration is reported complete once; a transient failure is retried, a
// refusal is not.
func TestEvacuatedCleanUp(t *testing.T) {
	fc := newFakeController(t, testKey)
	d := fake.New(fake.Config{})
	ctx := context.Background()
	for _, a := range []hostapi.Assignment{spawning("old", 1), spawning("older", 1), spawning("back", 3), spawning("newer", 5)} {
		if err := d.Spawn(ctx, a, nil); err != nil {
			t.Fatal(err)
		}
	}
	fc.evacuate("h1", "old", "m-old", 1)
	fc.evacuate("h1", "older", "m-older", 2) // the domain is of generation 1: older still
	fc.evacuate("h1", "back", "m-back", 1)
	fc.assign("h1", active("back", 3)) // placed back here since
	fc.evacuate("h1", "newer", "m-newer", 2)
	fc.evacuate("h1", "gone", "m-gone", 1) // no domain here at all
	calls := map[string]int{}
	fc.with(func() {
		fc.completeStatus = func(_, id string) int {
			calls[id]++
			switch {
			case id == "m-old" && calls[id] <= 2:
				return http.StatusServiceUnavailable // retried
			case id == "m-newer":
				return http.StatusConflict // refused: not sent again
			}
			return 0
		}
	})
	ta := startAgent(t, testConfig("h1", d, fc.url))
	waitFor(t, 5*time.Second, "migrations completed", func() bool {
		return fc.completionsOf("m-old") == 1 && fc.completionsOf("m-older") == 1 &&
			fc.completionsOf("m-back") == 1 && fc.completionsOf("m-gone") == 1
	})
	time.Sleep(150 * time.Millisecond) // more passes
	for _, id := range []string{"old", "older"} {
		if _, ok := d.Domain(id); ok {
			t.Fatalf("the copy of evacuated server %s was not destroyed", id)
		}
	}
	for id, gen := range map[string]uint64{"back": 3, "newer": 5} {
		if dom, ok := d.Domain(id); !ok || dom.Generation != gen {
			t.Fatalf("%s: a domain newer than the evacuated generation was destroyed (%+v, %v)", id, dom, ok)
		}
	}
	fc.with(func() {
		if calls["m-old"] != 3 || calls["m-newer"] != 1 {
			t.Errorf("completion calls: m-old %d (want 3: two failures, one success), m-newer %d (want 1: refused)", calls["m-old"], calls["m-newer"])
		}
	})
	for _, m := range []string{"m-old", "m-older", "m-back", "m-gone"} {
		if n := fc.completionsOf(m); n != 1 {
			t.Fatalf("%s completed %d times, want once", m, n)
		}
	}
	if n := ta.log.count("evacuated to another host"); n != 2 {
		t.Fatalf("%d copies destroyed as evacuated, want 2", n)
	}
}
