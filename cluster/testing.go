package cluster

import (
	"context"
	"crypto/rand"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// TestCluster runs N real controllers in one process: real Raft over
// loopback TCP, real Pebble in temporary directories, real serf gossip, and
// each node's internal API served over loopback HTTP. Timings are short
// (TestTiming). Nodes keep their addresses and data across Kill/Restart.
type TestCluster struct {
	T     testing.TB
	Key   []byte
	Nodes []*TestNode
	// Handler, if set, builds the HTTP handler each node serves (the api
	// package's full server); by default only the internal API is served.
	// Set it on a zero TestCluster, then AddNode.
	Handler func(*TestNode) http.Handler
}

// TestNode is one controller of a TestCluster. Node is nil while stopped.
type TestNode struct {
	*Node
	Cfg   Config
	srv   *http.Server
	logs  *testLogSink
	dir   string
	apiLn net.Listener // bound by AddNode, used by the first start
}

// TestClusterOption adjusts every node's configuration before start.
type TestClusterOption func(*Config)

// NewTestCluster starts n controllers that bootstrap together and waits for
// a leader.
func NewTestCluster(t testing.TB, n int, opts ...TestClusterOption) *TestCluster {
	t.Helper()
	key := make([]byte, 32)
	rand.Read(key)
	c := &TestCluster{T: t, Key: key}
	t.Cleanup(c.Close)
	for i := 0; i < n; i++ {
		c.AddNode(n, opts...)
	}
	c.WaitLeader(10 * time.Second)
	return c
}

// AddNode starts one more controller that joins the first one's gossip.
func (c *TestCluster) AddNode(bootstrapExpect int, opts ...TestClusterOption) *TestNode {
	c.T.Helper()
	name := fmt.Sprintf("n%d", len(c.Nodes)+1)
	dir, err := os.MkdirTemp("", "keel-test-"+name+"-")
	if err != nil {
		c.T.Fatal(err)
	}
	tn := &TestNode{logs: newTestLogSink(c.T, name), dir: dir}
	// Listeners bound now and handed over, so no other process can take
	// the ports between choosing and binding them. Restarts rebind the
	// same addresses.
	raftLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		c.T.Fatal(err)
	}
	tn.apiLn, err = net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		c.T.Fatal(err)
	}
	tn.Cfg = Config{
		Name:            name,
		DataDir:         filepath.Join(dir, "data"),
		RaftAddr:        raftLn.Addr().String(),
		RaftListener:    raftLn,
		GossipAddr:      "127.0.0.1:0",
		APIAddr:         tn.apiLn.Addr().String(),
		BootstrapExpect: bootstrapExpect,
		ClusterKey:      c.Key,
		Zone:            "nova",
		Version:         "test",
		Timing:          TestTiming(),
		Logger:          slog.New(tn.logs),
	}
	if len(c.Nodes) > 0 && c.Nodes[0].Node != nil {
		tn.Cfg.Join = []string{c.Nodes[0].GossipAddr()}
	}
	for _, o := range opts {
		o(&tn.Cfg)
	}
	c.Nodes = append(c.Nodes, tn)
	c.start(tn)
	return tn
}

func freeAddr(t testing.TB) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

func (c *TestCluster) start(tn *TestNode) {
	c.T.Helper()
	ln, err := tn.apiLn, error(nil)
	tn.apiLn = nil
	if ln == nil {
		if ln, err = listenRetry(tn.Cfg.APIAddr); err != nil {
			c.T.Fatalf("%s: API listener: %v", tn.Cfg.Name, err)
		}
	}
	var node *Node
	for attempt := 0; ; attempt++ {
		node, err = New(tn.Cfg)
		if err == nil || attempt == 20 || !strings.Contains(err.Error(), "address already in use") {
			break
		}
		time.Sleep(100 * time.Millisecond) // the previous incarnation's sockets are closing
	}
	if err != nil {
		ln.Close()
		c.T.Fatalf("%s: start: %v", tn.Cfg.Name, err)
	}
	tn.Node = node
	tn.Cfg.RaftListener = nil // owned by the node now; a restart binds RaftAddr
	if tn.Cfg.GossipAddr == "127.0.0.1:0" {
		tn.Cfg.GossipAddr = node.GossipAddr() // keep it across restarts
	}
	var h http.Handler = node.Handler()
	if c.Handler != nil {
		h = c.Handler(tn)
	}
	tn.srv = &http.Server{Handler: h}
	go tn.srv.Serve(ln)
}

func listenRetry(addr string) (net.Listener, error) {
	var err error
	for i := 0; i < 50; i++ {
		var ln net.Listener
		if ln, err = net.Listen("tcp", addr); err == nil {
			return ln, nil
		}
		time.Sleep(50 * time.Millisecond)
	}
	return nil, err
}

// NewEmptyTestCluster returns a cluster with no nodes yet, closed at the end
// of the test: set Handler, then AddNode.
func NewEmptyTestCluster(t testing.TB) *TestCluster {
	key := make([]byte, 32)
	rand.Read(key)
	c := &TestCluster{T: t, Key: key}
	t.Cleanup(c.Close)
	return c
}

// Dir is the node's data directory.
func (tn *TestNode) Dir() string { return tn.Cfg.DataDir }

// Kill stops node i abruptly (no gossip leave, no leadership transfer).
func (c *TestCluster) Kill(i int) {
	c.T.Helper()
	tn := c.Nodes[i]
	if tn.Node == nil {
		return
	}
	tn.srv.Close()
	if err := tn.Node.Kill(); err != nil {
		c.T.Logf("%s: kill: %v", tn.Cfg.Name, err)
	}
	tn.Node = nil
}

