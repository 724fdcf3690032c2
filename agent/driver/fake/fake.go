// Package fake is an in-memory driver.Driver for tests and scale runs: it
// keeps domains in a map, reports power states the way Nova's libvirt
// driver reads them from libvirt, writes a console line per boot, and lets
// a test slow down or fail any operation.
//
// Like a hypervisor, it keeps its domains across agent restarts as long as
// the same *Driver is handed to the new agent; it forgets them when the
// process ends.
package fake

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/keel-cloud/keel/agent/driver"
	"github.com/keel-cloud/keel/internal/hostapi"
)

// Operation names, for Config.Fail, Config.Delays and Driver.Calls.
const (
	OpSpawn      = "spawn"
	OpPowerOff   = "power-off"
	OpPowerOn    = "power-on"
	OpForceOff   = "force-off"
	OpReboot     = "reboot" // soft
	OpRebootHard = "reboot-hard"
	OpPause      = "pause"
	OpUnpause    = "unpause"
	OpSuspend    = "suspend"
	OpResume     = "resume"
	OpDestroy    = "destroy"
	OpList       = "list"
	OpConsole    = "console"
)

// ErrNotRunning is returned for an operation that needs a running (or
// paused) guest, as libvirt's "domain is not running".
var ErrNotRunning = errors.New("fake: domain is not running")

// ErrClosed is returned by every call after Close.
var ErrClosed = errors.New("fake: driver closed")

// Config sets up a fake host.
type Config struct {
	// Capacity is what Capacity reports; zero fields take the defaults
	// (DefaultCapacity).
	Capacity driver.Capacity
	// Delays holds how long each operation (Op* name) takes; a cancelled
	// context cuts the wait short and the operation fails.
	Delays map[string]time.Duration
	// FailSpawn, when set, is asked before each Spawn; a non-nil error
	// fails the spawn without defining anything.
	FailSpawn func(a hostapi.Assignment) error
	// Fail, when set, is asked before every operation on a server (op is
	// an Op* name); a non-nil error fails it without a change.
	Fail func(op, serverID string) error
	// FetchImages makes Spawn read the image through the agent's
	// driver.Image (once per image id, as a real host caches it) and check
	// its sha256, so tests exercise the image download path.
	FetchImages bool
	// StateFile, when set, keeps the domains in this JSON file, written
	// after every change (write then rename) and read by Load: a killed
	// and restarted agent finds its domains, as libvirt's outlive an
	// agent. Tests read it as the host's own view of what runs.
	StateFile string
}

// DefaultCapacity is what a fake host offers unless configured otherwise.
func DefaultCapacity() driver.Capacity {
	return driver.Capacity{
		VCPUs:             32,
		MemoryMB:          128 * 1024,
		DiskGB:            2000,
		HypervisorType:    "fake",
		HypervisorVersion: 1_000_000,
		CPUInfo:           `{"arch": "x86_64", "model": "fake", "vendor": "Keel", "topology": {"sockets": 1, "cores": 32, "threads": 1}}`,
		Arch:              "x86_64",
	}
}

// Domain is the state of one fake domain.
type Domain struct {
	ServerID   string `json:"server_id"`
	Name       string `json:"name"`
	Hostname   string `json:"hostname"`
	Generation uint64 `json:"generation"`
	PowerState int    `json:"power_state"`
	// ManagedSave: the guest's memory was saved by Suspend; the next start
	// restores it instead of booting.
	ManagedSave bool     `json:"managed_save,omitempty"`
	Boots       int      `json:"boots"`
	Console     []string `json:"console,omitempty"`
}

// Driver is an in-memory driver.Driver, safe for concurrent use.
type Driver struct {
	cfg Config

	mu        sync.Mutex
	domains   map[string]*Domain
	images    map[string]int64 // image id → bytes read
	calls     map[string]int
	defined   int
	destroyed int
	closed    bool
}

var _ driver.Driver = (*Driver)(nil)

// New returns an empty fake host.
func New(cfg Config) *Driver {
	def := DefaultCapacity()
	c := &cfg.Capacity
	if c.VCPUs == 0 {
		c.VCPUs = def.VCPUs
	}
	if c.MemoryMB == 0 {
		c.MemoryMB = def.MemoryMB
	}
	if c.DiskGB == 0 {
		c.DiskGB = def.DiskGB
	}
	if c.HypervisorType == "" {
		c.HypervisorType = def.HypervisorType
	}
	if c.HypervisorVersion == 0 {
		c.HypervisorVersion = def.HypervisorVersion
	}
	if c.CPUInfo == "" {
		c.CPUInfo = def.CPUInfo
	}
	if c.Arch == "" {
		c.Arch = def.Arch
	}
	cfg.Delays = maps.Clone(cfg.Delays)
	return &Driver{cfg: cfg, domains: map[string]*Domain{}, images: map[string]int64{}, calls: map[string]int{}}
}

