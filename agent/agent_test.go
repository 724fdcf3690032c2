package agent

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"github.com/keel-cloud/keel/internal/gossip"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/keel-cloud/keel/agent/driver/fake"
	"github.com/keel-cloud/keel/internal/hostapi"
)

var testKey = []byte("0123456789abcdef0123456789abcdef")

// logRecorder keeps log records for assertions and passes warnings on to
// the test log.
type logRecorder struct {
	t    testing.TB
	mu   *sync.Mutex
	recs *[]slog.Record
}

// newLogRecorder returns a recorder that prints what it kept if the test
// fails.
func newLogRecorder(t testing.TB) *logRecorder {
	l := &logRecorder{t: t, mu: &sync.Mutex{}, recs: &[]slog.Record{}}
	t.Cleanup(func() {
		if !t.Failed() {
			return
		}
		l.mu.Lock()
		defer l.mu.Unlock()
		for _, r := range *l.recs {
			var b strings.Builder
			r.Attrs(func(a slog.Attr) bool {
				b.WriteString(" " + a.String())
				return true
			})
			t.Logf("%s %s %s%s", r.Time.Format("15:04:05.000"), r.Level, r.Message, b.String())
		}
	})
	return l
}

func (l *logRecorder) Enabled(context.Context, slog.Level) bool { return true }
func (l *logRecorder) Handle(_ context.Context, r slog.Record) error {
	l.mu.Lock()
	*l.recs = append(*l.recs, r.Clone())
	l.mu.Unlock()
	return nil
}
func (l *logRecorder) WithAttrs([]slog.Attr) slog.Handler { return l }
func (l *logRecorder) WithGroup(string) slog.Handler      { return l }

// count is how many records contain msg.
func (l *logRecorder) count(msg string) int { return l.countAt(slog.LevelDebug, msg) }

// countAt is how many records at level or above contain msg.
func (l *logRecorder) countAt(level slog.Level, msg string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for _, r := range *l.recs {
		if r.Level >= level && strings.Contains(r.Message, msg) {
			n++
		}
	}
	return n
}

type testAgent struct {
	a      *Agent
	cancel context.CancelFunc
	done   chan struct{} // closed when Run returned
	err    error         // what Run returned
	log    *logRecorder
}