// Stop shuts node i down gracefully.
func (c *TestCluster) Stop(i int) {
	c.T.Helper()
	tn := c.Nodes[i]
	if tn.Node == nil {
		return
	}
	if err := tn.Node.Shutdown(); err != nil {
		c.T.Logf("%s: shutdown: %v", tn.Cfg.Name, err)
	}
	tn.srv.Close()
	tn.Node = nil
}

// Restart starts a stopped node again on the same data and addresses,
// joining the gossip of every other node.
func (c *TestCluster) Restart(i int) {
	c.T.Helper()
	tn := c.Nodes[i]
	if tn.Node != nil {
		c.T.Fatalf("%s is running", tn.Cfg.Name)
	}
	tn.Cfg.Join = nil
	for j, o := range c.Nodes {
		if j != i {
			tn.Cfg.Join = append(tn.Cfg.Join, o.Cfg.GossipAddr)
		}
	}
	c.start(tn)
}

// Running returns the nodes that are up.
func (c *TestCluster) Running() []*TestNode {
	var out []*TestNode
	for _, n := range c.Nodes {
		if n.Node != nil {
			out = append(out, n)
		}
	}
	return out
}

// WaitLeader waits until exactly one running node is an established
// leader and every running node knows it, and returns it.
func (c *TestCluster) WaitLeader(timeout time.Duration) *TestNode {
	c.T.Helper()
	var leader *TestNode
	WaitFor(c.T, timeout, "a leader known to every running node", func() bool {
		leader = nil
		for _, n := range c.Running() {
			if n.IsLeader() && n.isEstablished() {
				if leader != nil {
					return false
				}
				leader = n
			}
		}
		if leader == nil {
			return false
		}
		for _, n := range c.Running() {
			if n.Leader() != leader.Name() {
				return false
			}
		}
		return true
	})
	return leader
}

// Followers returns the running nodes that are not the leader.
func (c *TestCluster) Followers() []*TestNode {
	var out []*TestNode
	for _, n := range c.Running() {
		if !n.IsLeader() {
			out = append(out, n)
		}
	}
	return out
}

// WaitConverged waits until every running node has the same applied index
// and state hash, and returns the hash.
func (c *TestCluster) WaitConverged(timeout time.Duration) string {
	c.T.Helper()
	deadline := time.Now().Add(timeout)
	for {
		var seen []string
		hashes, indexes := map[string]bool{}, map[uint64]bool{}
		var hash string
		for _, n := range c.Running() {
			h, err := n.FSM().Hash()
			if err != nil {
				c.T.Fatalf("%s: state hash: %v", n.Cfg.Name, err)
			}
			hash = h
			hashes[h], indexes[n.FSM().AppliedIndex()] = true, true
			seen = append(seen, fmt.Sprintf("%s applied=%d hash=%.12s", n.Cfg.Name, n.FSM().AppliedIndex(), h))
		}
		if len(hashes) == 1 && len(indexes) == 1 {
			return hash
		}
		if time.Now().After(deadline) {
			c.T.Fatalf("nodes did not converge within %s: %s", timeout, strings.Join(seen, "; "))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Close stops every node.
func (c *TestCluster) Close() {
	for i := range c.Nodes {
		c.Kill(i)
		c.Nodes[i].logs.stop()
		os.RemoveAll(c.Nodes[i].dir)
	}
}

func (n *Node) isEstablished() bool {
	n.estMu.Lock()
	defer n.estMu.Unlock()
	select {
	case <-n.established:
		return true
	default:
		return false
	}
}

// WaitFor polls cond every 20ms until it holds or timeout passes.
func WaitFor(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// testLogSink sends a node's log lines at warn and above (all levels with
// KEEL_TEST_LOG=debug) to the test log, and stops when the test ends so a
// late line from a background goroutine cannot panic the test binary.
type testLogSink struct {
	*sinkState
	attrs []slog.Attr
}

type sinkState struct {
	t       testing.TB
	name    string
	level   slog.Level
	mu      sync.Mutex
	stopped atomic.Bool
}

func newTestLogSink(t testing.TB, name string) *testLogSink {
	lv := slog.LevelWarn
	_ = lv.UnmarshalText([]byte(os.Getenv("KEEL_TEST_LOG")))
	return &testLogSink{sinkState: &sinkState{t: t, name: name, level: lv}}
}

func (s *sinkState) stop() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.stopped.Store(true)
}

func (s *testLogSink) Enabled(_ context.Context, l slog.Level) bool { return l >= s.level }

func (s *testLogSink) Handle(_ context.Context, r slog.Record) error {
	if s.stopped.Load() {
		return nil
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s [%s] %s", r.Time.Format("15:04:05.000"), s.name, r.Level, r.Message)
	for _, a := range s.attrs {
		fmt.Fprintf(&b, " %s=%v", a.Key, a.Value)
	}
	r.Attrs(func(a slog.Attr) bool {
		fmt.Fprintf(&b, " %s=%v", a.Key, a.Value)
		return true
	})
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.stopped.Load() {
		s.t.Log(b.String())
	}
	return nil
}

func (s *testLogSink) WithAttrs(attrs []slog.Attr) slog.Handler {
	return &testLogSink{sinkState: s.sinkState, attrs: append(append([]slog.Attr{}, s.attrs...), attrs...)}
}

func (s *testLogSink) WithGroup(string) slog.Handler { return s }
