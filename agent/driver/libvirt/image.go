package libvirt

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/keel-cloud/keel/agent/driver"
	"github.com/keel-cloud/keel/internal/hostapi"
)

// cachedImage is an image file in the pool, ready to back overlays.
type cachedImage struct {
	path        string
	format      string // "raw" or "qcow2"
	virtualSize uint64 // bytes the guest sees
}

// imageFormats are the disk formats the driver boots. Glance knows more
// (vmdk, vdi, iso, ...); converting them is not this driver's job.
var imageFormats = []string{"raw", "qcow2"}

// imageFileName is the cache file of an image in the pool directory.
// Glance images are immutable, so the id alone names the content.
func imageFileName(imageID, format string) string {
	return "image-" + imageID + "." + format
}

// ensureImage returns the cached copy of the assignment's image, fetching
// it through src first if this host has none. The download goes to a
// temporary file that is renamed into place only once its sha256 (when the
// assignment has one) and size are checked, so a crash never leaves a
// half image under the cache name.
func (d *Driver) ensureImage(ctx context.Context, a hostapi.Assignment, src driver.Image) (cachedImage, error) {
	if !safeName(a.ImageID) {
		return cachedImage{}, fmt.Errorf("libvirt driver: image id %q cannot name a file", a.ImageID)
	}
	declared := strings.ToLower(a.ImageFormat)
	formats := imageFormats
	if declared != "" {
		if !slices.Contains(imageFormats, declared) {
			return cachedImage{}, fmt.Errorf("libvirt driver: image %s has disk_format %q; this driver boots %s images only",
				a.ImageID, a.ImageFormat, strings.Join(imageFormats, " and "))
		}
		formats = []string{declared}
	}
	unlock := d.locks.lock("image/" + a.ImageID)
	defer unlock()

	for _, f := range formats {
		path := filepath.Join(d.poolPath, imageFileName(a.ImageID, f))
		if _, err := os.Stat(path); err == nil {
			return inspectImage(path, f)
		}
	}
	if src == nil {
		return cachedImage{}, fmt.Errorf("libvirt driver: image %s is not cached on this host and no image source was given", a.ImageID)
	}
	return d.fetchImage(ctx, a, declared, src)
}

