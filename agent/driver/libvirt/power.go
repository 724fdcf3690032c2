package libvirt

import (
	"context"
	"fmt"
	"time"

	golibvirt "github.com/digitalocean/go-libvirt"

	"github.com/keel-cloud/keel/agent/driver"
	"github.com/keel-cloud/keel/internal/hostapi"
)

// pollInterval is how often a wait for a domain's state looks again.
const pollInterval = 100 * time.Millisecond

// domState is a domain's libvirt state plus whether a managed save image
// (a suspended server's memory) waits to be restored.
type domState struct {
	state       golibvirt.DomainState
	managedSave bool
}

// active reports whether a QEMU process exists for the domain.
func (s domState) active() bool { return s.state != golibvirt.DomainShutoff }

// power maps the state to Nova's power states as its libvirt driver does:
// a shut-off domain is SHUTDOWN whether or not it has a managed save image
// (a suspended server), so every driver reports what Nova would.
func (s domState) power() int {
	switch s.state {
	case golibvirt.DomainRunning, golibvirt.DomainBlocked:
		return hostapi.PowerRunning
	case golibvirt.DomainPaused:
		return hostapi.PowerPaused
	case golibvirt.DomainShutdown:
		return hostapi.PowerShutdown // shutting down: Nova says SHUTDOWN too
	case golibvirt.DomainShutoff:
		return hostapi.PowerShutdown
	case golibvirt.DomainCrashed:
		return hostapi.PowerCrashed
	case golibvirt.DomainPmsuspended:
		return hostapi.PowerSuspended
	default:
		return hostapi.PowerNoState
	}
}

func (s domState) String() string {
	names := map[golibvirt.DomainState]string{
		golibvirt.DomainNostate: "nostate", golibvirt.DomainRunning: "running", golibvirt.DomainBlocked: "blocked",
		golibvirt.DomainPaused: "paused", golibvirt.DomainShutdown: "shutting down", golibvirt.DomainShutoff: "shut off",
		golibvirt.DomainCrashed: "crashed", golibvirt.DomainPmsuspended: "suspended by the guest",
	}
	n, ok := names[s.state]
	if !ok {
		n = fmt.Sprintf("state %d", s.state)
	}
	if s.managedSave {
		n += " (managed save)"
	}
	return n
}

// state reads a domain's state.
func (d *Driver) state(conn *golibvirt.Libvirt, dom golibvirt.Domain) (domState, error) {
	st, _, err := conn.DomainGetState(dom, 0)
	if err != nil {
		return domState{}, fmt.Errorf("libvirt driver: state of %s: %w", dom.Name, err)
	}
	s := domState{state: golibvirt.DomainState(st)}
	if s.state == golibvirt.DomainShutoff {
		has, err := conn.DomainHasManagedSaveImage(dom, 0)
		if err != nil {
			return s, fmt.Errorf("libvirt driver: managed save image of %s: %w", dom.Name, err)
		}
		s.managedSave = has == 1
	}
	return s, nil
}

// withDomain runs fn on the server's Keel domain under the server's lock.
func (d *Driver) withDomain(id string, fn func(conn *golibvirt.Libvirt, dom golibvirt.Domain, st domState) error) error {
	unlock := d.locks.lock(id)
	defer unlock()
	conn, err := d.client()
	if err != nil {
		return err
	}
	dom, _, err := d.lookup(conn, id)
	if err != nil {
		return err
	}
	st, err := d.state(conn, dom)
	if err != nil {
		return err
	}
	return fn(conn, dom, st)
}

// PowerOff asks the guest to shut down (ACPI) and waits up to
// ShutdownTimeout for it, then destroys the domain. A paused domain is
// destroyed at once (its guest cannot answer). A suspended server loses
// its saved memory: the next PowerOn boots it afresh, as in Nova.
func (d *Driver) PowerOff(ctx context.Context, id string) error {
	return d.withDomain(id, func(conn *golibvirt.Libvirt, dom golibvirt.Domain, st domState) error {
		log := d.log.With("server_id", id)
		switch {
		case st.state == golibvirt.DomainShutoff:
			if st.managedSave {
				if err := conn.DomainManagedSaveRemove(dom, 0); err != nil {
					return fmt.Errorf("libvirt driver: power off %s: drop managed save image: %w", id, err)
				}
				log.Info("dropped the saved memory of a suspended server")
			}
			return nil
		case st.state == golibvirt.DomainRunning || st.state == golibvirt.DomainBlocked || st.state == golibvirt.DomainShutdown:
			off, err := d.shutdown(ctx, conn, dom)
			if err != nil {
				return fmt.Errorf("libvirt driver: power off %s: %w", id, err)
			}
			if off {
				log.Info("guest shut down")
				return nil
			}
			log.Info("guest did not shut down in time; destroying the domain", "timeout", d.cfg.ShutdownTimeout)
		}
		if err := d.forceOff(conn, dom); err != nil {
			return fmt.Errorf("libvirt driver: power off %s: %w", id, err)
		}
		return nil
	})
}

