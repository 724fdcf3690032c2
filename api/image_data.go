package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/serf/serf"

	"github.com/keel-cloud/keel/cluster"
	"github.com/keel-cloud/keel/fsm"
	"github.com/keel-cloud/keel/internal/blobstore"
	"github.com/keel-cloud/keel/internal/ids"
)

// Image data. An upload streams the body into this controller's blob store
// while hashing it, copies the blob to the other controllers (at least one
// must take it when there are others), and only then makes the image active
// with the controllers holding it as its locations (FinishUpload). A
// download serves the local copy or first fetches one from a controller that
// has it, verifying its SHA-256, and records the new location. Between
// controllers, blobs travel through internal endpoints signed with the
// cluster key:
//
//	HEAD   /internal/v1/blobs/{sha256}   200 if this controller has the blob
//	GET    /internal/v1/blobs/{sha256}   the blob
//	PUT    /internal/v1/blobs/{sha256}   store a blob; refused (400) unless the body hashes to sha256
//	DELETE /internal/v1/blobs/{sha256}   remove the blob if no image refers to it

func (is *imageService) registerBlobEndpoints() {
	const p = "/internal/v1/blobs/{sha256}"
	is.s.mux.Handle("HEAD "+p, is.s.node.Authenticate(http.HandlerFunc(is.blobServe)))
	is.s.mux.Handle("GET "+p, is.s.node.Authenticate(http.HandlerFunc(is.blobServe)))
	is.s.mux.Handle("PUT "+p, is.s.node.Authenticate(http.HandlerFunc(is.blobReceive)))
	is.s.mux.Handle("DELETE "+p, is.s.node.Authenticate(http.HandlerFunc(is.blobDelete)))
}

// blobError answers an internal blob call.
func blobError(w http.ResponseWriter, status int, format string, args ...any) {
	writeJSON(w, status, map[string]string{"error": fmt.Sprintf(format, args...)})
}

func (is *imageService) storeErr() *Error {
	return Errorf(http.StatusServiceUnavailable, "This controller cannot store image data: %v", is.blobsErr)
}

// pin keeps blob sha from being removed while an upload or fetch uses it.
func (is *imageService) pin(sha string) func() {
	is.mu.Lock()
	is.pinned[sha]++
	is.mu.Unlock()
	return func() {
		is.mu.Lock()
		if is.pinned[sha]--; is.pinned[sha] <= 0 {
			delete(is.pinned, sha)
		}
		is.mu.Unlock()
	}
}

func (is *imageService) blobServe(w http.ResponseWriter, r *http.Request) {
	sha := r.PathValue("sha256")
	if is.blobs == nil {
		blobError(w, http.StatusServiceUnavailable, "no image store: %v", is.blobsErr)
		return
	}
	f, err := is.blobs.Open(sha)
	if errors.Is(err, blobstore.ErrNotFound) {
		blobError(w, http.StatusNotFound, "no blob %s on this controller", sha)
		return
	}
	if err != nil {
		blobError(w, http.StatusInternalServerError, "%v", err)
		return
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		blobError(w, http.StatusInternalServerError, "%v", err)
		return
	}
	w.Header().Set("Content-Type", "application/octet-stream")
	w.Header().Set("Content-Length", strconv.FormatInt(fi.Size(), 10))
	if r.Method == http.MethodHead {
		w.WriteHeader(http.StatusOK)
		return
	}
	if _, err := io.Copy(w, f); err != nil {
		is.log.Warn("sending a blob to a controller failed", "sha256", sha, "error", err)
	}
}

// blobReceive stores a blob a controller sends, if it hashes to its name.
func (is *imageService) blobReceive(w http.ResponseWriter, r *http.Request) {
	sha := r.PathValue("sha256")
	if !blobstore.Valid(sha) {
		blobError(w, http.StatusBadRequest, "invalid blob address %q", sha)
		return
	}
	if is.blobs == nil {
		blobError(w, http.StatusServiceUnavailable, "no image store: %v", is.blobsErr)
		return
	}
	defer is.pin(sha)()
	sums, err := is.blobs.Put(r.Body, sha, imageSizeCap)
	switch {
	case errors.Is(err, blobstore.ErrMismatch):
		is.log.Warn("refused a blob whose data does not match its sha256", "sha256", sha, "got", sums.SHA256, "remote", r.RemoteAddr)
		blobError(w, http.StatusBadRequest, "the data hashes to %s, not %s: refused", sums.SHA256, sha)
		return
	case err != nil:
		blobError(w, http.StatusInternalServerError, "store blob %s: %v", sha, err)
		return
	}
	is.markVerified(sha, true)
	w.WriteHeader(http.StatusNoContent)
}