// fetchImage downloads, verifies and caches an image.
func (d *Driver) fetchImage(ctx context.Context, a hostapi.Assignment, format string, src driver.Image) (cachedImage, error) {
	log := d.log.With("image_id", a.ImageID, "server_id", a.ID)
	log.Info("fetching image")
	body, err := src.Open(ctx, a.ImageID)
	if err != nil {
		return cachedImage{}, fmt.Errorf("libvirt driver: fetch image %s: %w", a.ImageID, err)
	}
	defer body.Close()

	tmp, err := os.CreateTemp(d.poolPath, ".image-"+a.ImageID+"-*.part")
	if err != nil {
		return cachedImage{}, fmt.Errorf("libvirt driver: image cache in %s: %w", d.poolPath, err)
	}
	done := false
	defer func() {
		if !done {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	sum := sha256.New()
	n, err := io.Copy(io.MultiWriter(tmp, sum), ctxReader{ctx, body})
	if err != nil {
		return cachedImage{}, fmt.Errorf("libvirt driver: download image %s: %w", a.ImageID, err)
	}
	if a.ImageSize > 0 && n != a.ImageSize {
		return cachedImage{}, fmt.Errorf("libvirt driver: image %s: got %d bytes, the image has %d", a.ImageID, n, a.ImageSize)
	}
	got := hex.EncodeToString(sum.Sum(nil))
	if a.ImageSHA256 != "" && !strings.EqualFold(got, a.ImageSHA256) {
		return cachedImage{}, fmt.Errorf("libvirt driver: image %s: sha256 %s, want %s: corrupt download or tampered image", a.ImageID, got, a.ImageSHA256)
	}
	if format == "" {
		// No declared format: qcow2 if it says so, else raw. Safe because
		// inspectImage refuses qcow2 images that point at other files.
		format = "raw"
		head := make([]byte, 4)
		if _, err := tmp.ReadAt(head, 0); err == nil && bytes.Equal(head, qcow2Magic) {
			format = "qcow2"
		}
	}
	if err := tmp.Sync(); err != nil {
		return cachedImage{}, fmt.Errorf("libvirt driver: image %s: sync: %w", a.ImageID, err)
	}
	if err := tmp.Close(); err != nil {
		return cachedImage{}, fmt.Errorf("libvirt driver: image %s: close: %w", a.ImageID, err)
	}
	// Readable by QEMU, which runs as another user and only reads it.
	if err := os.Chmod(tmp.Name(), 0o644); err != nil {
		return cachedImage{}, fmt.Errorf("libvirt driver: image %s: chmod: %w", a.ImageID, err)
	}
	img, err := inspectImage(tmp.Name(), format)
	if err != nil {
		return cachedImage{}, err
	}
	final := filepath.Join(d.poolPath, imageFileName(a.ImageID, format))
	if err := os.Rename(tmp.Name(), final); err != nil {
		return cachedImage{}, fmt.Errorf("libvirt driver: image %s: %w", a.ImageID, err)
	}
	done = true
	syncDir(d.poolPath)
	img.path = final
	if conn, err := d.client(); err == nil {
		if pool, err := d.pool(conn); err == nil {
			// Only so that virsh vol-list shows it; nothing depends on it.
			_ = conn.StoragePoolRefresh(pool, 0)
		}
	}
	log.Info("cached image", "path", final, "format", format, "bytes", n, "sha256", got)
	return img, nil
}

// inspectImage checks a cached image and reads its virtual size.
func inspectImage(path, format string) (cachedImage, error) {
	img := cachedImage{path: path, format: format}
	f, err := os.Open(path)
	if err != nil {
		return img, fmt.Errorf("libvirt driver: open cached image: %w", err)
	}
	defer f.Close()
	switch format {
	case "raw":
		fi, err := f.Stat()
		if err != nil {
			return img, fmt.Errorf("libvirt driver: stat cached image: %w", err)
		}
		img.virtualSize = uint64(fi.Size())
	case "qcow2":
		head := make([]byte, 512)
		n, err := io.ReadFull(f, head)
		if err != nil && !errors.Is(err, io.ErrUnexpectedEOF) {
			return img, fmt.Errorf("libvirt driver: read cached image %s: %w", path, err)
		}
		size, err := qcow2VirtualSize(head[:n])
		if err != nil {
			return img, fmt.Errorf("libvirt driver: image %s: %w", filepath.Base(path), err)
		}
		img.virtualSize = size
	default:
		return img, fmt.Errorf("libvirt driver: unsupported image format %q", format)
	}
	return img, nil
}

var qcow2Magic = []byte{'Q', 'F', 'I', 0xfb}

// qcow2 incompatible feature bits that make an image unsafe or unusable
// as a backing file: marked corrupt, or its data lives in another file.
const (
	qcow2Corrupt      = 1 << 1
	qcow2ExternalData = 1 << 2
)

// qcow2VirtualSize reads the virtual disk size from a qcow2 header, and
// refuses images that name a backing file or an external data file: a
// user's image must never make QEMU open a file of the host.
func qcow2VirtualSize(h []byte) (uint64, error) {
	if len(h) < 72 || !bytes.Equal(h[:4], qcow2Magic) {
		return 0, errors.New("not a qcow2 image (bad header)")
	}
	be := binary.BigEndian
	version := be.Uint32(h[4:])
	if version != 2 && version != 3 {
		return 0, fmt.Errorf("qcow2 version %d is not supported", version)
	}
	if be.Uint64(h[8:]) != 0 {
		return 0, errors.New("qcow2 image has a backing file: refused")
	}
	if version == 3 {
		if len(h) < 104 {
			return 0, errors.New("qcow2 v3 header is truncated")
		}
		incompatible := be.Uint64(h[72:])
		if incompatible&qcow2ExternalData != 0 {
			return 0, errors.New("qcow2 image has an external data file: refused")
		}
		if incompatible&qcow2Corrupt != 0 {
			return 0, errors.New("qcow2 image is marked corrupt")
		}
	}
	return be.Uint64(h[24:]), nil
}

// ctxReader stops a copy when the context ends.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}

// syncDir makes a rename in dir durable; best effort.
func syncDir(dir string) {
	if f, err := os.Open(dir); err == nil {
		_ = f.Sync()
		f.Close()
	}
}
