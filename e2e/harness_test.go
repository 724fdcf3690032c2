// Package e2e tests Keel through its real binaries: it builds keel-controller
// and keelctl, runs clusters of controller processes on loopback ports, and
// drives them with keelctl as an operator would.
package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/keel-cloud/keel/cluster"
	"github.com/keel-cloud/keel/internal/clusterauth"
)

// Paths of the binaries built by TestMain.
var controllerBin, keelctlBin, agentBin string

// testLog, from KEEL_TEST_LOG (e.g. "debug"), is the controllers' log level;
// when set, their logs are shown even when a test passes.
var testLog = os.Getenv("KEEL_TEST_LOG")

func TestMain(m *testing.M) {
	flag.Parse()
	if testing.Short() {
		os.Exit(m.Run()) // every test skips itself
	}
	dir, err := os.MkdirTemp("", "keel-e2e-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		os.Exit(1)
	}
	code := 1
	if err := build(dir); err != nil {
		fmt.Fprintln(os.Stderr, "e2e: build the binaries:", err)
	} else {
		controllerBin, keelctlBin, agentBin = filepath.Join(dir, "keel-controller"), filepath.Join(dir, "keelctl"), filepath.Join(dir, "keel-agent")
		code = m.Run()
	}
	os.RemoveAll(dir)
	os.Exit(code)
}

// build compiles keel-controller, keel-agent and keelctl into dir.
func build(dir string) error {
	root, err := moduleRoot()
	if err != nil {
		return err
	}
	cmd := exec.Command("go", "build", "-o", dir+string(filepath.Separator), "./cmd/keel-controller", "./cmd/keelctl", "./cmd/keel-agent")
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("%v in %s:\n%s", err, root, out)
	}
	return nil
}

func moduleRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("no go.mod above the test directory")
		}
		dir = parent
	}
}

func skipShort(t *testing.T) {
	t.Helper()
	if testing.Short() {
		t.Skip("e2e: starts controller processes; skipped with -short")
	}
}

// cleanEnv is the environment without KEEL_* variables, so the developer's
// settings cannot leak into the processes under test.
func cleanEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "KEEL_") {
			env = append(env, kv)
		}
	}
	return env
}

// Loopback ports handed out in this test binary, so two nodes never get
// the same one even if the kernel offers it again.
var (
	portsMu sync.Mutex
	ports   = map[int]bool{}
)

// freePort returns a loopback port where TCP (and UDP too, with udp) can be
// bound now.
func freePort(t *testing.T, udp bool) int {
	t.Helper()
	portsMu.Lock()
	defer portsMu.Unlock()
	for range 100 {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatalf("find a free port: %v", err)
		}
		port := ln.Addr().(*net.TCPAddr).Port
		ok := !ports[port]
		if ok && udp {
			pc, err := net.ListenPacket("udp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
			if err == nil {
				pc.Close()
			}
			ok = err == nil
		}
		ln.Close()
		if ok {
			ports[port] = true
			return port
		}
	}
	t.Fatal("no free loopback port after 100 tries")
	return 0
}

// node is one keel-controller process.
type node struct {
	name              string
	api, raft, gossip string
	dataDir, logPath  string
	cmd               *exec.Cmd
	exited            chan struct{} // closed when the process has exited
	waitErr           error         // set before exited is closed
	killed            bool          // by the test
	stoppedAtEnd      bool          // still running when the test ended
}

func (n *node) url() string { return "http://" + n.api }

func (n *node) running() bool {
	select {
	case <-n.exited:
		return false
	default:
		return true
	}
}

// adminPassword is the admin user's password in every test cluster.
const adminPassword = "e2e-admin-secret"

// testCluster is a set of controller processes sharing a cluster key.
type testCluster struct {
	t     *testing.T
	key   string
	nodes []*node
}

// startCluster starts n controllers that bootstrap together (n1 alone has
// no --join; the others join n1's gossip address). Every process is killed
// when the test ends, and their logs are shown if it failed.
func startCluster(t *testing.T, n int) *testCluster {
	t.Helper()
	return startClusterWith(t, n, nil)
}

