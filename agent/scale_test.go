package agent

import (
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/keel-cloud/keel/agent/driver/fake"
	"github.com/keel-cloud/keel/internal/hostapi"
)

// TestManyAgentsInOneProcess runs 200 hosts against one controller, as the
// scale runs of keel-agent --fake-hosts do.
func TestManyAgentsInOneProcess(t *testing.T) {
	const hosts, perHost = 200, 3
	fc := newFakeController(t, testKey)
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConnsPerHost = hosts * 2
	t.Cleanup(tr.CloseIdleConnections)
	drivers := make([]*fake.Driver, hosts)
	start := time.Now()
	for i := range hosts {
		drivers[i] = fake.New(fake.Config{})
		cfg := testConfig(fmt.Sprintf("h%03d", i), drivers[i], fc.url)
		cfg.ListenAddr, cfg.AdvertiseAddr = "", "127.0.0.1:8776"
		cfg.Transport = tr
		cfg.Wait = 5 * time.Second
		startAgent(t, cfg)
	}
	waitFor(t, 10*time.Second, "every host registered", func() bool {
		var n int
		fc.with(func() { n = len(fc.registrations) })
		return n == hosts
	})
	for i := range hosts {
		for j := range perHost {
			fc.assign(fmt.Sprintf("h%03d", i), spawning(fmt.Sprintf("s%03d-%d", i, j), 1))
		}
	}
	waitFor(t, 20*time.Second, "every server active", func() bool {
		for i := range hosts {
			for j := range perHost {
				if !settled(fc, fmt.Sprintf("h%03d", i), fmt.Sprintf("s%03d-%d", i, j), hostapi.VMActive)() {
					return false
				}
			}
		}
		return true
	})
	for i, d := range drivers {
		if d.Defined() != perHost || d.Count() != perHost {
			t.Fatalf("host %d: %d defined, %d now; want %d", i, d.Defined(), d.Count(), perHost)
		}
	}
	// Count accepted reports: on a loaded machine a report's answer can
	// time out after the controller applied it, and its retry is then
	// refused (409), as it should be.
	var reports int
	fc.with(func() {
		for _, r := range fc.reports {
			if r.status == http.StatusOK {
				reports++
			}
		}
	})
	if reports != hosts*perHost {
		t.Fatalf("%d accepted reports, want %d", reports, hosts*perHost)
	}
	t.Logf("%d hosts, %d servers converged in %s", hosts, hosts*perHost, time.Since(start).Round(time.Millisecond))
}
