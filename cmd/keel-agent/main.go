// Command keel-agent runs on a compute host: it registers the host with the
// controllers, joins their gossip pool and runs the servers placed on it
// with libvirt (or, for tests and scale runs, with an in-memory fake driver
// that can simulate many hosts in one process). See agent/README.md.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"regexp"
	"sync"
	"syscall"
	"time"

	"github.com/keel-cloud/keel/agent"
	"github.com/keel-cloud/keel/agent/driver"
	"github.com/keel-cloud/keel/agent/driver/fake"
	"github.com/keel-cloud/keel/internal/cli"
	"github.com/keel-cloud/keel/internal/clusterauth"
	"github.com/keel-cloud/keel/internal/hostapi"
	"github.com/keel-cloud/keel/internal/version"
)

func main() {
	// SIGTERM stops the agent, not the servers: domains keep running, and
	// the next agent converges with them.
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	if err := run(ctx, os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "keel-agent:", err)
		stop()
		os.Exit(1)
	}
}

type options struct {
	name, clusterKey, gossipAddr, zone, driver, libvirtURI string
	stateDir, listen, advertiseAddr, logLevel, logFormat   string
	libvirtPool, libvirtVirtType                           string
	shutdownTimeout, fenceAfter                            time.Duration
	controllers, join                                      cli.StringList
	fakeHosts, vcpus, memoryMB, diskGB                     int
	fakePersist                                            bool
	fakeFailSpawn                                          string
	failSpawn                                              *regexp.Regexp
	cpuRatio, ramRatio, diskRatio                          float64
	key                                                    []byte
}

func parseFlags(args []string) (*options, error) {
	o := &options{}
	host, _ := os.Hostname()
	fs := flag.NewFlagSet("keel-agent", flag.ContinueOnError)
	fs.StringVar(&o.name, "name", host, "this host's unique name: its compute service host and hypervisor hostname")
	fs.Var(&o.controllers, "controllers", "API URL of a controller, e.g. http://10.0.0.1:8774 (repeatable, or comma-separated)")
	fs.StringVar(&o.clusterKey, "cluster-key", "", "the controllers' cluster key: 32 bytes, base64 (made by keelctl keygen)")
	fs.StringVar(&o.gossipAddr, "gossip-addr", "", "gossip (serf) address of this host, TCP and UDP, e.g. 10.0.0.5:7946; empty: no gossip, and the controllers cannot see this host up or down")
	fs.Var(&o.join, "join", "gossip address of a controller to join (repeatable, or comma-separated)")
	fs.StringVar(&o.zone, "zone", "nova", "availability zone of this host")
	fs.StringVar(&o.driver, "driver", "libvirt", "hypervisor driver: libvirt, or fake (in memory, for tests and scale runs)")
	fs.StringVar(&o.libvirtURI, "libvirt-uri", "qemu:///system", "libvirt connection URI")
	fs.StringVar(&o.libvirtPool, "libvirt-pool", "keel", "libvirt storage pool of images and disks (created in <state-dir>/pool when missing)")
	fs.StringVar(&o.libvirtVirtType, "libvirt-virt-type", "", "domain type: kvm or qemu (software emulation); default kvm when libvirt offers it")
	fs.DurationVar(&o.shutdownTimeout, "shutdown-timeout", 60*time.Second, "how long a stop or soft reboot waits for the guest to shut down before forcing it off (Nova's shutdown_timeout)")
	fs.DurationVar(&o.fenceAfter, "fence-after", agent.DefaultFenceAfter, "self-fencing window: after this long without a fresh answer from the controllers saying this host is up, power off (hard, disks kept) every server here and start nothing until one comes; the controllers allow evacuating a host gossip reports down only after this window plus a margin. 0 disables self-fencing (the host can then be evacuated only once forced down)")
	fs.StringVar(&o.stateDir, "state-dir", "/var/lib/keel/agent", "local state: the image cache, disks and console logs (libvirt), and the gossip snapshot")
	fs.StringVar(&o.listen, "listen", "127.0.0.1:8776", "address of the agent's own API (console output), which the controllers call")
	fs.StringVar(&o.advertiseAddr, "advertise-addr", "", "host:port the controllers use to reach the agent's API; default: --listen (a wildcard host becomes this host's IP)")
	fs.IntVar(&o.fakeHosts, "fake-hosts", 0, "with --driver fake: simulate this many hosts in this process, named <name>-0001...; they do not join gossip")
	fs.BoolVar(&o.fakePersist, "fake-persist", false, "with --driver fake (one host): keep the domains in <state-dir>/fake-domains.json, so a restarted agent finds them as libvirt's outlive an agent (failover drills)")
	fs.StringVar(&o.fakeFailSpawn, "fake-fail-spawn", "", "with --driver fake: builds of servers whose name matches this regular expression fail (failure drills: retries, faults)")
	fs.IntVar(&o.vcpus, "vcpus", 0, "vCPUs to offer instead of what the hypervisor reports")
	fs.IntVar(&o.memoryMB, "memory-mb", 0, "memory (MiB) to offer instead of what the hypervisor reports")
	fs.IntVar(&o.diskGB, "disk-gb", 0, "disk (GiB) to offer instead of what the hypervisor reports")
	fs.Float64Var(&o.cpuRatio, "cpu-allocation-ratio", 0, "vCPU overcommit ratio of this host; 0: the cluster's default")
	fs.Float64Var(&o.ramRatio, "ram-allocation-ratio", 0, "memory overcommit ratio of this host; 0: the cluster's default")
	fs.Float64Var(&o.diskRatio, "disk-allocation-ratio", 0, "disk overcommit ratio of this host; 0: the cluster's default")
	fs.StringVar(&o.logLevel, "log-level", "info", "debug, info, warn or error")
	fs.StringVar(&o.logFormat, "log-format", "text", "text or json")
	showVersion := fs.Bool("version", false, "print the version and exit")
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "Usage: keel-agent [flags]\nEvery flag can also be set as KEEL_<FLAG> (e.g. KEEL_CLUSTER_KEY).\n\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if err := cli.ApplyEnv(fs); err != nil {
		return nil, err
	}
	if *showVersion {
		fmt.Println("keel-agent", version.Version)
		os.Exit(0)
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected argument %q (flags start with --)", fs.Arg(0))
	}
	return o, o.validate()
}