// startClusterWith is startCluster with more flags for controller i.
func startClusterWith(t *testing.T, n int, extra func(i int) []string) *testCluster {
	t.Helper()
	skipShort(t)
	c := &testCluster{t: t, key: keygen(t)}
	for i := range n {
		c.nodes = append(c.nodes, &node{
			name:    fmt.Sprintf("n%d", i+1),
			api:     net.JoinHostPort("127.0.0.1", strconv.Itoa(freePort(t, false))),
			raft:    net.JoinHostPort("127.0.0.1", strconv.Itoa(freePort(t, false))),
			gossip:  net.JoinHostPort("127.0.0.1", strconv.Itoa(freePort(t, true))),
			dataDir: t.TempDir(),
			exited:  make(chan struct{}),
		})
	}
	logDir := t.TempDir()
	// Registered after the TempDirs: runs before they are removed.
	t.Cleanup(c.stop)
	for i, nd := range c.nodes {
		nd.logPath = filepath.Join(logDir, nd.name+".log")
		args := []string{
			"--name", nd.name, "--data-dir", nd.dataDir, "--listen", nd.api,
			"--raft-addr", nd.raft, "--gossip-addr", nd.gossip,
			"--bootstrap-expect", strconv.Itoa(n), "--cluster-key", c.key,
			"--admin-password", adminPassword,
		}
		if nd != c.nodes[0] {
			args = append(args, "--join", c.nodes[0].gossip)
		}
		if testLog != "" {
			args = append(args, "--log-level", testLog)
		}
		if extra != nil {
			args = append(args, extra(i)...)
		}
		c.start(nd, args) // in any order: a failed --join is retried
	}
	return c
}

func (c *testCluster) start(nd *node, args []string) {
	c.t.Helper()
	logf, err := os.Create(nd.logPath)
	if err != nil {
		c.t.Fatal(err)
	}
	nd.cmd = exec.Command(controllerBin, args...)
	nd.cmd.Env = cleanEnv()
	nd.cmd.Dir = nd.dataDir
	nd.cmd.Stdout, nd.cmd.Stderr = logf, logf
	if err := nd.cmd.Start(); err != nil {
		logf.Close()
		c.t.Fatalf("start %s: %v", nd.name, err)
	}
	go func() {
		nd.waitErr = nd.cmd.Wait()
		logf.Close()
		close(nd.exited)
	}()
}

// kill SIGKILLs a controller, as a crash would, and waits for it to exit.
func (c *testCluster) kill(nd *node) {
	c.t.Helper()
	nd.killed = true
	if err := nd.cmd.Process.Signal(syscall.SIGKILL); err != nil && nd.running() {
		c.t.Fatalf("kill %s: %v", nd.name, err)
	}
	select {
	case <-nd.exited:
	case <-time.After(10 * time.Second):
		c.t.Fatalf("%s still running 10s after SIGKILL", nd.name)
	}
}

// stop kills every process still running and, if the test failed, shows
// the end of every controller's log.
func (c *testCluster) stop() {
	for _, nd := range c.nodes {
		if nd.cmd != nil && nd.running() {
			nd.stoppedAtEnd = true
			nd.cmd.Process.Kill()
			<-nd.exited
		}
	}
	lines := 60
	if !c.t.Failed() {
		if testLog == "" {
			return
		}
		lines = 1 << 30
	}
	for _, nd := range c.nodes {
		state := "killed by the test"
		switch {
		case nd.cmd == nil:
			state = "never started"
		case nd.stoppedAtEnd:
			state = "ran until the end of the test"
		case !nd.killed:
			state = fmt.Sprintf("exited on its own: %v", nd.waitErr)
		}
		c.t.Logf("==== %s (api %s, raft %s, gossip %s; %s): its log ====\n%s",
			nd.name, nd.api, nd.raft, nd.gossip, state, tail(nd.logPath, lines))
	}
}

// tail returns the last n lines of a file.
func tail(path string, n int) string {
	data, err := os.ReadFile(path)
	if err != nil {
		return fmt.Sprintf("(cannot read %s: %v)", path, err)
	}
	lines := strings.Split(strings.TrimRight(string(data), "\n"), "\n")
	if len(lines) > n {
		lines = append([]string{fmt.Sprintf("... (%d earlier lines)", len(lines)-n)}, lines[len(lines)-n:]...)
	}
	return strings.Join(lines, "\n")
}

