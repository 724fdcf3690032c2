package api

import (
	"context"
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/gophercloud/gophercloud/v2"
	"github.com/gophercloud/gophercloud/v2/openstack"
	"github.com/gophercloud/gophercloud/v2/openstack/compute/v2/flavors"
	"github.com/gophercloud/gophercloud/v2/pagination"
)

// gophercloud v2's flavors package against Keel: list (with pagination),
// get, create, update, extra specs, access lists and delete.
func TestGophercloudFlavors(t *testing.T) {
	e := newFlvEnv(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	provider, err := openstack.AuthenticatedClient(ctx, gophercloud.AuthOptions{
		IdentityEndpoint: e.url + "/identity/v3",
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

	// List, two at a time: gophercloud follows flavors_links.
	pages := 0
	var all []flavors.Flavor
	err = flavors.ListDetail(compute, flavors.ListOpts{Limit: 2, AccessType: flavors.AllAccess}).EachPage(ctx, func(_ context.Context, p pagination.Page) (bool, error) {
		pages++
		fs, err := flavors.ExtractFlavors(p)
		all = append(all, fs...)
		return true, err
	})
	if err != nil {
		t.Fatalf("list: %v", err)
	}
	if len(all) != 5 || pages != 3 || all[0].Name != "m1.tiny" || all[0].RAM != 512 || all[4].VCPUs != 8 || all[0].RxTxFactor != 1 || !all[0].IsPublic {
		t.Fatalf("listed %d flavors in %d pages: %+v", len(all), pages, all)
	}

	// Create a private flavor at 2.61 (description, extra_specs).
	compute.Microversion = "2.61"
	disk, swap, eph := 5, 128, 2
	private := false
	f, err := flavors.Create(ctx, compute, flavors.CreateOpts{
		Name: "gc-flavor", RAM: 1024, VCPUs: 2, Disk: &disk, Swap: &swap, Ephemeral: &eph, RxTxFactor: 1.5,
		IsPublic: &private, Description: "made by gophercloud",
	}).Extract()
	if err != nil {
		t.Fatalf("create: %v", err)
	}
	if f.ID == "" || f.Name != "gc-flavor" || f.RAM != 1024 || f.VCPUs != 2 || f.Disk != 5 || f.Swap != 128 || f.Ephemeral != 2 ||
		f.RxTxFactor != 1.5 || f.IsPublic || f.Description != "made by gophercloud" || f.ExtraSpecs == nil {
		t.Fatalf("created %+v", f)
	}
	got, err := flavors.Get(ctx, compute, f.ID).Extract()
	if err != nil || got.Name != "gc-flavor" || got.Swap != 128 {
		t.Fatalf("get: %+v %v", got, err)
	}
	upd, err := flavors.Update(ctx, compute, f.ID, flavors.UpdateOpts{Description: "changed"}).Extract()
	if err != nil || upd.Description != "changed" {
		t.Fatalf("update: %+v %v", upd, err)
	}

	// Extra specs.
	specs, err := flavors.CreateExtraSpecs(ctx, compute, f.ID, flavors.ExtraSpecsOpts{"hw:cpu_policy": "dedicated", "hw:numa_nodes": "1"}).Extract()
	if err != nil || specs["hw:cpu_policy"] != "dedicated" {
		t.Fatalf("create extra specs: %v %v", specs, err)
	}
	if _, err := flavors.UpdateExtraSpec(ctx, compute, f.ID, flavors.ExtraSpecsOpts{"hw:numa_nodes": "2"}).Extract(); err != nil {
		t.Fatalf("update extra spec: %v", err)
	}
	if one, err := flavors.GetExtraSpec(ctx, compute, f.ID, "hw:numa_nodes").Extract(); err != nil || one["hw:numa_nodes"] != "2" {
		t.Fatalf("get extra spec: %v %v", one, err)
	}
	if err := flavors.DeleteExtraSpec(ctx, compute, f.ID, "hw:cpu_policy").ExtractErr(); err != nil {
		t.Fatalf("delete extra spec: %v", err)
	}
	if specs, err := flavors.ListExtraSpecs(ctx, compute, f.ID).Extract(); err != nil || len(specs) != 1 || specs["hw:numa_nodes"] != "2" {
		t.Fatalf("list extra specs: %v %v", specs, err)
	}
	if got, err := flavors.Get(ctx, compute, f.ID).Extract(); err != nil || got.ExtraSpecs["hw:numa_nodes"] != "2" {
		t.Fatalf("extra specs in the flavor: %+v %v", got, err)
	}

	// Access.
	acc, err := flavors.AddAccess(ctx, compute, f.ID, flavors.AddAccessOpts{Tenant: e.otherProject}).Extract()
	if err != nil || len(acc) != 1 || acc[0].TenantID != e.otherProject || acc[0].FlavorID != f.ID {
		t.Fatalf("add access: %+v %v", acc, err)
	}
	page, err := flavors.ListAccesses(compute, f.ID).AllPages(ctx)
	if err != nil {
		t.Fatalf("list access: %v", err)
	}
	if acc, err := flavors.ExtractAccesses(page); err != nil || len(acc) != 1 || acc[0].TenantID != e.otherProject {
		t.Fatalf("access list: %+v %v", acc, err)
	}
	if _, err := flavors.AddAccess(ctx, compute, f.ID, flavors.AddAccessOpts{Tenant: e.otherProject}).Extract(); !gophercloud.ResponseCodeIs(err, http.StatusConflict) {
		t.Fatalf("add access twice: %v", err)
	}
	if acc, err := flavors.RemoveAccess(ctx, compute, f.ID, flavors.RemoveAccessOpts{Tenant: e.otherProject}).Extract(); err != nil || len(acc) != 0 {
		t.Fatalf("remove access: %+v %v", acc, err)
	}

	// The private flavor is listed for the admin only with is_public false
	// or None (it is not given to the admin project).
	page, err = flavors.ListDetail(compute, flavors.ListOpts{AccessType: flavors.PrivateAccess}).AllPages(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if fs, _ := flavors.ExtractFlavors(page); len(fs) != 1 || fs[0].ID != f.ID {
		t.Fatalf("private flavors: %+v", fs)
	}
	page, err = flavors.ListDetail(compute, nil).AllPages(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if fs, _ := flavors.ExtractFlavors(page); slices.ContainsFunc(fs, func(x flavors.Flavor) bool { return x.ID == f.ID }) {
		t.Fatalf("default listing shows the private flavor: %+v", fs)
	}

	if err := flavors.Delete(ctx, compute, f.ID).ExtractErr(); err != nil {
		t.Fatalf("delete: %v", err)
	}
	if _, err := flavors.Get(ctx, compute, f.ID).Extract(); !gophercloud.ResponseCodeIs(err, http.StatusNotFound) {
		t.Fatalf("get after delete: %v", err)
	}
}
