package libvirt

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"log/slog"
	"net"
	"os"
	"sync/atomic"
	"testing"
	"time"

	"github.com/keel-cloud/keel/agent/driver"
	"github.com/keel-cloud/keel/internal/ids"
)

// libvirtSocket is where libvirtd listens (go-libvirt's default).
const libvirtSocket = "/var/run/libvirt/libvirt-sock"

// requireLibvirtd skips the test when libvirtd is not reachable, or fails
// it when KEEL_REQUIRE_LIBVIRT=1 (CI, after scripts/install-libvirt.sh).
func requireLibvirtd(t *testing.T) {
	t.Helper()
	c, err := net.DialTimeout("unix", libvirtSocket, time.Second)
	if err == nil {
		c.Close()
		return
	}
	msg := "libvirtd is not reachable at " + libvirtSocket + " (" + err.Error() + "); run scripts/install-libvirt.sh"
	if os.Getenv("KEEL_REQUIRE_LIBVIRT") == "1" {
		t.Fatal(msg)
	}
	t.Skip(msg)
}

// newTestDriver connects a driver with its own storage pool, removed (with
// every volume in it) when the test ends.
func newTestDriver(t *testing.T, cfg Config) *Driver {
	t.Helper()
	if cfg.PoolName == "" {
		cfg.PoolName = "keel-test-" + ids.Hex()[:12]
	}
	if cfg.ShutdownTimeout == 0 {
		cfg.ShutdownTimeout = 2 * time.Second
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	d, err := New(context.Background(), cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() {
		removePool(t, d)
		if err := d.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return d
}

// removePool deletes the test's storage pool and its volumes.
func removePool(t *testing.T, d *Driver) {
	conn, err := d.client()
	if err != nil {
		t.Logf("remove pool: %v", err)
		return
	}
	pool, err := conn.StoragePoolLookupByName(d.cfg.PoolName)
	if err != nil {
		return
	}
	vols, _, _ := conn.StoragePoolListAllVolumes(pool, 1, 0)
	for _, v := range vols {
		_ = conn.StorageVolDelete(v, 0)
	}
	_ = conn.StoragePoolDestroy(pool)
	if err := conn.StoragePoolUndefine(pool); err != nil {
		t.Logf("undefine pool %s: %v", d.cfg.PoolName, err)
	}
}

// testWriter sends the driver's logs to the test log.
type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Helper()
	w.t.Log(string(bytes.TrimRight(p, "\n")))
	return len(p), nil
}

// memImages is a driver.Image serving images from memory, counting opens.
type memImages struct {
	images map[string][]byte
	opens  atomic.Int32
}

func (m *memImages) Open(ctx context.Context, id string) (io.ReadCloser, error) {
	m.opens.Add(1)
	b, ok := m.images[id]
	if !ok {
		return nil, errors.New("no such image")
	}
	return io.NopCloser(bytes.NewReader(b)), nil
}

var _ driver.Image = (*memImages)(nil)

func sha256Hex(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// findDomain returns the server's entry in List.
func findDomain(t *testing.T, d driver.Driver, id string) (driver.Domain, bool) {
	t.Helper()
	doms, err := d.List(context.Background())
	if err != nil {
		t.Fatalf("List: %v", err)
	}
	n := 0
	var found driver.Domain
	for _, dom := range doms {
		if dom.ServerID == id {
			n++
			found = dom
		}
	}
	if n > 1 {
		t.Fatalf("List has %d domains for server %s", n, id)
	}
	return found, n == 1
}

// wantPower fails unless List shows the server with that power state.
func wantPower(t *testing.T, d driver.Driver, id string, power int) {
	t.Helper()
	dom, ok := findDomain(t, d, id)
	if !ok {
		t.Fatalf("server %s is not listed", id)
	}
	if dom.PowerState != power {
		t.Fatalf("server %s: power state %d, want %d", id, dom.PowerState, power)
	}
}
