package chaos

import (
	"bufio"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/keel-cloud/keel/cluster"
	"github.com/keel-cloud/keel/internal/clusterauth"
)

// deployment is deploy/docker-compose.yml started as a project of its own
// (keel-chaos-<random>), on a free /24 under 10.199.0.0/16 and a free port
// of 127.0.0.1, with fresh secrets. Every docker command names this
// project's containers: nothing else is touched.
type deployment struct {
	t        testing.TB
	root     string
	project  string
	net      string // first three octets
	port     int
	url      string
	tmp      string
	compose  []string
	files    []string
	api      *api
	cids     map[string]string
	netName  string
	started  bool
	logLines int
}

var controllers = []string{"ctl-1", "ctl-2", "ctl-3"}
var computes = []string{"compute-1", "compute-2"}

// composeCommand: $KEEL_COMPOSE, else the docker compose plugin, else docker-compose.
func composeCommand() ([]string, error) {
	if c := os.Getenv("KEEL_COMPOSE"); c != "" {
		return strings.Fields(c), nil
	}
	if exec.Command("docker", "compose", "version").Run() == nil {
		return []string{"docker", "compose"}, nil
	}
	if _, err := exec.LookPath("docker-compose"); err == nil {
		return []string{"docker-compose"}, nil
	}
	return nil, errors.New("neither 'docker compose' nor docker-compose is installed (Debian: apt-get install docker-compose)")
}

