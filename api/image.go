package api

import (
	"errors"
	"log/slog"
	"net/http"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/keel-cloud/keel/fsm"
	"github.com/keel-cloud/keel/internal/blobstore"
)

// Images: the Glance v2 subset under /image (image records, tags, members,
// data upload and download) and Nova's deprecated image proxy under
// /compute/v2.1/images. Records live in the FSM (fsm/image*.go); image data
// lives in each controller's blob store (<data-dir>/images), never in the
// Raft log. Handlers are in image_glance.go, image_patch.go, image_data.go
// and image_nova.go.

// imageService holds the state of the image routes of one Server.
type imageService struct {
	s     *Server
	log   *slog.Logger
	blobs *blobstore.Store
	// blobsErr says why blobs is nil: this controller cannot store data.
	blobsErr error
	peers    *http.Client

	mu sync.Mutex
	// pinned counts, by SHA-256, the uploads and fetches using a blob on
	// this controller: a pinned blob is never removed.
	pinned map[string]int
	// fetches are the peer downloads in progress, by SHA-256, so that
	// concurrent readers of one missing blob fetch it once.
	fetches map[string]*blobFetch
	// verified are the local blobs known to hash to their address since
	// this process started (written here, or checked once).
	verified map[string]bool
}

// blobFetch is one download of a blob from the other controllers.
type blobFetch struct {
	done chan struct{}
	err  error
}

// Glance's limits: image_size_cap (1 TiB), limit_param_default and
// api_limit_max.
const (
	imageSizeCap      = 1 << 40
	imageDefaultLimit = 25
	imageMaxLimit     = 1000
)

// blobKeepAfterWrite (nanoseconds): a blob written this recently is never
// removed by the clean-up that follows an image deletion, because an upload
// of the same content may be about to record it. Variable for tests.
var blobKeepAfterWrite atomic.Int64

func init() { blobKeepAfterWrite.Store(int64(10 * time.Minute)) }

func (s *Server) registerImage() {
	is := &imageService{
		s: s, log: s.log.With("area", "image"),
		peers:    &http.Client{Transport: &http.Transport{ResponseHeaderTimeout: 30 * time.Second, IdleConnTimeout: 90 * time.Second, MaxIdleConnsPerHost: 8}},
		pinned:   map[string]int{},
		fetches:  map[string]*blobFetch{},
		verified: map[string]bool{},
	}
	s.images = is
	if s.cfg.DataDir == "" {
		is.blobsErr = errors.New("the controller has no data directory")
	} else if b, err := blobstore.Open(filepath.Join(s.cfg.DataDir, "images")); err != nil {
		is.blobsErr = err
		is.log.Error("image data store unavailable: image uploads and downloads will fail on this controller", "error", err)
	} else {
		is.blobs = b
	}

	const p = "/image/v2"
	for _, r := range []Route{
		{Method: "GET", Path: "/image", Policy: Public, Handle: is.versions(http.StatusMultipleChoices)},
		{Method: "GET", Path: "/image/{$}", Policy: Public, Handle: is.versions(http.StatusMultipleChoices)},
		{Method: "GET", Path: "/image/versions", Policy: Public, Handle: is.versions(http.StatusOK)},
		{Method: "GET", Path: p + "/schemas/image", Policy: Authenticated, Handle: is.schema("image")},
		{Method: "GET", Path: p + "/schemas/images", Policy: Authenticated, Handle: is.schema("images")},
		{Method: "GET", Path: p + "/schemas/member", Policy: Authenticated, Handle: is.schema("member")},
		{Method: "GET", Path: p + "/schemas/members", Policy: Authenticated, Handle: is.schema("members")},
		{Method: "POST", Path: p + "/images", Policy: ProjectMember, Handle: is.createImage},
		{Method: "GET", Path: p + "/images", Policy: ProjectReader, Handle: is.listImages},
		{Method: "GET", Path: p + "/images/{image_id}", Policy: ProjectReader, Handle: is.showImage},
		{Method: "PATCH", Path: p + "/images/{image_id}", Policy: ProjectMember, Handle: is.patchImage},
		{Method: "DELETE", Path: p + "/images/{image_id}", Policy: ProjectMember, Handle: is.deleteImage},
		{Method: "PUT", Path: p + "/images/{image_id}/file", Policy: ProjectMember, Handle: is.uploadData},
		{Method: "GET", Path: p + "/images/{image_id}/file", Policy: ProjectReader, Handle: is.downloadData},
		{Method: "PUT", Path: p + "/images/{image_id}/tags/{tag}", Policy: ProjectMember, Handle: is.addTag},
		{Method: "DELETE", Path: p + "/images/{image_id}/tags/{tag}", Policy: ProjectMember, Handle: is.deleteTag},
		{Method: "GET", Path: p + "/images/{image_id}/members", Policy: ProjectReader, Handle: is.listMembers},
		{Method: "POST", Path: p + "/images/{image_id}/members", Policy: ProjectMember, Handle: is.createMember},
		{Method: "GET", Path: p + "/images/{image_id}/members/{member_id}", Policy: ProjectReader, Handle: is.showMember},
		{Method: "PUT", Path: p + "/images/{image_id}/members/{member_id}", Policy: ProjectMember, Handle: is.updateMember},
		{Method: "DELETE", Path: p + "/images/{image_id}/members/{member_id}", Policy: ProjectMember, Handle: is.deleteMember},
	} {
		r.Service = ServiceImage
		s.handle(r)
	}
	is.registerNovaImages()
	is.registerBlobEndpoints()
}

