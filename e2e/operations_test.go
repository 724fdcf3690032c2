package e2e

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/keel-cloud/keel/api"
)

// Operating the cloud with real processes: a host's agent killed or
// paused, liveness through gossip, fencing and evacuation.

// agentProc is one keel-agent process simulating one host with the fake
// driver, a member of the controllers' gossip pool.
type agentProc struct {
	c        *testCluster
	name     string
	args     []string
	stateDir string
	logPath  string
	cmd      *exec.Cmd
	exited   chan struct{}
}

// startGossipAgent starts a fake-driver agent named name that joins the
// gossip pool of the cluster's first controller. Its domains are kept in
// its state directory, so a restarted agent finds them (as libvirt's
// survive an agent restart).
func (c *testCluster) startGossipAgent(name string, extra ...string) *agentProc {
	c.t.Helper()
	var urls []string
	for _, nd := range c.nodes {
		urls = append(urls, nd.url())
	}
	a := &agentProc{c: c, name: name, stateDir: c.t.TempDir(), logPath: filepath.Join(c.t.TempDir(), name+".log")}
	a.args = append([]string{"--name", name, "--driver", "fake", "--fake-persist",
		"--controllers", strings.Join(urls, ","), "--cluster-key", c.key,
		"--listen", net.JoinHostPort("127.0.0.1", strconv.Itoa(freePort(c.t, false))),
		"--gossip-addr", net.JoinHostPort("127.0.0.1", strconv.Itoa(freePort(c.t, true))),
		"--join", c.nodes[0].gossip, "--state-dir", a.stateDir}, extra...)
	a.start()
	c.t.Cleanup(func() {
		a.cmd.Process.Kill()
		<-a.exited
		if c.t.Failed() {
			c.t.Logf("==== keel-agent %s: the end of its log ====\n%s", name, tail(a.logPath, 40))
		}
	})
	return a
}

func (a *agentProc) start() {
	a.c.t.Helper()
	logf, err := os.OpenFile(a.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		a.c.t.Fatal(err)
	}
	a.cmd = exec.Command(agentBin, a.args...)
	a.cmd.Env = cleanEnv()
	a.cmd.Stdout, a.cmd.Stderr = logf, logf
	if err := a.cmd.Start(); err != nil {
		a.c.t.Fatalf("start keel-agent %s: %v", a.name, err)
	}
	a.exited = make(chan struct{})
	go func() {
		a.cmd.Wait()
		logf.Close()
		close(a.exited)
	}()
}

func (a *agentProc) signal(sig syscall.Signal) {
	a.c.t.Helper()
	if err := a.cmd.Process.Signal(sig); err != nil {
		a.c.t.Fatalf("signal %v to keel-agent %s: %v", sig, a.name, err)
	}
}

// kill SIGKILLs the agent (its domains, in the state file, stay "running",
// as qemu processes outlive a killed libvirt agent).
func (a *agentProc) kill() {
	a.c.t.Helper()
	a.signal(syscall.SIGKILL)
	select {
	case <-a.exited:
	case <-time.After(10 * time.Second):
		a.c.t.Fatalf("keel-agent %s still running 10s after SIGKILL", a.name)
	}
}

// running returns the ids of the servers whose domains run on this host,
// from the fake driver's own state file.
func (a *agentProc) running() map[string]bool {
	a.c.t.Helper()
	b, err := os.ReadFile(filepath.Join(a.stateDir, "fake-domains.json"))
	if os.IsNotExist(err) {
		return map[string]bool{}
	} else if err != nil {
		a.c.t.Fatalf("read the fake driver's state of %s: %v", a.name, err)
	}
	var doms []struct {
		ServerID   string `json:"server_id"`
		PowerState int    `json:"power_state"`
	}
	if err := json.Unmarshal(b, &doms); err != nil {
		a.c.t.Fatalf("the fake driver's state of %s is not JSON: %v\n%s", a.name, err, b)
	}
	out := map[string]bool{}
	for _, d := range doms {
		if d.PowerState == 1 {
			out[d.ServerID] = true
		}
	}
	return out
}

// hosts returns the compute hosts as controller nd sees them.
func (c *testCluster) hosts(nd *node) (map[string]api.HostRow, result) {
	c.t.Helper()
	r := c.keelctl(nd, "hosts", "--json")
	var out struct {
		Hosts []api.HostRow `json:"hosts"`
	}
	if r.code != 0 || json.Unmarshal([]byte(r.stdout), &out) != nil {
		return nil, r
	}
	m := map[string]api.HostRow{}
	for _, h := range out.Hosts {
		m[h.Host] = h
	}
	return m, r
}

