package libvirt

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"sort"
	"strings"

	golibvirt "github.com/digitalocean/go-libvirt"

	"github.com/keel-cloud/keel/agent/driver"
	"github.com/keel-cloud/keel/internal/hostapi"
	"github.com/keel-cloud/keel/internal/ids"
)

// ErrNotKeel: a domain with the server's UUID exists but carries no Keel
// metadata. Someone else made it; the driver refuses to touch it.
var ErrNotKeel = errors.New("libvirt driver: the domain has no Keel metadata and is not Keel's")

// ErrOtherOwner: the domain is Keel's but another agent's (another host
// name or another cluster sharing this libvirtd). It is never touched. It
// wraps ErrNotKeel, so callers that skip foreign domains skip these too.
var ErrOtherOwner = fmt.Errorf("%w: it belongs to another Keel agent", ErrNotKeel)

// parseUUID turns a server id into libvirt's binary UUID.
func parseUUID(id string) (golibvirt.UUID, error) {
	var u golibvirt.UUID
	if !ids.IsUUID(id) {
		return u, fmt.Errorf("server id %q is not a UUID", id)
	}
	b, err := hex.DecodeString(strings.ReplaceAll(id, "-", ""))
	if err != nil {
		return u, fmt.Errorf("server id %q: %w", id, err)
	}
	copy(u[:], b)
	return u, nil
}

// formatUUID is the canonical lower-case text of a libvirt UUID.
func formatUUID(u golibvirt.UUID) string {
	h := hex.EncodeToString(u[:])
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:32]
}

// lookup finds a server's domain and its Keel metadata. Errors:
// driver.ErrNotFound when there is no such domain, ErrNotKeel when the
// domain is not Keel's.
func (d *Driver) lookup(conn *golibvirt.Libvirt, id string) (golibvirt.Domain, serverMeta, error) {
	uuid, err := parseUUID(id)
	if err != nil {
		return golibvirt.Domain{}, serverMeta{}, fmt.Errorf("%w: %v", driver.ErrNotFound, err)
	}
	dom, err := conn.DomainLookupByUUID(uuid)
	if golibvirt.IsNotFound(err) {
		return dom, serverMeta{}, fmt.Errorf("%w: server %s", driver.ErrNotFound, id)
	}
	if err != nil {
		return dom, serverMeta{}, fmt.Errorf("libvirt driver: look up domain of server %s: %w", id, err)
	}
	meta, err := d.metadata(conn, dom)
	if err != nil {
		if golibvirt.IsNotFound(err) {
			return dom, serverMeta{}, fmt.Errorf("%w: server %s", driver.ErrNotFound, id)
		}
		return dom, serverMeta{}, fmt.Errorf("server %s, domain %s: %w", id, dom.Name, err)
	}
	return dom, meta, nil
}

// metadata reads a domain's Keel metadata; ErrNotKeel when it has none.
func (d *Driver) metadata(conn *golibvirt.Libvirt, dom golibvirt.Domain) (serverMeta, error) {
	doc, err := conn.DomainGetMetadata(dom, int32(golibvirt.DomainMetadataElement),
		golibvirt.OptString{MetadataNS}, golibvirt.DomainAffectCurrent)
	if isCode(err, golibvirt.ErrNoDomainMetadata) {
		return serverMeta{}, ErrNotKeel
	}
	if err != nil {
		return serverMeta{}, fmt.Errorf("libvirt driver: read metadata: %w", err)
	}
	meta, err := parseMeta(doc)
	if err == nil && meta.Owner != d.cfg.Owner {
		return meta, fmt.Errorf("%w (%q, this agent is %q)", ErrOtherOwner, meta.Owner, d.cfg.Owner)
	}
	return meta, err
}

