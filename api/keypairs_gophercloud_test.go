package api

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gophercloud/gophercloud/v2"
	"github.com/gophercloud/gophercloud/v2/openstack"
	"github.com/gophercloud/gophercloud/v2/openstack/compute/v2/availabilityzones"
	"github.com/gophercloud/gophercloud/v2/openstack/compute/v2/keypairs"
	"golang.org/x/crypto/ssh"

	"github.com/keel-cloud/keel/fsm"
	"github.com/keel-cloud/keel/internal/hostapi"
)

// gophercloud v2's keypairs and availabilityzones against a 3-controller
// cluster: writes through one controller, reads through another.
func TestGophercloudKeypairsAndZones(t *testing.T) {
	ac := newAPICluster(t, 3)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	compute := func(i int) *gophercloud.ServiceClient {
		t.Helper()
		provider, err := openstack.AuthenticatedClient(ctx, gophercloud.AuthOptions{
			IdentityEndpoint: ac.url(i) + "/identity/v3", Username: "admin", Password: testAdminPassword,
			DomainName: "Default", TenantName: "admin",
		})
		if err != nil {
			t.Fatalf("authenticate on node %d: %v", i, err)
		}
		c, err := openstack.NewComputeV2(provider, gophercloud.EndpointOpts{Region: "RegionOne"})
		if err != nil {
			t.Fatal(err)
		}
		c.Microversion = "2.10"
		return c
	}
	c1, c2 := compute(1), compute(2)

	imported, err := keypairs.Create(ctx, c1, keypairs.CreateOpts{Name: "imported", PublicKey: kpRSA}).Extract()
	if err != nil || imported.Fingerprint != kpRSAFP || imported.Type != "ssh" || imported.PrivateKey != "" || imported.UserID == "" {
		t.Fatalf("import: %+v %v", imported, err)
	}
	generated, err := keypairs.Create(ctx, c1, keypairs.CreateOpts{Name: "generated"}).Extract()
	if err != nil {
		t.Fatalf("generate: %v", err)
	}
	if _, err := ssh.ParsePrivateKey([]byte(generated.PrivateKey)); err != nil || !strings.HasPrefix(generated.PublicKey, "ssh-rsa ") {
		t.Fatalf("generated key pair: %+v (%v)", generated, err)
	}
	_, err = keypairs.Create(ctx, c1, keypairs.CreateOpts{Name: "imported", PublicKey: kpEd25519}).Extract()
	if !gophercloud.ResponseCodeIs(err, http.StatusConflict) {
		t.Fatalf("duplicate: %v, want a 409", err)
	}

	pages, err := keypairs.List(c2, keypairs.ListOpts{UserID: imported.UserID}).AllPages(ctx)
	if err != nil {
		t.Fatal(err)
	}
	all, err := keypairs.ExtractKeyPairs(pages)
	var names []string
	for _, k := range all {
		names = append(names, k.Name)
	}
	if err != nil || !slices.Equal(names, []string{"generated", "imported"}) {
		t.Fatalf("list through another controller: %v %v", names, err)
	}
	got, err := keypairs.Get(ctx, c2, "generated", keypairs.GetOpts{UserID: imported.UserID}).Extract()
	if err != nil || got.PublicKey != generated.PublicKey || got.Fingerprint != generated.Fingerprint || got.PrivateKey != "" {
		t.Fatalf("get: %+v %v", got, err)
	}
	if err := keypairs.Delete(ctx, c2, "generated", nil).ExtractErr(); err != nil {
		t.Fatalf("delete: %v", err)
	}
	_, err = keypairs.Get(ctx, c1, "generated", nil).Extract()
	var unexpected gophercloud.ErrUnexpectedResponseCode
	if !errors.As(err, &unexpected) || unexpected.Actual != http.StatusNotFound {
		t.Fatalf("get after delete through another controller: %v, want a 404", err)
	}

	// Zones are those of the compute hosts (none, no zone: Nova's rule);
	// the controllers' services, which the liveness loop records, are the
	// "internal" zone.
	now := time.Now().UnixMicro()
	apply(t, ac, &fsm.RegisterHost{Registration: hostapi.Registration{Host: "compute-1", VCPUs: 4, MemoryMB: 4096, DiskGB: 40},
		ServiceID: "5e0f4b3c-2d7a-4c1e-9d6b-3a8f1e2c4b5d", HypervisorID: "6f1a5c4d-3e8b-4d2f-8e7c-4b9a2f3d5c6e", Now: now})
	var ctrls []fsm.ControllerLiveness
	for i, n := range ac.Nodes {
		ctrls = append(ctrls, fsm.ControllerLiveness{Name: n.Cfg.Name, Up: true,
			SchedulerID: fmt.Sprintf("00000000-0000-4000-8000-%012d", 2*i), ConductorID: fmt.Sprintf("00000000-0000-4000-8000-%012d", 2*i+1)})
	}
	apply(t, ac, &fsm.SetLiveness{Controllers: ctrls, Now: now})
	zp, err := availabilityzones.List(c2).AllPages(ctx)
	if err != nil {
		t.Fatal(err)
	}
	zones, err := availabilityzones.ExtractAvailabilityZones(zp)
	if err != nil || len(zones) != 1 || zones[0].ZoneName != "nova" || !zones[0].ZoneState.Available {
		t.Fatalf("zones: %+v %v", zones, err)
	}
	dp, err := availabilityzones.ListDetail(c1).AllPages(ctx)
	if err != nil {
		t.Fatal(err)
	}
	detail, err := availabilityzones.ExtractAvailabilityZones(dp)
	if err != nil || len(detail) != 2 || detail[0].ZoneName != "internal" || detail[1].ZoneName != "nova" {
		t.Fatalf("zone detail: %+v %v", detail, err)
	}
	if len(detail[0].Hosts) != 3 {
		t.Fatalf("internal zone hosts %v, want the 3 controllers", detail[0].Hosts)
	}
	for _, n := range ac.Nodes {
		svc := detail[0].Hosts[n.Cfg.Name]["nova-conductor"]
		if !svc.Available || !svc.Active || time.Since(svc.UpdatedAt) > time.Minute {
			t.Fatalf("conductor of %s: %+v", n.Cfg.Name, svc)
		}
	}
}
