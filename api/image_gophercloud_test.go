package api

import (
	"bytes"
	"context"
	"io"
	"slices"
	"testing"
	"time"

	"github.com/gophercloud/gophercloud/v2"
	"github.com/gophercloud/gophercloud/v2/openstack"
	"github.com/gophercloud/gophercloud/v2/openstack/image/v2/imagedata"
	"github.com/gophercloud/gophercloud/v2/openstack/image/v2/images"
	"github.com/gophercloud/gophercloud/v2/pagination"
)

// gophercloud v2's image client (images and imagedata) against Keel.
func testImageGophercloud(t *testing.T, e *imageEnv) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	provider, err := openstack.AuthenticatedClient(ctx, gophercloud.AuthOptions{
		IdentityEndpoint: e.ac.url(0) + "/identity/v3",
		Username:         "admin",
		Password:         testAdminPassword,
		DomainName:       "Default",
		TenantName:       "admin",
	})
	if err != nil {
		t.Fatalf("authenticate: %v", err)
	}
	client, err := openstack.NewImageV2(provider, gophercloud.EndpointOpts{Region: "RegionOne"})
	if err != nil {
		t.Fatalf("image endpoint: %v", err)
	}
	pub := images.ImageVisibilityPublic
	img, err := images.Create(ctx, client, images.CreateOpts{
		Name: "gc-image", DiskFormat: "qcow2", ContainerFormat: "bare", Visibility: &pub, MinRAM: 64,
		Tags: []string{"gophercloud"}, Properties: map[string]string{"architecture": "x86_64"},
	}).Extract()
	if err != nil {
		t.Fatalf("create: %v", err)
	}
	if img.Status != images.ImageStatusQueued || img.Visibility != pub || img.Properties["architecture"] != "x86_64" || img.MinRAMMegabytes != 64 {
		t.Fatalf("created %+v", img)
	}
	data := bytes.Repeat([]byte("gophercloud image data\n"), 5000)
	if err := imagedata.Upload(ctx, client, img.ID, bytes.NewReader(data)).ExtractErr(); err != nil {
		t.Fatalf("upload: %v", err)
	}
	got, err := images.Get(ctx, client, img.ID).Extract()
	if err != nil {
		t.Fatalf("get: %v", err)
	}
	if got.Status != images.ImageStatusActive || got.SizeBytes != int64(len(data)) || got.Checksum != md5Hex(data) || got.CreatedAt.IsZero() {
		t.Fatalf("after upload %+v", got)
	}
	rd, err := imagedata.Download(ctx, client, img.ID).Extract()
	if err != nil {
		t.Fatalf("download: %v", err)
	}
	back, err := io.ReadAll(rd)
	rd.Close()
	if err != nil || !bytes.Equal(back, data) {
		t.Fatalf("downloaded %d bytes (%v), want the %d uploaded", len(back), err, len(data))
	}

	up, err := images.Update(ctx, client, img.ID, images.UpdateOpts{
		images.ReplaceImageName{NewName: "gc-renamed"},
		images.UpdateImageProperty{Op: images.AddOp, Name: "os_distro", Value: "cirros"},
		images.ReplaceImageMinRam{NewMinRam: 128},
	}).Extract()
	if err != nil {
		t.Fatalf("update: %v", err)
	}
	if up.Name != "gc-renamed" || up.Properties["os_distro"] != "cirros" || up.MinRAMMegabytes != 128 {
		t.Fatalf("updated %+v", up)
	}

	second, err := images.Create(ctx, client, images.CreateOpts{Name: "gc-second", Tags: []string{"gophercloud"}}).Extract()
	if err != nil {
		t.Fatalf("create a second image: %v", err)
	}
	// Pages of one, followed through Glance's "next" links.
	var names []string
	pages := 0
	err = images.List(client, images.ListOpts{Tags: []string{"gophercloud"}, Limit: 1, SortKey: "name", SortDir: "asc"}).EachPage(ctx, func(_ context.Context, p pagination.Page) (bool, error) {
		pages++
		list, err := images.ExtractImages(p)
		for _, i := range list {
			names = append(names, i.Name)
		}
		return true, err
	})
	if err != nil {
		t.Fatalf("list: %v", err)
	}
	if !slices.Equal(names, []string{"gc-renamed", "gc-second"}) || pages < 2 {
		t.Fatalf("listed %v in %d pages", names, pages)
	}

	for _, id := range []string{img.ID, second.ID} {
		if err := images.Delete(ctx, client, id).ExtractErr(); err != nil {
			t.Fatalf("delete: %v", err)
		}
	}
	if _, err := images.Get(ctx, client, img.ID).Extract(); !gophercloud.ResponseCodeIs(err, 404) {
		t.Fatalf("get after delete: %v", err)
	}
}
