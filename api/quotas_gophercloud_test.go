package api

import (
	"context"
	"testing"
	"time"

	"github.com/gophercloud/gophercloud/v2"
	"github.com/gophercloud/gophercloud/v2/openstack"
	"github.com/gophercloud/gophercloud/v2/openstack/compute/v2/limits"
	"github.com/gophercloud/gophercloud/v2/openstack/compute/v2/quotasets"
)

// gophercloud v2's quotasets and limits packages work unchanged: get,
// detail, update (with force), delete, and limits of the own project and,
// for an admin, of another.
func TestGophercloudQuotaSetsAndLimits(t *testing.T) {
	q := newQuotaCloud(t, 1)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	client := func(user, password, project string) *gophercloud.ServiceClient {
		t.Helper()
		provider, err := openstack.AuthenticatedClient(ctx, gophercloud.AuthOptions{
			IdentityEndpoint: q.base + "/identity/v3", Username: user, Password: password,
			DomainName: "Default", TenantName: project,
		})
		if err != nil {
			t.Fatalf("authenticate %s: %v", user, err)
		}
		c, err := openstack.NewComputeV2(provider, gophercloud.EndpointOpts{Region: "RegionOne"})
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	admin := client("admin", testAdminPassword, "admin")
	member := client("qmember", "qmember-pw", "qproj")

	qs, err := quotasets.Get(ctx, member, q.proj).Extract()
	if err != nil {
		t.Fatalf("get: %v", err)
	}
	if qs.ID != q.proj || qs.Instances != 10 || qs.Cores != 20 || qs.RAM != 51200 || qs.KeyPairs != 100 ||
		qs.InjectedFiles != 5 || qs.FloatingIPs != -1 || qs.ServerGroupMembers != 10 {
		t.Fatalf("get: %+v", qs)
	}

	five, seven, one := 5, 7, 1
	upd, err := quotasets.Update(ctx, admin, q.proj, quotasets.UpdateOpts{Instances: &five, Cores: &seven}).Extract()
	if err != nil {
		t.Fatalf("update: %v", err)
	}
	if upd.Instances != 5 || upd.Cores != 7 || upd.RAM != 51200 {
		t.Fatalf("update: %+v", upd)
	}
	if _, err := quotasets.Update(ctx, member, q.proj, quotasets.UpdateOpts{Instances: &one}).Extract(); !gophercloud.ResponseCodeIs(err, 403) {
		t.Fatalf("member's update: %v, want a 403", err)
	}

	// Usage, then a limit below it: refused, unless forced.
	apply(t, q.apiCluster, qtServers(q.proj, q.memberID, 2, 2, 512))
	if _, err := quotasets.Update(ctx, admin, q.proj, quotasets.UpdateOpts{Instances: &one}).Extract(); !gophercloud.ResponseCodeIs(err, 400) {
		t.Fatalf("update below usage: %v, want a 400", err)
	}
	detail, err := quotasets.GetDetail(ctx, member, q.proj).Extract()
	if err != nil {
		t.Fatalf("detail: %v", err)
	}
	if detail.ID != q.proj || detail.Instances != (quotasets.QuotaDetail{Limit: 5, InUse: 2}) ||
		detail.Cores != (quotasets.QuotaDetail{Limit: 7, InUse: 4}) || detail.RAM != (quotasets.QuotaDetail{Limit: 51200, InUse: 1024}) {
		t.Fatalf("detail: %+v", detail)
	}
	if upd, err = quotasets.Update(ctx, admin, q.proj, quotasets.UpdateOpts{Instances: &one, Force: true}).Extract(); err != nil || upd.Instances != 1 {
		t.Fatalf("forced update: %+v %v", upd, err)
	}

	lim, err := limits.Get(ctx, member, nil).Extract()
	if err != nil {
		t.Fatalf("limits: %v", err)
	}
	if a := lim.Absolute; a.MaxTotalInstances != 1 || a.MaxTotalCores != 7 || a.TotalInstancesUsed != 2 || a.TotalCoresUsed != 4 ||
		a.TotalRAMUsed != 1024 || a.MaxTotalKeypairs != 100 || a.MaxServerMeta != 128 || a.MaxServerGroups != 10 {
		t.Fatalf("limits: %+v", a)
	}
	other, err := limits.Get(ctx, admin, limits.GetOpts{TenantID: q.other}).Extract()
	if err != nil || other.Absolute.MaxTotalInstances != 10 || other.Absolute.TotalInstancesUsed != 0 {
		t.Fatalf("admin's limits of another project: %+v %v", other, err)
	}

	if err := quotasets.Delete(ctx, admin, q.proj).Err; err != nil {
		t.Fatalf("delete: %v", err)
	}
	if qs, err = quotasets.Get(ctx, admin, q.proj).Extract(); err != nil || qs.Instances != 10 || qs.Cores != 20 {
		t.Fatalf("after delete: %+v %v", qs, err)
	}
}
