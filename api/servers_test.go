package api

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/keel-cloud/keel/cluster"
	"github.com/keel-cloud/keel/fsm"
)

// computeCloud is a cluster with an admin token, a tiny active image and
// the default flavors.
type computeCloud struct {
	*apiCluster
	admin   string // admin token, admin project
	imageID string
}

func newComputeCloud(t testing.TB, n int) *computeCloud {
	t.Helper()
	return newComputeCloudWith(t, n, false)
}

// newSchedulingCloud is a compute cloud whose leader schedules servers
// (hosts are the test's to start).
func newSchedulingCloud(t testing.TB, n int) *computeCloud {
	t.Helper()
	return newComputeCloudWith(t, n, true)
}

func newComputeCloudWith(t testing.TB, n int, withScheduler bool, opts ...cluster.TestClusterOption) *computeCloud {
	t.Helper()
	ac := newAPIClusterWith(t, n, withScheduler, opts...)
	cc := &computeCloud{apiCluster: ac, admin: login(t, ac.url(0), "admin", testAdminPassword, projectScope("admin"))}
	cluster.WaitFor(t, 10*time.Second, "the default flavors", func() bool {
		return do(t, "GET", ac.url(0)+"/compute/v2.1/flavors/1", cc.admin, nil).Status == 200
	})
	cc.imageID = cc.uploadImage(t, "cirros", []byte("not really a disk image, but bytes all the same"))
	return cc
}

// uploadImage creates a public image through the Glance API and returns its id.
func (cc *computeCloud) uploadImage(t testing.TB, name string, data []byte) string {
	t.Helper()
	r := do(t, "POST", cc.url(0)+"/image/v2/images", cc.admin, map[string]any{
		"name": name, "disk_format": "raw", "container_format": "bare", "visibility": "public",
	})
	if r.Status != 201 {
		t.Fatalf("image create: %d %s", r.Status, r.Body)
	}
	id := r.json(t)["id"].(string)
	req, _ := http.NewRequest("PUT", cc.url(0)+"/image/v2/images/"+id+"/file", strings.NewReader(string(data)))
	req.Header.Set("X-Auth-Token", cc.admin)
	req.Header.Set("Content-Type", "application/octet-stream")
	res, err := http.DefaultClient.Do(req)
	if err != nil || res.StatusCode != 204 {
		t.Fatalf("image upload: %v %v", err, res)
	}
	res.Body.Close()
	return id
}

// createServer posts a server and returns the response.
func (cc *computeCloud) createServer(t testing.TB, node int, tok string, body map[string]any, hdr ...string) resp {
	t.Helper()
	srv := map[string]any{"name": "vm", "flavorRef": "1", "imageRef": cc.imageID, "networks": "none"}
	for k, v := range body {
		if v == nil {
			delete(srv, k)
		} else {
			srv[k] = v
		}
	}
	if len(hdr) == 0 {
		hdr = []string{"OpenStack-API-Version", "compute 2.74"}
	}
	return do(t, "POST", cc.url(node)+"/compute/v2.1/servers", tok, map[string]any{"server": srv}, hdr...)
}

