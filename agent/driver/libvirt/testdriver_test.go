package libvirt

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/keel-cloud/keel/agent/driver"
	"github.com/keel-cloud/keel/internal/hostapi"
	"github.com/keel-cloud/keel/internal/ids"
	"github.com/keel-cloud/keel/internal/testimage"
)

// These tests run against libvirt's test driver (test:///default): an
// in-memory hypervisor inside libvirtd, shared by every connection to it.
// They check the driver's logic and its use of the RPC API; qemu_test.go
// boots a real guest.

const testURI = "test:///default"

func testAssignment(img []byte) hostapi.Assignment {
	return hostapi.Assignment{
		ID: ids.UUID(), Name: "vm-1", ProjectID: "p1", UserID: "u1", Generation: 1,
		VMState: hostapi.VMBuilding, TaskState: hostapi.TaskSpawning,
		VCPUs: 1, MemoryMB: 64, RootGB: 1,
		ImageID: ids.UUID(), ImageSHA256: sha256Hex(img), ImageFormat: "raw", ImageSize: int64(len(img)),
	}
}

func TestTestDriverLifecycle(t *testing.T) {
	requireLibvirtd(t)
	ctx := context.Background()
	stateDir := t.TempDir()
	d := newTestDriver(t, Config{URI: testURI, StateDir: stateDir})
	if d.VirtType() != "test" {
		t.Fatalf("virt type %q, want test", d.VirtType())
	}
	raw := testimage.Raw()
	a := testAssignment(raw)
	images := &memImages{images: map[string][]byte{a.ImageID: raw}}

	// Spawn twice: one domain, one download, generation raised.
	if err := d.Spawn(ctx, a, images); err != nil {
		t.Fatalf("Spawn: %v", err)
	}
	wantPower(t, d, a.ID, hostapi.PowerRunning)
	a.Generation = 2
	if err := d.Spawn(ctx, a, images); err != nil {
		t.Fatalf("second Spawn: %v", err)
	}
	if n := images.opens.Load(); n != 1 {
		t.Fatalf("image opened %d times, want 1", n)
	}
	if dom, _ := findDomain(t, d, a.ID); dom.Generation != 2 {
		t.Fatalf("generation %d after the second Spawn, want 2", dom.Generation)
	}
	cached := filepath.Join(d.poolPath, imageFileName(a.ImageID, "raw"))
	if b, err := os.ReadFile(cached); err != nil || len(b) != len(raw) {
		t.Fatalf("cached image %s: %d bytes, %v", cached, len(b), err)
	}
	// An older generation never lowers the domain's.
	old := a
	old.Generation = 1
	if err := d.Spawn(ctx, old, images); err != nil {
		t.Fatalf("Spawn with an old generation: %v", err)
	}

	// A fresh driver (an agent restart) sees the generation from libvirt.
	d2 := newTestDriver(t, Config{URI: testURI, StateDir: stateDir, PoolName: d.cfg.PoolName})
	if dom, ok := findDomain(t, d2, a.ID); !ok || dom.Generation != 2 || dom.PowerState != hostapi.PowerRunning {
		t.Fatalf("fresh driver lists %+v (found %v), want generation 2, running", dom, ok)
	}

	steps := []struct {
		name  string
		do    func() error
		power int
	}{
		{"PowerOff", func() error { return d.PowerOff(ctx, a.ID) }, hostapi.PowerShutdown},
		{"PowerOff again", func() error { return d.PowerOff(ctx, a.ID) }, hostapi.PowerShutdown},
		{"PowerOn", func() error { return d.PowerOn(ctx, a.ID) }, hostapi.PowerRunning},
		{"PowerOn again", func() error { return d.PowerOn(ctx, a.ID) }, hostapi.PowerRunning},
		{"Pause", func() error { return d.Pause(ctx, a.ID) }, hostapi.PowerPaused},
		{"Pause again", func() error { return d.Pause(ctx, a.ID) }, hostapi.PowerPaused},
		{"Unpause", func() error { return d.Unpause(ctx, a.ID) }, hostapi.PowerRunning},
		{"Unpause again", func() error { return d.Unpause(ctx, a.ID) }, hostapi.PowerRunning},
		{"Suspend", func() error { return d.Suspend(ctx, a.ID) }, hostapi.PowerShutdown},
		{"Suspend again", func() error { return d.Suspend(ctx, a.ID) }, hostapi.PowerShutdown},
		{"Resume", func() error { return d.Resume(ctx, a.ID) }, hostapi.PowerRunning},
		{"Resume again", func() error { return d.Resume(ctx, a.ID) }, hostapi.PowerRunning},
		{"soft Reboot", func() error { return d.Reboot(ctx, a.ID, false) }, hostapi.PowerRunning},
		{"hard Reboot", func() error { return d.Reboot(ctx, a.ID, true) }, hostapi.PowerRunning},
		{"Pause before hard Reboot", func() error { return d.Pause(ctx, a.ID) }, hostapi.PowerPaused},
		{"hard Reboot of a paused server", func() error { return d.Reboot(ctx, a.ID, true) }, hostapi.PowerRunning},
		{"Suspend before PowerOff", func() error { return d.Suspend(ctx, a.ID) }, hostapi.PowerShutdown},
		{"PowerOff of a suspended server drops its memory", func() error { return d.PowerOff(ctx, a.ID) }, hostapi.PowerShutdown},
		{"Spawn starts a shut-off domain", func() error { return d.Spawn(ctx, a, images) }, hostapi.PowerRunning},
		{"Pause before PowerOff", func() error { return d.Pause(ctx, a.ID) }, hostapi.PowerPaused},
		{"PowerOff of a paused server", func() error { return d.PowerOff(ctx, a.ID) }, hostapi.PowerShutdown},
		{"PowerOn", func() error { return d.PowerOn(ctx, a.ID) }, hostapi.PowerRunning},
		{"ForceOff (fencing)", func() error { return d.ForceOff(ctx, a.ID) }, hostapi.PowerShutdown},
		{"ForceOff again", func() error { return d.ForceOff(ctx, a.ID) }, hostapi.PowerShutdown},
		{"PowerOn after ForceOff", func() error { return d.PowerOn(ctx, a.ID) }, hostapi.PowerRunning},
	}
	for _, s := range steps {
		if err := s.do(); err != nil {
			t.Fatalf("%s: %v", s.name, err)
		}
		wantPower(t, d, a.ID, s.power)
	}

	// Operations that make no sense in the current state say so.
	if err := d.Unpause(ctx, a.ID); err != nil {
		t.Fatalf("Unpause of a running server: %v", err)
	}
	if err := d.PowerOff(ctx, a.ID); err != nil {
		t.Fatal(err)
	}
	if err := d.Pause(ctx, a.ID); err == nil {
		t.Fatal("Pause of a shut-off server succeeded")
	}
	if err := d.Suspend(ctx, a.ID); err == nil {
		t.Fatal("Suspend of a shut-off server succeeded")
	}

	// The console log: nothing yet, then what virtlogd would have written.
	if out, err := d.ConsoleOutput(ctx, a.ID, 0); err != nil || out != "" {
		t.Fatalf("ConsoleOutput before any output = %q, %v", out, err)
	}
	if err := os.WriteFile(d.consolePath(a.ID), []byte("one\ntwo\nthree\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if out, err := d.ConsoleOutput(ctx, a.ID, 2); err != nil || out != "two\nthree\n" {
		t.Fatalf("ConsoleOutput(2) = %q, %v", out, err)
	}

	// Destroy removes everything, twice is fine, and then it is gone.
	for i := 0; i < 2; i++ {
		if err := d.Destroy(ctx, a.ID); err != nil {
			t.Fatalf("Destroy #%d: %v", i+1, err)
		}
	}
	if _, ok := findDomain(t, d, a.ID); ok {
		t.Fatal("destroyed server still listed")
	}
	if _, err := os.Stat(d.consolePath(a.ID)); !os.IsNotExist(err) {
		t.Fatalf("console log still there: %v", err)
	}
	conn, _ := d.client()
	pool, _ := d.pool(conn)
	if _, err := conn.StorageVolLookupByName(pool, overlayName(a.ID)); err == nil {
		t.Fatal("root disk volume still there")
	}
	for name, op := range map[string]func() error{
		"PowerOn":  func() error { return d.PowerOn(ctx, a.ID) },
		"PowerOff": func() error { return d.PowerOff(ctx, a.ID) },
		"Reboot":   func() error { return d.Reboot(ctx, a.ID, false) },
		"Pause":    func() error { return d.Pause(ctx, a.ID) },
		"Unpause":  func() error { return d.Unpause(ctx, a.ID) },
		"Suspend":  func() error { return d.Suspend(ctx, a.ID) },
		"Resume":   func() error { return d.Resume(ctx, a.ID) },
		"Console":  func() error { _, err := d.ConsoleOutput(ctx, a.ID, 0); return err },
	} {
		if err := op(); !errors.Is(err, driver.ErrNotFound) {
			t.Errorf("%s after Destroy: %v, want ErrNotFound", name, err)
		}
	}
	// The image stays cached for the next server.
	if _, err := os.Stat(cached); err != nil {
		t.Fatalf("cached image gone: %v", err)
	}
}

func TestTestDriverSpawnRefusesBadImages(t *testing.T) {
	requireLibvirtd(t)
	ctx := context.Background()
	d := newTestDriver(t, Config{URI: testURI, StateDir: t.TempDir()})
	raw := testimage.Raw()

	tests := []struct {
		name    string
		edit    func(a *hostapi.Assignment)
		wantErr string
	}{
		{"wrong sha256", func(a *hostapi.Assignment) { a.ImageSHA256 = strings.Repeat("0", 64) }, "sha256"},
		{"wrong size", func(a *hostapi.Assignment) { a.ImageSize++ }, "bytes"},
		{"unsupported format", func(a *hostapi.Assignment) { a.ImageFormat = "vmdk" }, "disk_format"},
		{"image larger than the root disk", func(a *hostapi.Assignment) { a.RootGB = 0; a.ImageSize = 0; a.ImageSHA256 = "" }, ""},
		{"missing image", func(a *hostapi.Assignment) { a.ImageID = ids.UUID() }, "no such image"},
		{"bad server id", func(a *hostapi.Assignment) { a.ID = "../../etc" }, "not a UUID"},
		{"bad image id", func(a *hostapi.Assignment) { a.ImageID = "../x" }, "cannot name a file"},
		{"no memory", func(a *hostapi.Assignment) { a.MemoryMB = 0 }, "memory"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := testAssignment(raw)
			images := &memImages{images: map[string][]byte{a.ImageID: raw}}
			tt.edit(&a)
			err := d.Spawn(ctx, a, images)
			if tt.wantErr == "" {
				// RootGB 0 means "the image's size": this one boots.
				if err != nil {
					t.Fatalf("Spawn: %v", err)
				}
				if err := d.Destroy(ctx, a.ID); err != nil {
					t.Fatal(err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("Spawn: %v, want an error with %q", err, tt.wantErr)
			}
			if _, ok := findDomain(t, d, a.ID); ok {
				t.Fatal("a failed Spawn left a domain")
			}
		})
	}
	// No half-downloaded image is left under any name.
	entries, err := os.ReadDir(d.poolPath)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), ".") {
			t.Errorf("temporary file left in the pool: %s", e.Name())
		}
	}
}

