package api

import (
	"bytes"
	"context"
	"crypto/md5"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/keel-cloud/keel/cluster"
	"github.com/keel-cloud/keel/fsm"
)

func randomBytes(t testing.TB, n int) []byte {
	t.Helper()
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return b
}

func sha256Hex(b []byte) string { s := sha256.Sum256(b); return hex.EncodeToString(s[:]) }
func md5Hex(b []byte) string    { s := md5.Sum(b); return hex.EncodeToString(s[:]) }

// blobPath is where node i keeps blob sha.
func (e *imageEnv) blobPath(i int, sha string) string {
	return filepath.Join(e.ac.Nodes[i].Dir(), "images", sha)
}

func (e *imageEnv) newRawImage(t *testing.T, node int, tok, name string) string {
	t.Helper()
	return createImage(t, e.url(node), tok, map[string]any{"name": name, "disk_format": "raw", "container_format": "bare"})["id"].(string)
}

func (e *imageEnv) upload(t *testing.T, node int, tok, id string, data []byte) resp {
	t.Helper()
	return doRaw(t, "PUT", e.url(node)+"/images/"+id+"/file", tok, data, "application/octet-stream")
}

func (e *imageEnv) download(t *testing.T, node int, tok, id string) resp {
	t.Helper()
	return doRaw(t, "GET", e.url(node)+"/images/"+id+"/file", tok, nil, "")
}

func stateImage(t *testing.T, n *cluster.TestNode, id string) *fsm.Image {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := n.Consistent(ctx); err != nil { // n may be a follower
		t.Fatal(err)
	}
	img, _, err := fsm.GetImage(n.State(), id)
	if err != nil {
		t.Fatalf("%s: image %s: %v", n.Cfg.Name, id, err)
	}
	return img
}