// shutdown asks the guest to power off and waits up to ShutdownTimeout;
// it reports whether the domain is off. The request is repeated every
// ten seconds: a guest still booting may miss the first ACPI event.
func (d *Driver) shutdown(ctx context.Context, conn *golibvirt.Libvirt, dom golibvirt.Domain) (bool, error) {
	const resend = 10 * time.Second
	deadline := time.Now().Add(d.cfg.ShutdownTimeout)
	next := time.Now()
	for {
		if !time.Now().Before(deadline) {
			return false, nil
		}
		if !time.Now().Before(next) {
			if err := conn.DomainShutdown(dom); err != nil {
				st, serr := d.state(conn, dom)
				if serr == nil && !st.active() {
					return true, nil
				}
				return false, fmt.Errorf("ask the guest to shut down: %w", err)
			}
			next = time.Now().Add(resend)
		}
		st, err := d.state(conn, dom)
		if err != nil {
			return false, err
		}
		if !st.active() {
			return true, nil
		}
		select {
		case <-ctx.Done():
			return false, ctx.Err()
		case <-time.After(pollInterval):
		}
	}
}

// forceOff destroys (pulls the plug on) an active domain; an inactive one
// is left as it is.
func (d *Driver) forceOff(conn *golibvirt.Libvirt, dom golibvirt.Domain) error {
	st, err := d.state(conn, dom)
	if err != nil {
		return err
	}
	if !st.active() {
		return nil
	}
	if err := conn.DomainDestroy(dom); err != nil {
		if st, serr := d.state(conn, dom); serr == nil && !st.active() {
			return nil // it stopped by itself in the meantime
		}
		return fmt.Errorf("destroy domain %s: %w", dom.Name, err)
	}
	return nil
}

// PowerOn starts a shut-off domain (restoring its managed save image if it
// has one) and unpauses a paused one; a running domain is left alone.
func (d *Driver) PowerOn(ctx context.Context, id string) error {
	return d.withDomain(id, func(conn *golibvirt.Libvirt, dom golibvirt.Domain, st domState) error {
		switch st.state {
		case golibvirt.DomainShutoff:
			if err := conn.DomainCreate(dom); err != nil {
				return fmt.Errorf("libvirt driver: power on %s: %w", id, err)
			}
			d.log.Info("powered on", "server_id", id, "restored", st.managedSave)
		case golibvirt.DomainPaused:
			if err := conn.DomainResume(dom); err != nil {
				return fmt.Errorf("libvirt driver: power on %s (paused): %w", id, err)
			}
		case golibvirt.DomainCrashed:
			if err := d.forceOff(conn, dom); err != nil {
				return fmt.Errorf("libvirt driver: power on %s (crashed): %w", id, err)
			}
			if err := conn.DomainCreate(dom); err != nil {
				return fmt.Errorf("libvirt driver: power on %s: %w", id, err)
			}
		}
		return ctx.Err()
	})
}

// Reboot restarts the guest. Soft (a running domain only): the guest is
// asked to shut down, and once it is off the domain is started again; if it
// is not off within ShutdownTimeout, or the domain is not running, the
// reboot is hard: destroy and start, which also leaves a paused or
// suspended server running, freshly booted (Nova's hard reboot).
func (d *Driver) Reboot(ctx context.Context, id string, hard bool) error {
	return d.withDomain(id, func(conn *golibvirt.Libvirt, dom golibvirt.Domain, st domState) error {
		log := d.log.With("server_id", id, "hard", hard)
		if !hard && (st.state == golibvirt.DomainRunning || st.state == golibvirt.DomainBlocked) {
			off, err := d.shutdown(ctx, conn, dom)
			if err != nil {
				return fmt.Errorf("libvirt driver: reboot %s: %w", id, err)
			}
			if off {
				if err := conn.DomainCreate(dom); err != nil {
					return fmt.Errorf("libvirt driver: reboot %s: start: %w", id, err)
				}
				log.Info("rebooted (guest shut down, domain started)")
				return nil
			}
			log.Info("guest did not shut down in time; rebooting hard", "timeout", d.cfg.ShutdownTimeout)
		}
		if err := d.forceOff(conn, dom); err != nil {
			return fmt.Errorf("libvirt driver: reboot %s: %w", id, err)
		}
		if st.managedSave {
			if err := conn.DomainManagedSaveRemove(dom, 0); err != nil {
				return fmt.Errorf("libvirt driver: reboot %s: drop managed save image: %w", id, err)
			}
		}
		if err := conn.DomainCreate(dom); err != nil {
			return fmt.Errorf("libvirt driver: reboot %s: start: %w", id, err)
		}
		log.Info("rebooted (destroyed and started)")
		return nil
	})
}

