package main

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/keel-cloud/keel/cluster"
)

func healthyStatus() cluster.ClusterStatus {
	return cluster.ClusterStatus{
		Leader: "n1", Healthy: true, Voters: 3, ReportedBy: "n2",
		Servers: []cluster.ServerStatus{
			{Name: "n1", RaftAddress: "10.0.0.1:7000", Role: "leader", Voter: true, Gossip: "alive", LastContactMS: 0, AppliedIndex: 120, CommitIndex: 120, Term: 4, Version: "0.1.0", FSMSchema: 2},
			{Name: "n2", RaftAddress: "10.0.0.2:7000", Role: "follower", Voter: true, Gossip: "alive", LastContactMS: 12, AppliedIndex: 119, CommitIndex: 120, Term: 4, Version: "0.1.0", FSMSchema: 2},
			{Name: "n3", RaftAddress: "10.0.0.3:7000", Role: "follower", Voter: true, Gossip: "alive", LastContactMS: 1530, AppliedIndex: 118, CommitIndex: 120, Term: 4, Version: "0.1.0", FSMSchema: 1},
		},
	}
}

func unhealthyStatus() cluster.ClusterStatus {
	return cluster.ClusterStatus{
		Healthy: false, Voters: 3, ReportedBy: "n2",
		Reason: "no leader: 1 of 3 voters reachable, 2 needed for a quorum",
		Servers: []cluster.ServerStatus{
			{Name: "n1", RaftAddress: "10.0.0.1:7000", Role: "unknown", Voter: true, Gossip: "failed", LastContactMS: -1, Error: "controller at 10.0.0.1:8774 unreachable: connection refused"},
			{Name: "n2", RaftAddress: "10.0.0.2:7000", Role: "candidate", Voter: true, Gossip: "alive", LastContactMS: -1, AppliedIndex: 119, CommitIndex: 120, Term: 9, Version: "0.1.0"},
			{Name: "n3", RaftAddress: "10.0.0.3:7000", Role: "unknown", Voter: true, Gossip: "suspect", LastContactMS: -1, Error: "context deadline exceeded"},
		},
	}
}

// table splits the status table into rows of cells (cells are separated by
// at least two spaces; no cell in these tests contains two spaces).
func table(t *testing.T, out string) (summary string, rows [][]string) {
	t.Helper()
	lines := strings.Split(strings.TrimRight(out, "\n"), "\n")
	if len(lines) < 2 {
		t.Fatalf("status output too short:\n%s", out)
	}
	for _, l := range lines[1:] {
		var cells []string
		for _, c := range strings.Split(l, "  ") {
			if c = strings.TrimSpace(c); c != "" {
				cells = append(cells, c)
			}
		}
		rows = append(rows, cells)
	}
	return lines[0], rows
}

func TestStatusHealthy(t *testing.T) {
	clearEnv(t)
	ks, key := testKey(t)
	f := newFakeController(t, key, serveStatus(t, healthyStatus()))
	r := keelctl(t, "--url", f.URL, "--cluster-key", ks, "cluster", "status")
	if r.code != 0 || r.stderr != "" {
		t.Fatalf("exit %d, stderr %q, want 0 and nothing", r.code, r.stderr)
	}
	if f.verified.Load() != 1 {
		t.Fatalf("%d signed requests verified, want 1", f.verified.Load())
	}
	summary, rows := table(t, r.stdout)
	if summary != "leader: n1   voters: 3   reported by: n2" {
		t.Errorf("summary line %q", summary)
	}
	want := [][]string{
		{"NAME", "RAFT ADDRESS", "ROLE", "VOTER", "GOSSIP", "LAST CONTACT", "APPLIED", "COMMIT", "TERM", "VERSION", "SCHEMA"},
		{"n1", "10.0.0.1:7000", "leader", "yes", "alive", "0s", "120", "120", "4", "0.1.0", "2"},
		{"n2", "10.0.0.2:7000", "follower", "yes", "alive", "12ms", "119", "120", "4", "0.1.0", "2"},
		{"n3", "10.0.0.3:7000", "follower", "yes", "alive", "1.5s", "118", "120", "4", "0.1.0", "1"},
	}
	if len(rows) != len(want) {
		t.Fatalf("table has %d lines, want %d:\n%s", len(rows), len(want), r.stdout)
	}
	for i := range want {
		if strings.Join(rows[i], "|") != strings.Join(want[i], "|") {
			t.Errorf("line %d: %q, want %q", i+1, rows[i], want[i])
		}
	}
	// Columns line up: every cell of a column starts at the same offset.
	lines := strings.Split(r.stdout, "\n")[1:4]
	col := strings.Index(lines[0], "LAST CONTACT")
	for _, l := range lines[1:] {
		if !strings.HasPrefix(l[col:], "0s") && !strings.HasPrefix(l[col:], "12ms") && !strings.HasPrefix(l[col:], "1.5s") {
			t.Errorf("LAST CONTACT not aligned in %q", l)
		}
	}
}

