package e2e

import (
	"bytes"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// Three controllers bootstrap; keelctl reports them; the leader is killed
// and a new one takes over within 10s; with a second controller killed the
// survivor reports the cluster unhealthy (exit 2).
func TestClusterStatusAndFailover(t *testing.T) {
	c := startCluster(t, 3)
	n1 := c.nodes[0]
	st := c.waitHealthy(n1, 45*time.Second)

	if len(st.Servers) != 3 {
		t.Fatalf("status lists %d controllers, want 3: %+v", len(st.Servers), st.Servers)
	}
	leaders := 0
	for _, s := range st.Servers {
		if s.Role == "leader" {
			leaders++
		}
		if !s.Voter || s.Gossip != "alive" || s.Error != "" {
			t.Errorf("controller %s: voter %v, gossip %q, error %q; want a voter, alive, no error", s.Name, s.Voter, s.Gossip, s.Error)
		}
	}
	if leaders != 1 || st.Leader == "" || st.Voters != 3 {
		t.Fatalf("%d rows with role leader, leader %q, %d voters; want exactly one leader and 3 voters: %+v", leaders, st.Leader, st.Voters, st.Servers)
	}
	// The table form agrees.
	if r := c.keelctl(n1, "cluster", "status"); r.code != 0 || !strings.HasPrefix(r.stdout, "leader: "+st.Leader+"   voters: 3   reported by: n1\n") {
		t.Fatalf("keelctl cluster status (table): %s", r)
	}

	oldLeader := c.byName(st.Leader)
	var survivors []*node
	for _, nd := range c.nodes {
		if nd != oldLeader {
			survivors = append(survivors, nd)
		}
	}
	watcher := survivors[0]

	killedAt := time.Now()
	c.kill(oldLeader)
	var newLeader string
	c.poll(10*time.Second-time.Since(killedAt), "a new leader after killing "+oldLeader.name, func() (bool, string) {
		st, r := c.status(watcher)
		if r.code != 0 || st == nil || st.Leader == "" || st.Leader == oldLeader.name {
			return false, r.String()
		}
		newLeader = st.Leader
		return true, ""
	})
	failover := time.Since(killedAt)
	t.Logf("failover: %s killed, %s reported leader %s (exit 0) %s later", oldLeader.name, watcher.name, newLeader, failover.Round(time.Millisecond))
	if failover > 10*time.Second {
		t.Fatalf("failover took %s, want at most 10s", failover)
	}

	// Lose a second controller: no quorum is left.
	other := survivors[1]
	c.kill(other)
	var last result
	took := c.poll(15*time.Second, "keelctl reports the cluster unhealthy after killing "+other.name, func() (bool, string) {
		last = c.keelctl(watcher, "cluster", "status")
		return last.code == 2, last.String()
	})
	t.Logf("with %s and %s killed, %s reported unhealthy %s after the second kill: %s",
		oldLeader.name, other.name, watcher.name, took.Round(time.Millisecond), strings.TrimSpace(last.stderr))
	if !strings.HasPrefix(last.stderr, "keelctl: cluster unhealthy: ") || strings.Count(strings.TrimSpace(last.stderr), "\n") != 0 {
		t.Errorf("stderr %q: want a one-line reason", last.stderr)
	}
}

// A snapshot can be saved and restored; a damaged copy is refused and the
// cluster stays healthy.
func TestSnapshotSaveRestore(t *testing.T) {
	c := startCluster(t, 1)
	n1 := c.nodes[0]
	c.waitHealthy(n1, 30*time.Second)
	dir := t.TempDir()

	file := filepath.Join(dir, "state.snap")
	r := c.keelctl(n1, "snapshot", "save", file)
	if r.code != 0 {
		t.Fatalf("snapshot save: %s", r)
	}
	data, err := os.ReadFile(file)
	if err != nil || len(data) == 0 || !bytes.HasPrefix(data, []byte("KEELFSM1")) {
		t.Fatalf("snapshot file: %d bytes, %v, starts %q; want a KEELFSM1 stream", len(data), err, data[:min(len(data), 8)])
	}
	if want := "saved " + strconv.Itoa(len(data)) + " bytes to " + file; strings.TrimSpace(r.stderr) != want {
		t.Errorf("snapshot save: stderr %q, want %q", r.stderr, want)
	}
	if m, _ := filepath.Glob(filepath.Join(dir, "*.tmp")); len(m) != 0 {
		t.Errorf("left behind: %q", m)
	}

	r = c.keelctl(n1, "snapshot", "restore", file)
	if r.code != 0 || !strings.HasPrefix(r.stdout, "restored ") {
		t.Fatalf("snapshot restore: %s", r)
	}
	t.Logf("restore: %s", strings.TrimSpace(r.stdout))
	c.waitHealthy(n1, 10*time.Second)

	bad := append([]byte(nil), data...)
	bad[len(bad)/2] ^= 0xff
	badFile := filepath.Join(dir, "damaged.snap")
	if err := os.WriteFile(badFile, bad, 0o600); err != nil {
		t.Fatal(err)
	}
	r = c.keelctl(n1, "snapshot", "restore", badFile)
	if r.code == 0 || !strings.Contains(r.stderr, "snapshot restore: ") {
		t.Fatalf("restore of a damaged snapshot: %s\nwant a non-zero exit and the reason", r)
	}
	t.Logf("damaged snapshot refused: %s", strings.TrimSpace(r.stderr))
	if r := c.keelctl(n1, "cluster", "status"); r.code != 0 {
		t.Fatalf("cluster unhealthy after the refused restore: %s", r)
	}
	// The state still makes a valid snapshot.
	r = c.keelctl(n1, "snapshot", "save", filepath.Join(dir, "after.snap"))
	if r.code != 0 {
		t.Fatalf("snapshot save after the refused restore: %s", r)
	}
}

// keelctl with another key is refused, and says the key is the problem.
func TestWrongKeyRejected(t *testing.T) {
	c := startCluster(t, 1)
	n1 := c.nodes[0]
	c.waitHealthy(n1, 30*time.Second)

	for _, key := range []string{keygen(t), "bm90LWEta2V5"} {
		r := keelctl(t, "--url", n1.url(), "--cluster-key", key, "cluster", "status")
		if r.code != 1 || !strings.Contains(r.stderr, "cluster key") {
			t.Errorf("keelctl with key %q: %s\nwant exit 1 and a message about the cluster key", key, r)
		}
	}
}

// keelctl against an address where no controller listens exits 2 and says
// which address to check.
func TestUnreachableController(t *testing.T) {
	skipShort(t)
	url := "http://127.0.0.1:" + strconv.Itoa(freePort(t, false))
	r := keelctl(t, "--url", url, "--cluster-key", keygen(t), "cluster", "status")
	if r.code != 2 || !strings.Contains(r.stderr, url) || !strings.Contains(r.stderr, "another controller") {
		t.Fatalf("%s\nwant exit 2 and a message naming %s", r, url)
	}
}
