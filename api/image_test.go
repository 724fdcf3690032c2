package api

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/keel-cloud/keel/fsm"
)

// imageEnv is a cluster with two projects: alice is a member of A, rita a
// reader of A, bob a member of B; admin is the bootstrap admin. Tokens are
// issued on first use (bcrypt is slow under the race detector).
type imageEnv struct {
	ac           *apiCluster
	projA, projB string
	adminProject string
	mu           sync.Mutex
	toks         map[string]string
}

const (
	imgTestProjA    = "0000000000000000000000000000000a"
	imgTestProjB    = "0000000000000000000000000000000b"
	imgTestPassword = "image-test-pw"
)

// imgTestHash is the users' password hash, made once per test binary.
var imgTestHash = sync.OnceValue(func() string {
	h, err := HashPassword(imgTestPassword)
	if err != nil {
		panic(err)
	}
	return h
})

func newImageEnv(t *testing.T, nodes int) *imageEnv {
	t.Helper()
	ac := newAPICluster(t, nodes)
	st := ac.Nodes[0].State()
	e := &imageEnv{ac: ac, projA: imgTestProjA, projB: imgTestProjB, toks: map[string]string{}}
	adminProject, _ := fsm.ProjectByName(st, "default", "admin")
	e.adminProject = adminProject.ID
	roles := map[string]string{}
	for _, n := range []string{"member", "reader"} {
		r, _ := fsm.RoleByName(st, n)
		roles[n] = r.ID
	}
	apply(t, ac, &fsm.CreateProject{Project: fsm.Project{ID: imgTestProjA, Name: "proj-a", DomainID: "default", Enabled: true}})
	apply(t, ac, &fsm.CreateProject{Project: fsm.Project{ID: imgTestProjB, Name: "proj-b", DomainID: "default", Enabled: true}})
	for i, u := range []struct{ name, role, project string }{
		{"alice", "member", imgTestProjA}, {"rita", "reader", imgTestProjA}, {"bob", "member", imgTestProjB},
	} {
		id := fmt.Sprintf("%031x%d", 0xabc, i)
		apply(t, ac, &fsm.CreateUser{User: fsm.User{ID: id, Name: u.name, DomainID: "default", PasswordHash: imgTestHash(), Enabled: true}})
		apply(t, ac, &fsm.GrantRole{Assignment: fsm.RoleAssignment{UserID: id, RoleID: roles[u.role], ProjectID: u.project}})
	}
	return e
}

// as returns a token of user (admin, alice, rita or bob), scoped to the
// user's project.
func (e *imageEnv) as(t testing.TB, user string) string {
	t.Helper()
	e.mu.Lock()
	defer e.mu.Unlock()
	if tok, ok := e.toks[user]; ok {
		return tok
	}
	base := e.ac.url(0)
	var tok string
	switch user {
	case "admin":
		tok = login(t, base, "admin", testAdminPassword, projectScope("admin"))
	case "alice", "rita":
		tok = login(t, base, user, imgTestPassword, projectScope("proj-a"))
	case "bob":
		tok = login(t, base, user, imgTestPassword, projectScope("proj-b"))
	default:
		t.Fatalf("no test user %q", user)
	}
	e.toks[user] = tok
	return tok
}

func (e *imageEnv) url(i int) string { return e.ac.url(i) + "/image/v2" }

