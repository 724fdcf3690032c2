package fake

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/keel-cloud/keel/agent/driver"
	"github.com/keel-cloud/keel/internal/hostapi"
)

var ctx = context.Background()

func asg(id string, gen uint64) hostapi.Assignment {
	return hostapi.Assignment{ID: id, Hostname: "vm-" + id, Generation: gen}
}

func power(t *testing.T, d *Driver, id string) int {
	t.Helper()
	dom, ok := d.Domain(id)
	if !ok {
		t.Fatalf("no domain %s", id)
	}
	return dom.PowerState
}

// TestPowerTransitions checks each call from each power state against what
// libvirt (as Nova's libvirt driver reads it) would show.
func TestPowerTransitions(t *testing.T) {
	const (
		run   = hostapi.PowerRunning
		off   = hostapi.PowerShutdown
		pause = hostapi.PowerPaused
	)
	type call func(d *Driver, id string) error
	calls := map[string]call{
		"power-off":   func(d *Driver, id string) error { return d.PowerOff(ctx, id) },
		"power-on":    func(d *Driver, id string) error { return d.PowerOn(ctx, id) },
		"reboot":      func(d *Driver, id string) error { return d.Reboot(ctx, id, false) },
		"reboot-hard": func(d *Driver, id string) error { return d.Reboot(ctx, id, true) },
		"pause":       func(d *Driver, id string) error { return d.Pause(ctx, id) },
		"unpause":     func(d *Driver, id string) error { return d.Unpause(ctx, id) },
		"suspend":     func(d *Driver, id string) error { return d.Suspend(ctx, id) },
		"resume":      func(d *Driver, id string) error { return d.Resume(ctx, id) },
		"force-off":   func(d *Driver, id string) error { return d.ForceOff(ctx, id) },
	}
	for _, tc := range []struct {
		from    int
		call    string
		want    int
		wantErr bool
		boots   int // boots after the call (1 from Spawn)
	}{
		{run, "power-off", off, false, 1},
		{off, "power-off", off, false, 1},
		{off, "power-on", run, false, 2},
		{run, "power-on", run, false, 1},
		{pause, "power-on", run, false, 1},
		{run, "reboot", run, false, 2},
		{off, "reboot", off, true, 1},
		{off, "reboot-hard", run, false, 2},
		{run, "reboot-hard", run, false, 2},
		{run, "pause", pause, false, 1},
		{pause, "pause", pause, false, 1},
		{off, "pause", off, true, 1},
		{pause, "unpause", run, false, 1},
		{run, "unpause", run, false, 1},
		{off, "unpause", off, true, 1},
		{run, "suspend", off, false, 1},
		{off, "suspend", off, true, 1},
		{run, "resume", run, false, 1},
		{run, "force-off", off, false, 1},
		{pause, "force-off", off, false, 1},
		{off, "force-off", off, false, 1},
	} {
		t.Run(tc.call+"/from="+map[int]string{run: "running", off: "shutoff", pause: "paused"}[tc.from], func(t *testing.T) {
			d := New(Config{})
			if err := d.Spawn(ctx, asg("s", 1), nil); err != nil {
				t.Fatal(err)
			}
			d.SetPowerState("s", tc.from)
			err := calls[tc.call](d, "s")
			if (err != nil) != tc.wantErr {
				t.Fatalf("error %v, want error: %v", err, tc.wantErr)
			}
			dom, _ := d.Domain("s")
			if dom.PowerState != tc.want || dom.Boots != tc.boots {
				t.Fatalf("power %d boots %d, want %d and %d", dom.PowerState, dom.Boots, tc.want, tc.boots)
			}
		})
	}
}

func TestSuspendResumeRestoresWithoutBoot(t *testing.T) {
	d := New(Config{})
	if err := d.Spawn(ctx, asg("s", 1), nil); err != nil {
		t.Fatal(err)
	}
	if err := d.Suspend(ctx, "s"); err != nil {
		t.Fatal(err)
	}
	if err := d.Suspend(ctx, "s"); err != nil {
		t.Fatalf("suspend of a suspended domain: %v", err)
	}
	if err := d.Resume(ctx, "s"); err != nil {
		t.Fatal(err)
	}
	dom, _ := d.Domain("s")
	out, _ := d.ConsoleOutput(ctx, "s", 1)
	if dom.Boots != 1 || dom.ManagedSave || power(t, d, "s") != hostapi.PowerRunning || !strings.Contains(out, "resumed") {
		t.Fatalf("after resume: %+v, console %q", dom, out)
	}
}

