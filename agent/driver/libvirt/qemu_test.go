package libvirt

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/keel-cloud/keel/agent/driver"
	"github.com/keel-cloud/keel/internal/hostapi"
	"github.com/keel-cloud/keel/internal/testimage"
)

// TestQEMULifecycle boots internal/testimage under qemu:///system (KVM when
// the host offers it, else TCG) and walks a server through every driver
// method, reading the guest's serial console to see each boot.
func TestQEMULifecycle(t *testing.T) {
	requireLibvirtd(t)
	if _, err := exec.LookPath("qemu-system-x86_64"); err != nil {
		t.Skip("qemu-system-x86_64 is not installed; run scripts/install-libvirt.sh")
	}
	if testing.Short() {
		t.Skip("boots a guest: not in -short")
	}
	ctx := context.Background()
	// QEMU runs as its own user (libvirt-qemu): the state directory must be
	// searchable by others, which t.TempDir's is not.
	stateDir, err := os.MkdirTemp("", "keel-libvirt-test-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(stateDir) })
	if err := os.Chmod(stateDir, 0o755); err != nil {
		t.Fatal(err)
	}
	// TCG by default: it boots this image in a fraction of a second and
	// works on hosts without /dev/kvm, where nested KVM may take seconds
	// (KEEL_TEST_VIRT_TYPE=kvm, or "auto" for the driver's own choice).
	virtType := os.Getenv("KEEL_TEST_VIRT_TYPE")
	switch virtType {
	case "":
		virtType = "qemu"
	case "auto":
		virtType = ""
	}
	d := newTestDriver(t, Config{URI: "qemu:///system", StateDir: stateDir, VirtType: virtType, ShutdownTimeout: time.Second})
	t.Logf("domain type %s", d.VirtType())

	raw := testimage.Raw()
	a := testAssignment(raw)
	a.MemoryMB = 32
	images := &memImages{images: map[string][]byte{a.ImageID: raw}}
	t.Cleanup(func() { _ = d.Destroy(context.Background(), a.ID) })

	boots := 0
	step := func(name string, op func() error, power int, newBoot bool) {
		t.Helper()
		start := time.Now()
		if err := op(); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		wantPower(t, d, a.ID, power)
		if newBoot {
			boots++
		}
		if power == hostapi.PowerRunning {
			waitBoots(t, d, a.ID, boots)
		}
		t.Logf("%s: %v", name, time.Since(start).Round(time.Millisecond))
	}

	step("Spawn", func() error { return d.Spawn(ctx, a, images) }, hostapi.PowerRunning, true)
	step("Spawn again", func() error { return d.Spawn(ctx, a, images) }, hostapi.PowerRunning, false)
	if dom, _ := findDomain(t, d, a.ID); dom.Generation != a.Generation {
		t.Fatalf("generation %d, want %d", dom.Generation, a.Generation)
	}
	// The test image ignores ACPI: PowerOff falls back to destroy after
	// ShutdownTimeout, and the soft reboot to a hard one.
	step("PowerOff", func() error { return d.PowerOff(ctx, a.ID) }, hostapi.PowerShutdown, false)
	step("PowerOn", func() error { return d.PowerOn(ctx, a.ID) }, hostapi.PowerRunning, true)
	step("Pause", func() error { return d.Pause(ctx, a.ID) }, hostapi.PowerPaused, false)
	step("Unpause", func() error { return d.Unpause(ctx, a.ID) }, hostapi.PowerRunning, false)
	step("Suspend", func() error { return d.Suspend(ctx, a.ID) }, hostapi.PowerShutdown, false)
	step("Resume (memory restored: no new boot)", func() error { return d.Resume(ctx, a.ID) }, hostapi.PowerRunning, false)
	step("soft Reboot", func() error { return d.Reboot(ctx, a.ID, false) }, hostapi.PowerRunning, true)
	step("hard Reboot", func() error { return d.Reboot(ctx, a.ID, true) }, hostapi.PowerRunning, true)

	out, err := d.ConsoleOutput(ctx, a.ID, 1)
	if err != nil || strings.TrimRight(out, "\r\n") != testimage.Line {
		t.Fatalf("ConsoleOutput(1) = %q, %v", out, err)
	}

	conn, err := d.client()
	if err != nil {
		t.Fatal(err)
	}
	pool, err := d.pool(conn)
	if err != nil {
		t.Fatal(err)
	}
	vol, err := conn.StorageVolLookupByName(pool, overlayName(a.ID))
	if err != nil {
		t.Fatal(err)
	}
	disk, err := conn.StorageVolGetPath(vol)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(disk); err != nil {
		t.Fatalf("root disk: %v", err)
	}

	start := time.Now()
	if err := d.Destroy(ctx, a.ID); err != nil {
		t.Fatalf("Destroy: %v", err)
	}
	t.Logf("Destroy: %v", time.Since(start).Round(time.Millisecond))
	if err := d.Destroy(ctx, a.ID); err != nil {
		t.Fatalf("second Destroy: %v", err)
	}
	uuid, _ := parseUUID(a.ID)
	if _, err := conn.DomainLookupByUUID(uuid); err == nil {
		t.Fatal("the domain still exists")
	}
	for _, p := range []string{disk, d.consolePath(a.ID)} {
		if _, err := os.Stat(p); !os.IsNotExist(err) {
			t.Errorf("%s still exists (%v)", p, err)
		}
	}
	if _, err := d.ConsoleOutput(ctx, a.ID, 0); !errors.Is(err, driver.ErrNotFound) {
		t.Fatalf("ConsoleOutput after Destroy: %v", err)
	}
	if _, err := os.Stat(filepath.Join(d.poolPath, imageFileName(a.ImageID, "raw"))); err != nil {
		t.Fatalf("the cached image should stay: %v", err)
	}
}

// waitBoots waits until the console log shows the boot line n times.
func waitBoots(t *testing.T, d *Driver, id string, n int) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		out, err := d.ConsoleOutput(context.Background(), id, 0)
		if err != nil {
			t.Fatalf("ConsoleOutput: %v", err)
		}
		got := strings.Count(out, testimage.Line)
		if got == n {
			return
		}
		if got > n || time.Now().After(deadline) {
			t.Fatalf("console shows %d boots, want %d; console:\n%s", got, n, out)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
