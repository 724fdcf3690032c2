// Command keel-controller runs one Keel controller: a Raft peer and gossip
// member that serves the HTTP API. See the README for flags and operations.
package main

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/keel-cloud/keel/api"
	"github.com/keel-cloud/keel/cluster"
	"github.com/keel-cloud/keel/internal/cli"
	"github.com/keel-cloud/keel/internal/clusterauth"
	"github.com/keel-cloud/keel/internal/version"
	"github.com/keel-cloud/keel/liveness"
	"github.com/keel-cloud/keel/scheduler"
)

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "keel-controller:", err)
		os.Exit(1)
	}
}

type options struct {
	name, dataDir, listen, raftAddr, gossipAddr string
	clusterKey, logLevel, logFormat, zone       string
	publicURL, adminPassword                    string
	bootstrapExpect                             int
	noDefaultFlavors                            bool
	join                                        cli.StringList

	// The scheduler (runs on the leader).
	hostSubsetSize                   int
	ramWeight, cpuWeight, diskWeight float64
	aggregateExtraSpecs              bool
	evacuateMargin                   time.Duration
	drainDelay                       time.Duration

	// The embedded agent (all-in-one).
	agent                                bool
	agentDriver, libvirtURI, agentListen string
	agentStateDir                        string
	shutdownTimeout                      time.Duration
	libvirtPool, libvirtVirtType         string
}

func parseFlags(args []string) (*options, error) {
	o := &options{}
	host, _ := os.Hostname()
	fs := flag.NewFlagSet("keel-controller", flag.ContinueOnError)
	fs.StringVar(&o.name, "name", host, "this controller's unique name (Raft ID and gossip name)")
	fs.StringVar(&o.dataDir, "data-dir", "keel-data", "directory for the Raft log, snapshots and state")
	fs.StringVar(&o.listen, "listen", "127.0.0.1:8774", "HTTP API address (compute, identity, image, health, internal)")
	fs.StringVar(&o.raftAddr, "raft-addr", "127.0.0.1:7000", "Raft transport address, reachable by the other controllers")
	fs.StringVar(&o.gossipAddr, "gossip-addr", "127.0.0.1:7946", "gossip (serf) address, TCP and UDP")
	fs.IntVar(&o.bootstrapExpect, "bootstrap-expect", -1, "form a new cluster once this many controllers see each other; default 1 without --join, else 0 (wait to be added)")
	fs.Var(&o.join, "join", "gossip address of an existing member (repeatable)")
	fs.StringVar(&o.clusterKey, "cluster-key", "", "32-byte base64 shared secret (`keelctl keygen`); a single node generates one into the data dir")
	fs.StringVar(&o.zone, "zone", "nova", "availability zone of this controller")
	fs.StringVar(&o.publicURL, "public-url", "", "base URL clients use (the load balancer's), for the service catalog; default: each request's Host")
	fs.StringVar(&o.adminPassword, "admin-password", "", "password of the admin user created when the cluster is first bootstrapped; default: generated, logged once and saved to <data-dir>/admin-password")
	fs.StringVar(&o.logLevel, "log-level", "info", "debug, info, warn or error")
	fs.StringVar(&o.logFormat, "log-format", "text", "text or json")
	fs.BoolVar(&o.noDefaultFlavors, "no-default-flavors", false, "do not create the m1.* flavors when the cluster is first bootstrapped")
	fs.IntVar(&o.hostSubsetSize, "scheduler-host-subset-size", 1, "choose at random among the best N hosts (Nova's host_subset_size)")
	fs.Float64Var(&o.ramWeight, "scheduler-ram-weight-multiplier", 1.0, "RAM weigher multiplier: positive spreads servers, negative stacks them")
	fs.Float64Var(&o.cpuWeight, "scheduler-cpu-weight-multiplier", 1.0, "vCPU weigher multiplier: positive spreads servers, negative stacks them")
	fs.Float64Var(&o.diskWeight, "scheduler-disk-weight-multiplier", 1.0, "disk weigher multiplier: positive spreads servers, negative stacks them")
	fs.BoolVar(&o.aggregateExtraSpecs, "scheduler-aggregate-extra-specs", false, "enable the AggregateInstanceExtraSpecsFilter (off by default, as in Nova): flavors' unscoped extra specs must match host aggregate metadata")
	fs.BoolVar(&o.agent, "agent", false, "also run a compute agent for this machine in this process (all-in-one)")
	fs.StringVar(&o.agentDriver, "agent-driver", "libvirt", "driver of the embedded agent: libvirt or fake")
	fs.StringVar(&o.libvirtURI, "libvirt-uri", "qemu:///system", "libvirt connection of the embedded agent")
	fs.StringVar(&o.agentListen, "agent-listen", "127.0.0.1:8776", "address of the embedded agent's internal API (console output)")
	fs.StringVar(&o.libvirtPool, "libvirt-pool", "keel", "libvirt storage pool of the embedded agent's images and disks (created in <agent-state-dir>/pool when missing)")
	fs.StringVar(&o.libvirtVirtType, "libvirt-virt-type", "", "domain type of the embedded agent's servers: kvm or qemu (software emulation); default kvm when libvirt offers it")
	fs.DurationVar(&o.evacuateMargin, "evacuate-margin", api.DefaultEvacuateMargin, "safety margin added to a host's --fence-after before servers may be evacuated from a host that gossip reports down (a forced-down host is evacuable at once)")
	fs.DurationVar(&o.drainDelay, "drain-delay", 0, "on SIGTERM, how long /readyz fails while every request is still served, before the API stops listening: give it the load balancer's time to take this controller out (haproxy.cfg in deploy/: 3s); 0 stops at once")
	fs.DurationVar(&o.shutdownTimeout, "shutdown-timeout", 60*time.Second, "how long the embedded agent waits for a guest to shut down (stop, soft reboot) before forcing it off (Nova's shutdown_timeout)")
	fs.StringVar(&o.agentStateDir, "agent-state-dir", "", "image cache, disks and console logs of the embedded agent's servers; default /var/lib/keel/agent, or <data-dir>/agent when not root")
	showVersion := fs.Bool("version", false, "print the version and exit")
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "Usage: keel-controller [flags]\nEvery flag can also be set as KEEL_<FLAG> (e.g. KEEL_DATA_DIR).\n\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if err := cli.ApplyEnv(fs); err != nil {
		return nil, err
	}
	if *showVersion {
		fmt.Println("keel-controller", version.Version)
		os.Exit(0)
	}
	if o.bootstrapExpect < 0 {
		o.bootstrapExpect = 0
		if len(o.join) == 0 {
			o.bootstrapExpect = 1
		}
	}
	return o, nil
}