// markVerified records whether local blob sha is known to be sound.
func (is *imageService) markVerified(sha string, ok bool) {
	is.mu.Lock()
	defer is.mu.Unlock()
	if ok {
		is.verified[sha] = true
	} else {
		delete(is.verified, sha)
	}
}

// blobDelete removes a blob no image refers to any more.
func (is *imageService) blobDelete(w http.ResponseWriter, r *http.Request) {
	sha := r.PathValue("sha256")
	if !blobstore.Valid(sha) {
		blobError(w, http.StatusBadRequest, "invalid blob address %q", sha)
		return
	}
	if is.blobs == nil {
		w.WriteHeader(http.StatusNoContent)
		return
	}
	removed, err := is.removeUnusedBlob(r.Context(), sha)
	if err != nil {
		blobError(w, http.StatusInternalServerError, "%v", err)
		return
	}
	if !removed {
		blobError(w, http.StatusConflict, "blob %s is in use or recent; kept", sha)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// removeUnusedBlob removes the local blob sha unless an image refers to it
// (read linearizably), an upload or fetch here uses it, or it was written
// less than blobKeepAfterWrite ago (an upload of the same content elsewhere
// may be about to record it).
func (is *imageService) removeUnusedBlob(ctx context.Context, sha string) (bool, error) {
	if err := is.s.node.Consistent(ctx); err != nil {
		return false, err
	}
	users, err := fsm.ImagesWithData(is.s.node.State(), sha)
	if err != nil {
		return false, err
	}
	is.mu.Lock()
	pinned := is.pinned[sha] > 0
	is.mu.Unlock()
	if len(users) > 0 || pinned {
		return false, nil
	}
	f, err := is.blobs.Open(sha)
	if errors.Is(err, blobstore.ErrNotFound) {
		return true, nil
	}
	if err != nil {
		return false, err
	}
	fi, err := f.Stat()
	f.Close()
	if err != nil {
		return false, err
	}
	if time.Since(fi.ModTime()) < time.Duration(blobKeepAfterWrite.Load()) {
		return false, nil
	}
	is.markVerified(sha, false)
	return true, is.blobs.Remove(sha)
}

// releaseData removes the data of a deleted image from the controllers
// that hold it, if no other image uses it. Best effort, in the background:
// a blob left behind wastes space but breaks nothing.
func (is *imageService) releaseData(gone *fsm.Image) {
	if gone == nil || gone.SHA256 == "" || is.blobs == nil {
		return
	}
	sha, locs := gone.SHA256, gone.Locations
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if _, err := is.removeUnusedBlob(ctx, sha); err != nil {
			is.log.Warn("removing the data of a deleted image failed", "sha256", sha, "error", err)
			return
		}
		for _, p := range is.controllers() {
			if p.name == is.s.node.Name() || !slices.Contains(locs, p.name) {
				continue
			}
			req, err := is.s.node.NewPeerRequest(ctx, http.MethodDelete, p.addr, "/internal/v1/blobs/"+sha, nil)
			if err != nil {
				continue
			}
			if resp, err := is.peers.Do(req); err == nil {
				resp.Body.Close()
			}
		}
	}()
}

// peer is another controller.
type peer struct{ name, addr string }

// controllers returns the controllers gossip knows alive, this one
// included, by name.
func (is *imageService) controllers() []peer {
	var out []peer
	for _, m := range is.s.node.Members(cluster.RoleController) {
		if m.Status != serf.StatusAlive || m.Tags[cluster.TagAPIAddr] == "" {
			continue
		}
		out = append(out, peer{name: m.Name, addr: m.Tags[cluster.TagAPIAddr]})
	}
	slices.SortFunc(out, func(a, b peer) int { return strings.Compare(a.name, b.name) })
	return out
}

// --- upload -------------------------------------------------------------------

// uploadData is PUT /v2/images/{image_id}/file.
func (is *imageService) uploadData(c *Call) error {
	id := c.Param("image_id")
	if ct := c.R.Header.Get("Content-Type"); ct != "" {
		if mt, _, err := mime.ParseMediaType(ct); err != nil || mt != "application/octet-stream" {
			return Errorf(http.StatusUnsupportedMediaType, "Unsupported Content-Type %q: image data is sent as application/octet-stream.", ct)
		}
	}
	_, img, _, err := is.visibleImage(c, id)
	if err != nil {
		return err
	}
	if !canModify(c.Auth, img) {
		return forbidden("You are not authorized to complete upload_image action.")
	}
	if img.Status != fsm.ImageQueued {
		return conflict("Image status transition from %s to %s is not allowed", img.Status, fsm.ImageSaving)
	}
	if img.DiskFormat == "" || img.ContainerFormat == "" {
		return badRequest("Properties disk_format, container_format must be set prior to saving data.")
	}
	if is.blobs == nil {
		return is.storeErr()
	}
	if c.R.ContentLength > imageSizeCap {
		return Errorf(http.StatusRequestEntityTooLarge, "Image exceeds the storage quota: at most %d bytes.", int64(imageSizeCap))
	}
	upload := ids.UUID()
	if err := is.s.apply(c.Context(), &fsm.BeginUpload{ID: id, UploadID: upload, Now: time.Now().UnixMicro()}, nil); err != nil {
		return err
	}
	if err := is.receiveUpload(c, img, upload); err != nil {
		// Glance's behaviour: a failed upload leaves the image queued.
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if aerr := is.s.apply(ctx, &fsm.AbortUpload{ID: id, UploadID: upload, Now: time.Now().UnixMicro()}, nil); aerr != nil && !errors.Is(aerr, fsm.ErrNotFound) {
			c.Log.Warn("returning the image to queued after a failed upload failed", "image", id, "error", aerr)
		}
		// A blob stored by the failed upload stays: another upload of the
		// same content may be using it. It is garbage, not a hazard.
		return err
	}
	return c.NoContent(http.StatusNoContent)
}

// receiveUpload stores the body, copies it to the other controllers and
// finishes the upload.
func (is *imageService) receiveUpload(c *Call, img *fsm.Image, upload string) error {
	w, err := is.blobs.Create(imageSizeCap)
	if err != nil {
		return err
	}
	defer w.Abort()
	if _, err := w.ReadFrom(c.R.Body); err != nil {
		if errors.Is(err, blobstore.ErrTooLarge) {
			return Errorf(http.StatusRequestEntityTooLarge, "Image exceeds the storage quota: at most %d bytes.", int64(imageSizeCap))
		}
		return badRequest("Error reading the image data from the request: %v", err)
	}
	if c.R.ContentLength >= 0 && w.Sums().Size != c.R.ContentLength {
		return badRequest("The request announced %d bytes of image data but carried %d.", c.R.ContentLength, w.Sums().Size)
	}
	sums := w.Sums()
	defer is.pin(sums.SHA256)()
	if _, err := w.Commit(sums.SHA256); err != nil {
		return err
	}
	is.markVerified(sums.SHA256, true)
	self := is.s.node.Name()
	locations := []string{self}
	others := 0
	for _, p := range is.controllers() {
		if p.name != self {
			others++
		}
	}
	copies := is.replicate(c.Context(), sums.SHA256, sums.Size)
	locations = append(locations, copies...)
	if others > 0 && len(copies) == 0 {
		return Errorf(http.StatusServiceUnavailable,
			"The image data could not be copied to another controller, so it would not survive the loss of this one; retry the upload (request %s).", c.RequestID)
	}
	err = is.s.apply(c.Context(), &fsm.FinishUpload{
		ID: img.ID, UploadID: upload, Size: sums.Size, Checksum: sums.MD5, OSHashValue: sums.SHA512,
		SHA256: sums.SHA256, Locations: locations, Now: time.Now().UnixMicro(),
	}, nil)
	if errors.Is(err, fsm.ErrNotFound) {
		return Errorf(http.StatusGone, "Image %s could not be found after upload. The image may have been deleted during the upload.", img.ID)
	}
	if err != nil {
		return err
	}
	return nil
}

// replicate copies blob sha to every other live controller, in parallel,
// and returns the names of those that took it.
func (is *imageService) replicate(ctx context.Context, sha string, size int64) []string {
	self := is.s.node.Name()
	var mu sync.Mutex
	var ok []string
	var wg sync.WaitGroup
	for _, p := range is.controllers() {
		if p.name == self {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := is.pushBlob(ctx, p, sha, size); err != nil {
				is.log.Warn("copying image data to a controller failed", "controller", p.name, "sha256", sha, "error", err)
				return
			}
			mu.Lock()
			ok = append(ok, p.name)
			mu.Unlock()
		}()
	}
	wg.Wait()
	slices.Sort(ok)
	return ok
}

// pushBlob sends blob sha to controller p unless it has it already.
func (is *imageService) pushBlob(ctx context.Context, p peer, sha string, size int64) error {
	path := "/internal/v1/blobs/" + sha
	head, err := is.s.node.NewPeerRequest(ctx, http.MethodHead, p.addr, path, nil)
	if err != nil {
		return err
	}
	if resp, err := is.peers.Do(head); err == nil {
		resp.Body.Close()
		if resp.StatusCode == http.StatusOK && resp.ContentLength == size {
			return nil
		}
	}
	f, err := is.blobs.Open(sha)
	if err != nil {
		return err
	}
	defer f.Close()
	req, err := is.s.node.NewPeerRequest(ctx, http.MethodPut, p.addr, path, f)
	if err != nil {
		return err
	}
	req.ContentLength = size
	req.Header.Set("Content-Type", "application/octet-stream")
	resp, err := is.peers.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusNoContent {
		return peerError(resp)
	}
	return nil
}

// peerError describes an internal call's failure.
func peerError(resp *http.Response) error {
	var e struct {
		Error   string `json:"error"`
		Message string `json:"message"`
	}
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<16))
	if json.Unmarshal(b, &e) == nil && (e.Error != "" || e.Message != "") {
		return fmt.Errorf("HTTP %d: %s%s", resp.StatusCode, e.Error, e.Message)
	}
	return fmt.Errorf("HTTP %d", resp.StatusCode)
}