// A qcow2 image is cached as qcow2 and its virtual size, not its file
// size, sizes the overlay.
func TestTestDriverQcow2Image(t *testing.T) {
	requireLibvirtd(t)
	ctx := context.Background()
	d := newTestDriver(t, Config{URI: testURI, StateDir: t.TempDir()})
	img := qcow2Header(3, 3<<30, 0, 0)
	a := testAssignment(img)
	a.ImageFormat = "" // detected from the header
	a.RootGB = 2       // smaller than the image's 3 GiB
	images := &memImages{images: map[string][]byte{a.ImageID: img}}
	if err := d.Spawn(ctx, a, images); err == nil || !strings.Contains(err.Error(), "larger than the flavor") {
		t.Fatalf("Spawn with a 2 GB root disk and a 3 GiB image: %v", err)
	}
	a.RootGB = 4
	if err := d.Spawn(ctx, a, images); err != nil {
		t.Fatalf("Spawn: %v", err)
	}
	t.Cleanup(func() { _ = d.Destroy(ctx, a.ID) })
	if _, err := os.Stat(filepath.Join(d.poolPath, imageFileName(a.ImageID, "qcow2"))); err != nil {
		t.Fatalf("qcow2 image not cached as qcow2: %v", err)
	}
	conn, _ := d.client()
	pool, _ := d.pool(conn)
	vol, err := conn.StorageVolLookupByName(pool, overlayName(a.ID))
	if err != nil {
		t.Fatal(err)
	}
	_, capacity, _, err := conn.StorageVolGetInfo(vol)
	if err != nil || capacity != 4<<30 {
		t.Fatalf("root disk capacity %d, %v; want 4 GiB", capacity, err)
	}
}

