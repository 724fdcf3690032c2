package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"

	"github.com/keel-cloud/keel/agent"
	"github.com/keel-cloud/keel/agent/driver"
	"github.com/keel-cloud/keel/agent/driver/fake"
	"github.com/keel-cloud/keel/agent/driver/libvirt"
	"github.com/keel-cloud/keel/internal/version"
)

// runAgent runs the embedded compute agent of an all-in-one controller: the
// same agent keel-agent runs, talking to this controller's API.
func runAgent(ctx context.Context, o *options, key []byte, controller string, log *slog.Logger) error {
	log = log.With("component", "agent")
	dir := o.agentStateDir
	if dir == "" {
		dir = "/var/lib/keel/agent"
		if os.Geteuid() != 0 {
			dir = filepath.Join(o.dataDir, "agent")
		}
	}
	var drv driver.Driver
	switch o.agentDriver {
	case "fake":
		drv = fake.New(fake.Config{})
	case "libvirt":
		d, err := libvirt.New(ctx, libvirt.Config{Owner: driver.Owner(o.name, key), URI: o.libvirtURI, StateDir: dir, ShutdownTimeout: o.shutdownTimeout, PoolName: o.libvirtPool, VirtType: o.libvirtVirtType, Logger: log})
		if err != nil {
			return fmt.Errorf("%w (is libvirtd running? `make run` installs and starts it; or use --agent-driver fake)", err)
		}
		drv = d
	default:
		return fmt.Errorf("--agent-driver %q: want libvirt or fake", o.agentDriver)
	}
	defer drv.Close()
	err := agent.Run(ctx, agent.Config{
		Name: o.name, Zone: o.zone, Controllers: []string{controller}, ClusterKey: key,
		ListenAddr: o.agentListen, StateDir: dir, Driver: drv, Logger: log, Version: version.Version,
		// No gossip: the host is up unless forced down. It fences itself
		// when its controller loses the Raft leader (or is forced down)
		// for the default window.
		FenceAfter: agent.DefaultFenceAfter,
	})
	if errors.Is(err, context.Canceled) {
		return nil
	}
	return err
}
