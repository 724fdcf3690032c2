package api

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/gophercloud/gophercloud/v2"
	"github.com/gophercloud/gophercloud/v2/openstack"
	"github.com/gophercloud/gophercloud/v2/openstack/utils"
)

// Acceptance 2: gophercloud v2 authenticates, finds the compute endpoint in
// the catalog and reads the compute version document, against a 3-node
// cluster (through a follower).
func TestGophercloudAuthAndComputeDiscovery(t *testing.T) {
	ac := newAPICluster(t, 3)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	base := ac.url(0)
	for i, n := range ac.Nodes {
		if !n.IsLeader() {
			base = ac.url(i)
			break
		}
	}
	provider, err := openstack.AuthenticatedClient(ctx, gophercloud.AuthOptions{
		IdentityEndpoint: base + "/identity/v3",
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
		t.Fatalf("compute endpoint from the catalog: %v", err)
	}
	if !strings.HasPrefix(compute.Endpoint, base+"/compute/v2.1") {
		t.Fatalf("compute endpoint %q", compute.Endpoint)
	}
	mv, err := utils.GetSupportedMicroversions(ctx, compute)
	if err != nil {
		t.Fatalf("compute version document: %v", err)
	}
	if mv.MinMajor != 2 || mv.MinMinor != 1 || mv.MaxMajor != MaxVersion.Major || mv.MaxMinor != MaxVersion.Minor {
		t.Fatalf("microversions %+v, want 2.1 to %s", mv, MaxVersion)
	}
	if _, err := openstack.NewIdentityV3(provider, gophercloud.EndpointOpts{}); err != nil {
		t.Fatalf("identity endpoint: %v", err)
	}
}