// setMetadata writes a domain's Keel metadata, in its persistent
// definition and, when it runs, in the live one.
func (d *Driver) setMetadata(conn *golibvirt.Libvirt, dom golibvirt.Domain, meta serverMeta) error {
	flags := golibvirt.DomainAffectConfig
	if active, err := conn.DomainIsActive(dom); err == nil && active == 1 {
		flags |= golibvirt.DomainAffectLive
	}
	err := conn.DomainSetMetadata(dom, int32(golibvirt.DomainMetadataElement),
		golibvirt.OptString{meta.bareElement()}, golibvirt.OptString{metadataPrefix}, golibvirt.OptString{MetadataNS}, flags)
	if err != nil {
		return fmt.Errorf("libvirt driver: write metadata of %s: %w", dom.Name, err)
	}
	return nil
}

// List returns the Keel domains of this host, sorted by server id.
func (d *Driver) List(ctx context.Context) ([]driver.Domain, error) {
	conn, err := d.client()
	if err != nil {
		return nil, err
	}
	doms, _, err := conn.ConnectListAllDomains(1, 0)
	if err != nil {
		return nil, fmt.Errorf("libvirt driver: list domains: %w", err)
	}
	out := make([]driver.Domain, 0, len(doms))
	for _, dom := range doms {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		meta, err := d.metadata(conn, dom)
		switch {
		case errors.Is(err, ErrNotKeel), golibvirt.IsNotFound(err):
			continue // not ours, or undefined since the listing
		case err != nil:
			// One damaged definition must not blind the agent to the rest.
			d.log.Warn("skipping domain with unreadable Keel metadata", "domain", dom.Name, "err", err)
			continue
		}
		st, err := d.state(conn, dom)
		if golibvirt.IsNotFound(err) {
			continue
		}
		if err != nil {
			return nil, err
		}
		out = append(out, driver.Domain{ServerID: formatUUID(dom.UUID), Generation: meta.Generation, PowerState: st.power()})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ServerID < out[j].ServerID })
	return out, nil
}