// startDeployment brings the cloud up and waits until it serves: haproxy
// ready, a healthy Raft cluster, both compute hosts up. unsafeStaleReads
// starts the controllers with KEEL_UNSAFE_STALE_READS=1 (the broken build).
func startDeployment(t testing.TB, unsafeStaleReads bool) *deployment {
	t.Helper()
	root := moduleRoot(t)
	compose, err := composeCommand()
	if err != nil {
		t.Fatal(err)
	}
	var rnd [4]byte
	binary.LittleEndian.PutUint32(rnd[:], rand.Uint32())
	d := &deployment{t: t, root: root, compose: compose, cids: map[string]string{},
		project: fmt.Sprintf("keel-chaos-%x", rnd)}
	d.files = []string{filepath.Join(root, "deploy", "docker-compose.yml")}
	d.tmp, err = os.MkdirTemp("", d.project+"-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(d.down)
	if d.net, err = freeSubnet(); err != nil {
		t.Fatal(err)
	}
	d.port = freePort(t)
	d.url = fmt.Sprintf("http://127.0.0.1:%d", d.port)
	d.netName = d.project + "_keel"
	if out, err := exec.Command(filepath.Join(root, "deploy", "secrets.sh"), filepath.Join(d.tmp, "secrets")).CombinedOutput(); err != nil {
		t.Fatalf("deploy/secrets.sh: %v\n%s", err, out)
	}
	keyText, err := os.ReadFile(filepath.Join(d.tmp, "secrets", "cluster.key"))
	if err != nil {
		t.Fatal(err)
	}
	key, err := clusterauth.ParseKey(strings.TrimSpace(string(keyText)))
	if err != nil {
		t.Fatalf("the cluster key deploy/secrets.sh made: %v", err)
	}
	pw, err := os.ReadFile(filepath.Join(d.tmp, "secrets", "admin-password"))
	if err != nil {
		t.Fatal(err)
	}
	if unsafeStaleReads {
		override := "services:\n"
		for _, c := range controllers {
			override += fmt.Sprintf("  %s:\n    environment:\n      %s: \"1\"\n", c, cluster.UnsafeStaleReadsEnv)
		}
		p := filepath.Join(d.tmp, "unsafe.yml")
		if err := os.WriteFile(p, []byte("version: \"2.4\"\n"+override), 0o600); err != nil {
			t.Fatal(err)
		}
		d.files = append(d.files, p)
	}
	d.api = newAPI(d.url, strings.TrimSpace(string(pw)), key)

	t.Logf("starting %s: network %s.0/24, haproxy on %s (%s)", d.project, d.net, d.url, strings.Join(compose, " "))
	d.started = true
	if out, err := d.composeRun(3*time.Minute, "up", "-d"); err != nil {
		t.Fatalf("%s up failed: %v\n%s", strings.Join(compose, " "), err, out)
	}
	for _, s := range append(append([]string{}, controllers...), computes...) {
		out, err := d.composeRun(time.Minute, "ps", "-q", s)
		if err != nil || strings.TrimSpace(string(out)) == "" {
			t.Fatalf("no container for %s in %s: %v %s", s, d.project, err, out)
		}
		d.cids[s] = strings.TrimSpace(string(out))
	}
	// The project's network, as compose named it.
	if out, err := docker(30*time.Second, "inspect", "-f", "{{range $k, $v := .NetworkSettings.Networks}}{{$k}} {{end}}", d.cids["ctl-1"]); err != nil {
		t.Fatal(err)
	} else if f := strings.Fields(out); len(f) != 1 {
		t.Fatalf("ctl-1 is on networks %q, want exactly one", f)
	} else {
		d.netName = f[0]
	}
	d.waitHealthy(2*time.Minute, true)
	return d
}

func (d *deployment) env() []string {
	return append(os.Environ(),
		"KEEL_IMAGE_TAG="+imageTag(),
		"KEEL_DEPLOY_NET="+d.net,
		"KEEL_DEPLOY_PORT="+strconv.Itoa(d.port),
		"KEEL_DEPLOY_BIND=127.0.0.1",
		"KEEL_DEPLOY_PUBLIC_URL="+d.url,
		"KEEL_DEPLOY_SECRETS="+filepath.Join(d.tmp, "secrets"),
		"KEEL_DEPLOY_RESTART=no",
	)
}

func imageTag() string {
	if t := os.Getenv("KEEL_IMAGE_TAG"); t != "" {
		return t
	}
	return "dev"
}

func (d *deployment) composeRun(timeout time.Duration, args ...string) ([]byte, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	full := append([]string{}, d.compose[1:]...)
	full = append(full, "-p", d.project)
	for _, f := range d.files {
		full = append(full, "-f", f)
	}
	full = append(full, args...)
	cmd := exec.CommandContext(ctx, d.compose[0], full...)
	cmd.Env = d.env()
	return cmd.CombinedOutput()
}

// docker runs a docker command (bounded) and returns its output.
func docker(timeout time.Duration, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	out, err := exec.CommandContext(ctx, "docker", args...).CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("docker %s: %v: %s", strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return string(out), nil
}

// down removes the project (containers, network, volumes), after printing
// every container's log tail if the test failed.
func (d *deployment) down() {
	if !d.started {
		os.RemoveAll(d.tmp)
		return
	}
	if d.t.Failed() {
		out, _ := d.composeRun(time.Minute, "ps")
		d.t.Logf("containers of %s:\n%s", d.project, out)
		out, _ = d.composeRun(time.Minute, "logs", "--no-color", "--tail=120")
		d.t.Logf("their logs (last 120 lines each):\n%s", out)
		if os.Getenv("KEEL_CHAOS_KEEP") == "1" {
			d.t.Logf("KEEL_CHAOS_KEEP=1: left %s running; remove it with: KEEL_DEPLOY_SECRETS=%s/secrets %s -p %s -f %s down -v",
				d.project, d.tmp, strings.Join(d.compose, " "), d.project, d.files[0])
			return
		}
	}
	// Paused or disconnected containers would slow down "down": undo first.
	for _, s := range controllers {
		if id := d.cids[s]; id != "" {
			docker(10*time.Second, "kill", "-s", "CONT", id)
		}
	}
	if out, err := d.composeRun(3*time.Minute, "down", "-v", "--remove-orphans", "-t", "5"); err != nil {
		d.t.Errorf("removing %s failed (%v): remove its containers, network %s and volumes by hand\n%s", d.project, err, d.netName, out)
	}
	os.RemoveAll(d.tmp)
}

func (d *deployment) ip(service string) string {
	switch service {
	case "ctl-1":
		return d.net + ".11"
	case "ctl-2":
		return d.net + ".12"
	case "ctl-3":
		return d.net + ".13"
	case "compute-1":
		return d.net + ".21"
	case "compute-2":
		return d.net + ".22"
	}
	return d.net + ".10"
}

func (d *deployment) ctlURL(name string) string { return "http://" + d.ip(name) + ":8774" }

// waitHealthy is healthy, failing the test when the time is up.
func (d *deployment) waitHealthy(timeout time.Duration, withHosts bool) {
	d.t.Helper()
	if err := d.healthy(timeout, withHosts); err != nil {
		d.t.Fatal(err)
	}
}

// healthy waits until the cluster has a leader and a quorum, every
// controller answers as leader or follower, haproxy serves /readyz, and
// (withHosts) both compute hosts are up.
func (d *deployment) healthy(timeout time.Duration, withHosts bool) error {
	ctx := context.Background()
	deadline := time.Now().Add(timeout)
	last := ""
	for {
		st, err := d.api.status(ctx)
		switch {
		case err != nil:
			last = err.Error()
		case !st.Healthy:
			last = "cluster status (through haproxy): not healthy: " + st.Reason
		default:
			ok := 0
			var rows []string
			for _, s := range st.Servers {
				rows = append(rows, fmt.Sprintf("%s %s err=%q applied=%d", s.Name, s.Role, s.Error, s.AppliedIndex))
				if s.Voter && s.Error == "" && (s.Role == "leader" || s.Role == "follower") {
					ok++
				}
			}
			last = "controllers: " + strings.Join(rows, "; ")
			if ok == len(controllers) {
				ans := d.api.do(ctx, d.url, "GET", "/readyz", "", false, nil, 3*time.Second)
				if ans.Status != 200 {
					last = "haproxy /readyz: " + ans.String()
				} else if !withHosts {
					return nil
				} else if err := d.hostsUp(ctx); err != nil {
					last = err.Error()
				} else {
					return nil
				}
			}
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s: the cluster is not healthy after %s: %s", d.project, timeout, last)
		}
		time.Sleep(500 * time.Millisecond)
	}
}

// hostsUp: both compute services up and enabled (admin token needed: it
// logs in the first time).
func (d *deployment) hostsUp(ctx context.Context) error {
	if d.api.token == "" {
		tok, _, pid, err := d.api.login(ctx, "")
		if err != nil {
			return err
		}
		d.api.token, d.api.adminPID = tok, pid
	}
	ans := d.api.compute(ctx, "GET", "/os-services?binary=nova-compute", d.api.token, nil)
	var out struct {
		Services []struct{ Host, State, Status string }
	}
	if err := d.api.mustJSON(ctx, "list compute services", ans, 200, &out); err != nil {
		return err
	}
	up := 0
	for _, s := range out.Services {
		if s.State == "up" && s.Status == "enabled" {
			up++
		}
	}
	if up != len(computes) {
		return fmt.Errorf("compute services: %d of %d up: %+v", up, len(computes), out.Services)
	}
	return nil
}

// leader returns the Raft leader's name, as the cluster reports it through
// haproxy.
func (d *deployment) leader(timeout time.Duration) (string, error) {
	deadline := time.Now().Add(timeout)
	for {
		st, err := d.api.status(context.Background())
		if err == nil && st.Leader != "" {
			return st.Leader, nil
		}
		if time.Now().After(deadline) {
			if err == nil {
				err = errors.New(st.Reason)
			}
			return "", fmt.Errorf("no leader after %s: %v", timeout, err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// stateHashes asks every controller directly (its own address on the
// project's network) for its state hash.
func (d *deployment) stateHashes() ([]cluster.StateHash, error) {
	var out []cluster.StateHash
	for _, c := range controllers {
		var h cluster.StateHash
		if err := d.api.internal(context.Background(), d.ctlURL(c), "/internal/v1/state-hash", &h); err != nil {
			return nil, fmt.Errorf("%s: %w", c, err)
		}
		out = append(out, h)
	}
	return out, nil
}

// waitConverged waits until the three controllers report the same applied
// index and state hash.
func (d *deployment) waitConverged(timeout time.Duration) (string, error) {
	deadline := time.Now().Add(timeout)
	for {
		hs, err := d.stateHashes()
		last := ""
		if err != nil {
			last = err.Error()
		} else {
			same := true
			var rows []string
			for _, h := range hs {
				rows = append(rows, fmt.Sprintf("%s applied=%d hash=%.12s", h.Name, h.AppliedIndex, h.Hash))
				same = same && h.Hash == hs[0].Hash && h.AppliedIndex == hs[0].AppliedIndex
			}
			if same {
				return hs[0].Hash, nil
			}
			last = strings.Join(rows, "; ")
		}
		if time.Now().After(deadline) {
			return "", fmt.Errorf("controllers did not reach the same state within %s: %s%s", timeout, last, d.diffStates())
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// diffStates fetches every controller's state (GET /internal/v1/snapshot on
// each, a stream of its own FSM) and describes the keys on which they
// differ, for the report of a convergence failure.
func (d *deployment) diffStates() string {
	type state struct {
		index uint64
		kv    map[string]string
	}
	states := map[string]*state{}
	var b strings.Builder
	for _, c := range controllers {
		ans := d.api.do(context.Background(), d.ctlURL(c), http.MethodGet, "/internal/v1/snapshot", "", true, nil, 60*time.Second)
		if ans.Status != http.StatusOK {
			fmt.Fprintf(&b, "\n  %s: its state could not be read: %s", c, ans)
			continue
		}
		st, err := parseSnapshot(ans.Body)
		if err != nil {
			fmt.Fprintf(&b, "\n  %s: its state could not be read: %v", c, err)
			continue
		}
		states[c] = &state{index: st.index, kv: st.kv}
	}
	ref, ok := states[controllers[0]]
	if !ok {
		return b.String()
	}
	for _, c := range controllers[1:] {
		other, ok := states[c]
		if !ok {
			continue
		}
		fmt.Fprintf(&b, "\n  %s (applied %d) vs %s (applied %d):", controllers[0], ref.index, c, other.index)
		var keys []string
		for k, v := range ref.kv {
			if ov, ok := other.kv[k]; !ok || ov != v {
				keys = append(keys, k)
			}
		}
		for k := range other.kv {
			if _, ok := ref.kv[k]; !ok {
				keys = append(keys, k)
			}
		}
		sort.Strings(keys)
		for i, k := range keys {
			if i == 10 {
				fmt.Fprintf(&b, "\n    ... %d keys differ in all", len(keys))
				break
			}
			fmt.Fprintf(&b, "\n    key %q:\n      %s: %s\n      %s: %s", k, controllers[0], short(ref.kv[k]), c, short(other.kv[k]))
		}
	}
	return b.String()
}

func short(v string) string {
	if len(v) > 300 {
		v = v[:300] + "..."
	}
	return strconv.Quote(v)
}

type parsedSnapshot struct {
	index uint64
	kv    map[string]string
}

// parseSnapshot reads the FSM snapshot format (fsm/snapshot.go: "KEELFSM1",
// the applied index, then uvarint-length-prefixed key and value pairs up to
// an empty key, then a checksum, not verified here).
func parseSnapshot(b []byte) (*parsedSnapshot, error) {
	if len(b) < 16 || string(b[:8]) != "KEELFSM1" {
		return nil, errors.New("not a Keel snapshot")
	}
	out := &parsedSnapshot{index: binary.BigEndian.Uint64(b[8:16]), kv: map[string]string{}}
	rest := b[16:]
	chunk := func() ([]byte, error) {
		n, l := binary.Uvarint(rest)
		if l <= 0 || uint64(len(rest)-l) < n {
			return nil, errors.New("truncated snapshot")
		}
		c := rest[l : l+int(n)]
		rest = rest[l+int(n):]
		return c, nil
	}
	for {
		k, err := chunk()
		if err != nil {
			return nil, err
		}
		if len(k) == 0 {
			return out, nil
		}
		v, err := chunk()
		if err != nil {
			return nil, err
		}
		out.kv[string(k)] = string(v)
	}
}

// domains reads the fake driver's domains of each compute host
// (/var/lib/keel/agent/fake-domains.json in its container): server id →
// hosts it is defined on.
func (d *deployment) domains() (map[string][]string, error) {
	out := map[string][]string{}
	for _, c := range computes {
		dst := filepath.Join(d.tmp, c+"-domains.json")
		os.Remove(dst)
		if msg, err := docker(30*time.Second, "cp", d.cids[c]+":/var/lib/keel/agent/fake-domains.json", dst); err != nil {
			if strings.Contains(msg, "Could not find") || strings.Contains(msg, "No such") {
				continue // no domain ever defined
			}
			return nil, fmt.Errorf("read the domains of %s: %w", c, err)
		}
		b, err := os.ReadFile(dst)
		if err != nil {
			return nil, err
		}
		var doms []struct {
			ServerID string `json:"server_id"`
		}
		if err := json.Unmarshal(b, &doms); err != nil {
			return nil, fmt.Errorf("the domains of %s (%s): %v", c, dst, err)
		}
		for _, dom := range doms {
			out[dom.ServerID] = append(out[dom.ServerID], c)
		}
	}
	return out, nil
}

func moduleRoot(t testing.TB) string {
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("go.mod not found above the working directory")
		}
		dir = parent
	}
}

func freePort(t testing.TB) int {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// freeSubnet picks a /24 under 10.199.0.0/16 that overlaps no Docker network
// and no route of this machine (as deploy/test.sh does).
func freeSubnet() (string, error) {
	var used []netip.Prefix
	ids, err := docker(30*time.Second, "network", "ls", "-q")
	if err != nil {
		return "", err
	}
	if f := strings.Fields(ids); len(f) > 0 {
		out, err := docker(30*time.Second, append([]string{"network", "inspect"}, f...)...)
		if err != nil {
			return "", err
		}
		var nets []struct {
			IPAM struct{ Config []struct{ Subnet string } }
		}
		if err := json.Unmarshal([]byte(out), &nets); err != nil {
			return "", fmt.Errorf("docker network inspect: %v", err)
		}
		for _, n := range nets {
			for _, c := range n.IPAM.Config {
				if p, err := netip.ParsePrefix(c.Subnet); err == nil {
					used = append(used, p.Masked())
				}
			}
		}
	}
	if f, err := os.Open("/proc/net/route"); err == nil {
		sc := bufio.NewScanner(f)
		sc.Scan()
		for sc.Scan() {
			p := strings.Fields(sc.Text())
			if len(p) < 8 {
				continue
			}
			dst, err1 := strconv.ParseUint(p[1], 16, 32)
			mask, err2 := strconv.ParseUint(p[7], 16, 32)
			if err1 != nil || err2 != nil {
				continue
			}
			var a, m [4]byte
			binary.LittleEndian.PutUint32(a[:], uint32(dst))
			binary.LittleEndian.PutUint32(m[:], uint32(mask))
			bits := 0
			for _, b := range m {
				for i := 7; i >= 0; i-- {
					if b&(1<<i) != 0 {
						bits++
					}
				}
			}
			if bits > 0 {
				used = append(used, netip.PrefixFrom(netip.AddrFrom4(a), bits).Masked())
			}
		}
		f.Close()
	}
	for _, third := range rand.Perm(256) {
		cand := netip.MustParsePrefix(fmt.Sprintf("10.199.%d.0/24", third))
		free := true
		for _, u := range used {
			if u.Overlaps(cand) {
				free = false
				break
			}
		}
		if free {
			return fmt.Sprintf("10.199.%d", third), nil
		}
	}
	return "", errors.New("no free /24 in 10.199.0.0/16 (every one overlaps a Docker network or a route)")
}
