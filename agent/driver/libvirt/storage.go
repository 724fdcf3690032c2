package libvirt

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	golibvirt "github.com/digitalocean/go-libvirt"
	"libvirt.org/go/libvirtxml"
)

// ensurePool makes sure the storage pool exists, is autostarted and runs,
// and records its target directory. An existing pool of that name is used
// as it is (an operator may have put it on another disk), as long as it is
// a pool of local files.
func (d *Driver) ensurePool(ctx context.Context, conn *golibvirt.Libvirt) error {
	name := d.cfg.PoolName
	pool, err := conn.StoragePoolLookupByName(name)
	if isCode(err, golibvirt.ErrNoStoragePool) {
		path := filepath.Join(d.cfg.StateDir, "pool")
		if err := os.MkdirAll(path, 0o755); err != nil {
			return fmt.Errorf("libvirt driver: create pool directory %s: %w", path, err)
		}
		def := libvirtxml.StoragePool{
			Type: "dir",
			Name: name,
			Target: &libvirtxml.StoragePoolTarget{
				Path:        path,
				Permissions: &libvirtxml.StoragePoolTargetPermissions{Mode: "0755"},
			},
		}
		doc, err := def.Marshal()
		if err != nil {
			return fmt.Errorf("libvirt driver: pool XML: %w", err)
		}
		pool, err = conn.StoragePoolDefineXML(doc, 0)
		if err != nil {
			return fmt.Errorf("libvirt driver: define storage pool %q at %s: %w", name, path, err)
		}
		if err := conn.StoragePoolSetAutostart(pool, 1); err != nil {
			return fmt.Errorf("libvirt driver: autostart storage pool %q: %w", name, err)
		}
		d.log.Info("defined storage pool", "pool", name, "path", path)
	} else if err != nil {
		return fmt.Errorf("libvirt driver: look up storage pool %q: %w", name, err)
	}
	active, err := conn.StoragePoolIsActive(pool)
	if err != nil {
		return fmt.Errorf("libvirt driver: storage pool %q state: %w", name, err)
	}
	if active == 0 {
		if err := conn.StoragePoolCreate(pool, 0); err != nil {
			return fmt.Errorf("libvirt driver: start storage pool %q: %w", name, err)
		}
	}
	doc, err := conn.StoragePoolGetXMLDesc(pool, 0)
	if err != nil {
		return fmt.Errorf("libvirt driver: storage pool %q XML: %w", name, err)
	}
	var def libvirtxml.StoragePool
	if err := def.Unmarshal(doc); err != nil {
		return fmt.Errorf("libvirt driver: parse storage pool %q XML: %w", name, err)
	}
	if def.Type != "dir" && def.Type != "fs" && def.Type != "netfs" || def.Target == nil || def.Target.Path == "" {
		return fmt.Errorf("libvirt driver: storage pool %q is of type %q: keel needs a pool of files (type dir); name another pool with --libvirt-pool", name, def.Type)
	}
	d.poolPath = def.Target.Path
	// The driver writes cached images into the pool directory itself.
	if err := os.MkdirAll(d.poolPath, 0o755); err != nil {
		return fmt.Errorf("libvirt driver: pool directory %s: %w", d.poolPath, err)
	}
	return ctx.Err()
}

// pool returns the storage pool handle (cheap: one lookup).
func (d *Driver) pool(conn *golibvirt.Libvirt) (golibvirt.StoragePool, error) {
	pool, err := conn.StoragePoolLookupByName(d.cfg.PoolName)
	if err != nil {
		return pool, fmt.Errorf("libvirt driver: storage pool %q: %w; the agent recreates it when restarted", d.cfg.PoolName, err)
	}
	return pool, nil
}

// overlayName is the name of a server's root disk volume in the pool.
func overlayName(serverID string) string { return serverID + ".qcow2" }