// doRaw sends body as is with content type ct ("" for none).
func doRaw(t testing.TB, method, url, tok string, body []byte, ct string, hdr ...string) resp {
	t.Helper()
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequest(method, url, rd)
	if err != nil {
		t.Fatal(err)
	}
	if ct != "" {
		req.Header.Set("Content-Type", ct)
	}
	if tok != "" {
		req.Header.Set("X-Auth-Token", tok)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return resp{Status: res.StatusCode, Header: res.Header, Body: b}
}

// patch sends a v2.1 JSON patch.
func patch(t testing.TB, url, tok string, ops ...map[string]any) resp {
	t.Helper()
	return do(t, "PATCH", url, tok, ops, "Content-Type", patchMediaV21)
}

func mustStatus(t testing.TB, r resp, want int, what string) {
	t.Helper()
	if r.Status != want {
		t.Fatalf("%s: HTTP %d %s, want %d", what, r.Status, r.Body, want)
	}
}

// createImage creates an image and returns its view.
func createImage(t testing.TB, base, tok string, body map[string]any) map[string]any {
	t.Helper()
	r := do(t, "POST", base+"/images", tok, body)
	mustStatus(t, r, http.StatusCreated, "create image")
	return r.json(t)
}

func imageNames(t testing.TB, r resp) []string {
	t.Helper()
	var out []string
	for _, i := range r.json(t)["images"].([]any) {
		name, _ := i.(map[string]any)["name"].(string)
		out = append(out, name)
	}
	return out
}

func testImageVersions(t *testing.T, e *imageEnv) {
	ac := e.ac
	for path, status := range map[string]int{"/image": 300, "/image/": 300, "/image/versions": 200} {
		r := do(t, "GET", ac.url(0)+path, "", nil)
		mustStatus(t, r, status, path)
		vs := r.json(t)["versions"].([]any)
		first := vs[0].(map[string]any)
		if first["status"] != "CURRENT" || !strings.HasPrefix(first["id"].(string), "v2.") {
			t.Fatalf("%s: first version %v", path, first)
		}
		link := first["links"].([]any)[0].(map[string]any)["href"]
		if link != ac.url(0)+"/image/v2/" {
			t.Fatalf("%s: link %v", path, link)
		}
	}
	r := do(t, "GET", ac.url(0)+"/image/v2/schemas/image", e.as(t, "rita"), nil)
	mustStatus(t, r, 200, "image schema")
	if s := r.json(t); s["name"] != "image" || s["properties"].(map[string]any)["disk_format"] == nil {
		t.Fatalf("schema %s", r.Body)
	}
	mustStatus(t, do(t, "GET", ac.url(0)+"/image/v2/schemas/image", "", nil), 401, "schema without a token")
}

// The Glance API on one controller; the subtests share the cluster (each
// one's images are its own).
func TestImageGlanceAPI(t *testing.T) {
	e := newImageEnv(t, 1)
	for _, st := range []struct {
		name string
		fn   func(*testing.T, *imageEnv)
	}{
		{"versions and schema", testImageVersions},
		{"create show patch delete", testImageCRUD},
		{"list filters sort pages", testImageList},
		{"visibility and ownership", testImageVisibility},
		{"bad input changes nothing", testImageBadInput},
		{"upload states", testImageUploadStates},
		{"blob endpoint refuses corrupt transfer", testImageBlobEndpoint},
		{"nova image proxy", testNovaImageProxy},
		{"gophercloud", testImageGophercloud},
	} {
		t.Run(st.name, func(t *testing.T) { st.fn(t, e) })
	}
}

func testImageCRUD(t *testing.T, e *imageEnv) {
	g := e.url(0)
	img := createImage(t, g, e.as(t, "alice"), map[string]any{
		"name": "debian", "disk_format": "qcow2", "container_format": "bare", "min_ram": 512,
		"tags": []string{"linux", "linux", "stable"}, "os_distro": "debian", "protected": false,
	})
	id := img["id"].(string)
	if img["status"] != "queued" || img["visibility"] != "shared" || img["owner"] != e.projA || img["size"] != nil ||
		img["checksum"] != nil || img["os_distro"] != "debian" || img["min_ram"] != float64(512) ||
		img["self"] != "/v2/images/"+id || img["file"] != "/v2/images/"+id+"/file" || img["schema"] != "/v2/schemas/image" {
		t.Fatalf("created %v", img)
	}
	if tags := img["tags"].([]any); len(tags) != 2 {
		t.Fatalf("tags %v (duplicates are dropped)", tags)
	}
	// A chosen id, uppercase in the request, is stored lowercase.
	chosen := createImage(t, g, e.as(t, "alice"), map[string]any{"id": "ABCDEF01-2345-4678-89AB-CDEF01234567", "name": "chosen"})
	if chosen["id"] != "abcdef01-2345-4678-89ab-cdef01234567" {
		t.Fatalf("chosen id %v", chosen["id"])
	}
	r := do(t, "POST", g+"/images", e.as(t, "alice"), map[string]any{"id": "abcdef01-2345-4678-89ab-cdef01234567"})
	mustStatus(t, r, 409, "duplicate id")

	show := do(t, "GET", g+"/images/"+id, e.as(t, "rita"), nil)
	mustStatus(t, show, 200, "show as a reader")
	if show.json(t)["name"] != "debian" {
		t.Fatalf("show %s", show.Body)
	}

	// JSON patch: add a property, replace the name, remove a property,
	// set tags, min_disk, protected.
	r = patch(t, g+"/images/"+id, e.as(t, "alice"),
		map[string]any{"op": "add", "path": "/hw_disk_bus", "value": "virtio"},
		map[string]any{"op": "replace", "path": "/name", "value": "debian-12"},
		map[string]any{"op": "remove", "path": "/os_distro"},
		map[string]any{"op": "replace", "path": "/tags", "value": []string{"a", "b"}},
		map[string]any{"op": "add", "path": "/min_disk", "value": 3},
		map[string]any{"op": "replace", "path": "/protected", "value": true},
		map[string]any{"op": "add", "path": "/a~0b", "value": "tilde"},
	)
	mustStatus(t, r, 200, "patch")
	p := r.json(t)
	if p["name"] != "debian-12" || p["hw_disk_bus"] != "virtio" || p["os_distro"] != nil || p["min_disk"] != float64(3) ||
		p["protected"] != true || fmt.Sprint(p["tags"]) != "[a b]" || p["a~b"] != "tilde" {
		t.Fatalf("patched %v", p)
	}
	// The v2.0 patch form.
	r = do(t, "PATCH", g+"/images/"+id, e.as(t, "alice"), []map[string]any{{"replace": "/hw_disk_bus", "value": "scsi"}}, "Content-Type", patchMediaV20)
	mustStatus(t, r, 200, "v2.0 patch")
	if r.json(t)["hw_disk_bus"] != "scsi" {
		t.Fatalf("v2.0 patch %s", r.Body)
	}

	// Tags.
	mustStatus(t, do(t, "PUT", g+"/images/"+id+"/tags/gold", e.as(t, "alice"), nil), 204, "add tag")
	mustStatus(t, do(t, "PUT", g+"/images/"+id+"/tags/gold", e.as(t, "alice"), nil), 204, "add tag again")
	mustStatus(t, do(t, "DELETE", g+"/images/"+id+"/tags/a", e.as(t, "alice"), nil), 204, "delete tag")
	mustStatus(t, do(t, "DELETE", g+"/images/"+id+"/tags/nope", e.as(t, "alice"), nil), 404, "delete a missing tag")
	if tags := fmt.Sprint(do(t, "GET", g+"/images/"+id, e.as(t, "alice"), nil).json(t)["tags"]); tags != "[b gold]" {
		t.Fatalf("tags %s", tags)
	}

	// Protected: no delete (403) until unprotected.
	mustStatus(t, do(t, "DELETE", g+"/images/"+id, e.as(t, "alice"), nil), 403, "delete a protected image")
	mustStatus(t, patch(t, g+"/images/"+id, e.as(t, "alice"), map[string]any{"op": "replace", "path": "/protected", "value": false}), 200, "unprotect")
	mustStatus(t, do(t, "DELETE", g+"/images/"+id, e.as(t, "alice"), nil), 204, "delete")
	mustStatus(t, do(t, "GET", g+"/images/"+id, e.as(t, "alice"), nil), 404, "show a deleted image")
	mustStatus(t, do(t, "DELETE", g+"/images/"+id, e.as(t, "alice"), nil), 404, "delete twice")
}

func testImageList(t *testing.T, e *imageEnv) {
	g := e.url(0)
	for i := range 7 {
		body := map[string]any{"name": fmt.Sprintf("img-%d", i), "disk_format": "raw", "container_format": "bare", "visibility": "private", "suite": "list"}
		if i%2 == 0 {
			body["tags"] = []string{"even"}
			body["parity"] = "even"
		}
		createImage(t, g, e.as(t, "alice"), body)
	}
	createImage(t, g, e.as(t, "bob"), map[string]any{"name": "bobs", "visibility": "private", "suite": "list"})
	createImage(t, g, e.as(t, "alice"), map[string]any{"name": "hidden", "os_hidden": true, "suite": "list"})

	// Every query selects this subtest's images (suite=list).
	list := func(tok, query string) resp {
		t.Helper()
		if query == "" {
			query = "?suite=list"
		} else {
			query += "&suite=list"
		}
		r := do(t, "GET", g+"/images"+query, tok, nil)
		mustStatus(t, r, 200, "list "+query)
		return r
	}
	if got := imageNames(t, list(e.as(t, "alice"), "?sort_key=name&sort_dir=asc")); !slices.Equal(got, []string{"img-0", "img-1", "img-2", "img-3", "img-4", "img-5", "img-6"}) {
		t.Fatalf("alice's list %v", got)
	}
	if got := imageNames(t, list(e.as(t, "bob"), "")); !slices.Equal(got, []string{"bobs"}) {
		t.Fatalf("bob's list %v", got)
	}
	if got := imageNames(t, list(e.as(t, "admin"), "?sort=name:asc&limit=100")); len(got) != 8 {
		t.Fatalf("admin's list %v (all but the hidden one)", got)
	}
	if got := imageNames(t, list(e.as(t, "alice"), "?os_hidden=true")); !slices.Equal(got, []string{"hidden"}) {
		t.Fatalf("hidden list %v", got)
	}
	if got := imageNames(t, list(e.as(t, "alice"), "?tag=even&sort_key=name&sort_dir=desc")); !slices.Equal(got, []string{"img-6", "img-4", "img-2", "img-0"}) {
		t.Fatalf("tag filter %v", got)
	}
	if got := imageNames(t, list(e.as(t, "alice"), "?parity=even&name=img-2")); !slices.Equal(got, []string{"img-2"}) {
		t.Fatalf("property and name filter %v", got)
	}
	if got := imageNames(t, list(e.as(t, "alice"), "?name=in:img-1,img-3&sort_key=name&sort_dir=asc")); !slices.Equal(got, []string{"img-1", "img-3"}) {
		t.Fatalf("name in: filter %v", got)
	}
	if got := imageNames(t, list(e.as(t, "alice"), "?status=active")); len(got) != 0 {
		t.Fatalf("status filter %v", got)
	}
	if got := imageNames(t, list(e.as(t, "admin"), "?owner="+e.projB)); !slices.Equal(got, []string{"bobs"}) {
		t.Fatalf("owner filter %v", got)
	}
	if got := imageNames(t, list(e.as(t, "alice"), "?visibility=shared")); !slices.Equal(got, []string{}) && got != nil {
		t.Fatalf("visibility filter %v", got)
	}

	// Pages of 3 by name, following "next".
	var all []string
	next := "/v2/images?limit=3&sort_key=name&sort_dir=asc&suite=list"
	for pages := 0; next != ""; pages++ {
		if pages > 5 {
			t.Fatal("too many pages")
		}
		r := do(t, "GET", e.ac.url(0)+"/image"+next, e.as(t, "alice"), nil)
		mustStatus(t, r, 200, "page "+next)
		body := r.json(t)
		if body["schema"] != "/v2/schemas/images" || !strings.HasPrefix(body["first"].(string), "/v2/images") {
			t.Fatalf("page %s", r.Body)
		}
		all = append(all, imageNames(t, r)...)
		next, _ = body["next"].(string)
	}
	if !slices.Equal(all, []string{"img-0", "img-1", "img-2", "img-3", "img-4", "img-5", "img-6"}) {
		t.Fatalf("paged list %v", all)
	}
	// The default order is newest first.
	if got := imageNames(t, list(e.as(t, "alice"), "?limit=2")); !slices.Equal(got, []string{"img-6", "img-5"}) {
		t.Fatalf("default order %v", got)
	}
}

func testImageVisibility(t *testing.T, e *imageEnv) {
	g := e.url(0)
	priv := createImage(t, g, e.as(t, "alice"), map[string]any{"name": "private", "visibility": "private", "disk_format": "raw", "container_format": "bare"})["id"].(string)
	// Another project's private image is a 404 whatever the operation.
	for _, c := range []struct {
		method, path string
		body         any
	}{
		{"GET", "", nil}, {"DELETE", "", nil}, {"GET", "/file", nil},
		{"PUT", "/tags/x", nil}, {"GET", "/members", nil},
	} {
		mustStatus(t, do(t, c.method, g+"/images/"+priv+c.path, e.as(t, "bob"), c.body), 404, "bob "+c.method+" "+c.path)
	}
	mustStatus(t, patch(t, g+"/images/"+priv, e.as(t, "bob"), map[string]any{"op": "replace", "path": "/name", "value": "x"}), 404, "bob patch")
	mustStatus(t, doRaw(t, "PUT", g+"/images/"+priv+"/file", e.as(t, "bob"), []byte("data"), "application/octet-stream"), 404, "bob upload")
	// A reader of the owner project sees it but cannot change it.
	mustStatus(t, do(t, "GET", g+"/images/"+priv, e.as(t, "rita"), nil), 200, "reader show")
	mustStatus(t, do(t, "DELETE", g+"/images/"+priv, e.as(t, "rita"), nil), 403, "reader delete (policy)")
	// The admin sees and changes anything.
	mustStatus(t, patch(t, g+"/images/"+priv, e.as(t, "admin"), map[string]any{"op": "add", "path": "/by", "value": "admin"}), 200, "admin patch")

	// Publicizing is for admins.
	r := do(t, "POST", g+"/images", e.as(t, "alice"), map[string]any{"name": "pub", "visibility": "public"})
	mustStatus(t, r, 403, "member creates a public image")
	mustStatus(t, patch(t, g+"/images/"+priv, e.as(t, "alice"), map[string]any{"op": "replace", "path": "/visibility", "value": "public"}), 403, "member publicizes")
	// Nobody but an admin gives an image to another project.
	mustStatus(t, do(t, "POST", g+"/images", e.as(t, "alice"), map[string]any{"name": "gift", "owner": e.projB}), 403, "member creates for another project")
	mustStatus(t, patch(t, g+"/images/"+priv, e.as(t, "alice"), map[string]any{"op": "replace", "path": "/owner", "value": e.projB}), 403, "member changes the owner")

	pub := createImage(t, g, e.as(t, "admin"), map[string]any{"name": "public", "visibility": "public", "suite": "vis"})["id"].(string)
	mustStatus(t, do(t, "GET", g+"/images/"+pub, e.as(t, "bob"), nil), 200, "bob sees a public image")
	mustStatus(t, patch(t, g+"/images/"+pub, e.as(t, "bob"), map[string]any{"op": "replace", "path": "/name", "value": "mine"}), 403, "bob modifies a public image")
	mustStatus(t, do(t, "DELETE", g+"/images/"+pub, e.as(t, "bob"), nil), 403, "bob deletes a public image")
	comm := createImage(t, g, e.as(t, "alice"), map[string]any{"name": "community", "visibility": "community", "suite": "vis"})["id"].(string)
	mustStatus(t, do(t, "GET", g+"/images/"+comm, e.as(t, "bob"), nil), 200, "bob sees a community image")
	if got := imageNames(t, do(t, "GET", g+"/images?suite=vis", e.as(t, "bob"), nil)); !slices.Equal(got, []string{"public"}) {
		t.Fatalf("bob's default list %v (community images are listed only on request)", got)
	}
	if got := imageNames(t, do(t, "GET", g+"/images?suite=vis&visibility=community", e.as(t, "bob"), nil)); !slices.Equal(got, []string{"community"}) {
		t.Fatalf("bob's community list %v", got)
	}

	// Sharing: alice shares with bob, who sees it at once but lists it
	// only after accepting.
	sh := createImage(t, g, e.as(t, "alice"), map[string]any{"name": "shared", "suite": "vis"})["id"].(string)
	mustStatus(t, do(t, "GET", g+"/images/"+sh, e.as(t, "bob"), nil), 404, "bob before the share")
	mustStatus(t, do(t, "POST", g+"/images/"+priv+"/members", e.as(t, "alice"), map[string]any{"member": e.projB}), 403, "members of a private image")
	r = do(t, "POST", g+"/images/"+sh+"/members", e.as(t, "alice"), map[string]any{"member": e.projB})
	mustStatus(t, r, 200, "add member")
	if m := r.json(t); m["status"] != "pending" || m["member_id"] != e.projB || m["image_id"] != sh {
		t.Fatalf("member %s", r.Body)
	}
	mustStatus(t, do(t, "POST", g+"/images/"+sh+"/members", e.as(t, "alice"), map[string]any{"member": e.projB}), 409, "add member twice")
	mustStatus(t, do(t, "GET", g+"/images/"+sh, e.as(t, "bob"), nil), 200, "bob sees the shared image")
	if got := imageNames(t, do(t, "GET", g+"/images?suite=vis&visibility=shared", e.as(t, "bob"), nil)); len(got) != 0 {
		t.Fatalf("bob lists a pending share: %v", got)
	}
	mustStatus(t, do(t, "PUT", g+"/images/"+sh+"/members/"+e.projB, e.as(t, "alice"), map[string]any{"status": "accepted"}), 403, "the owner accepts for bob")
	mustStatus(t, do(t, "PUT", g+"/images/"+sh+"/members/"+e.projB, e.as(t, "bob"), map[string]any{"status": "maybe"}), 400, "bad member status")
	mustStatus(t, do(t, "PUT", g+"/images/"+sh+"/members/"+e.projB, e.as(t, "bob"), map[string]any{"status": "accepted"}), 200, "bob accepts")
	if got := imageNames(t, do(t, "GET", g+"/images?suite=vis&visibility=shared", e.as(t, "bob"), nil)); !slices.Equal(got, []string{"shared"}) {
		t.Fatalf("bob's shared list %v", got)
	}
	mustStatus(t, patch(t, g+"/images/"+sh, e.as(t, "bob"), map[string]any{"op": "replace", "path": "/name", "value": "x"}), 403, "a member modifies")
	r = do(t, "GET", g+"/images/"+sh+"/members", e.as(t, "alice"), nil)
	mustStatus(t, r, 200, "list members")
	if ms := r.json(t)["members"].([]any); len(ms) != 1 || ms[0].(map[string]any)["status"] != "accepted" {
		t.Fatalf("members %s", r.Body)
	}
	mustStatus(t, do(t, "DELETE", g+"/images/"+sh+"/members/"+e.projB, e.as(t, "bob"), nil), 403, "a member removes itself")
	mustStatus(t, do(t, "DELETE", g+"/images/"+sh+"/members/"+e.projB, e.as(t, "alice"), nil), 204, "the owner removes a member")
	mustStatus(t, do(t, "GET", g+"/images/"+sh, e.as(t, "bob"), nil), 404, "bob after the share ended")
}

// Bad input gets a clear fault with the right status and changes nothing.
func testImageBadInput(t *testing.T, e *imageEnv) {
	g := e.url(0)
	id := createImage(t, g, e.as(t, "alice"), map[string]any{"name": "target", "extra": "x"})["id"].(string)
	noFormats := id
	fsmOf := e.ac.Nodes[0].FSM()
	before, err := fsmOf.Hash()
	if err != nil {
		t.Fatal(err)
	}
	img := g + "/images/" + id
	cases := []struct {
		name   string
		send   func() resp
		status int
		msg    string
	}{
		{"body not an object", func() resp { return do(t, "POST", g+"/images", e.as(t, "alice"), []any{1}) }, 400, "is not of type 'object'"},
		{"malformed JSON", func() resp { return do(t, "POST", g+"/images", e.as(t, "alice"), `{"name": `) }, 400, "Malformed"},
		{"unknown disk_format", func() resp { return do(t, "POST", g+"/images", e.as(t, "alice"), map[string]any{"disk_format": "exe"}) }, 400, "disk_format"},
		{"unknown container_format", func() resp {
			return do(t, "POST", g+"/images", e.as(t, "alice"), map[string]any{"container_format": "zip"})
		}, 400, "container_format"},
		{"negative min_ram", func() resp { return do(t, "POST", g+"/images", e.as(t, "alice"), map[string]any{"min_ram": -1}) }, 400, "min_ram"},
		{"min_disk not a number", func() resp { return do(t, "POST", g+"/images", e.as(t, "alice"), map[string]any{"min_disk": "2"}) }, 400, "min_disk"},
		{"name too long", func() resp {
			return do(t, "POST", g+"/images", e.as(t, "alice"), map[string]any{"name": strings.Repeat("n", 256)})
		}, 400, "name"},
		{"bad visibility", func() resp {
			return do(t, "POST", g+"/images", e.as(t, "alice"), map[string]any{"visibility": "secret"})
		}, 400, "visibility"},
		{"id not a uuid", func() resp { return do(t, "POST", g+"/images", e.as(t, "alice"), map[string]any{"id": "my-image"}) }, 400, "'id'"},
		{"tags not a list", func() resp { return do(t, "POST", g+"/images", e.as(t, "alice"), map[string]any{"tags": "a,b"}) }, 400, "tags"},
		{"property not a string", func() resp { return do(t, "POST", g+"/images", e.as(t, "alice"), map[string]any{"cores": 4}) }, 400, "'cores'"},
		{"protected not a boolean", func() resp { return do(t, "POST", g+"/images", e.as(t, "alice"), map[string]any{"protected": "yes"}) }, 400, "protected"},
		{"read-only status", func() resp { return do(t, "POST", g+"/images", e.as(t, "alice"), map[string]any{"status": "active"}) }, 403, "Attribute 'status' is read-only."},
		{"read-only checksum", func() resp { return do(t, "POST", g+"/images", e.as(t, "alice"), map[string]any{"checksum": "x"}) }, 403, "read-only"},
		{"reserved attribute", func() resp { return do(t, "POST", g+"/images", e.as(t, "alice"), map[string]any{"deleted": "x"}) }, 403, "reserved"},
		{"os_glance prefix", func() resp { return do(t, "POST", g+"/images", e.as(t, "alice"), map[string]any{"os_glance_x": "1"}) }, 403, "reserved"},
		{"patch: wrong media type", func() resp { return do(t, "PATCH", img, e.as(t, "alice"), []any{}) }, 415, "Content-Type"},
		{"patch: not a list", func() resp {
			return do(t, "PATCH", img, e.as(t, "alice"), map[string]any{}, "Content-Type", patchMediaV21)
		}, 400, "JSON array"},
		{"patch: bad op", func() resp { return patch(t, img, e.as(t, "alice"), map[string]any{"op": "move", "path": "/name"}) }, 400, "`op`"},
		{"patch: bad path", func() resp {
			return patch(t, img, e.as(t, "alice"), map[string]any{"op": "add", "path": "name", "value": "x"})
		}, 400, "JSON pointer"},
		{"patch: deep path", func() resp {
			return patch(t, img, e.as(t, "alice"), map[string]any{"op": "add", "path": "/a/b", "value": "x"})
		}, 400, "JSON pointer"},
		{"patch: no value", func() resp { return patch(t, img, e.as(t, "alice"), map[string]any{"op": "replace", "path": "/name"}) }, 400, "value"},
		{"patch: read-only", func() resp {
			return patch(t, img, e.as(t, "alice"), map[string]any{"op": "replace", "path": "/size", "value": 3})
		}, 403, "read-only"},
		{"patch: id", func() resp {
			return patch(t, img, e.as(t, "alice"), map[string]any{"op": "replace", "path": "/id", "value": "x"})
		}, 403, "read-only"},
		{"patch: remove a base attribute", func() resp { return patch(t, img, e.as(t, "alice"), map[string]any{"op": "remove", "path": "/name"}) }, 403, "may not be removed"},
		{"patch: replace a missing property", func() resp {
			return patch(t, img, e.as(t, "alice"), map[string]any{"op": "replace", "path": "/nope", "value": "x"})
		}, 409, "does not exist"},
		{"patch: remove a missing property", func() resp { return patch(t, img, e.as(t, "alice"), map[string]any{"op": "remove", "path": "/nope"}) }, 409, "does not exist"},
		{"patch: second op invalid", func() resp {
			return patch(t, img, e.as(t, "alice"), map[string]any{"op": "replace", "path": "/name", "value": "changed"}, map[string]any{"op": "add", "path": "/min_ram", "value": -5})
		}, 400, "min_ram"},
		{"list: negative limit", func() resp { return do(t, "GET", g+"/images?limit=-1", e.as(t, "alice"), nil) }, 400, "limit"},
		{"list: limit not a number", func() resp { return do(t, "GET", g+"/images?limit=ten", e.as(t, "alice"), nil) }, 400, "limit"},
		{"list: bad sort key", func() resp { return do(t, "GET", g+"/images?sort_key=owner_name", e.as(t, "alice"), nil) }, 400, "sort key"},
		{"list: bad sort dir", func() resp { return do(t, "GET", g+"/images?sort_dir=up", e.as(t, "alice"), nil) }, 400, "sort direction"},
		{"list: unknown marker", func() resp {
			return do(t, "GET", g+"/images?marker=00000000-0000-4000-8000-000000000000", e.as(t, "alice"), nil)
		}, 400, "Marker"},
		{"list: bad visibility", func() resp { return do(t, "GET", g+"/images?visibility=secret", e.as(t, "alice"), nil) }, 400, "visibility"},
		{"upload: wrong media type", func() resp { return doRaw(t, "PUT", img+"/file", e.as(t, "alice"), []byte("x"), "text/plain") }, 415, "octet-stream"},
		{"upload: no formats", func() resp {
			return doRaw(t, "PUT", g+"/images/"+noFormats+"/file", e.as(t, "alice"), []byte("x"), "application/octet-stream")
		}, 400, "disk_format, container_format"},
		{"tag too long", func() resp { return do(t, "PUT", img+"/tags/"+strings.Repeat("t", 256), e.as(t, "alice"), nil) }, 400, "tag"},
		{"member: not an object", func() resp { return do(t, "POST", img+"/members", e.as(t, "alice"), "[]") }, 400, "object"},
		{"member: no member", func() resp { return do(t, "POST", img+"/members", e.as(t, "alice"), map[string]any{"id": "x"}) }, 400, "member"},
	}
	for _, tc := range cases {
		r := tc.send()
		if r.Status != tc.status || !strings.Contains(string(r.Body), tc.msg) {
			t.Errorf("%s: HTTP %d %s; want %d with %q", tc.name, r.Status, r.Body, tc.status, tc.msg)
		}
		if tc.status >= 400 && tc.status < 500 && r.Status < 500 {
			// The fault body is Nova-shaped, as the frame renders image faults.
			if _, ok := r.json(t)[NovaFaultName(r.Status)]; !ok {
				t.Errorf("%s: fault body %s", tc.name, r.Body)
			}
		}
		if after, _ := fsmOf.Hash(); after != before {
			t.Fatalf("%s: the state changed", tc.name)
		}
	}
	if len(cases) < 10 {
		t.Fatal("the table is too short")
	}
	if got := do(t, "GET", img, e.as(t, "alice"), nil).json(t); got["name"] != "target" || got["extra"] != "x" || got["status"] != "queued" {
		t.Fatalf("image after the bad requests: %v", got)
	}
}