// stop cancels the agent and waits for Run to return.
func (ta *testAgent) stop(t testing.TB) {
	t.Helper()
	ta.cancel()
	select {
	case <-ta.done:
		if ta.err != nil {
			t.Fatalf("Run: %v", ta.err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("agent did not stop within 5s")
	}
}

func testConfig(name string, d *fake.Driver, controllers ...string) Config {
	return Config{
		Name: name, Controllers: controllers, ClusterKey: testKey, Driver: d,
		ListenAddr: "127.0.0.1:0", Wait: 2 * time.Second, Version: "test",
		MinBackoff: 5 * time.Millisecond, MaxBackoff: 50 * time.Millisecond,
		RequestTimeout: 2 * time.Second, ShutdownGrace: 500 * time.Millisecond,
	}
}

func startAgent(t testing.TB, cfg Config) *testAgent {
	t.Helper()
	rec := newLogRecorder(t)
	if cfg.Logger == nil {
		cfg.Logger = slog.New(rec)
	}
	a, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	ta := &testAgent{a: a, cancel: cancel, done: make(chan struct{}), log: rec}
	go func() {
		ta.err = a.Run(ctx)
		close(ta.done)
	}()
	t.Cleanup(func() {
		cancel()
		<-ta.done
	})
	select {
	case <-a.Started():
	case <-ta.done:
		t.Fatalf("Run: %v", ta.err)
	}
	return ta
}

func spawning(id string, gen uint64) hostapi.Assignment {
	return hostapi.Assignment{ID: id, Name: "vm-" + id, Hostname: "vm-" + id, Generation: gen,
		VMState: hostapi.VMBuilding, TaskState: hostapi.TaskSpawning, VCPUs: 1, MemoryMB: 512, RootGB: 1}
}

func active(id string, gen uint64) hostapi.Assignment {
	a := spawning(id, gen)
	a.VMState, a.TaskState, a.PowerState = hostapi.VMActive, "", hostapi.PowerRunning
	return a
}

// settled: the server has no task left and is in vm state want.
func settled(fc *fakeController, host, id, want string) func() bool {
	return func() bool {
		s, ok := fc.server(host, id)
		return ok && s.TaskState == "" && s.VMState == want
	}
}

func TestBuildReportsActive(t *testing.T) {
	fc := newFakeController(t, testKey)
	d := fake.New(fake.Config{})
	cfg := testConfig("h1", d, fc.url)
	cfg.VCPUs, cfg.CPUAllocationRatio = 12, 2.0
	ta := startAgent(t, cfg)
	waitFor(t, 5*time.Second, "registration", func() bool { return len(fc.registrationsOf("h1")) == 1 })
	reg := fc.registrationsOf("h1")[0]
	if reg.VCPUs != 12 || reg.MemoryMB != fake.DefaultCapacity().MemoryMB || reg.CPUAllocationRatio != 2.0 ||
		reg.HypervisorType != "fake" || reg.Zone != "nova" || reg.AgentAddr != ta.a.Addr() || reg.HostIP != "127.0.0.1" ||
		reg.Capabilities["cpu_info:arch"] != "x86_64" || reg.Version != "test" {
		t.Fatalf("registration: %+v", reg)
	}

	fc.assign("h1", spawning("s1", 1))
	waitFor(t, 5*time.Second, "s1 active", settled(fc, "h1", "s1", hostapi.VMActive))
	s, _ := fc.server("h1", "s1")
	if s.PowerState != hostapi.PowerRunning {
		t.Fatalf("power state %d, want running", s.PowerState)
	}
	dom, ok := d.Domain("s1")
	if !ok || dom.Generation != 1 || dom.PowerState != hostapi.PowerRunning || d.Defined() != 1 {
		t.Fatalf("domain %+v (exists %v), defined %d", dom, ok, d.Defined())
	}
	reps := fc.reportsOf("s1")
	if len(reps) != 1 || reps[0].r.Task != hostapi.TaskSpawning || reps[0].r.Error != "" || reps[0].status != 200 {
		t.Fatalf("reports %+v", reps)
	}
}

// TestEveryTask walks one server through every task and checks the driver
// call and the report of each.
func TestEveryTask(t *testing.T) {
	fc := newFakeController(t, testKey)
	d := fake.New(fake.Config{})
	startAgent(t, testConfig("h1", d, fc.url))
	fc.assign("h1", spawning("s1", 1))
	waitFor(t, 5*time.Second, "s1 active", settled(fc, "h1", "s1", hostapi.VMActive))

	steps := []struct {
		task    string
		op      string
		vmState string
		power   int
		boots   int
	}{
		{hostapi.TaskPoweringOff, fake.OpPowerOff, hostapi.VMStopped, hostapi.PowerShutdown, 1},
		{hostapi.TaskPoweringOn, fake.OpPowerOn, hostapi.VMActive, hostapi.PowerRunning, 2},
		{hostapi.TaskRebooting, fake.OpReboot, hostapi.VMActive, hostapi.PowerRunning, 3},
		{hostapi.TaskRebootingHard, fake.OpRebootHard, hostapi.VMActive, hostapi.PowerRunning, 4},
		{hostapi.TaskPausing, fake.OpPause, hostapi.VMPaused, hostapi.PowerPaused, 4},
		{hostapi.TaskUnpausing, fake.OpUnpause, hostapi.VMActive, hostapi.PowerRunning, 4},
		{hostapi.TaskSuspending, fake.OpSuspend, hostapi.VMSuspended, hostapi.PowerShutdown, 4},
		{hostapi.TaskResuming, fake.OpResume, hostapi.VMActive, hostapi.PowerRunning, 4}, // restored, not booted
	}
	for _, st := range steps {
		before := d.Calls(st.op)
		fc.setTask("h1", "s1", st.task)
		waitFor(t, 5*time.Second, st.task+" done", settled(fc, "h1", "s1", st.vmState))
		s, _ := fc.server("h1", "s1")
		dom, _ := d.Domain("s1")
		if d.Calls(st.op) != before+1 || s.PowerState != st.power || dom.PowerState != st.power || dom.Boots != st.boots {
			t.Fatalf("%s: calls %d→%d, reported power %d, domain %+v; want power %d, boots %d",
				st.task, before, d.Calls(st.op), s.PowerState, dom, st.power, st.boots)
		}
		reps := fc.reportsOf("s1")
		if last := reps[len(reps)-1]; last.r.Task != st.task || last.r.Error != "" || last.status != 200 {
			t.Fatalf("%s: last report %+v", st.task, last)
		}
	}
	fc.setTask("h1", "s1", hostapi.TaskDeleting)
	waitFor(t, 5*time.Second, "s1 deleted", func() bool { _, ok := fc.server("h1", "s1"); return !ok })
	if d.Count() != 0 || d.Defined() != 1 {
		t.Fatalf("after delete: %d domains, %d defined", d.Count(), d.Defined())
	}
	if n := len(fc.reportsOf("s1")); n != len(steps)+2 {
		t.Fatalf("%d reports, want %d (one per task)", n, len(steps)+2)
	}
}

func TestFailedTaskReportsError(t *testing.T) {
	fc := newFakeController(t, testKey)
	d := fake.New(fake.Config{})
	startAgent(t, testConfig("h1", d, fc.url))

	d.SetFailSpawn(func(a hostapi.Assignment) error {
		if a.ID == "bad" {
			return errors.New("no space left on device")
		}
		return nil
	})
	fc.assign("h1", spawning("bad", 1))
	waitFor(t, 5*time.Second, "failed spawn rescheduled", func() bool { _, ok := fc.server("h1", "bad"); return !ok })
	reps := fc.reportsOf("bad")
	if len(reps) != 1 || !strings.Contains(reps[0].r.Error, "no space left") || reps[0].r.PowerState != hostapi.PowerNoState {
		t.Fatalf("reports %+v", reps)
	}
	if d.Count() != 0 {
		t.Fatal("a failed spawn left a domain")
	}

	// A task on a server without a domain fails and says so; powering
	// off a server without a domain is what was asked.
	lost := active("lost", 1)
	lost.TaskState = hostapi.TaskPoweringOn
	fc.assign("h1", lost)
	waitFor(t, 5*time.Second, "power-on of a lost server reported", func() bool { return len(fc.reportsOf("lost")) == 1 })
	if r := fc.reportsOf("lost")[0].r; !strings.Contains(r.Error, "no domain") {
		t.Fatalf("report %+v", r)
	}
}

// TestRestartConverges kills the agent after a spawn but before its report
// landed: the next agent reports the spawn without a second domain.
func TestRestartConverges(t *testing.T) {
	fc := newFakeController(t, testKey)
	d := fake.New(fake.Config{})
	fc.with(func() {
		fc.reportStatus = func(string, string, hostapi.Report) int { return http.StatusServiceUnavailable }
	})
	ta := startAgent(t, testConfig("h1", d, fc.url))
	fc.assign("h1", spawning("s1", 1))
	fc.assign("h1", spawning("s2", 1))
	waitFor(t, 5*time.Second, "spawned, report refused", func() bool {
		return d.Count() == 2 && len(fc.reportsOf("s1")) > 0 && len(fc.reportsOf("s2")) > 0
	})
	ta.stop(t)
	if d.Count() != 2 {
		t.Fatal("stopping the agent stopped domains")
	}
	fc.with(func() { fc.reportStatus = nil })

	startAgent(t, testConfig("h1", d, fc.url))
	waitFor(t, 5*time.Second, "s1, s2 active", func() bool {
		return settled(fc, "h1", "s1", hostapi.VMActive)() && settled(fc, "h1", "s2", hostapi.VMActive)()
	})
	if d.Defined() != 2 || d.Calls(fake.OpSpawn) != 2 {
		t.Fatalf("defined %d domains in %d spawns; want 2 and 2 (the restarted agent only reports)", d.Defined(), d.Calls(fake.OpSpawn))
	}
}

// TestRestartDuringSpawn stops the agent while Spawn runs; the grace period
// lets it finish and report.
func TestRestartDuringSpawn(t *testing.T) {
	fc := newFakeController(t, testKey)
	d := fake.New(fake.Config{Delays: map[string]time.Duration{fake.OpSpawn: 200 * time.Millisecond}})
	ta := startAgent(t, testConfig("h1", d, fc.url))
	fc.assign("h1", spawning("s1", 1))
	waitFor(t, 5*time.Second, "spawn started", func() bool { return d.Calls(fake.OpSpawn) == 1 })
	ta.stop(t)
	if !settled(fc, "h1", "s1", hostapi.VMActive)() {
		t.Fatal("the spawn under way at shutdown was not finished and reported within the grace period")
	}

	// Without grace the spawn is cut short: nothing is reported, and the
	// next agent spawns it.
	fc.assign("h1", spawning("s2", 1))
	cfg := testConfig("h1", d, fc.url)
	cfg.ShutdownGrace = time.Millisecond
	ta = startAgent(t, cfg)
	waitFor(t, 5*time.Second, "second spawn started", func() bool { return d.Calls(fake.OpSpawn) == 2 })
	ta.stop(t)
	if len(fc.reportsOf("s2")) != 0 {
		t.Fatalf("a spawn cut short was reported: %+v", fc.reportsOf("s2"))
	}
	startAgent(t, testConfig("h1", d, fc.url))
	waitFor(t, 5*time.Second, "s2 active", settled(fc, "h1", "s2", hostapi.VMActive))
	if d.Defined() != 2 {
		t.Fatalf("%d domains defined, want 2", d.Defined())
	}
}

func TestOrphansAndStaleGenerations(t *testing.T) {
	fc := newFakeController(t, testKey)
	d := fake.New(fake.Config{})
	ctx := context.Background()
	for _, a := range []hostapi.Assignment{spawning("orphan", 1), spawning("back", 1), spawning("moved", 1), spawning("kept", 3)} {
		if err := d.Spawn(ctx, a, nil); err != nil {
			t.Fatal(err)
		}
	}
	fc.assign("h1", spawning("back", 2)) // evacuated away and back: rebuild
	fc.assign("h1", active("moved", 2))  // this copy is of the old placement
	fc.assign("h1", active("kept", 3))
	ta := startAgent(t, testConfig("h1", d, fc.url))

	waitFor(t, 5*time.Second, "back rebuilt", settled(fc, "h1", "back", hostapi.VMActive))
	waitFor(t, 5*time.Second, "orphan and stale copy destroyed", func() bool {
		_, orphan := d.Domain("orphan")
		_, moved := d.Domain("moved")
		return !orphan && !moved
	})
	if dom, _ := d.Domain("back"); dom.Generation != 2 || dom.Boots != 1 {
		t.Fatalf("rebuilt domain %+v: want generation 2, booted once (a new domain)", dom)
	}
	if _, ok := d.Domain("kept"); !ok {
		t.Fatal("a domain of the current placement was destroyed")
	}
	// The server whose domain was of an older placement is reported lost
	// (once), since nothing here runs it any more.
	waitFor(t, 5*time.Second, "moved observed without domain", func() bool {
		s, _ := fc.server("h1", "moved")
		return s.PowerState == hostapi.PowerNoState
	})
	if ta.log.count("not assigned to this host") != 1 || ta.log.count("older placement") != 1 {
		t.Fatalf("orphan logs: %d, stale logs: %d", ta.log.count("not assigned to this host"), ta.log.count("older placement"))
	}

	// A server moved away while the agent runs is destroyed here.
	fc.unassign("h1", "kept")
	waitFor(t, 5*time.Second, "kept destroyed", func() bool { _, ok := d.Domain("kept"); return !ok })
}

func TestForcedDownStartsNothing(t *testing.T) {
	fc := newFakeController(t, testKey)
	d := fake.New(fake.Config{})
	ctx := context.Background()
	for _, id := range []string{"off", "del", "stop", "orphan", "reboot"} {
		if err := d.Spawn(ctx, spawning(id, 1), nil); err != nil {
			t.Fatal(err)
		}
	}
	d.SetPowerState("off", hostapi.PowerShutdown)
	spawnsBefore := d.Calls(fake.OpSpawn)
	withTask := func(id, vm, task string, power int) hostapi.Assignment {
		a := active(id, 1)
		a.VMState, a.TaskState, a.PowerState = vm, task, power
		return a
	}
	fc.setForcedDown("h1", true)
	fc.assign("h1", spawning("new", 1))
	fc.assign("h1", withTask("off", hostapi.VMStopped, hostapi.TaskPoweringOn, hostapi.PowerShutdown))
	fc.assign("h1", withTask("del", hostapi.VMActive, hostapi.TaskDeleting, hostapi.PowerRunning))
	fc.assign("h1", withTask("stop", hostapi.VMActive, hostapi.TaskPoweringOff, hostapi.PowerRunning))
	fc.assign("h1", withTask("reboot", hostapi.VMActive, hostapi.TaskRebootingHard, hostapi.PowerRunning))
	ta := startAgent(t, testConfig("h1", d, fc.url))

	waitFor(t, 5*time.Second, "deletes, power-offs and orphans honoured", func() bool {
		_, del := d.Domain("del")
		_, orphan := d.Domain("orphan")
		return !del && !orphan && settled(fc, "h1", "stop", hostapi.VMStopped)()
	})
	time.Sleep(100 * time.Millisecond) // a few more passes
	if d.Calls(fake.OpSpawn) != spawnsBefore || d.Calls(fake.OpPowerOn) != 0 || d.Calls(fake.OpRebootHard) != 0 {
		t.Fatalf("forced-down host started something: spawn %d, power-on %d, reboot %d",
			d.Calls(fake.OpSpawn)-spawnsBefore, d.Calls(fake.OpPowerOn), d.Calls(fake.OpRebootHard))
	}
	if n := ta.log.count("FORCED DOWN"); n != 1 {
		t.Fatalf("forced-down logged %d times, want once", n)
	}

	fc.setForcedDown("h1", false)
	waitFor(t, 5*time.Second, "held tasks carried out", func() bool {
		return settled(fc, "h1", "new", hostapi.VMActive)() && settled(fc, "h1", "off", hostapi.VMActive)() &&
			settled(fc, "h1", "reboot", hostapi.VMActive)()
	})
}

func TestFailover(t *testing.T) {
	fc := newFakeController(t, testKey)
	broken := newFakeController(t, testKey)
	broken.with(func() { broken.failN, broken.failStatus = 1<<30, http.StatusServiceUnavailable })
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := "http://" + ln.Addr().String()
	ln.Close()

	d := fake.New(fake.Config{FetchImages: true})
	img := []byte("an image")
	sum := sha256.Sum256(img)
	fc.with(func() { fc.images["img1"] = img })
	ta := startAgent(t, testConfig("h1", d, dead, broken.url, fc.url))
	a := spawning("s1", 1)
	a.ImageID, a.ImageSHA256 = "img1", hex.EncodeToString(sum[:])
	fc.assign("h1", a)
	waitFor(t, 5*time.Second, "s1 active through the third controller", settled(fc, "h1", "s1", hostapi.VMActive))
	if d.ImagesFetched() != 1 {
		t.Fatal("image not fetched")
	}
	// The client sticks to the controller that answers.
	broken.with(func() {
		if broken.requests > 2 {
			t.Errorf("the broken controller got %d calls; the agent should stick to the one that answers", broken.requests)
		}
	})
	if n := ta.log.count("cannot reach any controller"); n != 0 {
		t.Fatalf("outage logged %d times with one controller up", n)
	}
}

func TestOutageLoggedOnce(t *testing.T) {
	fc := newFakeController(t, testKey)
	d := fake.New(fake.Config{})
	fc.with(func() { fc.failN, fc.failStatus = 1<<30, http.StatusBadGateway })
	ta := startAgent(t, testConfig("h1", d, fc.url))
	waitFor(t, 5*time.Second, "retries", func() bool {
		var n int
		fc.with(func() { n = fc.requests })
		return n > 10
	})
	fc.with(func() { fc.failN = 0 })
	fc.assign("h1", spawning("s1", 1))
	waitFor(t, 5*time.Second, "s1 active after the outage", settled(fc, "h1", "s1", hostapi.VMActive))
	if n := ta.log.count("cannot reach any controller"); n != 1 {
		t.Fatalf("outage logged %d times, want once", n)
	}
	if n := ta.log.count("controllers reachable again"); n != 1 {
		t.Fatalf("recovery logged %d times, want once", n)
	}
}

func TestBlockingQueryIndex(t *testing.T) {
	fc := newFakeController(t, testKey)
	d := fake.New(fake.Config{})
	cfg := testConfig("h1", d, fc.url)
	cfg.Wait = 150 * time.Millisecond
	startAgent(t, cfg)
	fc.assign("h1", spawning("s1", 1))
	waitFor(t, 5*time.Second, "s1 active", settled(fc, "h1", "s1", hostapi.VMActive))
	time.Sleep(50 * time.Millisecond) // let any refresh after the report pass
	n0 := len(fc.queriesOf("h1"))
	time.Sleep(600 * time.Millisecond)
	qs := fc.queriesOf("h1")
	if len(qs)-n0 > 6 {
		t.Fatalf("%d queries in 600ms with wait=150ms: the agent does not block", len(qs)-n0)
	}
	if qs[0].index != 0 {
		t.Fatalf("first query has index %d, want 0", qs[0].index)
	}
	last := qs[len(qs)-1]
	var want uint64
	fc.with(func() { want = fc.hosts["h1"].index })
	if last.index != want || last.wait != "150ms" {
		t.Fatalf("idle query %+v, want index %d and wait 150ms", last, want)
	}
}

// TestStaleAnswerIgnored: an answer older than one acted on (a controller
// that is behind) must not destroy a server placed since.
func TestStaleAnswerIgnored(t *testing.T) {
	fc := newFakeController(t, testKey)
	d := fake.New(fake.Config{})
	cfg := testConfig("h1", d, fc.url)
	cfg.Wait = 100 * time.Millisecond
	startAgent(t, cfg)
	fc.assign("h1", spawning("s1", 1))
	waitFor(t, 5*time.Second, "s1 active", settled(fc, "h1", "s1", hostapi.VMActive))
	fc.with(func() {
		fc.mutate = func(_ string, a *hostapi.Assignments) { a.Index, a.Servers = 1, nil }
	})
	time.Sleep(400 * time.Millisecond)
	if _, ok := d.Domain("s1"); !ok {
		t.Fatal("an answer with an older index destroyed a server")
	}
}

// TestStaleReportDropped: the task changes while its operation runs; the
// report of the old task is refused (409), dropped, and the new task done.
func TestStaleReportDropped(t *testing.T) {
	fc := newFakeController(t, testKey)
	d := fake.New(fake.Config{})
	ta := startAgent(t, testConfig("h1", d, fc.url))
	fc.assign("h1", spawning("s1", 1))
	waitFor(t, 5*time.Second, "s1 active", settled(fc, "h1", "s1", hostapi.VMActive))

	d.SetDelay(fake.OpPowerOff, 200*time.Millisecond)
	fc.setTask("h1", "s1", hostapi.TaskPoweringOff)
	waitFor(t, 5*time.Second, "power-off under way", func() bool { return d.Calls(fake.OpPowerOff) == 1 })
	fc.setTask("h1", "s1", hostapi.TaskDeleting)
	waitFor(t, 5*time.Second, "s1 deleted", func() bool { _, ok := fc.server("h1", "s1"); return !ok })

	var offReports, conflicts int
	for _, r := range fc.reportsOf("s1") {
		if r.r.Task == hostapi.TaskPoweringOff {
			offReports++
			if r.status == http.StatusConflict {
				conflicts++
			}
		}
	}
	if offReports != 1 || conflicts != 1 {
		t.Fatalf("power-off reported %d times (%d refused); want once, refused", offReports, conflicts)
	}
	if d.Calls(fake.OpPowerOff) != 1 || d.Count() != 0 {
		t.Fatalf("power-offs %d, domains %d", d.Calls(fake.OpPowerOff), d.Count())
	}
	if ta.log.countAt(slog.LevelInfo, "report") != 0 || ta.log.count("report refused as stale") != 1 {
		t.Fatal("a stale report was not logged once at debug level")
	}
}

// TestOneOperationPerServer: a long operation is not started twice while
// answers keep coming, and other servers go on meanwhile.
func TestOneOperationPerServer(t *testing.T) {
	fc := newFakeController(t, testKey)
	d := fake.New(fake.Config{})
	cfg := testConfig("h1", d, fc.url)
	cfg.Wait = 20 * time.Millisecond
	startAgent(t, cfg)
	release := make(chan struct{})
	unblock := sync.OnceFunc(func() { close(release) })
	t.Cleanup(unblock) // before the agent's cleanup, which waits for the spawn
	d.SetFail(func(op, id string) error {
		if op == fake.OpSpawn && id == "slow" {
			<-release
		}
		return nil
	})
	fc.assign("h1", spawning("slow", 1))
	waitFor(t, 5*time.Second, "slow spawn under way", func() bool { return d.Calls(fake.OpSpawn) == 1 })
	for i := range 20 {
		fc.assign("h1", spawning("fast"+string(rune('a'+i)), 1))
	}
	waitFor(t, 5*time.Second, "others spawned meanwhile", func() bool { return d.Count() == 20 })
	time.Sleep(100 * time.Millisecond)
	if calls := d.Calls(fake.OpSpawn); calls != 21 {
		t.Fatalf("%d spawns, want 21 (the slow one once)", calls)
	}
	unblock()
	waitFor(t, 5*time.Second, "slow active", settled(fc, "h1", "slow", hostapi.VMActive))
}

func TestPowerStateObservedOnce(t *testing.T) {
	fc := newFakeController(t, testKey)
	d := fake.New(fake.Config{})
	cfg := testConfig("h1", d, fc.url)
	cfg.Wait = 30 * time.Millisecond
	startAgent(t, cfg)
	fc.assign("h1", spawning("s1", 1))
	waitFor(t, 5*time.Second, "s1 active", settled(fc, "h1", "s1", hostapi.VMActive))

	d.SetPowerState("s1", hostapi.PowerShutdown) // the guest shut itself down
	waitFor(t, 5*time.Second, "shutdown observed", func() bool {
		s, _ := fc.server("h1", "s1")
		return s.PowerState == hostapi.PowerShutdown
	})
	time.Sleep(150 * time.Millisecond)
	var obs int
	for _, r := range fc.reportsOf("s1") {
		if r.r.Task == "" {
			obs++
		}
	}
	if obs != 1 {
		t.Fatalf("%d observation reports, want 1", obs)
	}

	// A controller that does not record observations gets each change
	// once, not one report per pass.
	fc.with(func() {
		fc.reportStatus = func(_, _ string, r hostapi.Report) int {
			if r.Task == "" {
				return http.StatusBadRequest
			}
			return 0
		}
	})
	d.SetPowerState("s1", hostapi.PowerCrashed)
	time.Sleep(200 * time.Millisecond)
	obs = 0
	for _, r := range fc.reportsOf("s1") {
		if r.r.Task == "" && r.r.PowerState == hostapi.PowerCrashed {
			obs++
		}
	}
	if obs != 1 {
		t.Fatalf("%d reports of the crash, want 1", obs)
	}
}

func TestReregistersWhenForgotten(t *testing.T) {
	fc := newFakeController(t, testKey)
	d := fake.New(fake.Config{})
	startAgent(t, testConfig("h1", d, fc.url))
	waitFor(t, 5*time.Second, "registration", func() bool { return len(fc.registrationsOf("h1")) == 1 })
	fc.forget("h1")
	waitFor(t, 5*time.Second, "second registration", func() bool { return len(fc.registrationsOf("h1")) == 2 })
	fc.assign("h1", spawning("s1", 1))
	waitFor(t, 5*time.Second, "s1 active", settled(fc, "h1", "s1", hostapi.VMActive))
}

func TestImageChecksumMismatchFailsSpawn(t *testing.T) {
	fc := newFakeController(t, testKey)
	d := fake.New(fake.Config{FetchImages: true})
	fc.with(func() { fc.images["img1"] = []byte("corrupted") })
	startAgent(t, testConfig("h1", d, fc.url))
	a := spawning("s1", 1)
	a.ImageID, a.ImageSHA256 = "img1", strings.Repeat("ab", 32)
	fc.assign("h1", a)
	waitFor(t, 5*time.Second, "failed spawn reported", func() bool { return len(fc.reportsOf("s1")) == 1 })
	if r := fc.reportsOf("s1")[0].r; !strings.Contains(r.Error, "sha256") {
		t.Fatalf("report %+v", r)
	}
	b := spawning("s2", 1)
	b.ImageID = "missing"
	fc.assign("h1", b)
	waitFor(t, 5*time.Second, "missing image reported", func() bool { return len(fc.reportsOf("s2")) == 1 })
	if r := fc.reportsOf("s2")[0].r; !strings.Contains(r.Error, "404") {
		t.Fatalf("report %+v", r)
	}
}

func TestConfigErrors(t *testing.T) {
	d := fake.New(fake.Config{})
	good := testConfig("h1", d, "http://127.0.0.1:8774")
	for _, tc := range []struct {
		name string
		mod  func(*Config)
		want string
	}{
		{"no name", func(c *Config) { c.Name = "" }, "host name"},
		{"slash", func(c *Config) { c.Name = "a/b" }, "may not contain"},
		{"no controllers", func(c *Config) { c.Controllers = nil }, "controller"},
		{"bad url", func(c *Config) { c.Controllers = []string{"127.0.0.1:8774"} }, "http://host:port"},
		{"key", func(c *Config) { c.ClusterKey = []byte("short") }, "32 bytes"},
		{"driver", func(c *Config) { c.Driver = nil }, "driver"},
		{"listen", func(c *Config) { c.ListenAddr = "" }, "--listen"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := good
			c.Controllers = append([]string(nil), good.Controllers...)
			tc.mod(&c)
			if _, err := New(c); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("New: %v, want an error about %q", err, tc.want)
			}
		})
	}
	a, err := New(good)
	if err != nil {
		t.Fatal(err)
	}
	if a.cfg.Zone != "nova" || a.cfg.Wait != 2*time.Second || a.cfg.Parallel != 8 || a.cfg.Gossip != gossip.LAN() {
		t.Fatalf("defaults: %+v", a.cfg)
	}
}