func TestStatusUnhealthy(t *testing.T) {
	clearEnv(t)
	ks, key := testKey(t)
	f := newFakeController(t, key, serveStatus(t, unhealthyStatus()))
	r := keelctl(t, "--url", f.URL, "--cluster-key", ks, "cluster", "status")
	if r.code != 2 {
		t.Fatalf("exit %d, want 2; stderr %q", r.code, r.stderr)
	}
	if r.stderr != "keelctl: cluster unhealthy: no leader: 1 of 3 voters reachable, 2 needed for a quorum\n" {
		t.Errorf("stderr %q", r.stderr)
	}
	summary, rows := table(t, r.stdout)
	if summary != "leader: (none)   voters: 3   reported by: n2" {
		t.Errorf("summary line %q", summary)
	}
	if got := rows[0][len(rows[0])-1]; got != "ERROR" {
		t.Errorf("no ERROR column when a row has an error: header %q", rows[0])
	}
	wantN1 := []string{"n1", "10.0.0.1:7000", "unknown", "yes", "failed", "-", "-", "-", "-", "-", "-", "controller at 10.0.0.1:8774 unreachable: connection refused"}
	if strings.Join(rows[1], "|") != strings.Join(wantN1, "|") {
		t.Errorf("n1 row %q, want %q", rows[1], wantN1)
	}
	wantN2 := []string{"n2", "10.0.0.2:7000", "candidate", "yes", "alive", "never", "119", "120", "9", "0.1.0", "-", "-"}
	if strings.Join(rows[2], "|") != strings.Join(wantN2, "|") {
		t.Errorf("n2 row %q, want %q", rows[2], wantN2)
	}

	// Healthy but without a leader cannot happen; a status without a reason
	// still exits 2 with something on stderr.
	st := unhealthyStatus()
	st.Reason = ""
	f2 := newFakeController(t, key, serveStatus(t, st))
	if r := keelctl(t, "--url", f2.URL, "--cluster-key", ks, "cluster", "status"); r.code != 2 || !strings.HasPrefix(r.stderr, "keelctl: cluster unhealthy: ") {
		t.Errorf("no reason: exit %d, stderr %q", r.code, r.stderr)
	}
}

func TestStatusJSON(t *testing.T) {
	clearEnv(t)
	ks, key := testKey(t)
	for _, tc := range []struct {
		st   cluster.ClusterStatus
		code int
	}{{healthyStatus(), 0}, {unhealthyStatus(), 2}} {
		raw, _ := json.Marshal(tc.st)
		f := newFakeController(t, key, func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			w.Write(append(raw, '\n'))
		})
		r := keelctl(t, "--url", f.URL, "--cluster-key", ks, "cluster", "status", "--json")
		if r.code != tc.code {
			t.Fatalf("exit %d, want %d (stderr %q)", r.code, tc.code, r.stderr)
		}
		var want bytes.Buffer
		json.Indent(&want, raw, "", "  ")
		want.WriteByte('\n')
		if r.stdout != want.String() {
			t.Errorf("--json printed\n%s\nwant\n%s", r.stdout, want.String())
		}
		if tc.code == 2 && !strings.Contains(r.stderr, "cluster unhealthy: no leader") {
			t.Errorf("--json, unhealthy: stderr %q", r.stderr)
		}
	}
}

func TestStatusUnreachable(t *testing.T) {
	clearEnv(t)
	ks, _ := testKey(t)
	srv := httptest.NewServer(http.NotFoundHandler())
	url := srv.URL
	srv.Close() // nothing listens there any more
	r := keelctl(t, "--url", url, "--cluster-key", ks, "cluster", "status")
	if r.code != 2 {
		t.Fatalf("exit %d, want 2; stderr %q", r.code, r.stderr)
	}
	for _, want := range []string{url, "running", "another controller"} {
		if !strings.Contains(r.stderr, want) {
			t.Errorf("stderr %q does not mention %q", r.stderr, want)
		}
	}
	if r.stdout != "" {
		t.Errorf("stdout %q, want nothing", r.stdout)
	}
}

