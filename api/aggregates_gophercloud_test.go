package api

import (
	"context"
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/gophercloud/gophercloud/v2"
	"github.com/gophercloud/gophercloud/v2/openstack"
	"github.com/gophercloud/gophercloud/v2/openstack/compute/v2/aggregates"
	"github.com/gophercloud/gophercloud/v2/pagination"
)

// gophercloud v2's aggregates package against Keel: create, get, list,
// update, add and remove a host, set and unset metadata, delete.
func TestGophercloudAggregates(t *testing.T) {
	e := newAggEnv(t, "h1", "h2")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	provider, err := openstack.AuthenticatedClient(ctx, gophercloud.AuthOptions{
		IdentityEndpoint: e.base + "/identity/v3",
		Username:         "admin",
		Password:         testAdminPassword,
		DomainName:       "Default",
		TenantName:       "admin",
	})
	if err != nil {
		t.Fatalf("authenticate: %v", err)
	}
	compute, err := openstack.NewComputeV2(provider, gophercloud.EndpointOpts{Region: "RegionOne"})
	if err != nil {
		t.Fatal(err)
	}
	compute.Microversion = "2.41"

	a, err := aggregates.Create(ctx, compute, aggregates.CreateOpts{Name: "gc-agg", AvailabilityZone: "gc-az"}).Extract()
	if err != nil {
		t.Fatalf("create: %v", err)
	}
	if a.ID != 1 || a.Name != "gc-agg" || a.AvailabilityZone != "gc-az" || a.UUID == "" || a.CreatedAt.IsZero() || !a.UpdatedAt.IsZero() || a.Deleted {
		t.Fatalf("created %+v", a)
	}
	if time.Since(a.CreatedAt) > time.Minute {
		t.Fatalf("created_at %v", a.CreatedAt)
	}
	if _, err := aggregates.Create(ctx, compute, aggregates.CreateOpts{Name: "gc-agg"}).Extract(); !gophercloud.ResponseCodeIs(err, http.StatusConflict) {
		t.Fatalf("a taken name: %v", err)
	}

	a, err = aggregates.AddHost(ctx, compute, a.ID, aggregates.AddHostOpts{Host: "h1"}).Extract()
	if err != nil || !slices.Equal(a.Hosts, []string{"h1"}) {
		t.Fatalf("add host: %+v %v", a, err)
	}
	a, err = aggregates.SetMetadata(ctx, compute, a.ID, aggregates.SetMetadataOpts{Metadata: map[string]any{"ssd": "true"}}).Extract()
	if err != nil || a.Metadata["ssd"] != "true" || a.Metadata["availability_zone"] != "gc-az" {
		t.Fatalf("set metadata: %+v %v", a, err)
	}
	a, err = aggregates.SetMetadata(ctx, compute, a.ID, aggregates.SetMetadataOpts{Metadata: map[string]any{"ssd": nil}}).Extract()
	if _, has := a.Metadata["ssd"]; err != nil || has {
		t.Fatalf("unset metadata: %+v %v", a, err)
	}
	a, err = aggregates.Update(ctx, compute, a.ID, aggregates.UpdateOpts{Name: "gc-agg-2", AvailabilityZone: "gc-az-2"}).Extract()
	if err != nil || a.Name != "gc-agg-2" || a.AvailabilityZone != "gc-az-2" || a.UpdatedAt.IsZero() {
		t.Fatalf("update: %+v %v", a, err)
	}

	var all []aggregates.Aggregate
	err = aggregates.List(compute).EachPage(ctx, func(_ context.Context, p pagination.Page) (bool, error) {
		as, err := aggregates.ExtractAggregates(p)
		all = append(all, as...)
		return true, err
	})
	if err != nil || len(all) != 1 || all[0].UUID != a.UUID || !slices.Equal(all[0].Hosts, []string{"h1"}) {
		t.Fatalf("list: %+v %v", all, err)
	}
	got, err := aggregates.Get(ctx, compute, a.ID).Extract()
	if err != nil || got.Name != "gc-agg-2" || got.Metadata["availability_zone"] != "gc-az-2" {
		t.Fatalf("get: %+v %v", got, err)
	}

	if err := aggregates.Delete(ctx, compute, a.ID).ExtractErr(); !gophercloud.ResponseCodeIs(err, http.StatusBadRequest) {
		t.Fatalf("delete with a host: %v", err)
	}
	if _, err := aggregates.RemoveHost(ctx, compute, a.ID, aggregates.RemoveHostOpts{Host: "h2"}).Extract(); !gophercloud.ResponseCodeIs(err, http.StatusNotFound) {
		t.Fatalf("remove a non-member: %v", err)
	}
	if a, err = aggregates.RemoveHost(ctx, compute, a.ID, aggregates.RemoveHostOpts{Host: "h1"}).Extract(); err != nil || len(a.Hosts) != 0 {
		t.Fatalf("remove host: %+v %v", a, err)
	}
	if err := aggregates.Delete(ctx, compute, a.ID).ExtractErr(); err != nil {
		t.Fatalf("delete: %v", err)
	}
	if _, err := aggregates.Get(ctx, compute, a.ID).Extract(); !gophercloud.ResponseCodeIs(err, http.StatusNotFound) {
		t.Fatalf("get deleted: %v", err)
	}
}