// imageVersions are the Glance API versions advertised; all are served by
// the one v2 implementation (Glance lists the older ones as SUPPORTED).
var imageVersions = []string{"v2.16", "v2.15", "v2.14", "v2.13", "v2.12", "v2.11", "v2.10", "v2.9", "v2.8", "v2.7", "v2.6", "v2.5", "v2.4", "v2.3", "v2.2", "v2.1", "v2.0"}

// versions is Glance's version document: GET /image/ answers 300 Multiple
// Choices, GET /image/versions 200.
func (is *imageService) versions(status int) HandlerFunc {
	return func(c *Call) error {
		href := is.s.publicURL(c.R) + "/image/v2/"
		var out []map[string]any
		for i, v := range imageVersions {
			st := "SUPPORTED"
			if i == 0 {
				st = "CURRENT"
			}
			out = append(out, map[string]any{"id": v, "status": st, "links": []map[string]string{{"rel": "self", "href": href}}})
		}
		return c.JSON(status, map[string]any{"versions": out})
	}
}

// imageNotFound is Glance's 404.
func imageNotFound(id string) *Error { return notFound("No image found with ID %s", id) }

// visibleImage reads image id and answers 404 unless the caller may see it.
func (is *imageService) visibleImage(c *Call, id string) (*fsm.State, *fsm.Image, fsm.Meta, error) {
	st, err := is.s.readState(c)
	if err != nil {
		return nil, nil, fsm.Meta{}, err
	}
	img, meta, err := fsm.GetImage(st, id)
	if errors.Is(err, fsm.ErrNotFound) || err == nil && !fsm.ImageVisible(img, c.Auth.ProjectID, c.Auth.IsAdmin()) {
		return nil, nil, fsm.Meta{}, imageNotFound(id)
	}
	if err != nil {
		return nil, nil, fsm.Meta{}, err
	}
	return st, img, meta, nil
}

// canModify: only the owner project and admins change an image.
func canModify(a *Auth, img *fsm.Image) bool {
	return a.IsAdmin() || a.ProjectID != "" && a.ProjectID == img.Owner
}

// imageTime renders a record time (unix microseconds) in Glance's format.
func imageTime(micros int64) string {
	return time.UnixMicro(micros).UTC().Format("2006-01-02T15:04:05Z")
}

// nullable renders "" as JSON null.
func nullable(s string) any {
	if s == "" {
		return nil
	}
	return s
}

// imageView renders an image as Glance does: the additional properties are
// top-level attributes beside the schema's.
func imageView(img *fsm.Image) map[string]any {
	v := make(map[string]any, len(img.Properties)+24)
	for k, val := range img.Properties {
		v[k] = val
	}
	tags := img.Tags
	if tags == nil {
		tags = []string{}
	}
	var size, virtualSize any
	if img.SHA256 != "" {
		size = img.Size
		if img.VirtualSize > 0 {
			virtualSize = img.VirtualSize
		}
	}
	for k, val := range map[string]any{
		"id":               img.ID,
		"name":             nullable(img.Name),
		"status":           img.Status,
		"visibility":       img.Visibility,
		"protected":        img.Protected,
		"os_hidden":        img.Hidden,
		"owner":            img.Owner,
		"disk_format":      nullable(img.DiskFormat),
		"container_format": nullable(img.ContainerFormat),
		"size":             size,
		"virtual_size":     virtualSize,
		"checksum":         nullable(img.Checksum),
		"os_hash_algo":     nullable(img.OSHashAlgo),
		"os_hash_value":    nullable(img.OSHashValue),
		"min_disk":         img.MinDisk,
		"min_ram":          img.MinRAM,
		"tags":             tags,
		"created_at":       imageTime(img.CreatedAt),
		"updated_at":       imageTime(img.UpdatedAt),
		"self":             "/v2/images/" + img.ID,
		"file":             "/v2/images/" + img.ID + "/file",
		"schema":           "/v2/schemas/image",
	} {
		v[k] = val
	}
	return v
}