// --- download -----------------------------------------------------------------

// downloadData is GET /v2/images/{image_id}/file: 204 while the image has
// no data; otherwise the data (Range requests too), with its MD5 in
// Content-MD5 as Glance sends it.
func (is *imageService) downloadData(c *Call) error {
	_, img, _, err := is.visibleImage(c, c.Param("image_id"))
	if err != nil {
		return err
	}
	if img.Status != fsm.ImageActive || img.SHA256 == "" {
		return c.NoContent(http.StatusNoContent)
	}
	if is.blobs == nil {
		return is.storeErr()
	}
	defer is.pin(img.SHA256)()
	f, err := is.localBlob(img)
	if err != nil {
		if err := is.fetch(c.Context(), img); err != nil {
			return err
		}
		if f, err = is.localBlob(img); err != nil {
			return err
		}
	}
	defer f.Close()
	h := c.W.Header()
	h.Set("Content-Type", "application/octet-stream")
	if c.R.Header.Get("Range") == "" {
		h.Set("Content-MD5", img.Checksum)
	}
	http.ServeContent(c.W, c.R, "", time.Time{}, f)
	return nil
}

// localBlob opens this controller's copy of img's data if it has a sound
// one. A blob this process did not write or check is verified first (once):
// a rotten one is removed, and fetched again from another controller.
func (is *imageService) localBlob(img *fsm.Image) (*os.File, error) {
	is.mu.Lock()
	verified := is.verified[img.SHA256]
	is.mu.Unlock()
	if !verified && is.blobs.Has(img.SHA256) {
		if err := is.blobs.Verify(img.SHA256); err != nil {
			is.log.Error("a local image blob failed verification", "sha256", img.SHA256, "error", err)
			return nil, err
		}
		is.markVerified(img.SHA256, true)
	}
	f, err := is.blobs.Open(img.SHA256)
	if err != nil {
		return nil, err
	}
	if fi, err := f.Stat(); err != nil || fi.Size() != img.Size {
		f.Close()
		if err == nil {
			// Not the data the image recorded: drop it and fetch again.
			is.log.Error("a local image blob has the wrong size; removing it", "sha256", img.SHA256, "size", fi.Size(), "want", img.Size)
			is.blobs.Remove(img.SHA256)
			is.markVerified(img.SHA256, false)
			err = blobstore.ErrMismatch
		}
		return nil, err
	}
	return f, nil
}