func TestServerLifecycle(t *testing.T) {
	cc := newComputeCloud(t, 1)
	base := cc.url(0)
	v := []string{"OpenStack-API-Version", "compute 2.100"}
	r := cc.createServer(t, 0, cc.admin, map[string]any{
		"name": "web-1", "metadata": map[string]string{"role": "web"}, "tags": []string{"a", "b"}, "description": "first",
	}, v...)
	if r.Status != 202 {
		t.Fatalf("create: %d %s", r.Status, r.Body)
	}
	created := r.json(t)["server"].(map[string]any)
	id := created["id"].(string)
	if created["adminPass"] == "" || created["OS-DCF:diskConfig"] != "MANUAL" {
		t.Fatalf("create response %v", created)
	}
	r = do(t, "GET", base+"/compute/v2.1/servers/"+id, cc.admin, nil, v...)
	srv := r.json(t)["server"].(map[string]any)
	if r.Status != 200 || srv["status"] != "BUILD" || srv["name"] != "web-1" || srv["description"] != "first" ||
		srv["OS-EXT-STS:task_state"] != "scheduling" || srv["flavor"].(map[string]any)["original_name"] != "m1.tiny" ||
		len(srv["tags"].([]any)) != 2 || srv["metadata"].(map[string]any)["role"] != "web" {
		t.Fatalf("show: %d %s", r.Status, r.Body)
	}
	// 2.1 has the old flavor reference and no description or tags.
	r = do(t, "GET", base+"/compute/v2.1/servers/"+id, cc.admin, nil)
	old := r.json(t)["server"].(map[string]any)
	if _, ok := old["description"]; ok || old["flavor"].(map[string]any)["id"] != "1" {
		t.Fatalf("2.1 view: %s", r.Body)
	}
	r = do(t, "PUT", base+"/compute/v2.1/servers/"+id, cc.admin, map[string]any{"server": map[string]any{"name": "web-2", "description": nil}}, v...)
	if r.Status != 200 || r.json(t)["server"].(map[string]any)["name"] != "web-2" || r.json(t)["server"].(map[string]any)["description"] != nil {
		t.Fatalf("update: %d %s", r.Status, r.Body)
	}
	// Before 2.75 the update answer leaves out the extended attributes.
	r = do(t, "PUT", base+"/compute/v2.1/servers/"+id, cc.admin, map[string]any{"server": map[string]any{"name": "web-2"}}, "OpenStack-API-Version", "compute 2.74")
	if u := r.json(t)["server"].(map[string]any); u["OS-EXT-STS:vm_state"] != nil || u["OS-EXT-AZ:availability_zone"] != nil || u["name"] != "web-2" {
		t.Fatalf("update answer at 2.74: %s", r.Body)
	}
	if r = do(t, "GET", base+"/compute/v2.1/servers/"+id, cc.admin, nil, "OpenStack-API-Version", "compute 2.71"); r.json(t)["server"].(map[string]any)["server_groups"] == nil {
		t.Fatalf("show at 2.71 lacks server_groups: %s", r.Body)
	}
	// Metadata and tags.
	if r = do(t, "POST", base+"/compute/v2.1/servers/"+id+"/metadata", cc.admin, map[string]any{"metadata": map[string]string{"x": "1"}}); r.Status != 200 || len(r.json(t)["metadata"].(map[string]any)) != 2 {
		t.Fatalf("metadata merge: %d %s", r.Status, r.Body)
	}
	if r = do(t, "PUT", base+"/compute/v2.1/servers/"+id+"/metadata/x", cc.admin, map[string]any{"meta": map[string]string{"x": "2"}}); r.Status != 200 {
		t.Fatalf("metadata item: %d %s", r.Status, r.Body)
	}
	if r = do(t, "DELETE", base+"/compute/v2.1/servers/"+id+"/metadata/nope", cc.admin, nil); r.Status != 404 {
		t.Fatalf("missing metadata key: %d", r.Status)
	}
	if r = do(t, "PUT", base+"/compute/v2.1/servers/"+id+"/tags/c", cc.admin, nil, v...); r.Status != 201 {
		t.Fatalf("add tag: %d %s", r.Status, r.Body)
	}
	if r = do(t, "GET", base+"/compute/v2.1/servers/"+id+"/tags/c", cc.admin, nil, v...); r.Status != 204 {
		t.Fatalf("check tag: %d", r.Status)
	}
	if r = do(t, "GET", base+"/compute/v2.1/servers/"+id+"/tags", cc.admin, nil); r.Status != 404 {
		t.Fatalf("tags before 2.26: %d", r.Status)
	}
	// Filters.
	for q, want := range map[string]int{"name=^web": 1, "name=nomatch": 0, "status=BUILD": 1, "status=ACTIVE": 0, "tags=a,c": 1, "not-tags=a": 0, "flavor=1": 1, "flavor=2": 0} {
		r = do(t, "GET", base+"/compute/v2.1/servers?"+q, cc.admin, nil, v...)
		if got := len(r.json(t)["servers"].([]any)); r.Status != 200 || got != want {
			t.Errorf("filter %s: %d servers (HTTP %d), want %d", q, got, r.Status, want)
		}
	}
	// Delete: gone from lists, visible with changes-since.
	since := time.Now().Add(-time.Minute).UTC().Format(time.RFC3339)
	if r = do(t, "DELETE", base+"/compute/v2.1/servers/"+id, cc.admin, nil); r.Status != 204 {
		t.Fatalf("delete: %d %s", r.Status, r.Body)
	}
	if r = do(t, "GET", base+"/compute/v2.1/servers/"+id, cc.admin, nil); r.Status != 404 {
		t.Fatalf("show after delete: %d", r.Status)
	}
	r = do(t, "GET", base+"/compute/v2.1/servers/detail?changes-since="+since, cc.admin, nil)
	if list := r.json(t)["servers"].([]any); len(list) != 1 || list[0].(map[string]any)["status"] != "DELETED" {
		t.Fatalf("changes-since after delete: %s", r.Body)
	}
	if q := quotaUsage(t, cc, "instances"); q != 0 {
		t.Fatalf("instances in use after delete: %d", q)
	}
	// min_count alone: max_count defaults to it.
	r = cc.createServer(t, 0, cc.admin, map[string]any{"name": "pair", "min_count": 2, "return_reservation_id": true})
	resv, _ := r.json(t)["reservation_id"].(string)
	if r.Status != 202 || resv == "" {
		t.Fatalf("min_count alone: %d %s", r.Status, r.Body)
	}
	if r = do(t, "GET", base+"/compute/v2.1/servers?reservation_id="+resv, cc.admin, nil); len(r.json(t)["servers"].([]any)) != 2 {
		t.Fatalf("min_count=2 made %s", r.Body)
	}
}