// Domains without Keel metadata are neither listed nor touched.
func TestTestDriverForeignDomain(t *testing.T) {
	requireLibvirtd(t)
	ctx := context.Background()
	d := newTestDriver(t, Config{URI: testURI, StateDir: t.TempDir()})
	conn, err := d.client()
	if err != nil {
		t.Fatal(err)
	}
	// test:///default starts with one domain, "test".
	dom, err := conn.DomainLookupByName("test")
	if err != nil {
		t.Fatalf("the test driver's own domain: %v", err)
	}
	id := formatUUID(dom.UUID)
	if _, ok := findDomain(t, d, id); ok {
		t.Fatal("a domain without Keel metadata is listed")
	}
	for name, op := range map[string]func() error{
		"Destroy":  func() error { return d.Destroy(ctx, id) },
		"PowerOff": func() error { return d.PowerOff(ctx, id) },
		"Spawn": func() error {
			a := testAssignment(nil)
			a.ID = id
			return d.Spawn(ctx, a, nil)
		},
	} {
		if err := op(); !errors.Is(err, ErrNotKeel) {
			t.Errorf("%s of a foreign domain: %v, want ErrNotKeel", name, err)
		}
	}
	if st, _, err := conn.DomainGetState(dom, 0); err != nil || st != 1 {
		t.Fatalf("the foreign domain's state is %d (%v), want it still running", st, err)
	}
}