// Acceptance (image durability): data uploaded through one controller is
// downloaded byte for byte through another, and still after the first one
// is gone; a controller that lacks the data fetches it from another,
// verifies it and records itself as a location; corrupt data from a peer
// is refused.
func TestImageDataAcrossControllers(t *testing.T) {
	e := newImageEnv(t, 3)
	alice := e.as(t, "alice")
	n1, n2 := e.ac.Nodes[0].Cfg.Name, e.ac.Nodes[1].Cfg.Name

	// Upload on node 1, download on node 2.
	dataA := randomBytes(t, 3<<20+17)
	a := e.newRawImage(t, 0, alice, "durable")
	mustStatus(t, e.download(t, 0, alice, a), 204, "download before upload")
	mustStatus(t, e.upload(t, 0, alice, a, dataA), 204, "upload on node 1")
	img := do(t, "GET", e.url(1)+"/images/"+a, alice, nil).json(t)
	if img["status"] != "active" || img["size"] != float64(len(dataA)) || img["checksum"] != md5Hex(dataA) ||
		img["os_hash_algo"] != "sha512" || len(img["os_hash_value"].(string)) != 128 {
		t.Fatalf("image after upload: %v", img)
	}
	rec := stateImage(t, e.ac.Nodes[1], a)
	if rec.SHA256 != sha256Hex(dataA) || len(rec.Locations) != 3 || !slices.Contains(rec.Locations, n1) {
		t.Fatalf("record after upload: sha %s locations %v", rec.SHA256, rec.Locations)
	}
	for i := range 3 {
		if _, err := os.Stat(e.blobPath(i, rec.SHA256)); err != nil {
			t.Fatalf("node %d has no copy after the upload was answered: %v", i+1, err)
		}
	}
	r := e.download(t, 1, alice, a)
	mustStatus(t, r, 200, "download on node 2")
	if !bytes.Equal(r.Body, dataA) {
		t.Fatalf("node 2 served %d other bytes", len(r.Body))
	}
	if r.Header.Get("Content-MD5") != md5Hex(dataA) || r.Header.Get("Content-Type") != "application/octet-stream" {
		t.Fatalf("download headers %v", r.Header)
	}
	r = doRaw(t, "GET", e.url(1)+"/images/"+a+"/file", alice, nil, "", "Range", "bytes=10-19")
	mustStatus(t, r, 206, "range download")
	if !bytes.Equal(r.Body, dataA[10:20]) {
		t.Fatal("range download served other bytes")
	}

	// Node 2 is down during an upload: the data goes to nodes 1 and 3.
	// Back up, node 2 fetches it on the first download and says so.
	e.ac.Kill(1)
	e.ac.WaitLeader(15 * time.Second)
	dataB := randomBytes(t, 700<<10)
	b := e.newRawImage(t, 0, alice, "fetched")
	mustStatus(t, e.upload(t, 0, alice, b, dataB), 204, "upload with node 2 down")
	if locs := stateImage(t, e.ac.Nodes[0], b).Locations; slices.Contains(locs, n2) || len(locs) != 2 {
		t.Fatalf("locations with node 2 down: %v", locs)
	}
	e.ac.Restart(1)
	e.ac.WaitLeader(15 * time.Second)
	cluster.WaitFor(t, 15*time.Second, "node 2 to download after its restart", func() bool {
		r = e.download(t, 1, alice, b)
		return r.Status == 200
	})
	if !bytes.Equal(r.Body, dataB) {
		t.Fatal("node 2 fetched other bytes")
	}
	if _, err := os.Stat(e.blobPath(1, sha256Hex(dataB))); err != nil {
		t.Fatalf("node 2 did not keep the fetched copy: %v", err)
	}
	// The new location is replicated; node 1's copy of the state may lag.
	cluster.WaitFor(t, 5*time.Second, n2+" recorded as a location of the fetched image", func() bool {
		return slices.Contains(stateImage(t, e.ac.Nodes[0], b).Locations, n2)
	})

	// Node 1, which took both uploads, dies: nodes 2 and 3 still serve both.
	e.ac.Kill(0)
	e.ac.WaitLeader(15 * time.Second)
	for _, i := range []int{1, 2} {
		for id, data := range map[string][]byte{a: dataA, b: dataB} {
			cluster.WaitFor(t, 15*time.Second, "a download after node 1 is gone", func() bool {
				r = e.download(t, i, alice, id)
				return r.Status == 200
			})
			if !bytes.Equal(r.Body, data) {
				t.Fatalf("node %d served other bytes of %s after node 1 died", i+1, id)
			}
		}
	}

	// Node 3's copy of B rots (same size, other bytes) and node 2 loses
	// its own: node 2 refuses what node 3 sends, and keeps nothing.
	shaB := sha256Hex(dataB)
	rotten := bytes.Clone(dataB)
	rotten[1000] ^= 0xff
	if err := os.WriteFile(e.blobPath(2, shaB), rotten, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(e.blobPath(1, shaB)); err != nil {
		t.Fatal(err)
	}
	r = e.download(t, 1, alice, b)
	mustStatus(t, r, 503, "download of corrupt data")
	if _, err := os.Stat(e.blobPath(1, shaB)); err == nil {
		t.Fatal("node 2 kept corrupt data")
	}
}

// The internal blob endpoint refuses unsigned calls and data that does not
// hash to its address.
func testImageBlobEndpoint(t *testing.T, e *imageEnv) {
	node := e.ac.Nodes[0]
	data := []byte("the bytes that were sent")
	claimed := sha256Hex([]byte("the bytes that were promised"))
	ctx := context.Background()

	unsigned, _ := http.NewRequest("PUT", e.ac.url(0)+"/internal/v1/blobs/"+claimed, bytes.NewReader(data))
	res, err := http.DefaultClient.Do(unsigned)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode < 400 || res.StatusCode >= 500 {
		t.Fatalf("unsigned blob upload: HTTP %d", res.StatusCode)
	}

	req, _ := node.NewPeerRequest(ctx, "PUT", node.Cfg.APIAddr, "/internal/v1/blobs/"+claimed, bytes.NewReader(data))
	res, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != 400 || !strings.Contains(string(body), "refused") {
		t.Fatalf("corrupt blob: HTTP %d %s", res.StatusCode, body)
	}
	for _, sha := range []string{claimed, sha256Hex(data)} {
		if _, err := os.Stat(e.blobPath(0, sha)); err == nil {
			t.Fatalf("blob %s kept after a corrupt transfer", sha)
		}
	}
	// The right address is accepted, and served back.
	req, _ = node.NewPeerRequest(ctx, "PUT", node.Cfg.APIAddr, "/internal/v1/blobs/"+sha256Hex(data), bytes.NewReader(data))
	res, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != 204 {
		t.Fatalf("good blob: HTTP %d", res.StatusCode)
	}
	req, _ = node.NewPeerRequest(ctx, "GET", node.Cfg.APIAddr, "/internal/v1/blobs/"+sha256Hex(data), nil)
	res, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	back, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != 200 || !bytes.Equal(back, data) {
		t.Fatalf("get blob: HTTP %d %q", res.StatusCode, back)
	}
	// No image refers to it, but it is too recent to remove.
	req, _ = node.NewPeerRequest(ctx, "DELETE", node.Cfg.APIAddr, "/internal/v1/blobs/"+sha256Hex(data), nil)
	res, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != 409 {
		t.Fatalf("delete a fresh blob: HTTP %d", res.StatusCode)
	}
}

// Upload states: one upload at a time, none to an active image, owners
// only; an interrupted upload leaves the image queued (Glance's
// behaviour), ready for another.
func testImageUploadStates(t *testing.T, e *imageEnv) {
	id := e.newRawImage(t, 0, e.as(t, "alice"), "states")
	mustStatus(t, e.upload(t, 0, e.as(t, "rita"), id, []byte("x")), 403, "a reader uploads")

	// A client that dies in the middle of its upload.
	u, _ := http.NewRequest("PUT", e.url(0)+"/images/"+id+"/file", nil)
	conn, err := net.Dial("tcp", u.URL.Host)
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprintf(conn, "PUT %s HTTP/1.1\r\nHost: %s\r\nX-Auth-Token: %s\r\nContent-Type: application/octet-stream\r\nContent-Length: 100000\r\n\r\npartial data",
		u.URL.Path, u.URL.Host, e.as(t, "alice"))
	cluster.WaitFor(t, 10*time.Second, "the upload to begin", func() bool {
		return stateImage(t, e.ac.Nodes[0], id).Status == fsm.ImageSaving
	})
	mustStatus(t, e.upload(t, 0, e.as(t, "alice"), id, []byte("concurrent")), 409, "a second upload while saving")
	conn.Close()
	cluster.WaitFor(t, 10*time.Second, "the interrupted upload to leave the image queued", func() bool {
		return stateImage(t, e.ac.Nodes[0], id).Status == fsm.ImageQueued
	})

	data := []byte("complete data")
	mustStatus(t, e.upload(t, 0, e.as(t, "alice"), id, data), 204, "upload after the interruption")
	r := do(t, "GET", e.url(0)+"/images/"+id, e.as(t, "alice"), nil)
	if v := r.json(t); v["status"] != "active" || v["checksum"] != md5Hex(data) || v["size"] != float64(len(data)) {
		t.Fatalf("after upload: %s", r.Body)
	}
	mustStatus(t, e.upload(t, 0, e.as(t, "alice"), id, data), 409, "upload to an active image")
	// Formats are fixed once the image has data.
	mustStatus(t, patch(t, e.url(0)+"/images/"+id, e.as(t, "alice"), map[string]any{"op": "replace", "path": "/disk_format", "value": "qcow2"}), 403, "change disk_format of an active image")
	mustStatus(t, patch(t, e.url(0)+"/images/"+id, e.as(t, "alice"), map[string]any{"op": "replace", "path": "/name", "value": "renamed"}), 200, "rename an active image")

	// An empty image is an image.
	empty := e.newRawImage(t, 0, e.as(t, "alice"), "empty")
	mustStatus(t, e.upload(t, 0, e.as(t, "alice"), empty, []byte{}), 204, "upload nothing")
	r = e.download(t, 0, e.as(t, "alice"), empty)
	if r.Status != 200 || len(r.Body) != 0 || r.Header.Get("Content-MD5") != md5Hex(nil) {
		t.Fatalf("download an empty image: %d %q %v", r.Status, r.Body, r.Header)
	}

	// Deleting an image removes its data once nothing uses it.
	blobKeepAfterWrite.Store(0)
	t.Cleanup(func() { blobKeepAfterWrite.Store(int64(10 * time.Minute)) })
	sha := stateImage(t, e.ac.Nodes[0], id).SHA256
	mustStatus(t, do(t, "DELETE", e.url(0)+"/images/"+id, e.as(t, "alice"), nil), 204, "delete")
	cluster.WaitFor(t, 10*time.Second, "the data of the deleted image to go", func() bool {
		_, err := os.Stat(e.blobPath(0, sha))
		return os.IsNotExist(err)
	})
}
