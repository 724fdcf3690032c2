package api

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/gophercloud/gophercloud/v2"
	"github.com/gophercloud/gophercloud/v2/openstack"
	"github.com/gophercloud/gophercloud/v2/openstack/compute/v2/hypervisors"
	"github.com/gophercloud/gophercloud/v2/openstack/compute/v2/migrations"
	"github.com/gophercloud/gophercloud/v2/openstack/compute/v2/services"
	"github.com/gophercloud/gophercloud/v2/openstack/compute/v2/usage"

	"github.com/keel-cloud/keel/internal/ids"
)

// gophercloudAdminChecks drives the administrator APIs with gophercloud v2
// (services, hypervisors, usage, migrations) on TestMigrationsOfEvacuations'
// cloud: compute-1 forced down, its two servers evacuated to compute-2.
func gophercloudAdminChecks(t *testing.T, cc *computeCloud, wantMigrations int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	provider, err := openstack.AuthenticatedClient(ctx, gophercloud.AuthOptions{
		IdentityEndpoint: cc.url(0) + "/identity/v3", Username: "admin", Password: testAdminPassword,
		DomainName: "Default", TenantName: "admin",
	})
	if err != nil {
		t.Fatalf("authenticate: %v", err)
	}
	compute, err := openstack.NewComputeV2(provider, gophercloud.EndpointOpts{Region: "RegionOne"})
	if err != nil {
		t.Fatal(err)
	}

	compute.Microversion = "2.53"
	pages, err := services.List(compute, services.ListOpts{Binary: "nova-compute"}).AllPages(ctx)
	if err != nil {
		t.Fatalf("services: %v", err)
	}
	svcs, err := services.ExtractServices(pages)
	if err != nil || len(svcs) != 2 {
		t.Fatalf("services: %v %+v", err, svcs)
	}
	if svcs[0].Host != "compute-1" { // the agents registered in either order
		svcs[0], svcs[1] = svcs[1], svcs[0]
	}
	if s := svcs[0]; s.Host != "compute-1" || !s.ForcedDown || s.State != "down" || s.Status != "enabled" || !ids.IsUUID(s.ID) || s.UpdatedAt.IsZero() {
		t.Fatalf("compute-1: %+v", s)
	}
	upd, err := services.Update(ctx, compute, svcs[1].ID, services.UpdateOpts{Status: services.ServiceDisabled, DisabledReason: "gophercloud"}).Extract()
	if err != nil || upd.Status != "disabled" || upd.DisabledReason != "gophercloud" || upd.ID != svcs[1].ID {
		t.Fatalf("disable compute-2: %v %+v", err, upd)
	}
	if upd, err = services.Update(ctx, compute, svcs[1].ID, services.UpdateOpts{Status: services.ServiceEnabled}).Extract(); err != nil || upd.Status != "enabled" || upd.DisabledReason != "" {
		t.Fatalf("enable compute-2: %v %+v", err, upd)
	}

	yes := true
	pages, err = hypervisors.List(compute, hypervisors.ListOpts{WithServers: &yes}).AllPages(ctx)
	if err != nil {
		t.Fatalf("hypervisors: %v", err)
	}
	hvs, err := hypervisors.ExtractHypervisors(pages)
	if err == nil && len(hvs) == 2 && hvs[0].HypervisorHostname != "compute-1" {
		hvs[0], hvs[1] = hvs[1], hvs[0]
	}
	if err != nil || len(hvs) != 2 || hvs[1].HypervisorHostname != "compute-2" || hvs[1].Servers == nil || len(*hvs[1].Servers) != 2 ||
		hvs[0].State != "down" || hvs[1].RunningVMs != 2 || hvs[1].CPUInfo.Arch == "" {
		t.Fatalf("hypervisors: %v %+v", err, hvs)
	}
	hv, err := hypervisors.Get(ctx, compute, hvs[1].ID).Extract()
	if err != nil || hv.HypervisorHostname != "compute-2" || hv.Service.Host != "compute-2" || hv.VCPUsUsed != 2 {
		t.Fatalf("hypervisor: %v %+v", err, hv)
	}
	compute.Microversion = "2.87"
	stats, err := hypervisors.GetStatistics(ctx, compute).Extract()
	if err != nil || stats.Count != 2 || stats.RunningVMs != 2 || stats.VCPUsUsed != 2 {
		t.Fatalf("statistics: %v %+v", err, stats)
	}
	if up, err := hypervisors.GetUptime(ctx, compute, hvs[1].ID).Extract(); err != nil || !strings.Contains(up.Uptime, "load average:") {
		t.Fatalf("uptime from compute-2's agent: %+v %v", up, err)
	}

	compute.Microversion = "2.40"
	start, end := time.Now().Add(-time.Hour), time.Now()
	pages, err = usage.AllTenants(compute, usage.AllTenantsOpts{Detailed: true, Start: &start, End: &end}).AllPages(ctx)
	if err != nil {
		t.Fatalf("usage: %v", err)
	}
	tenants, err := usage.ExtractAllTenants(pages)
	if err != nil || len(tenants) != 1 || len(tenants[0].ServerUsages) != 2 || tenants[0].TotalHours <= 0 || tenants[0].ServerUsages[0].Flavor != "m1.tiny" {
		t.Fatalf("usage: %v %+v", err, tenants)
	}

	compute.Microversion = "2.80"
	pages, err = migrations.List(compute, migrations.ListOpts{}).AllPages(ctx)
	if err != nil {
		t.Fatalf("migrations: %v", err)
	}
	migs, err := migrations.ExtractMigrations(pages)
	if err != nil || len(migs) != wantMigrations {
		t.Fatalf("migrations: %v %+v", err, migs)
	}
	for _, m := range migs {
		if m.MigrationType != "evacuation" || !ids.IsUUID(m.UUID) || m.SourceCompute != "compute-1" || m.DestCompute != "compute-2" ||
			m.OldInstanceTypeID != 1 || m.CreatedAt.IsZero() || m.ProjectID == "" || m.UserID == "" {
			t.Fatalf("migration %+v", m)
		}
	}
}