// Load is New, with the domains read from cfg.StateFile if it exists.
func Load(cfg Config) (*Driver, error) {
	d := New(cfg)
	if cfg.StateFile == "" {
		return d, nil
	}
	b, err := os.ReadFile(cfg.StateFile)
	if errors.Is(err, os.ErrNotExist) {
		return d, nil
	} else if err != nil {
		return nil, fmt.Errorf("fake driver: read its state: %w", err)
	}
	var doms []*Domain
	if err := json.Unmarshal(b, &doms); err != nil {
		return nil, fmt.Errorf("fake driver: %s is not a fake driver's state (%v): move it away to start empty", cfg.StateFile, err)
	}
	for _, dom := range doms {
		d.domains[dom.ServerID] = dom
	}
	return d, nil
}

// saveLocked writes the domains to the state file, if there is one. The
// caller holds d.mu.
func (d *Driver) saveLocked() error {
	if d.cfg.StateFile == "" {
		return nil
	}
	doms := make([]*Domain, 0, len(d.domains))
	for _, dom := range d.domains {
		doms = append(doms, dom)
	}
	slices.SortFunc(doms, func(a, b *Domain) int { return strings.Compare(a.ServerID, b.ServerID) })
	b, err := json.Marshal(doms)
	if err != nil {
		return err
	}
	tmp := d.cfg.StateFile + ".tmp"
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		return fmt.Errorf("fake driver: save its state: %w", err)
	}
	if err := os.Rename(tmp, d.cfg.StateFile); err != nil {
		return fmt.Errorf("fake driver: save its state: %w", err)
	}
	return nil
}

// SetFail replaces the failure hook (nil: nothing fails).
func (d *Driver) SetFail(fn func(op, serverID string) error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.cfg.Fail = fn
}

// SetFailSpawn replaces the spawn failure hook (nil: spawns succeed).
func (d *Driver) SetFailSpawn(fn func(a hostapi.Assignment) error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.cfg.FailSpawn = fn
}

// SetCapacity changes what Capacity reports (memory added to the host).
func (d *Driver) SetCapacity(c driver.Capacity) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.cfg.Capacity = c
}

// SetDelay sets how long op takes from now on.
func (d *Driver) SetDelay(op string, delay time.Duration) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.cfg.Delays == nil {
		d.cfg.Delays = map[string]time.Duration{}
	}
	d.cfg.Delays[op] = delay
}

// begin counts the call, waits for the configured delay and asks the
// failure hook; the work itself is then done under d.mu by the caller.
func (d *Driver) begin(ctx context.Context, op, id string) error {
	d.mu.Lock()
	if d.closed {
		d.mu.Unlock()
		return ErrClosed
	}
	d.calls[op]++
	delay, fail := d.cfg.Delays[op], d.cfg.Fail
	d.mu.Unlock()
	if delay > 0 {
		t := time.NewTimer(delay)
		select {
		case <-ctx.Done():
			t.Stop()
			return fmt.Errorf("fake %s of %s: %w", op, id, ctx.Err())
		case <-t.C:
		}
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("fake %s of %s: %w", op, id, err)
	}
	if fail != nil {
		if err := fail(op, id); err != nil {
			return err
		}
	}
	return nil
}

// Capacity implements driver.Driver.
func (d *Driver) Capacity(ctx context.Context) (driver.Capacity, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		return driver.Capacity{}, ErrClosed
	}
	return d.cfg.Capacity, nil
}

