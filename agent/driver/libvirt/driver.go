// Package libvirt is keel-agent's driver for hosts that run QEMU/KVM under
// libvirtd. It talks libvirt's RPC protocol over the daemon's unix socket
// (github.com/digitalocean/go-libvirt: pure Go, no cgo), so the agent stays
// a static binary.
//
// What the driver keeps, and where (the agent keeps nothing of its own):
//
//   - a domain per server, named "keel-<server id>" with the server id as
//     its UUID, carrying Keel's metadata (<keel:server generation=... />,
//     namespace MetadataNS): List rebuilds the agent's view from libvirt
//     alone, and domains without that metadata are never touched;
//   - a libvirt storage pool of type dir (Config.PoolName, under
//     Config.StateDir by default) holding the cached images
//     ("image-<image id>.<format>", downloaded once per host, verified by
//     sha256) and one qcow2 overlay per server ("<server id>.qcow2") backed
//     by its image;
//   - the serial console log of each server, <StateDir>/console/<id>.log,
//     written by virtlogd and read by ConsoleOutput.
//
// Every method is idempotent and safe to call again after the agent died
// half-way through it. Calls on one server are serialised inside the
// driver; calls on different servers run in parallel.
package libvirt

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"sync"
	"time"

	golibvirt "github.com/digitalocean/go-libvirt"
	"libvirt.org/go/libvirtxml"

	"github.com/keel-cloud/keel/agent/driver"
)

// Defaults of Config.
const (
	DefaultURI             = "qemu:///system"
	DefaultStateDir        = "/var/lib/keel/libvirt"
	DefaultPoolName        = "keel"
	DefaultShutdownTimeout = 60 * time.Second
)

// Config says how to reach libvirtd and where the driver keeps its files.
type Config struct {
	// Owner names the agent this driver acts for, written into every
	// domain's metadata: "<host>@<cluster key fingerprint>" (see
	// OwnerOf). Domains of another owner on the same libvirtd (another
	// agent, another cluster) are never listed or touched.
	Owner string
	// URI of the libvirt connection: qemu:///system (default), or
	// test:///default (libvirt's in-memory test driver, for tests). The
	// driver reaches libvirtd over its unix socket; "?socket=" in the URI
	// picks another one.
	URI string
	// StateDir holds the storage pool (StateDir/pool, unless a pool named
	// PoolName already exists elsewhere) and the console logs
	// (StateDir/console). QEMU runs as another user under qemu:///system
	// (Debian: libvirt-qemu), so every directory above the pool must be
	// searchable by others (mode o+x). Default DefaultStateDir.
	StateDir string
	// PoolName is the libvirt storage pool of images and disks, created
	// (type dir, autostarted) when missing. Default DefaultPoolName.
	PoolName string
	// ShutdownTimeout bounds how long PowerOff and a soft Reboot wait for
	// the guest to shut down by itself before the domain is destroyed.
	// Default DefaultShutdownTimeout.
	ShutdownTimeout time.Duration
	// VirtType forces the domain type ("kvm" or "qemu"); empty picks kvm
	// when libvirt offers it, else qemu (TCG), else what the connection
	// offers (test:///default: "test").
	VirtType string
	// VCPUs, MemoryMB and DiskGB, when > 0, replace what Capacity reads
	// from libvirt (an operator reserving resources for the host itself).
	VCPUs    int
	MemoryMB int
	DiskGB   int
	// Logger receives the driver's logs; default slog.Default().
	Logger *slog.Logger
}

// Driver is a driver.Driver backed by libvirtd.
type Driver struct {
	cfg      Config
	log      *slog.Logger
	virtType string // domain type attribute: kvm, qemu or test
	arch     string // guest architecture: x86_64 (i686 on the test driver)

	poolPath   string // target directory of the storage pool
	consoleDir string

	connMu sync.Mutex
	conn   *golibvirt.Libvirt

	locks keyedMutex // per server id and per image id
}

var _ driver.Driver = (*Driver)(nil)

// New connects to libvirtd, makes sure the storage pool exists and runs,
// and picks the domain type. It fails when libvirtd is unreachable: run
// scripts/install-libvirt.sh on the host.
func New(ctx context.Context, cfg Config) (*Driver, error) {
	if cfg.URI == "" {
		cfg.URI = DefaultURI
	}
	if cfg.StateDir == "" {
		cfg.StateDir = DefaultStateDir
	}
	if cfg.PoolName == "" {
		cfg.PoolName = DefaultPoolName
	}
	if cfg.ShutdownTimeout <= 0 {
		cfg.ShutdownTimeout = DefaultShutdownTimeout
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	switch cfg.VirtType {
	case "", "kvm", "qemu":
	default:
		return nil, fmt.Errorf("libvirt driver: VirtType %q: want kvm, qemu or empty", cfg.VirtType)
	}
	stateDir, err := filepath.Abs(cfg.StateDir)
	if err != nil {
		return nil, fmt.Errorf("libvirt driver: state dir %q: %w", cfg.StateDir, err)
	}
	cfg.StateDir = stateDir
	d := &Driver{
		cfg:        cfg,
		log:        cfg.Logger.With("driver", "libvirt", "uri", cfg.URI),
		consoleDir: filepath.Join(stateDir, "console"),
	}
	for _, dir := range []string{stateDir, d.consoleDir} {
		// 0755: QEMU (another user) reaches the pool under the state dir.
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return nil, fmt.Errorf("libvirt driver: create %s: %w", dir, err)
		}
	}
	conn, err := d.client()
	if err != nil {
		return nil, err
	}
	if err := d.pickDomainType(conn); err != nil {
		_ = d.Close()
		return nil, err
	}
	if err := d.ensurePool(ctx, conn); err != nil {
		_ = d.Close()
		return nil, err
	}
	d.warnIfUnreachable(d.poolPath)
	d.log.Info("libvirt driver ready", "virt_type", d.virtType, "arch", d.arch,
		"pool", cfg.PoolName, "pool_path", d.poolPath, "state_dir", stateDir)
	return d, nil
}

