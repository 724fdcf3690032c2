package agent

import (
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/keel-cloud/keel/agent/driver"
	"github.com/keel-cloud/keel/internal/gossip"
)

// Config configures one agent: one compute host. Many agents can run in one
// process (scale tests): nothing in this package is global.
type Config struct {
	// Name is the host's name: its service host, hypervisor hostname and
	// gossip node name. It must be unique in the cluster.
	Name string
	// Zone is the availability zone the host registers in ("nova" if empty).
	Zone string
	// Controllers are base URLs of the controllers' API
	// (http://10.0.0.1:8774); the agent fails over between them.
	Controllers []string
	// ClusterKey signs every internal call (32 bytes) and encrypts gossip.
	ClusterKey []byte

	// GossipAddr is the serf/memberlist address (host:port) to bind and
	// advertise; empty means no gossip (simulated hosts in scale runs).
	GossipAddr string
	// Join lists gossip addresses of controllers (or agents) to join.
	Join []string
	// Gossip tunes failure detection; the zero value means gossip.LAN(),
	// the controllers' timing.
	Gossip gossip.Timing

	// ListenAddr is where the agent serves its own internal API (console
	// output) for the controllers; empty means the caller serves Handler()
	// itself and sets AdvertiseAddr.
	ListenAddr string
	// AdvertiseAddr is the host:port controllers use to reach the agent's
	// API; default: the address ListenAddr bound.
	AdvertiseAddr string
	// HostIP is the host's IP for os-hypervisors; default: the host part of
	// AdvertiseAddr, or the local address used to reach the controllers.
	HostIP string

	// StateDir holds the agent's local state (the gossip snapshot); empty
	// keeps none.
	StateDir string
	// Driver runs the servers. The agent does not close it: its owner does.
	Driver driver.Driver
	// Logger receives the agent's log; nil discards.
	Logger *slog.Logger
	// Version is reported in registration and gossip.
	Version string

	// Overrides of what the driver reports (0: the driver's value), and the
	// host's allocation ratios (0: the cluster's default).
	VCPUs, MemoryMB, DiskGB                                     int
	CPUAllocationRatio, RAMAllocationRatio, DiskAllocationRatio float64

	// FenceAfter is the self-fencing window: an agent that has had no
	// fresh answer from the controllers saying its host is up for this
	// long stops (powers off hard, keeping disks) every domain it runs and
	// starts nothing until such an answer comes (see fence.go). 0 disables
	// self-fencing; the host then tells the controllers so in its
	// registration, and they evacuate it only once it is forced down.
	// keel-agent's --fence-after defaults to DefaultFenceAfter.
	FenceAfter time.Duration

	// Wait is how long one blocking query may wait for a change (30s); with
	// self-fencing, at most FenceAfter/3, so that a quiet host renews its
	// lease in time.
	Wait time.Duration
	// Parallel bounds the operations run at once on this host (8).
	Parallel int
	// RequestTimeout bounds one internal call that is not a blocking
	// query or an image download (30s).
	RequestTimeout time.Duration
	// MinBackoff and MaxBackoff bound the wait between rounds of retries
	// over all controllers (100ms, 5s); each wait is jittered.
	MinBackoff, MaxBackoff time.Duration
	// ShutdownGrace is how long operations already running may finish (and
	// report) after the agent is told to stop (10s).
	ShutdownGrace time.Duration
	// StaleIndexReset: answers with a lower index than one already acted on
	// come from a controller that is behind and are not acted on, unless
	// they keep coming for this long, which means the cluster's state was
	// rebuilt (2m).
	StaleIndexReset time.Duration

	// RegistrationCheck is how often the agent compares what it would
	// register with what it registered, and registers again if they
	// differ (5m).
	RegistrationCheck time.Duration

	// Transport carries the internal calls; nil gives the agent its own.
	// Agents in one process may share one.
	Transport http.RoundTripper
}

// DefaultFenceAfter is keel-agent's --fence-after default.
const DefaultFenceAfter = 30 * time.Second

// withDefaults checks cfg and fills in the defaults.
func (cfg Config) withDefaults() (Config, error) {
	switch {
	case cfg.Name == "":
		return cfg, errors.New("agent: a host name is required (--name)")
	case strings.ContainsAny(cfg.Name, "/?#% "):
		return cfg, fmt.Errorf("agent: host name %q may not contain '/', '?', '#', '%%' or spaces", cfg.Name)
	case len(cfg.Controllers) == 0:
		return cfg, errors.New("agent: at least one controller URL is required (--controllers)")
	case len(cfg.ClusterKey) != 32:
		return cfg, fmt.Errorf("agent: the cluster key must be 32 bytes, got %d (use the controllers' --cluster-key)", len(cfg.ClusterKey))
	case cfg.Driver == nil:
		return cfg, errors.New("agent: a driver is required")
	case cfg.ListenAddr == "" && cfg.AdvertiseAddr == "":
		return cfg, errors.New("agent: --listen is required (the controllers read console output from it)")
	case cfg.FenceAfter < 0:
		return cfg, fmt.Errorf("agent: --fence-after %s: want 0 (no self-fencing) or a positive window", cfg.FenceAfter)
	}
	cfg.Controllers = slices.Clone(cfg.Controllers)
	for i, c := range cfg.Controllers {
		u, err := url.Parse(c)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return cfg, fmt.Errorf("agent: controller URL %q: want http://host:port (the controllers' API address)", c)
		}
		cfg.Controllers[i] = strings.TrimRight(c, "/")
	}
	if cfg.Zone == "" {
		cfg.Zone = "nova"
	}
	if cfg.Gossip == (gossip.Timing{}) {
		cfg.Gossip = gossip.LAN()
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	defaults := []struct {
		d   *time.Duration
		def time.Duration
	}{
		{&cfg.Wait, 30 * time.Second},
		{&cfg.RequestTimeout, 30 * time.Second},
		{&cfg.MinBackoff, 100 * time.Millisecond},
		{&cfg.MaxBackoff, 5 * time.Second},
		{&cfg.ShutdownGrace, 10 * time.Second},
		{&cfg.StaleIndexReset, 2 * time.Minute},
		{&cfg.RegistrationCheck, 5 * time.Minute},
	}
	for _, d := range defaults {
		if *d.d <= 0 {
			*d.d = d.def
		}
	}
	if cfg.FenceAfter > 0 && cfg.Wait > cfg.FenceAfter/3 {
		cfg.Wait = cfg.FenceAfter / 3
	}
	if cfg.MaxBackoff < cfg.MinBackoff {
		cfg.MaxBackoff = cfg.MinBackoff
	}
	if cfg.Parallel <= 0 {
		cfg.Parallel = 8
	}
	return cfg, nil
}