func TestStatusTimeout(t *testing.T) {
	clearEnv(t)
	ks, key := testKey(t)
	release := make(chan struct{})
	f := newFakeController(t, key, func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-release:
		}
	})
	defer close(release)
	start := time.Now()
	r := keelctl(t, "--url", f.URL, "--cluster-key", ks, "--timeout", "200ms", "cluster", "status")
	if r.code != 2 || !strings.Contains(r.stderr, "timed out after 200ms") || !strings.Contains(r.stderr, f.URL) {
		t.Fatalf("exit %d, stderr %q; want 2 and a timeout for %s", r.code, r.stderr, f.URL)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("took %s with --timeout 200ms", d)
	}
}

func TestStatusWrongKey(t *testing.T) {
	clearEnv(t)
	_, key := testKey(t)
	other, _ := testKey(t)
	f := newFakeController(t, key, serveStatus(t, healthyStatus()))
	r := keelctl(t, "--url", f.URL, "--cluster-key", other, "cluster", "status")
	if r.code != 1 {
		t.Fatalf("exit %d, want 1; stderr %q", r.code, r.stderr)
	}
	if !strings.Contains(r.stderr, "the cluster key does not match the controllers' (check --cluster-key / KEEL_CLUSTER_KEY)") {
		t.Errorf("stderr %q", r.stderr)
	}
	if f.rejected.Load() != 1 {
		t.Errorf("%d requests rejected, want 1", f.rejected.Load())
	}
}

func TestStatusNotAController(t *testing.T) {
	clearEnv(t)
	ks, _ := testKey(t)
	srv := httptest.NewServer(http.NotFoundHandler())
	defer srv.Close()
	r := keelctl(t, "--url", srv.URL, "--cluster-key", ks, "cluster", "status")
	if r.code != 1 || !strings.Contains(r.stderr, "404") || !strings.Contains(r.stderr, "Keel controller") {
		t.Fatalf("exit %d, stderr %q", r.code, r.stderr)
	}
}

func TestRemovePeer(t *testing.T) {
	clearEnv(t)
	ks, key := testKey(t)
	f := newFakeController(t, key, func(w http.ResponseWriter, r *http.Request) {
		var req struct {
			Name string `json:"name"`
		}
		if r.Method != http.MethodPost || r.URL.Path != "/internal/v1/remove-peer" || json.NewDecoder(r.Body).Decode(&req) != nil {
			t.Errorf("unexpected request %s %s", r.Method, r.URL.Path)
		}
		if req.Name != "n3" {
			writeJSON(w, http.StatusBadRequest, map[string]string{"code": "invalid", "error": `"` + req.Name + `" is not a member of the raft configuration`})
			return
		}
		writeJSON(w, http.StatusOK, map[string]string{"removed": req.Name})
	})
	r := keelctl(t, "--url", f.URL, "--cluster-key", ks, "cluster", "remove-peer", "n3")
	if r.code != 0 || !strings.Contains(r.stdout, "removed controller n3") {
		t.Fatalf("exit %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
	}
	r = keelctl(t, "--url", f.URL, "--cluster-key", ks, "cluster", "remove-peer", "n9")
	if r.code != 1 || !strings.Contains(r.stderr, `remove-peer n9: "n9" is not a member of the raft configuration`) {
		t.Fatalf("exit %d, stderr %q", r.code, r.stderr)
	}
}

func TestLastContact(t *testing.T) {
	for _, tc := range []struct {
		s    cluster.ServerStatus
		want string
	}{
		{cluster.ServerStatus{Role: "leader"}, "0s"},
		{cluster.ServerStatus{Role: "follower", LastContactMS: 7}, "7ms"},
		{cluster.ServerStatus{Role: "follower", LastContactMS: 2345}, "2.3s"},
		{cluster.ServerStatus{Role: "follower", LastContactMS: 125_400}, "2m5s"},
		{cluster.ServerStatus{Role: "follower", LastContactMS: -1}, "never"},
		{cluster.ServerStatus{Role: "unknown", LastContactMS: -1, Error: "x"}, "-"},
	} {
		if got := lastContact(tc.s); got != tc.want {
			t.Errorf("lastContact(%+v) = %q, want %q", tc.s, got, tc.want)
		}
	}
}