func quotaUsage(t testing.TB, cc *computeCloud, res string) int64 {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := cc.Nodes[0].Consistent(ctx); err != nil { // node 0 may be a follower
		t.Fatal(err)
	}
	st := cc.Nodes[0].State()
	p, _ := fsm.ProjectByName(st, "default", "admin")
	u, err := fsm.ProjectUsage(st, p.ID, "")
	if err != nil {
		t.Fatal(err)
	}
	return u[res]
}

// Acceptance 5: 1,000 servers walked 100 at a time by marker: each exactly
// once, in order.
func TestServerPagination(t *testing.T) {
	cc := newComputeCloud(t, 1)
	st := cc.Nodes[0].State()
	proj, _ := fsm.ProjectByName(st, "default", "admin")
	admin, _ := fsm.UserByName(st, "default", "admin")
	apply(t, cc.apiCluster, &fsm.SetQuota{ProjectID: proj.ID, Limits: map[string]int64{"instances": -1, "cores": -1, "ram": -1}})
	// 1,000 servers in 10 requests of max_count 100.
	for i := 0; i < 10; i++ {
		r := cc.createServer(t, 0, cc.admin, map[string]any{"name": fmt.Sprintf("p%d", i), "min_count": 100, "max_count": 100})
		if r.Status != 202 {
			t.Fatalf("create batch %d: %d %s", i, r.Status, r.Body)
		}
	}
	_ = admin
	seen := map[string]bool{}
	var order []string
	url := cc.url(0) + "/compute/v2.1/servers?limit=100"
	for pages := 0; url != ""; pages++ {
		if pages > 20 {
			t.Fatal("pagination does not end")
		}
		r := do(t, "GET", url, cc.admin, nil)
		body := r.json(t)
		for _, s := range body["servers"].([]any) {
			id := s.(map[string]any)["id"].(string)
			if seen[id] {
				t.Fatalf("server %s listed twice", id)
			}
			seen[id] = true
			order = append(order, id)
		}
		url = ""
		if links, ok := body["servers_links"].([]any); ok {
			url = links[0].(map[string]any)["href"].(string)
		}
	}
	if len(seen) != 1000 {
		t.Fatalf("walked %d servers, want 1000", len(seen))
	}
	// Same order as one unpaginated listing.
	r := do(t, "GET", cc.url(0)+"/compute/v2.1/servers?limit=1000", cc.admin, nil)
	for i, s := range r.json(t)["servers"].([]any) {
		if s.(map[string]any)["id"] != order[i] {
			t.Fatalf("page walk order differs at %d", i)
		}
	}
	// Another order walks the same set, pages following that order.
	seen = map[string]bool{}
	last := ""
	url = cc.url(0) + "/compute/v2.1/servers/detail?limit=300&sort_key=display_name&sort_dir=asc"
	for url != "" {
		body := do(t, "GET", url, cc.admin, nil).json(t)
		for _, s := range body["servers"].([]any) {
			m := s.(map[string]any)
			if seen[m["id"].(string)] || m["name"].(string) < last {
				t.Fatalf("sorted walk: %v out of order or repeated", m["name"])
			}
			seen[m["id"].(string)], last = true, m["name"].(string)
		}
		url = ""
		if links, ok := body["servers_links"].([]any); ok {
			url = links[0].(map[string]any)["href"].(string)
		}
	}
	if len(seen) != 1000 {
		t.Fatalf("sorted walk saw %d servers", len(seen))
	}
	if r := do(t, "GET", cc.url(0)+"/compute/v2.1/servers?marker=00000000-0000-0000-0000-000000000000", cc.admin, nil); r.Status != 400 {
		t.Fatalf("unknown marker: %d", r.Status)
	}
}

