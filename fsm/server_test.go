package fsm

import (
	"fmt"
	"testing"
)

func testServers(n int, project string) []Server {
	out := make([]Server, n)
	for i := range out {
		out[i] = Server{ID: fmt.Sprintf("%08d-0000-4000-8000-000000000000", i), Name: fmt.Sprintf("s%d", i),
			ProjectID: project, UserID: "u1", Flavor: ServerFlavor{ID: "1", VCPUs: 2, RAM: 512}, CreatedAt: int64(1000 + i)}
	}
	return out
}

func TestCreateServersChargesQuotaAllOrAsManyAsAllowed(t *testing.T) {
	f := openTest(t)
	mustApply(t, f, entry(t, 1, &KVPut{Key: "x", Value: []byte("y")}))
	// instances 10 by default, cores 20: 2-vCPU servers → at most 10.
	r := mustApply(t, f, entry(t, 2, &CreateServers{Servers: testServers(4, "p1"), MinCount: 4}))
	if r.Err != nil {
		t.Fatal(r.Err)
	}
	// 12 asked, at least 2: the quota leaves room for 6 (cores 20-8=12).
	srvs := testServers(16, "p1")[4:]
	r = mustApply(t, f, entry(t, 3, &CreateServers{Servers: srvs, MinCount: 2}))
	var res CreateServersResult
	if r.Err != nil || r.Decode(&res) != nil || len(res.IDs) != 6 {
		t.Fatalf("got %v %v, want 6 created", r.Err, res)
	}
	before := stateHash(t, f)
	r = mustApply(t, f, entry(t, 4, &CreateServers{Servers: testServers(20, "p1")[16:17], MinCount: 1}))
	if r.Err == nil || r.Err.Kind != KindQuota {
		t.Fatalf("over quota: %v", r.Err)
	}
	if stateHash(t, f) != before {
		t.Fatal("a refused create changed the state")
	}
	u, _ := ProjectUsage(f.State(), "p1", "")
	if u["instances"] != 10 || u["cores"] != 20 || u["ram"] != 5120 {
		t.Fatalf("usage %v", u)
	}
	// Delete releases; listing order is newest first.
	mustApply(t, f, entry(t, 5, &DeleteServer{ID: srvs[0].ID, Now: 5000}))
	u, _ = ProjectUsage(f.State(), "p1", "")
	if u["instances"] != 9 || u["cores"] != 18 {
		t.Fatalf("usage after delete %v", u)
	}
	var names []string
	ListServers(f.State(), ServerListing{ProjectID: "p1"}, func(s *Server) bool { names = append(names, s.Name); return true })
	if len(names) != 9 || names[0] != "s9" || names[8] != "s0" {
		t.Fatalf("list order %v", names)
	}
	var withDeleted int
	ListServers(f.State(), ServerListing{ProjectID: "p1", IncludeDeleted: true}, func(s *Server) bool { withDeleted++; return true })
	if withDeleted != 10 {
		t.Fatalf("with deleted: %d", withDeleted)
	}
	if r := mustApply(t, f, entry(t, 6, &DeleteServer{ID: srvs[0].ID, Now: 6000})); r.Err == nil || r.Err.Kind != KindNotFound {
		t.Fatalf("second delete: %v", r.Err)
	}
}