func run(args []string) error {
	o, err := parseFlags(args)
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return err
	}
	if len(o.adminPassword) > 72 {
		return errors.New("--admin-password is longer than 72 bytes, which the password hash (bcrypt) cannot take: choose a shorter one")
	}
	log, err := cli.NewLogger(os.Stderr, o.logLevel, o.logFormat)
	if err != nil {
		return err
	}
	key, err := loadKey(o, log)
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", o.listen)
	if err != nil {
		return fmt.Errorf("listen on %s: %w (is another process using --listen?)", o.listen, err)
	}
	node, err := cluster.New(cluster.Config{
		Name:            o.name,
		DataDir:         o.dataDir,
		RaftAddr:        o.raftAddr,
		GossipAddr:      o.gossipAddr,
		APIAddr:         ln.Addr().String(),
		BootstrapExpect: o.bootstrapExpect,
		Join:            o.join,
		ClusterKey:      key,
		Zone:            o.zone,
		Version:         version.Version,
		Logger:          log,
	})
	if err != nil {
		ln.Close()
		return err
	}
	handler := api.New(api.Config{
		Node: node, Logger: log, PublicURL: o.publicURL, AdminPassword: o.adminPassword, DataDir: o.dataDir,
		NoDefaultFlavors: o.noDefaultFlavors, EvacuateMargin: o.evacuateMargin,
	})
	liveness.Register(node, liveness.Config{}, log)
	scheduler.Register(node, scheduler.Config{
		HostSubsetSize: o.hostSubsetSize, RAMWeightMultiplier: o.ramWeight, CPUWeightMultiplier: o.cpuWeight, DiskWeightMultiplier: o.diskWeight,
		AggregateInstanceExtraSpecs: o.aggregateExtraSpecs,
	}, log)
	srv := &http.Server{Handler: handler, ReadHeaderTimeout: 10 * time.Second}
	errc := make(chan error, 2)
	go func() { errc <- srv.Serve(ln) }()
	agentCtx, stopAgent := context.WithCancel(context.Background())
	agentDone := make(chan struct{})
	if o.agent {
		go func() {
			defer close(agentDone)
			if err := runAgent(agentCtx, o, key, "http://"+ln.Addr().String(), log); err != nil {
				errc <- fmt.Errorf("embedded agent: %w", err)
			}
		}()
	} else {
		close(agentDone)
	}
	log.Info("keel-controller started", "name", o.name, "version", version.Version, "api", ln.Addr().String(),
		"raft", o.raftAddr, "gossip", o.gossipAddr, "bootstrap_expect", o.bootstrapExpect, "join", strings.Join(o.join, ","))

	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT)
	select {
	case s := <-sig:
		log.Info("shutting down", "signal", s.String())
	case err := <-errc:
		log.Error("stopping: a part of the controller failed", "error", err)
	}
	if o.drainDelay > 0 {
		handler.Drain()
		log.Info("draining: /readyz fails so the load balancer stops sending requests here; requests are still served", "for", o.drainDelay)
		select {
		case <-time.After(o.drainDelay):
		case s := <-sig:
			log.Warn("second signal: stopping without waiting for the drain", "signal", s.String())
		}
	}
	stopAgent()
	<-agentDone
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = srv.Shutdown(ctx)
	if err := node.Shutdown(); err != nil {
		log.Warn("shutdown finished with errors", "error", err)
	}
	log.Info("stopped")
	return nil
}

// loadKey returns the cluster key from --cluster-key, or, for a node that
// bootstraps alone, from <data-dir>/cluster.key (generated on first start).
func loadKey(o *options, log *slog.Logger) ([]byte, error) {
	if o.clusterKey != "" {
		return clusterauth.ParseKey(o.clusterKey)
	}
	path := filepath.Join(o.dataDir, "cluster.key")
	if b, err := os.ReadFile(path); err == nil {
		return clusterauth.ParseKey(strings.TrimSpace(string(b)))
	}
	if o.bootstrapExpect != 1 {
		return nil, errors.New("no cluster key: set --cluster-key or KEEL_CLUSTER_KEY to the key all controllers share (generate one with `keelctl keygen`)")
	}
	raw := make([]byte, 32)
	if _, err := rand.Read(raw); err != nil {
		return nil, err
	}
	enc := base64.StdEncoding.EncodeToString(raw)
	if err := os.MkdirAll(o.dataDir, 0o700); err != nil {
		return nil, err
	}
	if err := os.WriteFile(path, []byte(enc+"\n"), 0o600); err != nil {
		return nil, fmt.Errorf("save generated cluster key: %w", err)
	}
	log.Warn("no --cluster-key given: generated one for this single-node cluster; give it to keelctl and any controller or agent that joins", "file", path)
	return raw, nil
}