func (o *options) validate() error {
	var err error
	switch {
	case o.name == "":
		return errors.New("--name is required (the hostname is not available)")
	case len(o.controllers) == 0:
		return errors.New("--controllers is required: the API URL of at least one controller, e.g. http://10.0.0.1:8774")
	case o.driver != "libvirt" && o.driver != "fake":
		return fmt.Errorf("--driver %q: want libvirt or fake", o.driver)
	case o.fakeHosts < 0:
		return errors.New("--fake-hosts must be 0 or more")
	case o.fakeHosts > 0 && o.driver != "fake":
		return errors.New("--fake-hosts needs --driver fake")
	case o.fakePersist && (o.driver != "fake" || o.fakeHosts > 0):
		return errors.New("--fake-persist needs --driver fake and no --fake-hosts")
	case o.listen == "":
		return errors.New("--listen is required: the controllers read console output from it")
	case o.fenceAfter < 0 || (o.fenceAfter > 0 && o.fenceAfter < minFenceAfter):
		return fmt.Errorf("--fence-after %s: want 0 (no self-fencing) or at least %s (a shorter window stops the servers of a healthy host on one slow answer)", o.fenceAfter, minFenceAfter)
	}
	if o.fakeFailSpawn != "" {
		if o.driver != "fake" {
			return errors.New("--fake-fail-spawn needs --driver fake")
		}
		if o.failSpawn, err = regexp.Compile(o.fakeFailSpawn); err != nil {
			return fmt.Errorf("--fake-fail-spawn: %w", err)
		}
	}
	if o.key, err = clusterauth.ParseKey(o.clusterKey); err != nil {
		return err
	}
	return nil
}

// minFenceAfter is the shortest --fence-after accepted.
const minFenceAfter = time.Second

// logFencing states the self-fencing window at startup.
func (o *options) logFencing(log *slog.Logger) {
	if o.fenceAfter == 0 {
		log.Warn("self-fencing is off (--fence-after 0): if this host loses the controllers its servers keep running, so the controllers evacuate them only after an operator forces the host down (keelctl host force-down) having made sure it is off")
		return
	}
	log.Info("self-fencing on: without a fresh answer from the controllers saying this host is up for --fence-after, every server here is powered off and nothing starts until contact is back",
		"fence_after", o.fenceAfter)
}

// newLibvirt opens the libvirt driver; driver_libvirt.go sets it, so that
// a build without that file still runs the fake driver.
var newLibvirt func(ctx context.Context, o *options, log *slog.Logger) (driver.Driver, error)