// Acceptance 3: quota instances=10, 20 concurrent creates spread over 3
// controllers: exactly 10 succeed, 10 get 403, usage is 10. Then cores.
func TestServerQuotaRace(t *testing.T) {
	cc := newComputeCloud(t, 3)
	st := cc.Nodes[0].State()
	proj, _ := fsm.ProjectByName(st, "default", "admin")
	race := func(limits map[string]int64, flavors []string) (ok, refused int) {
		apply(t, cc.apiCluster, &fsm.SetQuota{ProjectID: proj.ID, Limits: limits, Force: true})
		var mu sync.Mutex
		var wg sync.WaitGroup
		for i := 0; i < 20; i++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				r := cc.createServer(t, i%3, cc.admin, map[string]any{"name": fmt.Sprintf("q%d", i), "flavorRef": flavors[i%len(flavors)]})
				mu.Lock()
				defer mu.Unlock()
				switch {
				case r.Status == 202:
					ok++
				case r.Status == 403 && strings.Contains(string(r.Body), "Quota exceeded"):
					refused++
				default:
					t.Errorf("create %d: %d %s", i, r.Status, r.Body)
				}
			}()
		}
		wg.Wait()
		return ok, refused
	}
	ok, refused := race(map[string]int64{"instances": 10, "cores": -1, "ram": -1}, []string{"1"})
	if ok != 10 || refused != 10 || quotaUsage(t, cc, "instances") != 10 {
		t.Fatalf("instances=10: %d created, %d refused, %d in use", ok, refused, quotaUsage(t, cc, "instances"))
	}
	// Delete them all, then cores=12 with flavors of 1 and 2 vCPUs.
	r := do(t, "GET", cc.url(0)+"/compute/v2.1/servers", cc.admin, nil)
	for _, s := range r.json(t)["servers"].([]any) {
		do(t, "DELETE", cc.url(1)+"/compute/v2.1/servers/"+s.(map[string]any)["id"].(string), cc.admin, nil)
	}
	ok, refused = race(map[string]int64{"instances": -1, "cores": 12, "ram": -1}, []string{"1", "3"})
	cores := quotaUsage(t, cc, "cores")
	// Usage is exactly the vCPUs of the servers that exist, within the limit.
	var counted int64
	r = do(t, "GET", cc.url(2)+"/compute/v2.1/servers/detail", cc.admin, nil, "OpenStack-API-Version", "compute 2.47")
	for _, s := range r.json(t)["servers"].([]any) {
		counted += int64(s.(map[string]any)["flavor"].(map[string]any)["vcpus"].(float64))
	}
	if cores > 12 || cores != counted || ok+refused != 20 || refused == 0 || cores < 11 {
		t.Fatalf("cores=12: %d created, %d refused, %d cores in use, %d counted", ok, refused, cores, counted)
	}
	t.Logf("cores=12 with 1- and 2-vCPU flavors: %d created, %d refused, %d cores used", ok, refused, cores)
}