func TestSpawnIsIdempotent(t *testing.T) {
	d := New(Config{})
	var wg sync.WaitGroup
	for range 20 {
		wg.Go(func() {
			if err := d.Spawn(ctx, asg("s", 1), nil); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	if d.Defined() != 1 || d.Count() != 1 {
		t.Fatalf("defined %d, count %d after 20 concurrent spawns", d.Defined(), d.Count())
	}
	d.SetPowerState("s", hostapi.PowerShutdown)
	if err := d.Spawn(ctx, asg("s", 2), nil); err != nil {
		t.Fatal(err)
	}
	dom, _ := d.Domain("s")
	if d.Defined() != 1 || dom.Generation != 2 || dom.PowerState != hostapi.PowerRunning || dom.Boots != 2 {
		t.Fatalf("respawn: defined %d, %+v", d.Defined(), dom)
	}
	doms, err := d.List(ctx)
	if err != nil || len(doms) != 1 || doms[0] != (driver.Domain{ServerID: "s", Generation: 2, PowerState: hostapi.PowerRunning}) {
		t.Fatalf("List: %v %+v", err, doms)
	}
}

func TestNotFoundAndDestroy(t *testing.T) {
	d := New(Config{})
	for name, err := range map[string]error{
		"power-off": d.PowerOff(ctx, "x"), "power-on": d.PowerOn(ctx, "x"), "reboot": d.Reboot(ctx, "x", true),
		"pause": d.Pause(ctx, "x"), "unpause": d.Unpause(ctx, "x"), "suspend": d.Suspend(ctx, "x"), "resume": d.Resume(ctx, "x"),
	} {
		if !errors.Is(err, driver.ErrNotFound) {
			t.Errorf("%s of a missing domain: %v, want ErrNotFound", name, err)
		}
	}
	if _, err := d.ConsoleOutput(ctx, "x", 0); !errors.Is(err, driver.ErrNotFound) {
		t.Errorf("console of a missing domain: %v", err)
	}
	if err := d.Destroy(ctx, "x"); err != nil {
		t.Fatalf("destroy of a missing domain: %v", err)
	}
	_ = d.Spawn(ctx, asg("s", 1), nil)
	if err := d.Destroy(ctx, "s"); err != nil || d.Count() != 0 || d.Destroyed() != 1 {
		t.Fatalf("destroy: %v, count %d, destroyed %d", err, d.Count(), d.Destroyed())
	}
}

func TestFailuresAndDelays(t *testing.T) {
	boom := errors.New("boom")
	d := New(Config{
		FailSpawn: func(a hostapi.Assignment) error {
			if strings.HasPrefix(a.ID, "bad") {
				return boom
			}
			return nil
		},
		Delays: map[string]time.Duration{OpPowerOff: 50 * time.Millisecond},
	})
	if err := d.Spawn(ctx, asg("bad1", 1), nil); !errors.Is(err, boom) || d.Count() != 0 {
		t.Fatalf("failed spawn: %v, %d domains", err, d.Count())
	}
	if err := d.Spawn(ctx, asg("good", 1), nil); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	if err := d.PowerOff(ctx, "good"); err != nil || time.Since(start) < 50*time.Millisecond {
		t.Fatalf("delayed power-off: %v after %s", err, time.Since(start))
	}
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if err := d.PowerOn(cctx, "good"); !errors.Is(err, context.Canceled) || power(t, d, "good") != hostapi.PowerShutdown {
		t.Fatalf("cancelled power-on: %v", err)
	}
	d.SetFail(func(op, id string) error {
		if op == OpReboot {
			return boom
		}
		return nil
	})
	_ = d.PowerOn(ctx, "good")
	if err := d.Reboot(ctx, "good", false); !errors.Is(err, boom) {
		t.Fatalf("injected reboot failure: %v", err)
	}
	if err := d.Reboot(ctx, "good", true); err != nil {
		t.Fatalf("hard reboot is a different operation: %v", err)
	}
	if d.Calls(OpReboot) != 1 || d.Calls(OpRebootHard) != 1 || d.Calls(OpSpawn) != 2 {
		t.Fatalf("calls: reboot %d, hard %d, spawn %d", d.Calls(OpReboot), d.Calls(OpRebootHard), d.Calls(OpSpawn))
	}
}

func TestConsoleOutput(t *testing.T) {
	d := New(Config{})
	_ = d.Spawn(ctx, asg("s", 1), nil)
	_ = d.Reboot(ctx, "s", false)
	all, _ := d.ConsoleOutput(ctx, "s", 0)
	if strings.Count(all, "keel-fake: boot") != 2 || !strings.HasSuffix(all, "vm-s login: \n") {
		t.Fatalf("console %q", all)
	}
	last, _ := d.ConsoleOutput(ctx, "s", 2)
	if last != "keel-fake: guest services started\nvm-s login: \n" {
		t.Fatalf("last 2 lines %q", last)
	}
}

type imageSource map[string][]byte

func (s imageSource) Open(_ context.Context, id string) (io.ReadCloser, error) {
	b, ok := s[id]
	if !ok {
		return nil, errors.New("no such image")
	}
	return io.NopCloser(bytes.NewReader(b)), nil
}

func TestFetchImages(t *testing.T) {
	img := imageSource{"i1": []byte("image bytes")}
	sum := sha256.Sum256(img["i1"])
	d := New(Config{FetchImages: true})
	a := asg("s1", 1)
	a.ImageID, a.ImageSHA256 = "i1", strings.Repeat("0", 64)
	if err := d.Spawn(ctx, a, img); err == nil || !strings.Contains(err.Error(), "sha256") || d.Count() != 0 {
		t.Fatalf("checksum mismatch: %v", err)
	}
	a.ImageSHA256 = hex.EncodeToString(sum[:])
	if err := d.Spawn(ctx, a, img); err != nil {
		t.Fatal(err)
	}
	b := asg("s2", 1)
	b.ImageID = "i1"
	if err := d.Spawn(ctx, b, nil); err != nil {
		t.Fatalf("cached image fetched again: %v", err)
	}
	if d.ImagesFetched() != 1 {
		t.Fatalf("%d images fetched", d.ImagesFetched())
	}
}

func TestCapacityAndClose(t *testing.T) {
	d := New(Config{Capacity: driver.Capacity{VCPUs: 4}})
	c, err := d.Capacity(ctx)
	if err != nil || c.VCPUs != 4 || c.MemoryMB != DefaultCapacity().MemoryMB || c.HypervisorType != "fake" {
		t.Fatalf("capacity %+v %v", c, err)
	}
	_ = d.Spawn(ctx, asg("s", 1), nil)
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := d.List(ctx); !errors.Is(err, ErrClosed) {
		t.Fatalf("List after Close: %v", err)
	}
	if _, ok := d.Domain("s"); !ok {
		t.Fatal("Close removed the domains")
	}
}

func TestStateFileKeepsDomainsAcrossRestarts(t *testing.T) {
	ctx := context.Background()
	file := filepath.Join(t.TempDir(), "fake-domains.json")
	d, err := Load(Config{StateFile: file})
	if err != nil {
		t.Fatal(err)
	}
	a := hostapi.Assignment{ID: "s1", Name: "one", Generation: 3}
	if err := d.Spawn(ctx, a, nil); err != nil {
		t.Fatal(err)
	}
	if err := d.Spawn(ctx, hostapi.Assignment{ID: "s2", Generation: 4}, nil); err != nil {
		t.Fatal(err)
	}
	if err := d.PowerOff(ctx, "s2"); err != nil {
		t.Fatal(err)
	}
	// The agent is killed: a new driver finds the domains as they were.
	d2, err := Load(Config{StateFile: file})
	if err != nil {
		t.Fatal(err)
	}
	if dom, ok := d2.Domain("s1"); !ok || dom.PowerState != hostapi.PowerRunning || dom.Generation != 3 {
		t.Fatalf("s1 after a restart: %+v %v", dom, ok)
	}
	if dom, ok := d2.Domain("s2"); !ok || dom.PowerState != hostapi.PowerShutdown {
		t.Fatalf("s2 after a restart: %+v %v", dom, ok)
	}
	if err := d2.Destroy(ctx, "s1"); err != nil {
		t.Fatal(err)
	}
	d3, _ := Load(Config{StateFile: file})
	if _, ok := d3.Domain("s1"); ok || d3.Count() != 1 {
		t.Fatalf("destroyed domain back after a restart: count %d", d3.Count())
	}
	if err := os.WriteFile(file, []byte("not json"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Load(Config{StateFile: file}); err == nil || !strings.Contains(err.Error(), "move it away") {
		t.Fatalf("a corrupt state file: %v", err)
	}
}
