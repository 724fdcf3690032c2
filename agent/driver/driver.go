// Package driver is what keel-agent asks of a hypervisor. Implementations:
// driver/libvirt (digitalocean/go-libvirt, RPC to libvirtd) and driver/fake
// (in memory, for tests and scale runs).
//
// Every method is idempotent and keyed by the server id, which is the
// domain's UUID: calling Spawn twice never makes a second domain, Destroy of
// a missing domain succeeds. The agent may be killed between any two calls
// and must converge after a restart from List alone, so a driver keeps
// everything the agent needs to know in the hypervisor (libvirt: the domain
// XML's Keel metadata), never only in the agent's memory.
package driver

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"

	"github.com/keel-cloud/keel/internal/hostapi"
)

// ErrNotFound: no domain of that server on this host.
var ErrNotFound = errors.New("driver: no such domain")

// Capacity is what the host offers, read from the hypervisor.
type Capacity struct {
	VCPUs             int
	MemoryMB          int
	DiskGB            int
	HypervisorType    string // "QEMU", "KVM", "fake"
	HypervisorVersion int    // major*1e6 + minor*1e3 + release
	CPUInfo           string // JSON text
	Arch              string // "x86_64"
}

// Domain is a server as the hypervisor sees it.
type Domain struct {
	ServerID   string
	Generation uint64 // from the domain's Keel metadata
	PowerState int    // hostapi.Power*
}

// Image gives a driver the bytes of an image it has not cached yet. The
// driver checks the sha256 (when the assignment has one) before using it.
type Image interface {
	Open(ctx context.Context, imageID string) (io.ReadCloser, error)
}

// Driver runs servers on one host.
type Driver interface {
	// Capacity reports the host's resources.
	Capacity(ctx context.Context) (Capacity, error)
	// List returns the domains of Keel servers on this host (domains
	// without Keel metadata are not Keel's and are never touched).
	List(ctx context.Context) ([]Domain, error)
	// Spawn creates the server's disk (an overlay on the cached image),
	// defines its domain with the assignment's generation in the metadata,
	// and starts it. If the domain exists it is started if not running and
	// its generation updated; it is never defined twice.
	Spawn(ctx context.Context, a hostapi.Assignment, img Image) error
	// PowerOff shuts the domain down (gracefully for a bounded time, then
	// forcibly); PowerOn starts a shut-off domain.
	PowerOff(ctx context.Context, id string) error
	PowerOn(ctx context.Context, id string) error
	// Reboot restarts the guest: soft asks the guest (falling back to hard
	// after a bounded time), hard resets it.
	Reboot(ctx context.Context, id string, hard bool) error
	Pause(ctx context.Context, id string) error
	Unpause(ctx context.Context, id string) error
	// Suspend saves the guest's memory to disk and stops it (libvirt's
	// managed save); Resume restores it.
	Suspend(ctx context.Context, id string) error
	Resume(ctx context.Context, id string) error
	// Destroy stops the domain, undefines it and removes its disks and
	// console log. Succeeds if nothing is left.
	Destroy(ctx context.Context, id string) error
	// ConsoleOutput returns the last n lines of the serial console log (all
	// if n <= 0).
	ConsoleOutput(ctx context.Context, id string, n int) (string, error)
	// Close releases the connection to the hypervisor.
	Close() error
}

// ForceOffer is implemented by a driver that can stop a domain at once,
// without asking the guest, keeping its definition and disks (libvirt's
// virDomainDestroy: pulling the plug). A stopped domain stays listed, shut
// off, and PowerOn starts it again. The agent uses it when it fences its
// host; with a driver that lacks it, fencing falls back to PowerOff, which
// may first wait for the guest to shut down.
type ForceOffer interface {
	ForceOff(ctx context.Context, id string) error
}

// Owner is the name under which an agent marks the domains it creates:
// its host name and a fingerprint of its cluster key. Several agents (or
// clusters, in tests) may share one hypervisor; each touches only its own.
func Owner(host string, clusterKey []byte) string {
	sum := sha256.Sum256(append([]byte("keel domain owner\x00"), clusterKey...))
	return host + "@" + hex.EncodeToString(sum[:6])
}
