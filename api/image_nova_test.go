package api

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
)

func testNovaImageProxy(t *testing.T, e *imageEnv) {
	g, n := e.url(0), e.ac.url(0)+"/compute/v2.1"
	alice := e.as(t, "alice")
	id := createImage(t, g, alice, map[string]any{
		"name": "nova-view", "disk_format": "raw", "container_format": "bare", "min_ram": 256, "min_disk": 2,
		"suite": "nova", "auto_disk_config": "true",
	})["id"].(string)
	queued := createImage(t, g, alice, map[string]any{"name": "nova-queued", "suite": "nova"})["id"].(string)
	mustStatus(t, doRaw(t, "PUT", g+"/images/"+id+"/file", alice, []byte("nova data"), "application/octet-stream"), 204, "upload")

	r := do(t, "GET", n+"/images/"+id, alice, nil)
	mustStatus(t, r, 200, "show")
	v := r.json(t)["image"].(map[string]any)
	if v["status"] != "ACTIVE" || v["progress"] != float64(100) || v["minRam"] != float64(256) || v["minDisk"] != float64(2) ||
		v["OS-EXT-IMG-SIZE:size"] != float64(9) || v["OS-DCF:diskConfig"] != "AUTO" || v["name"] != "nova-view" ||
		v["metadata"].(map[string]any)["suite"] != "nova" || !strings.HasSuffix(v["created"].(string), "Z") {
		t.Fatalf("nova image view %s", r.Body)
	}
	links := v["links"].([]any)
	if len(links) != 3 || links[0].(map[string]any)["href"] != n+"/images/"+id || links[2].(map[string]any)["type"] != "application/vnd.openstack.image" {
		t.Fatalf("links %v", links)
	}
	q := do(t, "GET", n+"/images/"+queued, alice, nil).json(t)["image"].(map[string]any)
	if q["status"] != "SAVING" || q["progress"] != float64(25) || q["OS-EXT-IMG-SIZE:size"] != float64(0) {
		t.Fatalf("queued image %v", q)
	}
	mustStatus(t, do(t, "GET", n+"/images/"+id, e.as(t, "bob"), nil), 404, "bob shows alice's image")

	// Lists, filters and pages.
	r = do(t, "GET", n+"/images?type=none", alice, nil)
	mustStatus(t, r, 200, "list")
	basic := do(t, "GET", n+"/images?name=nova-view", alice, nil).json(t)["images"].([]any)
	if len(basic) != 1 || len(basic[0].(map[string]any)) != 3 {
		t.Fatalf("basic list %v", basic)
	}
	detail := do(t, "GET", n+"/images/detail?status=active&minRam=200", alice, nil).json(t)["images"].([]any)
	if len(detail) != 1 || detail[0].(map[string]any)["id"] != id {
		t.Fatalf("detail list filtered by status and minRam: %v", detail)
	}
	page := do(t, "GET", n+"/images/detail?limit=1", alice, nil).json(t)
	nextLinks, _ := page["images_links"].([]any)
	if len(page["images"].([]any)) != 1 || len(nextLinks) != 1 || !strings.Contains(nextLinks[0].(map[string]any)["href"].(string), "marker=") {
		t.Fatalf("page of one: %v", page)
	}
	mustStatus(t, do(t, "GET", n+"/images?limit=x", alice, nil), 400, "bad limit")
	mustStatus(t, do(t, "GET", n+"/images?marker=00000000-0000-4000-8000-00000000dead", alice, nil), 400, "unknown marker")

	// The proxy is gone from 2.36.
	for _, path := range []string{"/images", "/images/detail", "/images/" + id, "/images/" + id + "/metadata"} {
		mustStatus(t, do(t, "GET", n+path, alice, nil, "OpenStack-API-Version", "compute 2.36"), 404, path+" at 2.36")
		mustStatus(t, do(t, "GET", n+path, alice, nil, "OpenStack-API-Version", "compute 2.35"), 200, path+" at 2.35")
	}

	// Metadata.
	meta := n + "/images/" + id + "/metadata"
	r = do(t, "POST", meta, alice, map[string]any{"metadata": map[string]string{"os_type": "linux", "k2": "v2"}})
	mustStatus(t, r, 200, "merge metadata")
	if m := r.json(t)["metadata"].(map[string]any); m["os_type"] != "linux" || m["suite"] != "nova" || m["k2"] != "v2" {
		t.Fatalf("merged metadata %s", r.Body)
	}
	r = do(t, "GET", meta+"/os_type", alice, nil)
	mustStatus(t, r, 200, "metadata item")
	if r.json(t)["meta"].(map[string]any)["os_type"] != "linux" {
		t.Fatalf("metadata item %s", r.Body)
	}
	mustStatus(t, do(t, "PUT", meta+"/os_type", alice, map[string]any{"meta": map[string]string{"os_type": "bsd"}}), 200, "set item")
	if do(t, "GET", g+"/images/"+id, alice, nil).json(t)["os_type"] != "bsd" {
		t.Fatal("Glance does not see the property set through Nova")
	}
	mustStatus(t, do(t, "PUT", meta+"/os_type", alice, map[string]any{"meta": map[string]string{"other": "x"}}), 400, "body and URI mismatch")
	mustStatus(t, do(t, "PUT", meta+"/os_type", alice, map[string]any{"meta": map[string]string{"os_type": "x", "b": "y"}}), 400, "two items")
	mustStatus(t, do(t, "POST", meta, alice, map[string]any{"metadata": map[string]any{"bad/key": "x"}}), 400, "bad key")
	mustStatus(t, do(t, "POST", meta, alice, map[string]any{"metadata": map[string]any{"n": 1}}), 400, "value not a string")
	mustStatus(t, do(t, "POST", meta, alice, map[string]any{"meta": map[string]any{}}), 400, "wrong body key")
	mustStatus(t, do(t, "POST", meta, alice, map[string]any{"metadata": map[string]string{"status": "x"}}), 403, "an image attribute as metadata")
	many := map[string]string{}
	for i := range 129 {
		many[fmt.Sprintf("k%03d", i)] = "v"
	}
	mustStatus(t, do(t, "POST", meta, alice, map[string]any{"metadata": many}), 403, "over the metadata quota")
	mustStatus(t, do(t, "POST", meta, e.as(t, "rita"), map[string]any{"metadata": map[string]string{"a": "b"}}), 403, "a reader sets metadata")
	mustStatus(t, do(t, "POST", meta, e.as(t, "bob"), map[string]any{"metadata": map[string]string{"a": "b"}}), 404, "bob sets metadata")
	mustStatus(t, do(t, "DELETE", meta+"/k2", alice, nil), 204, "delete item")
	mustStatus(t, do(t, "DELETE", meta+"/k2", alice, nil), 404, "delete a missing item")
	mustStatus(t, do(t, "GET", meta+"/k2", alice, nil), 404, "get a missing item")
	r = do(t, "PUT", meta, alice, map[string]any{"metadata": map[string]string{"only": "this"}})
	mustStatus(t, r, 200, "replace all metadata")
	r = do(t, "GET", meta, alice, nil)
	if m := r.json(t)["metadata"].(map[string]any); len(m) != 1 || m["only"] != "this" {
		t.Fatalf("metadata after replace: %s", r.Body)
	}

	// Delete: protected images and other projects' are refused.
	mustStatus(t, patch(t, g+"/images/"+id, alice, map[string]any{"op": "replace", "path": "/protected", "value": true}), 200, "protect")
	r = do(t, "DELETE", n+"/images/"+id, alice, nil)
	if r.Status != http.StatusForbidden || !strings.Contains(string(r.Body), "not allowed to delete") {
		t.Fatalf("delete a protected image: %d %s", r.Status, r.Body)
	}
	mustStatus(t, do(t, "DELETE", n+"/images/"+queued, e.as(t, "bob"), nil), 404, "bob deletes")
	mustStatus(t, do(t, "DELETE", n+"/images/"+queued, alice, nil), 204, "delete")
	mustStatus(t, do(t, "GET", n+"/images/"+queued, alice, nil), 404, "show after delete")
}