// waitHostState polls until host is in state (up/down) and returns how long
// it took.
func (c *testCluster) waitHostState(nd *node, host, state string, timeout time.Duration) time.Duration {
	c.t.Helper()
	return c.poll(timeout, fmt.Sprintf("host %s %s", host, state), func() (bool, string) {
		hs, r := c.hosts(nd)
		h, ok := hs[host]
		return ok && h.State == state, fmt.Sprintf("%+v\n%s", h, r)
	})
}

// detectionBound is the documented bound on reporting a killed host down
// (README, operations): memberlist's probe and suspicion (1.5 s to 3 s in
// small pools) plus the leader's polling; the test allows a loaded CI
// machine twice the 5 s target.
const detectionBound = 10 * time.Second

// Acceptance 2 of "Operating the cloud": a SIGKILLed agent's host is
// reported down within the bound (the figure is logged; KEEL_DETECTION_TRIALS
// repeats it for BENCHMARKS.md); a SIGSTOP shorter than the suspicion
// window does not flap the host, and no work is lost.
func TestHostDownDetectionAndNoFlap(t *testing.T) {
	// Three controllers and two hosts: the smallest pool in which a dead
	// member's probes go through other members (indirect probes, and
	// suspicion confirmed by more than one prober), as on any real cloud.
	c := startCluster(t, 3)
	nd := c.nodes[0]
	c.waitHealthy(nd, 30*time.Second)
	a := c.startGossipAgent("host-a", "--fence-after", "30s")
	c.startGossipAgent("host-b", "--fence-after", "30s")
	c.waitHostState(nd, "host-a", "up", 30*time.Second)
	c.waitHostState(nd, "host-b", "up", 30*time.Second)

	// A slow host is suspected, not killed: pause it for one second while
	// work is queued for it.
	id := createServer(t, nd, "paused-work")
	c.poll(60*time.Second, "server ACTIVE", func() (bool, string) {
		s := serverStatus(t, nd, id)
		return s == "ACTIVE", s
	})
	stopWatch := make(chan struct{})
	var watched sync.WaitGroup
	var downSeen []string
	watched.Add(1)
	go func() {
		defer watched.Done()
		for {
			select {
			case <-stopWatch:
				return
			case <-time.After(100 * time.Millisecond):
			}
			if hs, _ := c.hosts(nd); hs != nil && hs["host-a"].State != "up" {
				downSeen = append(downSeen, fmt.Sprintf("%s gossip %s", hs["host-a"].State, hs["host-a"].Gossip))
			}
		}
	}()
	a.signal(syscall.SIGSTOP)
	paused := time.Now()
	serverAction(t, nd, id, `{"os-stop": null}`)
	time.Sleep(time.Second - time.Since(paused))
	a.signal(syscall.SIGCONT)
	t.Logf("agent paused for %s", time.Since(paused).Round(time.Millisecond))
	time.Sleep(5 * time.Second)
	close(stopWatch)
	watched.Wait()
	if len(downSeen) > 0 {
		t.Fatalf("a host paused for 1s was reported down: %v", downSeen)
	}
	c.poll(30*time.Second, "the stop queued while the agent was paused is carried out", func() (bool, string) {
		s := serverStatus(t, nd, id)
		return s == "SHUTOFF", s
	})

	trials := 1
	if v := os.Getenv("KEEL_DETECTION_TRIALS"); v != "" {
		trials, _ = strconv.Atoi(v)
	}
	var took []time.Duration
	for i := range trials {
		if i > 0 {
			a.start()
			c.waitHostState(nd, "host-a", "up", 30*time.Second)
			time.Sleep(3 * time.Second) // let gossip settle, as a host that runs for a while would
		}
		killed := time.Now()
		a.kill()
		c.waitHostState(nd, "host-a", "down", 2*detectionBound)
		d := time.Since(killed)
		took = append(took, d)
		t.Logf("detection trial %d: SIGKILL to service down in %s", i+1, d.Round(time.Millisecond))
	}
	slices.Sort(took)
	p50, p99 := took[len(took)/2], took[min(len(took)-1, len(took)*99/100)]
	t.Logf("host-down detection over %d trials: p50 %s, p99 %s, max %s (bound %s)", len(took), p50.Round(time.Millisecond),
		p99.Round(time.Millisecond), took[len(took)-1].Round(time.Millisecond), detectionBound)
	if took[len(took)-1] > detectionBound {
		t.Fatalf("a killed host took %s to be reported down, over the documented bound %s", took[len(took)-1], detectionBound)
	}
}

