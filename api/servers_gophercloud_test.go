package api

import (
	"context"
	"testing"
	"time"

	"github.com/gophercloud/gophercloud/v2"
	"github.com/gophercloud/gophercloud/v2/openstack"
	"github.com/gophercloud/gophercloud/v2/openstack/compute/v2/servers"
	"github.com/gophercloud/gophercloud/v2/pagination"
)

// Compute acceptance 2 (servers): gophercloud v2 creates, pages through,
// shows, updates and deletes servers, writing through one controller and
// reading through another.
func TestGophercloudServers(t *testing.T) {
	cc := newComputeCloud(t, 3)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	client := func(i int) *gophercloud.ServiceClient {
		provider, err := openstack.AuthenticatedClient(ctx, gophercloud.AuthOptions{
			IdentityEndpoint: cc.url(i) + "/identity/v3", Username: "admin", Password: testAdminPassword,
			DomainName: "Default", TenantName: "admin",
		})
		if err != nil {
			t.Fatal(err)
		}
		c, err := openstack.NewComputeV2(provider, gophercloud.EndpointOpts{})
		if err != nil {
			t.Fatal(err)
		}
		c.Microversion = "2.74"
		return c
	}
	w, r := client(0), client(2)
	var ids []string
	for i := 0; i < 5; i++ {
		s, err := servers.Create(ctx, w, servers.CreateOpts{
			Name: "gc", ImageRef: cc.imageID, FlavorRef: "1", Networks: "none", Metadata: map[string]string{"n": "v"},
			UserData: []byte("#cloud-config\n"),
		}, nil).Extract()
		if err != nil {
			t.Fatalf("create: %v", err)
		}
		ids = append(ids, s.ID)
	}
	seen := 0
	err := servers.List(r, servers.ListOpts{Limit: 2}).EachPage(ctx, func(_ context.Context, p pagination.Page) (bool, error) {
		list, err := servers.ExtractServers(p)
		seen += len(list)
		return true, err
	})
	if err != nil || seen != 5 {
		t.Fatalf("paged list: %d servers, %v", seen, err)
	}
	s, err := servers.Get(ctx, r, ids[0]).Extract()
	if err != nil || s.Status != "BUILD" || s.Metadata["n"] != "v" || s.Flavor["original_name"] != "m1.tiny" {
		t.Fatalf("get: %+v %v", s, err)
	}
	name := "gc-renamed"
	if s, err = servers.Update(ctx, w, ids[0], servers.UpdateOpts{Name: name}).Extract(); err != nil || s.Name != name {
		t.Fatalf("update: %v %v", s, err)
	}
	if _, err := servers.UpdateMetadata(ctx, w, ids[0], servers.MetadataOpts{"k": "2"}).Extract(); err != nil {
		t.Fatalf("metadata: %v", err)
	}
	for _, id := range ids {
		if err := servers.Delete(ctx, w, id).ExtractErr(); err != nil {
			t.Fatalf("delete: %v", err)
		}
	}
	if _, err := servers.Get(ctx, r, ids[0]).Extract(); !gophercloud.ResponseCodeIs(err, 404) {
		t.Fatalf("get after delete: %v", err)
	}
}