// client returns the connection to libvirtd, dialling it again when it was
// lost (libvirtd restarted): the agent outlives daemon restarts.
func (d *Driver) client() (*golibvirt.Libvirt, error) {
	d.connMu.Lock()
	defer d.connMu.Unlock()
	if d.conn != nil && d.conn.IsConnected() {
		return d.conn, nil
	}
	u, err := url.Parse(d.cfg.URI)
	if err != nil {
		return nil, fmt.Errorf("libvirt driver: bad URI %q: %w", d.cfg.URI, err)
	}
	conn, err := golibvirt.ConnectToURI(u)
	if err != nil {
		return nil, fmt.Errorf("libvirt driver: connect to libvirtd (%s): %w; is libvirtd running? (scripts/install-libvirt.sh starts it)", d.cfg.URI, err)
	}
	if d.conn != nil {
		d.log.Info("reconnected to libvirtd")
	}
	d.conn = conn
	return conn, nil
}

// Close releases the connection to libvirtd. Domains keep running.
func (d *Driver) Close() error {
	d.connMu.Lock()
	defer d.connMu.Unlock()
	if d.conn == nil || !d.conn.IsConnected() {
		return nil
	}
	err := d.conn.Disconnect()
	d.conn = nil
	if err != nil {
		return fmt.Errorf("libvirt driver: disconnect: %w", err)
	}
	return nil
}

// VirtType is the domain type the driver defines domains with: "kvm",
// "qemu" (TCG emulation) or "test".
func (d *Driver) VirtType() string { return d.virtType }

// pickDomainType reads the connection's capabilities: the guest
// architecture (x86_64 preferred) and the domain type (see Config.VirtType).
func (d *Driver) pickDomainType(conn *golibvirt.Libvirt) error {
	capsXML, err := conn.ConnectGetCapabilities()
	if err != nil {
		return fmt.Errorf("libvirt driver: read capabilities: %w", err)
	}
	var caps libvirtxml.Caps
	if err := caps.Unmarshal(capsXML); err != nil {
		return fmt.Errorf("libvirt driver: parse capabilities: %w", err)
	}
	arch, virtType, err := chooseGuest(caps, d.cfg.VirtType)
	if err != nil {
		return fmt.Errorf("libvirt driver: %w", err)
	}
	d.arch, d.virtType = arch, virtType
	return nil
}

// chooseGuest picks the guest architecture and domain type from the
// capabilities: an hvm guest, x86_64 if offered; kvm over qemu over
// anything else, unless want names one.
func chooseGuest(caps libvirtxml.Caps, want string) (arch, virtType string, err error) {
	var guest *libvirtxml.CapsGuest
	for i := range caps.Guests {
		g := &caps.Guests[i]
		if g.OSType != "hvm" {
			continue
		}
		if guest == nil || g.Arch.Name == "x86_64" && guest.Arch.Name != "x86_64" {
			guest = g
		}
	}
	if guest == nil {
		return "", "", errors.New("libvirt offers no hvm guest: is qemu-system-x86 installed?")
	}
	types := map[string]bool{}
	for _, dom := range guest.Arch.Domains {
		types[dom.Type] = true
	}
	switch {
	case want != "":
		if !types[want] {
			return "", "", fmt.Errorf("domain type %q is not offered by libvirt for %s (offered: %v)", want, guest.Arch.Name, guest.Arch.Domains)
		}
		virtType = want
	case types["kvm"]:
		virtType = "kvm"
	case types["qemu"]:
		virtType = "qemu"
	case len(guest.Arch.Domains) > 0:
		virtType = guest.Arch.Domains[0].Type
	default:
		return "", "", fmt.Errorf("libvirt offers no domain type for %s guests", guest.Arch.Name)
	}
	return guest.Arch.Name, virtType, nil
}

// warnIfUnreachable logs when a directory above dir is not searchable by
// other users: QEMU, running as its own user, could not open the disks.
func (d *Driver) warnIfUnreachable(dir string) {
	if d.virtType == "test" {
		return
	}
	for p := dir; ; p = filepath.Dir(p) {
		if fi, err := os.Stat(p); err == nil && fi.Mode().Perm()&0o001 == 0 {
			d.log.Warn("QEMU may not reach the storage pool: a directory above it is not searchable by other users; chmod o+x it",
				"dir", p, "mode", fi.Mode().Perm().String())
			return
		}
		if p == filepath.Dir(p) {
			return
		}
	}
}

// keyedMutex serialises work per key (a server id, an image id).
type keyedMutex struct {
	mu    sync.Mutex
	locks map[string]*keyedEntry
}

type keyedEntry struct {
	mu   sync.Mutex
	refs int
}

// lock takes the key's lock and returns its release.
func (k *keyedMutex) lock(key string) (unlock func()) {
	k.mu.Lock()
	if k.locks == nil {
		k.locks = map[string]*keyedEntry{}
	}
	e := k.locks[key]
	if e == nil {
		e = &keyedEntry{}
		k.locks[key] = e
	}
	e.refs++
	k.mu.Unlock()
	e.mu.Lock()
	return func() {
		e.mu.Unlock()
		k.mu.Lock()
		if e.refs--; e.refs == 0 {
			delete(k.locks, key)
		}
		k.mu.Unlock()
	}
}