// ensureOverlay creates the server's root disk, a qcow2 overlay on the
// cached image with a virtual size of max(rootGB, image size), unless it
// exists already. It returns the overlay's path.
func (d *Driver) ensureOverlay(conn *golibvirt.Libvirt, serverID string, img cachedImage, rootGB int) (path string, created bool, err error) {
	pool, err := d.pool(conn)
	if err != nil {
		return "", false, err
	}
	name := overlayName(serverID)
	vol, err := conn.StorageVolLookupByName(pool, name)
	if err == nil {
		path, err := conn.StorageVolGetPath(vol)
		if err != nil {
			return "", false, fmt.Errorf("libvirt driver: path of volume %s: %w", name, err)
		}
		return path, false, nil
	}
	if !isCode(err, golibvirt.ErrNoStorageVol) {
		return "", false, fmt.Errorf("libvirt driver: look up volume %s: %w", name, err)
	}
	capacity := uint64(rootGB) << 30
	if capacity < img.virtualSize {
		capacity = img.virtualSize
	}
	def := libvirtxml.StorageVolume{
		Type:     "file",
		Name:     name,
		Capacity: &libvirtxml.StorageVolumeSize{Unit: "bytes", Value: capacity},
		Target: &libvirtxml.StorageVolumeTarget{
			Format: &libvirtxml.StorageVolumeTargetFormat{Type: "qcow2"},
			// The guest's disk: nobody but root and QEMU (libvirt hands
			// the file to QEMU's user while the domain runs) reads it.
			Permissions: &libvirtxml.StorageVolumeTargetPermissions{Mode: "0600"},
		},
		BackingStore: &libvirtxml.StorageVolumeBackingStore{
			Path:   img.path,
			Format: &libvirtxml.StorageVolumeTargetFormat{Type: img.format},
		},
	}
	doc, err := def.Marshal()
	if err != nil {
		return "", false, fmt.Errorf("libvirt driver: volume XML: %w", err)
	}
	vol, err = conn.StorageVolCreateXML(pool, doc, 0)
	if err != nil {
		return "", false, fmt.Errorf("libvirt driver: create root disk %s on %s: %w", name, img.path, err)
	}
	path, err = conn.StorageVolGetPath(vol)
	if err != nil {
		return "", true, fmt.Errorf("libvirt driver: path of volume %s: %w", name, err)
	}
	d.log.Info("created root disk", "server_id", serverID, "path", path, "backing", img.path, "virtual_size", capacity)
	return path, true, nil
}

// deleteOverlay removes a server's root disk, from libvirt and from the
// directory (a file libvirt does not know of yet is removed too).
func (d *Driver) deleteOverlay(conn *golibvirt.Libvirt, serverID string) error {
	name := overlayName(serverID)
	pool, err := d.pool(conn)
	if err != nil {
		return err
	}
	vol, err := conn.StorageVolLookupByName(pool, name)
	switch {
	case err == nil:
		if err := conn.StorageVolDelete(vol, golibvirt.StorageVolDeleteNormal); err != nil && !isCode(err, golibvirt.ErrNoStorageVol) {
			return fmt.Errorf("libvirt driver: delete volume %s: %w", name, err)
		}
	case !isCode(err, golibvirt.ErrNoStorageVol):
		return fmt.Errorf("libvirt driver: look up volume %s: %w", name, err)
	}
	if err := os.Remove(filepath.Join(d.poolPath, name)); err != nil && !os.IsNotExist(err) {
		return fmt.Errorf("libvirt driver: remove %s: %w", name, err)
	}
	return nil
}

// consolePath is the serial console log of a server.
func (d *Driver) consolePath(serverID string) string {
	return filepath.Join(d.consoleDir, serverID+".log")
}

// removeConsoleLogs removes a server's console log and the files virtlogd
// rotated it into (<id>.log.0, .1, ...).
func (d *Driver) removeConsoleLogs(serverID string) error {
	matches, err := filepath.Glob(d.consolePath(serverID) + ".*")
	if err != nil {
		return err
	}
	for _, p := range append(matches, d.consolePath(serverID)) {
		if err := os.Remove(p); err != nil && !os.IsNotExist(err) {
			return fmt.Errorf("libvirt driver: remove console log %s: %w", p, err)
		}
	}
	return nil
}

// isCode reports whether err is a libvirt error with that code.
func isCode(err error, code golibvirt.ErrorNumber) bool {
	var e golibvirt.Error
	return errors.As(err, &e) && e.Code == uint32(code)
}

// safeName reports whether s can be part of a file name as it is.
func safeName(s string) bool {
	if s == "" || len(s) > 128 || strings.HasPrefix(s, ".") {
		return false
	}
	for _, c := range s {
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '_' || c == '.') {
			return false
		}
	}
	return true
}