// A wildcard --listen is published as the address that reaches the
// controllers, never as 0.0.0.0.
func TestWildcardListenAdvertisesHostIP(t *testing.T) {
	fc := newFakeController(t, testKey)
	cfg := testConfig("h1", fake.New(fake.Config{}), fc.url)
	cfg.ListenAddr = "0.0.0.0:0"
	ta := startAgent(t, cfg)
	if !strings.HasPrefix(ta.a.Addr(), "127.0.0.1:") {
		t.Fatalf("advertised %q", ta.a.Addr())
	}
	waitFor(t, 5*time.Second, "registration", func() bool { return len(fc.registrationsOf("h1")) == 1 })
	if r := fc.registrationsOf("h1")[0]; r.AgentAddr != ta.a.Addr() || r.HostIP != "127.0.0.1" {
		t.Fatalf("registration %+v", r)
	}
}

// TestAnswerFromBeforeTheReport: an answer the controller produced before
// a report landed, but that reaches the agent after the operation ended,
// still shows the task; the agent must not carry it out a second time.
func TestAnswerFromBeforeTheReport(t *testing.T) {
	fc := newFakeController(t, testKey)
	d := fake.New(fake.Config{})
	startAgent(t, testConfig("h1", d, fc.url))
	fc.assign("h1", spawning("s1", 1))
	waitFor(t, 5*time.Second, "s1 active", settled(fc, "h1", "s1", hostapi.VMActive))

	rebootReported := func() bool {
		for _, r := range fc.reportsOf("s1") {
			if r.r.Task == hostapi.TaskRebooting {
				return true
			}
		}
		return false
	}
	fc.with(func() {
		fc.mutate = func(_ string, a *hostapi.Assignments) {
			var slow, other bool
			for _, s := range a.Servers {
				slow = slow || (s.ID == "s1" && s.TaskState == hostapi.TaskRebooting)
				other = other || s.ID == "other"
			}
			if !slow || !other {
				return
			}
			// Hold the answer, as a slow network would, until the report
			// of the reboot has landed.
			for deadline := time.Now().Add(2 * time.Second); !rebootReported() && time.Now().Before(deadline); {
				time.Sleep(2 * time.Millisecond)
			}
		}
	})
	d.SetDelay(fake.OpReboot, 100*time.Millisecond)
	fc.setTask("h1", "s1", hostapi.TaskRebooting)
	waitFor(t, 5*time.Second, "reboot under way", func() bool { return d.Calls(fake.OpReboot) == 1 })
	fc.assign("h1", spawning("other", 1)) // wakes the blocking query while the reboot runs
	waitFor(t, 5*time.Second, "reboot done, other active", func() bool {
		return settled(fc, "h1", "s1", hostapi.VMActive)() && settled(fc, "h1", "other", hostapi.VMActive)()
	})
	time.Sleep(100 * time.Millisecond)
	if n := d.Calls(fake.OpReboot); n != 1 {
		t.Fatalf("rebooted %d times, want once", n)
	}
}

func TestRegistersAgainWhenCapacityChanges(t *testing.T) {
	fc := newFakeController(t, testKey)
	d := fake.New(fake.Config{})
	cfg := testConfig("h1", d, fc.url)
	cfg.Wait, cfg.RegistrationCheck = 20*time.Millisecond, 10*time.Millisecond
	startAgent(t, cfg)
	waitFor(t, 5*time.Second, "registration", func() bool { return len(fc.registrationsOf("h1")) == 1 })
	time.Sleep(100 * time.Millisecond)
	if n := len(fc.registrationsOf("h1")); n != 1 {
		t.Fatalf("%d registrations with nothing changed", n)
	}
	c := fake.DefaultCapacity()
	c.MemoryMB *= 2
	d.SetCapacity(c)
	waitFor(t, 5*time.Second, "second registration", func() bool { return len(fc.registrationsOf("h1")) == 2 })
	if r := fc.registrationsOf("h1")[1]; r.MemoryMB != c.MemoryMB {
		t.Fatalf("re-registered with %d MB", r.MemoryMB)
	}
}