// fetch copies img's data from a controller that has it, verifying its
// SHA-256, and records this controller as a location. Concurrent fetches of
// one blob share one download.
func (is *imageService) fetch(ctx context.Context, img *fsm.Image) error {
	is.mu.Lock()
	f, running := is.fetches[img.SHA256]
	if !running {
		f = &blobFetch{done: make(chan struct{})}
		is.fetches[img.SHA256] = f
	}
	is.mu.Unlock()
	if !running {
		go func() {
			// Not bound to one request: the others wait for it too.
			fctx, cancel := context.WithTimeout(context.Background(), time.Hour)
			defer cancel()
			f.err = is.fetchFromPeers(fctx, img)
			is.mu.Lock()
			delete(is.fetches, img.SHA256)
			is.mu.Unlock()
			close(f.done)
		}()
	}
	select {
	case <-f.done:
	case <-ctx.Done():
		return ctx.Err()
	}
	if f.err != nil {
		return f.err
	}
	self := is.s.node.Name()
	if !slices.Contains(img.Locations, self) {
		err := is.s.apply(ctx, &fsm.AddImageLocation{ID: img.ID, SHA256: img.SHA256, Location: self}, nil)
		if err != nil {
			is.log.Warn("recording a new location of image data failed", "image", img.ID, "error", err)
		}
	}
	return nil
}