// Spawn creates the server's root disk and domain and starts it; for an
// existing domain it raises the generation in the metadata and starts the
// domain if it is shut off. A first spawn that fails leaves nothing behind.
func (d *Driver) Spawn(ctx context.Context, a hostapi.Assignment, img driver.Image) error {
	if !ids.IsUUID(a.ID) {
		return fmt.Errorf("libvirt driver: spawn: server id %q is not a UUID", a.ID)
	}
	if a.VCPUs <= 0 || a.MemoryMB <= 0 {
		return fmt.Errorf("libvirt driver: spawn %s: the assignment has %d vCPUs and %d MB of memory", a.ID, a.VCPUs, a.MemoryMB)
	}
	unlock := d.locks.lock(a.ID)
	defer unlock()
	log := d.log.With("server_id", a.ID, "generation", a.Generation)
	conn, err := d.client()
	if err != nil {
		return err
	}
	dom, meta, err := d.lookup(conn, a.ID)
	if err == nil {
		return d.respawn(ctx, conn, dom, meta, a)
	}
	if !errors.Is(err, driver.ErrNotFound) {
		return err
	}

	cached, err := d.ensureImage(ctx, a, img)
	if err != nil {
		return err
	}
	if a.RootGB > 0 && cached.virtualSize > uint64(a.RootGB)<<30 {
		return fmt.Errorf("libvirt driver: spawn %s: image %s is %d bytes, larger than the flavor's %d GB root disk",
			a.ID, a.ImageID, cached.virtualSize, a.RootGB)
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	disk, _, err := d.ensureOverlay(conn, a.ID, cached, a.RootGB)
	if err != nil {
		return err
	}
	rollback := func(cause error) error {
		if uerr := d.undefine(conn, a.ID); uerr != nil {
			log.Error("rollback of a failed spawn: undefine", "err", uerr)
		}
		if derr := d.deleteOverlay(conn, a.ID); derr != nil {
			log.Error("rollback of a failed spawn: delete root disk", "err", derr)
		}
		return cause
	}
	doc, err := domainXML(domainSpec{
		ID: a.ID, VirtType: d.virtType, Arch: d.arch, VCPUs: a.VCPUs, MemoryMB: a.MemoryMB,
		Disk: disk, ConsoleLog: d.consolePath(a.ID), Meta: metaFor(d.cfg.Owner, a),
	})
	if err != nil {
		return rollback(err)
	}
	dom, err = conn.DomainDefineXMLFlags(doc, 0)
	if err != nil {
		return rollback(fmt.Errorf("libvirt driver: define domain of server %s: %w", a.ID, err))
	}
	if err := conn.DomainCreate(dom); err != nil {
		return rollback(fmt.Errorf("libvirt driver: start domain of server %s: %w", a.ID, err))
	}
	log.Info("spawned server", "domain", dom.Name, "virt_type", d.virtType, "vcpus", a.VCPUs, "memory_mb", a.MemoryMB, "disk", disk)
	return nil
}

// respawn is Spawn of a server whose domain exists: never a second
// definition, only the generation and the power state converge.
func (d *Driver) respawn(ctx context.Context, conn *golibvirt.Libvirt, dom golibvirt.Domain, meta serverMeta, a hostapi.Assignment) error {
	log := d.log.With("server_id", a.ID, "generation", a.Generation)
	switch {
	case a.Generation > meta.Generation:
		newMeta := metaFor(d.cfg.Owner, a)
		if err := d.setMetadata(conn, dom, newMeta); err != nil {
			return err
		}
		log.Info("raised the domain's generation", "from", meta.Generation)
	case a.Generation < meta.Generation:
		// The domain was made for a newer placement than the caller knows.
		log.Warn("spawn with an older generation than the domain's; generation kept", "domain_generation", meta.Generation)
	}
	st, err := d.state(conn, dom)
	if err != nil {
		return err
	}
	if st.active() {
		return nil
	}
	if err := conn.DomainCreate(dom); err != nil {
		return fmt.Errorf("libvirt driver: start domain of server %s: %w", a.ID, err)
	}
	log.Info("started existing domain")
	return ctx.Err()
}

// Destroy stops and undefines the server's domain and removes its root
// disk, managed save image and console logs. Leftovers of an earlier
// Destroy that was interrupted are removed too; nothing left is success.
func (d *Driver) Destroy(ctx context.Context, id string) error {
	unlock := d.locks.lock(id)
	defer unlock()
	conn, err := d.client()
	if err != nil {
		return err
	}
	_, _, err = d.lookup(conn, id)
	existed := err == nil
	switch {
	case errors.Is(err, driver.ErrNotFound):
		if !ids.IsUUID(id) {
			return nil // could never have been ours: no files either
		}
	case err != nil:
		return err
	default:
		if err := d.undefine(conn, id); err != nil {
			return err
		}
	}
	if err := d.deleteOverlay(conn, id); err != nil {
		return err
	}
	if err := d.removeConsoleLogs(id); err != nil {
		return err
	}
	if existed {
		d.log.Info("destroyed server", "server_id", id)
	} else {
		d.log.Debug("destroy: no domain; leftover files removed if any", "server_id", id)
	}
	return ctx.Err()
}

// undefine stops the domain if it runs and removes its definition with its
// managed save image and snapshot metadata. A missing domain is fine.
func (d *Driver) undefine(conn *golibvirt.Libvirt, id string) error {
	uuid, err := parseUUID(id)
	if err != nil {
		return err
	}
	dom, err := conn.DomainLookupByUUID(uuid)
	if golibvirt.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("libvirt driver: look up domain of server %s: %w", id, err)
	}
	if err := d.forceOff(conn, dom); err != nil && !golibvirt.IsNotFound(err) {
		return err
	}
	flags := golibvirt.DomainUndefineManagedSave | golibvirt.DomainUndefineSnapshotsMetadata
	if d.virtType != "test" {
		// No Keel domain has UEFI variables today; if one ever does, they go too.
		flags |= golibvirt.DomainUndefineNvram | golibvirt.DomainUndefineCheckpointsMetadata
	}
	if err := conn.DomainUndefineFlags(dom, flags); err != nil && !golibvirt.IsNotFound(err) {
		return fmt.Errorf("libvirt driver: undefine domain of server %s: %w", id, err)
	}
	return nil
}