// Acceptance 3: evacuation end to end with two agents. Host A's agent is
// killed (its domains "keep running", as qemu outlives a killed agent), A is
// forced down, `keelctl host evacuate A` rebuilds every server on B; A's
// agent restarted destroys its copies and starts nothing, and from the
// drivers' own state no server runs on both hosts once A has cleaned up.
func TestEvacuateAKilledHost(t *testing.T) {
	c := startCluster(t, 3)
	nd := c.nodes[0]
	c.waitHealthy(nd, 30*time.Second)
	hostA := c.startGossipAgent("host-a", "--fence-after", "5s")
	hostB := c.startGossipAgent("host-b", "--fence-after", "5s")
	c.waitHostState(nd, "host-a", "up", 30*time.Second)
	c.waitHostState(nd, "host-b", "up", 30*time.Second)

	// Every server on A: B is disabled while they are built.
	if r := c.keelctl(nd, "host", "disable", "host-b", "--reason", "filling host-a"); r.code != 0 {
		t.Fatalf("keelctl host disable: %s", r)
	}
	const n = 6
	var ids []string
	for i := range n {
		ids = append(ids, createServer(t, nd, fmt.Sprintf("evac-%d", i)))
	}
	c.poll(60*time.Second, "servers ACTIVE on host-a", func() (bool, string) {
		run := hostA.running()
		return len(run) == n, fmt.Sprintf("running on host-a: %v", run)
	})
	if r := c.keelctl(nd, "host", "enable", "host-b"); r.code != 0 {
		t.Fatalf("keelctl host enable: %s", r)
	}
	// An up host is not evacuated.
	if r := c.keelctl(nd, "host", "evacuate", "host-a"); r.code == 0 || !strings.Contains(r.stderr, "the host is up") {
		t.Fatalf("keelctl host evacuate of an up host: %s", r)
	}
	serverActionStatus(t, nd, ids[0], `{"evacuate": {}}`, "2.68", 409)

	hostA.kill()
	took := c.waitHostState(nd, "host-a", "down", 2*detectionBound)
	t.Logf("host-a reported down %s after SIGKILL", took.Round(time.Millisecond))
	// Down, but inside its fencing window: refused with the wait.
	if r := c.keelctl(nd, "host", "evacuate", "host-a"); r.code == 0 || !strings.Contains(r.stderr, "may still run servers") {
		t.Fatalf("keelctl host evacuate inside the fencing window: %s", r)
	}
	if r := c.keelctl(nd, "host", "force-down", "host-a"); r.code != 0 {
		t.Fatalf("keelctl host force-down: %s", r)
	}
	r := c.keelctl(nd, "--timeout", "60s", "host", "evacuate", "host-a")
	if r.code != 0 || !strings.Contains(r.stdout, fmt.Sprintf("evacuated %d of %d servers from host-a", n, n)) {
		t.Fatalf("keelctl host evacuate: %s", r)
	}
	t.Logf("keelctl host evacuate:\n%s%s", r.stdout, r.stderr)
	c.poll(60*time.Second, "every server running on host-b", func() (bool, string) {
		run := hostB.running()
		return len(run) == n, fmt.Sprintf("running on host-b: %v", run)
	})
	for _, id := range ids {
		if s := serverStatus(t, nd, id); s != "ACTIVE" {
			t.Fatalf("server %s is %s after the evacuation", id, s)
		}
	}

	// A comes back: sample both drivers' state while it cleans up.
	before := hostA.running()
	if len(before) != n {
		t.Fatalf("host-a's killed agent left %d running domains, want %d", len(before), n)
	}
	hostA.start()
	var overlapAfterClean []string
	var grew []string
	cleanedAt := time.Time{}
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		runA, runB := hostA.running(), hostB.running()
		for id := range runA {
			if !before[id] {
				grew = append(grew, id)
			}
		}
		before = runA
		if len(runA) == 0 && cleanedAt.IsZero() {
			cleanedAt = time.Now()
		}
		if !cleanedAt.IsZero() {
			for id := range runA {
				if runB[id] {
					overlapAfterClean = append(overlapAfterClean, id)
				}
			}
			if time.Since(cleanedAt) > 3*time.Second {
				break
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	switch {
	case len(grew) > 0:
		t.Fatalf("host-a started servers after it came back: %v", grew)
	case cleanedAt.IsZero():
		t.Fatalf("host-a still runs %v 30s after it came back", hostA.running())
	case len(overlapAfterClean) > 0:
		t.Fatalf("servers ran on both hosts after host-a cleaned up: %v", overlapAfterClean)
	}
	// Its migrations complete: the old host reported each copy destroyed.
	c.poll(30*time.Second, "evacuations completed", func() (bool, string) {
		ms := computeGet[struct {
			Migrations []map[string]any `json:"migrations"`
		}](t, nd, "2.59", "/os-migrations?migration_type=evacuation")
		done := 0
		for _, m := range ms.Migrations {
			if m["status"] == "completed" {
				done++
			}
		}
		return done == n, fmt.Sprint(ms.Migrations)
	})
	if run := hostB.running(); len(run) != n {
		t.Fatalf("host-b runs %d servers, want %d", len(run), n)
	}
}

// The compute API as the admin, for the tests of this file.

var (
	tokenMu sync.Mutex
	tokens  = map[string]string{}
)

func adminToken(t *testing.T, nd *node) string {
	t.Helper()
	tokenMu.Lock()
	defer tokenMu.Unlock()
	if tok := tokens[nd.url()]; tok != "" {
		return tok
	}
	body := `{"auth": {"identity": {"methods": ["password"], "password": {"user": {"name": "admin", "domain": {"id": "default"}, "password": "` +
		adminPassword + `"}}}, "scope": {"project": {"name": "admin", "domain": {"id": "default"}}}}}`
	// The first leader bootstraps identity just after it is elected.
	var tok string
	deadline := time.Now().Add(30 * time.Second)
	for {
		res, err := http.Post(nd.url()+"/identity/v3/auth/tokens", "application/json", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		tok = res.Header.Get("X-Subject-Token")
		if res.StatusCode == 201 && tok != "" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("admin token: HTTP %d after 30s", res.StatusCode)
		}
		time.Sleep(200 * time.Millisecond)
	}
	tokens[nd.url()] = tok
	return tok
}

// computeCall sends a compute API request as the admin and returns the
// status and body.
func computeCall(t *testing.T, nd *node, method, version, path, body string) (int, []byte) {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, _ := http.NewRequest(method, nd.url()+"/compute/v2.1"+path, rd)
	req.Header.Set("X-Auth-Token", adminToken(t, nd))
	req.Header.Set("Content-Type", "application/json")
	if version != "" {
		req.Header.Set("OpenStack-API-Version", "compute "+version)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res.StatusCode, b
}

func computeGet[T any](t *testing.T, nd *node, version, path string) T {
	t.Helper()
	code, b := computeCall(t, nd, "GET", version, path, "")
	if code != 200 {
		t.Fatalf("GET %s: HTTP %d %s", path, code, b)
	}
	return decodeJSON[T](t, b)
}

var (
	imageMu sync.Mutex
	images  = map[string]string{}
)

// testImage uploads a tiny raw image once per cluster and returns its id.
func testImage(t *testing.T, nd *node) string {
	t.Helper()
	imageMu.Lock()
	defer imageMu.Unlock()
	if id := images[nd.url()]; id != "" {
		return id
	}
	req, _ := http.NewRequest("POST", nd.url()+"/image/v2/images", strings.NewReader(`{"name": "ops-test", "disk_format": "raw", "container_format": "bare", "visibility": "public"}`))
	req.Header.Set("X-Auth-Token", adminToken(t, nd))
	req.Header.Set("Content-Type", "application/json")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	img := decodeJSON[map[string]any](t, mustRead(t, res))
	id, _ := img["id"].(string)
	req, _ = http.NewRequest("PUT", nd.url()+"/image/v2/images/"+id+"/file", strings.NewReader(strings.Repeat("k", 4096)))
	req.Header.Set("X-Auth-Token", adminToken(t, nd))
	req.Header.Set("Content-Type", "application/octet-stream")
	res, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	mustRead(t, res)
	if res.StatusCode != 204 {
		t.Fatalf("image upload: HTTP %d", res.StatusCode)
	}
	images[nd.url()] = id
	return id
}

func mustRead(t *testing.T, res *http.Response) []byte {
	t.Helper()
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// createServer creates a server (m1.tiny, no network) and returns its id.
func createServer(t *testing.T, nd *node, name string) string {
	t.Helper()
	body := fmt.Sprintf(`{"server": {"name": %q, "imageRef": %q, "flavorRef": "1", "networks": "none"}}`, name, testImage(t, nd))
	code, b := computeCall(t, nd, "POST", "2.37", "/servers", body)
	if code != 202 {
		t.Fatalf("create server %s: HTTP %d %s", name, code, b)
	}
	out := decodeJSON[struct {
		Server struct {
			ID string `json:"id"`
		} `json:"server"`
	}](t, b)
	return out.Server.ID
}

func serverStatus(t *testing.T, nd *node, id string) string {
	t.Helper()
	out := computeGet[struct {
		Server struct {
			Status string `json:"status"`
		} `json:"server"`
	}](t, nd, "", "/servers/"+id)
	return out.Server.Status
}

func serverAction(t *testing.T, nd *node, id, body string) {
	t.Helper()
	serverActionStatus(t, nd, id, body, "", 202)
}

func serverActionStatus(t *testing.T, nd *node, id, body, version string, want int) {
	t.Helper()
	code, b := computeCall(t, nd, "POST", version, "/servers/"+id+"/action", body)
	if code != want {
		t.Fatalf("action %s on %s: HTTP %d %s, want %d", body, id, code, b, want)
	}
}