// fetchFromPeers tries the image's locations first, then every other live
// controller (another image may have brought the same data there).
func (is *imageService) fetchFromPeers(ctx context.Context, img *fsm.Image) error {
	defer is.pin(img.SHA256)()
	self := is.s.node.Name()
	live := is.controllers()
	var order []peer
	for _, p := range live {
		if p.name != self && slices.Contains(img.Locations, p.name) {
			order = append(order, p)
		}
	}
	for _, p := range live {
		if p.name != self && !slices.Contains(img.Locations, p.name) {
			order = append(order, p)
		}
	}
	var errs []error
	for _, p := range order {
		err := is.pullBlob(ctx, p, img.SHA256, img.Size)
		if err == nil {
			return nil
		}
		errs = append(errs, fmt.Errorf("%s: %w", p.name, err))
		if !slices.Contains(img.Locations, p.name) {
			continue
		}
		is.log.Warn("fetching image data from a controller failed", "controller", p.name, "sha256", img.SHA256, "error", err)
	}
	is.log.Error("no controller could provide image data", "image", img.ID, "sha256", img.SHA256, "locations", img.Locations, "errors", errors.Join(errs...))
	return Errorf(http.StatusServiceUnavailable, "The data of image %s is not available: none of the controllers holding it (%v) could provide it.", img.ID, img.Locations)
}

// pullBlob downloads blob sha from p into the local store, verifying it.
func (is *imageService) pullBlob(ctx context.Context, p peer, sha string, size int64) error {
	req, err := is.s.node.NewPeerRequest(ctx, http.MethodGet, p.addr, "/internal/v1/blobs/"+sha, nil)
	if err != nil {
		return err
	}
	resp, err := is.peers.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return peerError(resp)
	}
	sums, err := is.blobs.Put(resp.Body, sha, imageSizeCap)
	if err != nil {
		return err
	}
	is.markVerified(sha, true)
	if sums.Size != size {
		// Cannot happen for a matching sha256; the record is what is wrong.
		return fmt.Errorf("blob %s has %d bytes, the image records %d", sha, sums.Size, size)
	}
	return nil
}