func TestTestDriverCapacity(t *testing.T) {
	requireLibvirtd(t)
	ctx := context.Background()
	d := newTestDriver(t, Config{URI: testURI, StateDir: t.TempDir()})
	c, err := d.Capacity(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if c.VCPUs <= 0 || c.MemoryMB <= 0 || c.HypervisorType != "TEST" || c.HypervisorVersion <= 0 || c.Arch == "" || !strings.HasPrefix(c.CPUInfo, "{") {
		t.Fatalf("capacity = %+v", c)
	}
	d2 := newTestDriver(t, Config{URI: testURI, StateDir: t.TempDir(), VCPUs: 3, MemoryMB: 1000, DiskGB: 7})
	c2, err := d2.Capacity(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if c2.VCPUs != 3 || c2.MemoryMB != 1000 || c2.DiskGB != 7 {
		t.Fatalf("overrides ignored: %+v", c2)
	}
}

// Two agents sharing one libvirtd each see and touch only their own
// domains: one never destroys the other's servers as orphans.
func TestTestDriverOtherOwnersDomainsAreUntouched(t *testing.T) {
	requireLibvirtd(t)
	ctx := context.Background()
	mine := newTestDriver(t, Config{URI: testURI, StateDir: t.TempDir(), Owner: "host-a@1234"})
	theirs := newTestDriver(t, Config{URI: testURI, StateDir: t.TempDir(), Owner: "host-b@1234"})
	raw := testimage.Raw()
	a := testAssignment(raw)
	if err := mine.Spawn(ctx, a, &memImages{images: map[string][]byte{a.ImageID: raw}}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { mine.Destroy(ctx, a.ID) })
	if _, ok := findDomain(t, theirs, a.ID); ok {
		t.Fatal("another owner's domain is listed")
	}
	for name, op := range map[string]func() error{
		"Destroy":  func() error { return theirs.Destroy(ctx, a.ID) },
		"PowerOff": func() error { return theirs.PowerOff(ctx, a.ID) },
		"Spawn":    func() error { return theirs.Spawn(ctx, a, nil) },
	} {
		if err := op(); !errors.Is(err, ErrOtherOwner) {
			t.Errorf("%s of another owner's domain: %v, want ErrOtherOwner", name, err)
		}
	}
	wantPower(t, mine, a.ID, hostapi.PowerRunning)
}
