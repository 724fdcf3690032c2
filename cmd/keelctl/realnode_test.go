package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/keel-cloud/keel/cluster"
	"github.com/keel-cloud/keel/internal/clusterauth"
)

// A real single-node controller (in-process), shared by the tests that need
// the real authentication code or a real snapshot.
var (
	realOnce sync.Once
	real     *realController
	realErr  error
)

type realController struct {
	url    string
	keyStr string
	key    []byte
	dir    string
	node   *cluster.Node
	srv    *http.Server
}

func TestMain(m *testing.M) {
	code := m.Run()
	if real != nil {
		real.close()
	}
	os.Exit(code)
}

func realNode(t *testing.T) *realController {
	t.Helper()
	realOnce.Do(func() { real, realErr = startRealNode() })
	if realErr != nil {
		t.Fatalf("start an in-process controller: %v", realErr)
	}
	return real
}

func startRealNode() (*realController, error) {
	keyStr, err := newKey()
	if err != nil {
		return nil, err
	}
	key, err := clusterauth.ParseKey(keyStr)
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "keelctl-test-")
	if err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	node, err := cluster.New(cluster.Config{
		Name: "n1", DataDir: dir, RaftAddr: "127.0.0.1:0", GossipAddr: "127.0.0.1:0",
		APIAddr: ln.Addr().String(), BootstrapExpect: 1, ClusterKey: key,
		Version: "test", Timing: cluster.TestTiming(),
	})
	if err != nil {
		ln.Close()
		os.RemoveAll(dir)
		return nil, err
	}
	rc := &realController{url: "http://" + ln.Addr().String(), keyStr: keyStr, key: key, dir: dir, node: node,
		srv: &http.Server{Handler: node.Handler(), ReadHeaderTimeout: 10 * time.Second}}
	go rc.srv.Serve(ln)
	deadline := time.Now().Add(30 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		st := node.Status(ctx)
		err := node.Consistent(ctx)
		cancel()
		if st.Healthy && err == nil {
			return rc, nil
		}
		if time.Now().After(deadline) {
			rc.close()
			return nil, fmt.Errorf("not healthy after 30s: %s / %v", st.Reason, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func (rc *realController) close() {
	rc.srv.Close()
	rc.node.Shutdown()
	os.RemoveAll(rc.dir)
}

// snapshot fetches a snapshot from the real controller without keelctl.
func (rc *realController) snapshot(t *testing.T) []byte {
	t.Helper()
	req, err := cluster.NewInternalRequest(context.Background(), rc.key, http.MethodGet, strings.TrimPrefix(rc.url, "http://"), "/internal/v1/snapshot", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET snapshot: %v %v", resp.Status, err)
	}
	return b
}

// The fake controllers' signature check agrees with cluster.Sign, and the
// real controller accepts what keelctl sends.
func TestSignatureMatchesCluster(t *testing.T) {
	_, key := testKey(t)
	_, other := testKey(t)
	req, _ := http.NewRequest(http.MethodPost, "http://x/internal/v1/remove-peer?a=b", nil)
	cluster.Sign(req, key)
	if err := checkSignature(req, key); err != nil {
		t.Fatalf("cluster.Sign's signature fails the test check: %v", err)
	}
	if err := checkSignature(req, other); err == nil {
		t.Fatal("the test check accepts a signature made with another key")
	}
}

func TestRealController(t *testing.T) {
	clearEnv(t)
	rc := realNode(t)
	dir := t.TempDir()

	r := keelctl(t, "--url", rc.url, "--cluster-key", rc.keyStr, "cluster", "status")
	if r.code != 0 || !strings.HasPrefix(r.stdout, "leader: n1   voters: 1   reported by: n1\n") {
		t.Fatalf("status: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	_, rows := table(t, r.stdout)
	if len(rows) != 2 || rows[1][0] != "n1" || rows[1][2] != "leader" || rows[1][3] != "yes" || rows[1][4] != "alive" || rows[1][5] != "0s" {
		t.Errorf("status rows %q", rows)
	}

	other, _ := testKey(t)
	r = keelctl(t, "--url", rc.url, "--cluster-key", other, "cluster", "status")
	if r.code != 1 || !strings.Contains(r.stderr, "the cluster key does not match the controllers'") {
		t.Errorf("wrong key: exit %d, stderr %q", r.code, r.stderr)
	}

	file := filepath.Join(dir, "state.snap")
	r = keelctl(t, "--url", rc.url, "--cluster-key", rc.keyStr, "snapshot", "save", file)
	data, err := os.ReadFile(file)
	if r.code != 0 || err != nil || !strings.HasPrefix(string(data), "KEELFSM1") {
		t.Fatalf("snapshot save: exit %d, stderr %q, file %q (%v)", r.code, r.stderr, data, err)
	}
	if want := fmt.Sprintf("saved %d bytes to %s\n", len(data), file); r.stderr != want {
		t.Errorf("snapshot save: stderr %q, want %q", r.stderr, want)
	}
	r = keelctl(t, "--url", rc.url, "--cluster-key", rc.keyStr, "snapshot", "restore", file)
	if r.code != 0 || !strings.HasPrefix(r.stdout, "restored ") {
		t.Fatalf("snapshot restore: exit %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
	}
	bad := append([]byte(nil), data...)
	bad[len(bad)/2] ^= 0xff
	os.WriteFile(file, bad, 0o600)
	r = keelctl(t, "--url", rc.url, "--cluster-key", rc.keyStr, "snapshot", "restore", file)
	if r.code != 1 || !strings.Contains(r.stderr, "snapshot restore: ") || !strings.Contains(r.stderr, "HTTP 400, invalid") {
		t.Fatalf("restore of a corrupt file: exit %d, stderr %q", r.code, r.stderr)
	}

	r = keelctl(t, "--url", rc.url, "--cluster-key", rc.keyStr, "cluster", "remove-peer", "nobody")
	if r.code != 1 || !strings.Contains(r.stderr, `"nobody" is not a member of the raft configuration`) {
		t.Errorf("remove-peer nobody: exit %d, stderr %q", r.code, r.stderr)
	}
	if r := keelctl(t, "--url", rc.url, "--cluster-key", rc.keyStr, "cluster", "status"); r.code != 0 {
		t.Errorf("status after the restores: exit %d, stderr %q", r.code, r.stderr)
	}
}
