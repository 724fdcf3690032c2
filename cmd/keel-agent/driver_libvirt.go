package main

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/keel-cloud/keel/agent/driver"
	"github.com/keel-cloud/keel/agent/driver/libvirt"
)

// The libvirt driver lives in its own file so that the rest of keel-agent
// builds without it.
func init() {
	newLibvirt = func(ctx context.Context, o *options, log *slog.Logger) (driver.Driver, error) {
		d, err := libvirt.New(ctx, libvirt.Config{
			// The owner mark keeps this agent's hands off domains of
			// another agent or cluster on the same libvirtd.
			Owner: driver.Owner(o.name, o.key),
			URI:   o.libvirtURI, StateDir: o.stateDir, PoolName: o.libvirtPool, VirtType: o.libvirtVirtType,
			ShutdownTimeout: o.shutdownTimeout, Logger: log,
		})
		if err != nil {
			// Not d itself: a nil *Driver in the interface is not nil.
			return nil, fmt.Errorf("%w (is libvirtd running? scripts/install-libvirt.sh sets it up; or use --driver fake)", err)
		}
		return d, nil
	}
}
