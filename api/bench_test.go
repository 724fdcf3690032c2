package api

import (
	"context"
	"net/http/httptest"
	"testing"
)

// BenchmarkValidateToken measures token validation on one controller:
// signature check with the replicated key, then user, project, roles and
// revocations from the local state. Run:
// go test -run '^$' -bench ValidateToken ./api/
func BenchmarkValidateToken(b *testing.B) {
	ac := newAPICluster(b, 1)
	s := ac.servers[ac.Nodes[0].Cfg.Name]
	tok := login(b, ac.url(0), "admin", testAdminPassword, projectScope("admin"))
	ctx := context.Background()
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := s.tokens.validate(ctx, tok); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "validations/s")
}

// BenchmarkValidatedRequest is a whole authenticated request through the
// chain, in process (no network): GET /compute/v2.1/ with a token.
func BenchmarkValidatedRequest(b *testing.B) {
	ac := newAPICluster(b, 1)
	s := ac.servers[ac.Nodes[0].Cfg.Name]
	tok := login(b, ac.url(0), "admin", testAdminPassword, projectScope("admin"))
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			req := httptest.NewRequest("GET", "/compute/v2.1/", nil)
			req.Header.Set("X-Auth-Token", tok)
			rec := httptest.NewRecorder()
			s.ServeHTTP(rec, req)
			if rec.Code != 200 {
				b.Fatalf("HTTP %d", rec.Code)
			}
		}
	})
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "requests/s")
}
