package agent

import (
	"github.com/keel-cloud/keel/internal/gossip"
	"io"
	"net"
	"strconv"
	"testing"
	"time"

	"github.com/hashicorp/memberlist"
	"github.com/hashicorp/serf/serf"

	"github.com/keel-cloud/keel/agent/driver/fake"
)

// TestGossipTags: the agent joins a controller's pool with the tags the
// controllers read (role=agent, zone, api, version), and leaves on stop.
func TestGossipTags(t *testing.T) {
	ml := memberlist.DefaultLANConfig()
	ml.Name = "controller"
	ml.BindAddr, ml.BindPort = "127.0.0.1", 0
	ml.AdvertiseAddr = "127.0.0.1"
	ml.SecretKey = testKey
	ml.ProbeInterval, ml.ProbeTimeout, ml.GossipInterval = 100*time.Millisecond, 50*time.Millisecond, 20*time.Millisecond
	ml.LogOutput = io.Discard
	sc := serf.DefaultConfig()
	sc.NodeName = "controller"
	sc.MemberlistConfig = ml
	sc.LogOutput = io.Discard
	sc.Tags = map[string]string{"role": "controller"}
	ctrl, err := serf.Create(sc)
	if err != nil {
		t.Fatal(err)
	}
	defer ctrl.Shutdown()
	m := ctrl.LocalMember()
	join := net.JoinHostPort(m.Addr.String(), strconv.Itoa(int(m.Port)))

	fc := newFakeController(t, testKey)
	cfg := testConfig("h1", fake.New(fake.Config{}), fc.url)
	cfg.GossipAddr, cfg.Join, cfg.Zone = "127.0.0.1:0", []string{join}, "az1"
	cfg.StateDir = t.TempDir()
	cfg.Gossip = gossip.Timing{ProbeInterval: 100 * time.Millisecond, ProbeTimeout: 50 * time.Millisecond, SuspicionMult: 3, GossipInterval: 20 * time.Millisecond}
	ta := startAgent(t, cfg)

	member := func() (serf.Member, bool) {
		for _, m := range ctrl.Members() {
			if m.Name == "h1" {
				return m, true
			}
		}
		return serf.Member{}, false
	}
	waitFor(t, 5*time.Second, "agent in the controller's pool", func() bool {
		m, ok := member()
		return ok && m.Status == serf.StatusAlive
	})
	got, _ := member()
	want := map[string]string{"role": "agent", "zone": "az1", "api": ta.a.Addr(), "version": "test"}
	for k, v := range want {
		if got.Tags[k] != v {
			t.Fatalf("tag %s = %q, want %q (tags %v)", k, got.Tags[k], v, got.Tags)
		}
	}
	ta.stop(t)
	waitFor(t, 5*time.Second, "agent left", func() bool {
		m, ok := member()
		return ok && m.Status == serf.StatusLeft
	})
}