// Pause freezes a running domain's vCPUs; a paused domain stays paused.
func (d *Driver) Pause(ctx context.Context, id string) error {
	return d.withDomain(id, func(conn *golibvirt.Libvirt, dom golibvirt.Domain, st domState) error {
		switch st.state {
		case golibvirt.DomainPaused:
			return nil
		case golibvirt.DomainRunning, golibvirt.DomainBlocked:
			if err := conn.DomainSuspend(dom); err != nil {
				return fmt.Errorf("libvirt driver: pause %s: %w", id, err)
			}
			return ctx.Err()
		}
		return fmt.Errorf("libvirt driver: pause %s: the domain is %s, not running", id, st)
	})
}

// Unpause lets a paused domain run again; a running one is left alone.
func (d *Driver) Unpause(ctx context.Context, id string) error {
	return d.withDomain(id, func(conn *golibvirt.Libvirt, dom golibvirt.Domain, st domState) error {
		switch st.state {
		case golibvirt.DomainRunning, golibvirt.DomainBlocked:
			return nil
		case golibvirt.DomainPaused:
			if err := conn.DomainResume(dom); err != nil {
				return fmt.Errorf("libvirt driver: unpause %s: %w", id, err)
			}
			return ctx.Err()
		}
		return fmt.Errorf("libvirt driver: unpause %s: the domain is %s, not paused", id, st)
	})
}

// Suspend saves the guest's memory to disk and stops the domain (managed
// save); a domain already saved is left alone.
func (d *Driver) Suspend(ctx context.Context, id string) error {
	return d.withDomain(id, func(conn *golibvirt.Libvirt, dom golibvirt.Domain, st domState) error {
		switch {
		case st.state == golibvirt.DomainShutoff && st.managedSave:
			return nil
		case st.state == golibvirt.DomainRunning, st.state == golibvirt.DomainBlocked, st.state == golibvirt.DomainPaused:
			if err := conn.DomainManagedSave(dom, 0); err != nil {
				return fmt.Errorf("libvirt driver: suspend %s: %w", id, err)
			}
			d.log.Info("suspended (managed save)", "server_id", id)
			return ctx.Err()
		}
		return fmt.Errorf("libvirt driver: suspend %s: the domain is %s; nothing to save", id, st)
	})
}

// Resume restores a suspended domain and leaves it running. A paused one
// is unpaused; a shut-off one without saved memory is booted, with a
// warning: its memory is gone.
func (d *Driver) Resume(ctx context.Context, id string) error {
	return d.withDomain(id, func(conn *golibvirt.Libvirt, dom golibvirt.Domain, st domState) error {
		switch st.state {
		case golibvirt.DomainRunning, golibvirt.DomainBlocked:
			return nil
		case golibvirt.DomainShutoff:
			if !st.managedSave {
				d.log.Warn("resume of a server without saved memory: booting it", "server_id", id)
			}
			if err := conn.DomainCreate(dom); err != nil {
				return fmt.Errorf("libvirt driver: resume %s: %w", id, err)
			}
		}
		// A domain saved while paused comes back paused.
		now, err := d.state(conn, dom)
		if err != nil {
			return err
		}
		if now.state == golibvirt.DomainPaused {
			if err := conn.DomainResume(dom); err != nil {
				return fmt.Errorf("libvirt driver: resume %s: unpause: %w", id, err)
			}
		}
		return ctx.Err()
	})
}

// ForceOff destroys a running or paused domain at once, without asking the
// guest (the agent fencing its host), keeping the definition and disks.
func (d *Driver) ForceOff(ctx context.Context, id string) error {
	return d.withDomain(id, func(conn *golibvirt.Libvirt, dom golibvirt.Domain, st domState) error {
		if err := d.forceOff(conn, dom); err != nil {
			return fmt.Errorf("libvirt driver: force off %s: %w", id, err)
		}
		return nil
	})
}

var _ driver.ForceOffer = (*Driver)(nil)