// List implements driver.Driver.
func (d *Driver) List(ctx context.Context) ([]driver.Domain, error) {
	if err := d.begin(ctx, OpList, ""); err != nil {
		return nil, err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	out := make([]driver.Domain, 0, len(d.domains))
	for _, id := range slices.Sorted(maps.Keys(d.domains)) {
		dom := d.domains[id]
		out = append(out, driver.Domain{ServerID: id, Generation: dom.Generation, PowerState: dom.PowerState})
	}
	return out, nil
}

// Spawn implements driver.Driver: it defines the domain once, then starts
// it if it is not running.
func (d *Driver) Spawn(ctx context.Context, a hostapi.Assignment, img driver.Image) error {
	if a.ID == "" {
		return errors.New("fake spawn: assignment without a server id")
	}
	if err := d.begin(ctx, OpSpawn, a.ID); err != nil {
		return err
	}
	d.mu.Lock()
	failSpawn := d.cfg.FailSpawn
	d.mu.Unlock()
	if failSpawn != nil {
		if err := failSpawn(a); err != nil {
			return err
		}
	}
	if d.cfg.FetchImages && a.ImageID != "" {
		if err := d.fetchImage(ctx, a, img); err != nil {
			return err
		}
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		return ErrClosed
	}
	dom, ok := d.domains[a.ID]
	if !ok {
		dom = &Domain{ServerID: a.ID, PowerState: hostapi.PowerShutdown}
		d.domains[a.ID] = dom
		d.defined++
	}
	dom.Name, dom.Hostname, dom.Generation = a.Name, a.Hostname, a.Generation
	if dom.PowerState != hostapi.PowerRunning && dom.PowerState != hostapi.PowerPaused {
		dom.start()
	}
	return d.saveLocked()
}

// fetchImage reads an image the host has not cached yet and checks it.
func (d *Driver) fetchImage(ctx context.Context, a hostapi.Assignment, img driver.Image) error {
	d.mu.Lock()
	_, cached := d.images[a.ImageID]
	d.mu.Unlock()
	if cached {
		return nil
	}
	if img == nil {
		return fmt.Errorf("fake spawn of %s: image %s is not cached and no image source was given", a.ID, a.ImageID)
	}
	rc, err := img.Open(ctx, a.ImageID)
	if err != nil {
		return fmt.Errorf("fake spawn of %s: fetch image %s: %w", a.ID, a.ImageID, err)
	}
	defer rc.Close()
	h := sha256.New()
	n, err := io.Copy(h, rc)
	if err != nil {
		return fmt.Errorf("fake spawn of %s: read image %s: %w", a.ID, a.ImageID, err)
	}
	if sum := hex.EncodeToString(h.Sum(nil)); a.ImageSHA256 != "" && !strings.EqualFold(sum, a.ImageSHA256) {
		return fmt.Errorf("fake spawn of %s: image %s has sha256 %s, want %s", a.ID, a.ImageID, sum, a.ImageSHA256)
	}
	d.mu.Lock()
	d.images[a.ImageID] = n
	d.mu.Unlock()
	return nil
}

// start boots the guest, or restores it from its managed save.
func (dom *Domain) start() {
	dom.PowerState = hostapi.PowerRunning
	if dom.ManagedSave {
		dom.ManagedSave = false
		dom.Console = append(dom.Console, fmt.Sprintf("keel-fake: %s resumed from saved memory", dom.ServerID))
		return
	}
	dom.Boots++
	host := dom.Hostname
	if host == "" {
		host = "server"
	}
	// A few lines per boot, as a real guest prints many: clients (Tempest
	// among them) check that an unbounded console read returns more than
	// a bounded one.
	dom.Console = append(dom.Console,
		fmt.Sprintf("keel-fake: boot %d of server %s (generation %d)", dom.Boots, dom.ServerID, dom.Generation),
		"keel-fake: hostname "+host,
		"keel-fake: guest services started",
		host+" login: ")
}

// change runs fn on the server's domain under the lock, after the delay
// and failure hook of op.
func (d *Driver) change(ctx context.Context, op, id string, fn func(dom *Domain) error) error {
	if err := d.begin(ctx, op, id); err != nil {
		return err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		return ErrClosed
	}
	dom, ok := d.domains[id]
	if !ok {
		return fmt.Errorf("fake %s of %s: %w", op, id, driver.ErrNotFound)
	}
	if err := fn(dom); err != nil {
		return err
	}
	return d.saveLocked()
}

// PowerOff implements driver.Driver. A domain with a managed save keeps it
// (libvirt's destroy does not discard it).
func (d *Driver) PowerOff(ctx context.Context, id string) error {
	return d.change(ctx, OpPowerOff, id, func(dom *Domain) error {
		dom.PowerState = hostapi.PowerShutdown
		return nil
	})
}

var _ driver.ForceOffer = (*Driver)(nil)

// ForceOff implements driver.ForceOffer: an active (running or paused)
// domain is shut off at once; a managed save is kept.
func (d *Driver) ForceOff(ctx context.Context, id string) error {
	return d.change(ctx, OpForceOff, id, func(dom *Domain) error {
		if dom.PowerState == hostapi.PowerRunning || dom.PowerState == hostapi.PowerPaused {
			dom.PowerState = hostapi.PowerShutdown
		}
		return nil
	})
}

// PowerOn implements driver.Driver.
func (d *Driver) PowerOn(ctx context.Context, id string) error {
	return d.change(ctx, OpPowerOn, id, func(dom *Domain) error {
		switch dom.PowerState {
		case hostapi.PowerRunning:
		case hostapi.PowerPaused:
			dom.PowerState = hostapi.PowerRunning
		default:
			dom.start()
		}
		return nil
	})
}

// Reboot implements driver.Driver: a soft reboot needs a running guest; a
// hard one also starts a stopped domain (as Nova's hard reboot does).
func (d *Driver) Reboot(ctx context.Context, id string, hard bool) error {
	op := OpReboot
	if hard {
		op = OpRebootHard
	}
	return d.change(ctx, op, id, func(dom *Domain) error {
		if !hard && dom.PowerState != hostapi.PowerRunning {
			return fmt.Errorf("fake soft reboot of %s: %w", id, ErrNotRunning)
		}
		dom.ManagedSave = false
		dom.start()
		return nil
	})
}

// Pause implements driver.Driver.
func (d *Driver) Pause(ctx context.Context, id string) error {
	return d.change(ctx, OpPause, id, func(dom *Domain) error {
		switch dom.PowerState {
		case hostapi.PowerRunning, hostapi.PowerPaused:
			dom.PowerState = hostapi.PowerPaused
			return nil
		}
		return fmt.Errorf("fake pause of %s: %w", id, ErrNotRunning)
	})
}

// Unpause implements driver.Driver.
func (d *Driver) Unpause(ctx context.Context, id string) error {
	return d.change(ctx, OpUnpause, id, func(dom *Domain) error {
		switch dom.PowerState {
		case hostapi.PowerRunning, hostapi.PowerPaused:
			dom.PowerState = hostapi.PowerRunning
			return nil
		}
		return fmt.Errorf("fake unpause of %s: %w", id, ErrNotRunning)
	})
}

// Suspend implements driver.Driver. After a managed save libvirt reports
// the domain shut off, which Nova's libvirt driver shows as power state 4
// (SHUTDOWN), so that is what List reports.
func (d *Driver) Suspend(ctx context.Context, id string) error {
	return d.change(ctx, OpSuspend, id, func(dom *Domain) error {
		switch {
		case dom.ManagedSave:
			return nil
		case dom.PowerState == hostapi.PowerRunning, dom.PowerState == hostapi.PowerPaused:
			dom.PowerState, dom.ManagedSave = hostapi.PowerShutdown, true
			return nil
		}
		return fmt.Errorf("fake suspend of %s: %w", id, ErrNotRunning)
	})
}

// Resume implements driver.Driver.
func (d *Driver) Resume(ctx context.Context, id string) error {
	return d.change(ctx, OpResume, id, func(dom *Domain) error {
		if dom.PowerState != hostapi.PowerRunning {
			dom.start()
		}
		return nil
	})
}

// Destroy implements driver.Driver; a missing domain is not an error.
func (d *Driver) Destroy(ctx context.Context, id string) error {
	if err := d.begin(ctx, OpDestroy, id); err != nil {
		return err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		return ErrClosed
	}
	if _, ok := d.domains[id]; ok {
		delete(d.domains, id)
		d.destroyed++
	}
	return d.saveLocked()
}

// ConsoleOutput implements driver.Driver.
func (d *Driver) ConsoleOutput(ctx context.Context, id string, n int) (string, error) {
	if err := d.begin(ctx, OpConsole, id); err != nil {
		return "", err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	dom, ok := d.domains[id]
	if !ok {
		return "", fmt.Errorf("fake console of %s: %w", id, driver.ErrNotFound)
	}
	lines := dom.Console
	if n > 0 && n < len(lines) {
		lines = lines[len(lines)-n:]
	}
	if len(lines) == 0 {
		return "", nil
	}
	return strings.Join(lines, "\n") + "\n", nil
}

// Close implements driver.Driver. The domains stay (a hypervisor keeps
// running its guests when the agent disconnects), but this Driver refuses
// further calls.
func (d *Driver) Close() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.closed = true
	return nil
}

// SetPowerState changes a domain's power state behind the agent's back, as
// a guest that shuts itself down or crashes does. It reports whether the
// domain exists.
func (d *Driver) SetPowerState(id string, state int) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	dom, ok := d.domains[id]
	if ok {
		dom.PowerState = state
		d.saveLocked() // best effort: a test hook
	}
	return ok
}

// Domain returns a copy of a domain's state.
func (d *Driver) Domain(id string) (Domain, bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	dom, ok := d.domains[id]
	if !ok {
		return Domain{}, false
	}
	c := *dom
	c.Console = slices.Clone(dom.Console)
	return c, true
}

// Count is the number of domains defined now.
func (d *Driver) Count() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return len(d.domains)
}

// Defined is the number of domains ever defined (a Spawn that found its
// domain already there does not count).
func (d *Driver) Defined() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.defined
}

// Destroyed is the number of domains ever removed by Destroy.
func (d *Driver) Destroyed() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.destroyed
}

// Calls is how many times op was called (including failed calls).
func (d *Driver) Calls(op string) int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.calls[op]
}

// ImagesFetched is how many images Spawn downloaded (FetchImages).
func (d *Driver) ImagesFetched() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return len(d.images)
}