func run(ctx context.Context, args []string) error {
	o, err := parseFlags(args)
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return err
	}
	log, err := cli.NewLogger(os.Stderr, o.logLevel, o.logFormat)
	if err != nil {
		return err
	}
	o.logFencing(log)
	if o.fakeHosts > 0 {
		return runFakeHosts(ctx, o, log)
	}
	var d driver.Driver
	switch o.driver {
	case "fake":
		cfg := o.fakeConfig()
		if o.fakePersist {
			if err := os.MkdirAll(o.stateDir, 0o700); err != nil {
				return fmt.Errorf("--state-dir: %w", err)
			}
			cfg.StateFile = filepath.Join(o.stateDir, "fake-domains.json")
		}
		if d, err = fake.Load(cfg); err != nil {
			return err
		}
	case "libvirt":
		if newLibvirt == nil {
			return errors.New("this keel-agent was built without the libvirt driver: use --driver fake or a full build")
		}
		if d, err = newLibvirt(ctx, o, log); err != nil {
			return err
		}
	}
	defer d.Close()
	if o.gossipAddr == "" {
		log.Warn("no --gossip-addr: this host does not join gossip, so the controllers cannot tell whether it is up")
	}
	cfg := o.agentConfig(o.name, d, log)
	cfg.ListenAddr, cfg.AdvertiseAddr = o.listen, o.advertiseAddr
	cfg.GossipAddr, cfg.Join = o.gossipAddr, o.join
	cfg.StateDir = o.stateDir
	return agent.Run(ctx, cfg)
}

// agentConfig is what every agent of this process shares.
func (o *options) agentConfig(name string, d driver.Driver, log *slog.Logger) agent.Config {
	return agent.Config{
		Name: name, Zone: o.zone, Controllers: o.controllers, ClusterKey: o.key,
		Driver: d, Logger: log, Version: version.Version, FenceAfter: o.fenceAfter,
		VCPUs: o.vcpus, MemoryMB: o.memoryMB, DiskGB: o.diskGB,
		CPUAllocationRatio: o.cpuRatio, RAMAllocationRatio: o.ramRatio, DiskAllocationRatio: o.diskRatio,
	}
}

// runFakeHosts runs --fake-hosts simulated hosts: one agent per host, each
// with its own fake driver, all sharing one HTTP transport and one agent
// API listener, none in gossip.
func runFakeHosts(ctx context.Context, o *options, log *slog.Logger) error {
	ln, err := net.Listen("tcp", o.listen)
	if err != nil {
		return fmt.Errorf("listen on %s: %w (is another process using --listen?)", o.listen, err)
	}
	advertise := o.advertiseAddr
	if advertise == "" {
		advertise = ln.Addr().String()
		if h, _, _ := net.SplitHostPort(advertise); net.ParseIP(h) != nil && net.ParseIP(h).IsUnspecified() {
			ln.Close()
			return errors.New("--fake-hosts with a wildcard --listen needs --advertise-addr")
		}
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	// Every simulated host keeps its connections: without raising the
	// total (100 by default) they would be closed and dialled again.
	tr.MaxIdleConns, tr.MaxIdleConnsPerHost = 0, 2*o.fakeHosts+8
	drivers := make([]driver.Driver, o.fakeHosts)
	agents := make([]*agent.Agent, o.fakeHosts)
	for i := range drivers {
		drivers[i] = fake.New(o.fakeConfig())
		cfg := o.agentConfig(fmt.Sprintf("%s-%04d", o.name, i+1), drivers[i], log)
		cfg.AdvertiseAddr, cfg.Transport = advertise, tr
		if agents[i], err = agent.New(cfg); err != nil {
			ln.Close()
			return err
		}
	}
	srv := &http.Server{Handler: agent.ConsoleHandler(o.key, log, drivers...), ReadHeaderTimeout: 10 * time.Second}
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("agent API stopped", "error", err)
		}
	}()
	log.Info("simulating fake hosts", "hosts", o.fakeHosts, "first", fmt.Sprintf("%s-%04d", o.name, 1), "agent_api", advertise)
	var wg sync.WaitGroup
	errs := make([]error, len(agents))
	for i, a := range agents {
		wg.Go(func() { errs[i] = a.Run(ctx) })
	}
	wg.Wait()
	sctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	_ = srv.Shutdown(sctx)
	return errors.Join(errs...)
}

// fakeConfig is the fake driver's configuration, with the failures asked for.
func (o *options) fakeConfig() fake.Config {
	var cfg fake.Config
	if re := o.failSpawn; re != nil {
		cfg.FailSpawn = func(a hostapi.Assignment) error {
			if re.MatchString(a.Name) {
				return fmt.Errorf("injected failure (--fake-fail-spawn %q): the build of %s failed", re.String(), a.Name)
			}
			return nil
		}
	}
	return cfg
}