// checkAlive fails the test if a controller the test did not kill exited.
func (c *testCluster) checkAlive() {
	c.t.Helper()
	for _, nd := range c.nodes {
		if !nd.killed && !nd.running() {
			c.t.Fatalf("controller %s exited on its own: %v (its log is below)", nd.name, nd.waitErr)
		}
	}
}

func (c *testCluster) byName(name string) *node {
	c.t.Helper()
	for _, nd := range c.nodes {
		if nd.name == name {
			return nd
		}
	}
	c.t.Fatalf("no controller named %q", name)
	return nil
}

// result is one keelctl run.
type result struct {
	stdout, stderr string
	code           int
	took           time.Duration
}

func (r result) String() string {
	return fmt.Sprintf("exit %d after %s\nstdout:\n%s\nstderr:\n%s", r.code, r.took.Round(time.Millisecond), r.stdout, r.stderr)
}

// keelctl runs the keelctl binary (bounded to 30s) in an empty directory.
func keelctl(t *testing.T, args ...string) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, keelctlBin, args...)
	cmd.Env = cleanEnv()
	cmd.Dir = t.TempDir()
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	start := time.Now()
	err := cmd.Run()
	r := result{stdout: out.String(), stderr: errb.String(), took: time.Since(start)}
	var ee *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &ee) && ee.Exited():
		r.code = ee.ExitCode()
	default:
		t.Fatalf("run keelctl %q: %v\n%s", args, err, r)
	}
	return r
}

// keelctl runs keelctl against one controller with the cluster's key.
func (c *testCluster) keelctl(nd *node, args ...string) result {
	c.t.Helper()
	return keelctl(c.t, append([]string{"--url", nd.url(), "--cluster-key", c.key, "--timeout", "3s"}, args...)...)
}

// status runs `keelctl cluster status --json` against nd. The status is nil
// if keelctl printed none.
func (c *testCluster) status(nd *node) (*cluster.ClusterStatus, result) {
	c.t.Helper()
	r := c.keelctl(nd, "cluster", "status", "--json")
	var st cluster.ClusterStatus
	if r.stdout == "" || json.Unmarshal([]byte(r.stdout), &st) != nil {
		return nil, r
	}
	return &st, r
}

// poll calls cond every 100ms until it returns true, and fails the test if
// that takes longer than timeout (or a controller dies). It returns how
// long it took. last describes the latest state, for the failure message.
func (c *testCluster) poll(timeout time.Duration, what string, cond func() (done bool, last string)) time.Duration {
	c.t.Helper()
	start := time.Now()
	deadline := start.Add(timeout)
	for {
		c.checkAlive()
		done, last := cond()
		if done {
			return time.Since(start)
		}
		if time.Now().After(deadline) {
			c.t.Fatalf("%s: not done after %s; last state:\n%s", what, timeout, last)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// waitHealthy polls keelctl against nd until it reports a healthy cluster.
func (c *testCluster) waitHealthy(nd *node, timeout time.Duration) *cluster.ClusterStatus {
	c.t.Helper()
	var st *cluster.ClusterStatus
	took := c.poll(timeout, "wait for a healthy cluster (asking "+nd.name+")", func() (bool, string) {
		var r result
		st, r = c.status(nd)
		return r.code == 0 && st != nil, r.String()
	})
	c.t.Logf("cluster healthy as seen by %s after %s", nd.name, took.Round(time.Millisecond))
	return st
}

// keygen makes a cluster key with the keelctl binary.
func keygen(t *testing.T) string {
	t.Helper()
	r := keelctl(t, "keygen")
	key := strings.TrimSpace(r.stdout)
	if r.code != 0 {
		t.Fatalf("keelctl keygen: %s", r)
	}
	if _, err := clusterauth.ParseKey(key); err != nil {
		t.Fatalf("keelctl keygen printed %q: %v", r.stdout, err)
	}
	return key
}
