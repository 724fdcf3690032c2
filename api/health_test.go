package api

import (
	"net/http"
	"testing"
)

// /readyz is 200 on every controller of a healthy cluster; once Drain is
// called (the controller got SIGTERM with --drain-delay) it is 503 with the
// reason, while the API still answers.
func TestReadyzAndDrain(t *testing.T) {
	ac := newAPICluster(t, 3)
	for i := range ac.Nodes {
		if r := do(t, "GET", ac.url(i)+"/readyz", "", nil); r.Status != http.StatusOK || r.json(t)["status"] != "ready" {
			t.Fatalf("readyz on %s: %d %s", ac.Nodes[i].Cfg.Name, r.Status, r.Body)
		}
	}
	ac.servers[ac.Nodes[1].Cfg.Name].Drain()
	r := do(t, "GET", ac.url(1)+"/readyz", "", nil)
	if r.Status != http.StatusServiceUnavailable || r.json(t)["reason"] != "draining: this controller is stopping" {
		t.Fatalf("readyz on a draining controller: %d %s", r.Status, r.Body)
	}
	if r := do(t, "GET", ac.url(0)+"/readyz", "", nil); r.Status != http.StatusOK {
		t.Fatalf("readyz on another controller: %d %s", r.Status, r.Body)
	}
	if r := do(t, "GET", ac.url(1)+"/compute/v2.1/", "", nil); r.Status != http.StatusOK {
		t.Fatalf("the draining controller stopped serving the API: %d %s", r.Status, r.Body)
	}
}
