package api

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/keel-cloud/keel/agent"
	"github.com/keel-cloud/keel/agent/driver/fake"
	"github.com/keel-cloud/keel/cluster"
	"github.com/keel-cloud/keel/fsm"
	"github.com/keel-cloud/keel/internal/hostapi"
)

// fakeHost is one in-process keel-agent with the fake driver.
type fakeHost struct {
	name   string
	drv    *fake.Driver
	cancel context.CancelFunc
	done   chan struct{}
}

// stop stops the agent (its domains keep "running", as on a real host).
func (h *fakeHost) stop() {
	h.cancel()
	<-h.done
}

// startHost starts an agent for host name against every controller of cc.
func (cc *computeCloud) startHost(t testing.TB, name string, drv *fake.Driver) *fakeHost {
	t.Helper()
	var urls []string
	for i := range cc.Nodes {
		urls = append(urls, cc.url(i))
	}
	ctx, cancel := context.WithCancel(context.Background())
	h := &fakeHost{name: name, drv: drv, cancel: cancel, done: make(chan struct{})}
	a, err := agent.New(agent.Config{
		Name: name, Controllers: urls, ClusterKey: cc.Key, ListenAddr: "127.0.0.1:0", Driver: drv,
		Wait: 5 * time.Second, MinBackoff: 20 * time.Millisecond, MaxBackoff: 300 * time.Millisecond,
		ShutdownGrace: time.Second,
	})
	if err != nil {
		t.Fatal(err)
	}
	go func() {
		defer close(h.done)
		if err := a.Run(ctx); err != nil && !errors.Is(err, context.Canceled) {
			t.Errorf("agent %s: %v", name, err)
		}
	}()
	t.Cleanup(func() { cancel(); <-h.done })
	return h
}

func (cc *computeCloud) startHosts(t testing.TB, n int, cfg fake.Config) []*fakeHost {
	t.Helper()
	var hosts []*fakeHost
	for i := range n {
		hosts = append(hosts, cc.startHost(t, fmt.Sprintf("compute-%d", i+1), fake.New(cfg)))
	}
	cluster.WaitFor(t, 10*time.Second, "hosts registered", func() bool {
		r := do(t, "GET", cc.url(0)+"/compute/v2.1/os-availability-zone/detail", cc.admin, nil)
		return r.Status == 200 && strings.Count(string(r.Body), "nova-compute") >= n
	})
	return hosts
}

// serverStatus reads a server as the admin at a microversion with every field.
func (cc *computeCloud) server(t testing.TB, id string) map[string]any {
	t.Helper()
	r := doV(t, "GET", cc.url(0)+"/compute/v2.1/servers/"+id, cc.admin, nil, "2.96")
	if r.Status != 200 {
		t.Fatalf("show %s: %d %s", id, r.Status, r.Body)
	}
	return r.json(t)["server"].(map[string]any)
}

func (cc *computeCloud) waitStatus(t testing.TB, id, status string) map[string]any {
	t.Helper()
	var s map[string]any
	cluster.WaitFor(t, 20*time.Second, "server "+id+" "+status, func() bool {
		s = cc.server(t, id)
		return s["status"] == status && s["OS-EXT-STS:task_state"] == nil
	})
	return s
}

func (cc *computeCloud) boot(t testing.TB, token, name string, extra map[string]any) string {
	t.Helper()
	body := map[string]any{"server": map[string]any{"name": name, "imageRef": cc.imageID, "flavorRef": "1", "networks": "none"}}
	for k, v := range extra {
		body[k] = v
	}
	r := doV(t, "POST", cc.url(0)+"/compute/v2.1/servers", token, body, "2.74")
	if r.Status != 202 {
		t.Fatalf("create %s: %d %s", name, r.Status, r.Body)
	}
	return r.json(t)["server"].(map[string]any)["id"].(string)
}

func (cc *computeCloud) action(t testing.TB, token, id string, body map[string]any, version string) resp {
	t.Helper()
	return doV(t, "POST", cc.url(0)+"/compute/v2.1/servers/"+id+"/action", token, body, version)
}

func TestServerLifecycleOnFakeHosts(t *testing.T) {
	cc := newSchedulingCloud(t, 3)
	hosts := cc.startHosts(t, 1, fake.Config{})
	id := cc.boot(t, cc.admin, "vm1", nil)
	s := cc.waitStatus(t, id, "ACTIVE")
	if s["OS-EXT-STS:power_state"] != 1.0 || s["OS-EXT-SRV-ATTR:host"] != "compute-1" || s["OS-EXT-STS:vm_state"] != "active" ||
		s["OS-SRV-USG:launched_at"] == nil || s["OS-EXT-AZ:availability_zone"] != "nova" {
		t.Fatalf("active server: %v", s)
	}
	if d, ok := hosts[0].drv.Domain(id); !ok || d.PowerState != hostapi.PowerRunning {
		t.Fatalf("domain %+v %v", d, ok)
	}
	steps := []struct {
		body            map[string]any
		status, vm      string
		power           float64
		domainPower     int
		wrongStateCheck string
	}{
		{map[string]any{"os-stop": nil}, "SHUTOFF", "stopped", 4, hostapi.PowerShutdown, "os-stop"},
		{map[string]any{"os-start": nil}, "ACTIVE", "active", 1, hostapi.PowerRunning, "os-start"},
		{map[string]any{"reboot": map[string]any{"type": "SOFT"}}, "ACTIVE", "active", 1, hostapi.PowerRunning, ""},
		{map[string]any{"reboot": map[string]any{"type": "HARD"}}, "ACTIVE", "active", 1, hostapi.PowerRunning, ""},
		{map[string]any{"pause": nil}, "PAUSED", "paused", 3, hostapi.PowerPaused, "pause"},
		{map[string]any{"unpause": nil}, "ACTIVE", "active", 1, hostapi.PowerRunning, "unpause"},
		{map[string]any{"suspend": nil}, "SUSPENDED", "suspended", 4, hostapi.PowerShutdown, "suspend"},
		{map[string]any{"resume": nil}, "ACTIVE", "active", 1, hostapi.PowerRunning, "resume"},
	}
	for _, st := range steps {
		if r := cc.action(t, cc.admin, id, st.body, "2.1"); r.Status != 202 {
			t.Fatalf("%v: %d %s", st.body, r.Status, r.Body)
		}
		s := cc.waitStatus(t, id, st.status)
		if s["OS-EXT-STS:vm_state"] != st.vm || s["OS-EXT-STS:power_state"] != st.power {
			t.Fatalf("after %v: %v", st.body, s)
		}
		if d, _ := hosts[0].drv.Domain(id); d.PowerState != st.domainPower && !(st.domainPower == hostapi.PowerShutdown && d.PowerState == hostapi.PowerSuspended) {
			t.Fatalf("after %v the domain's power state is %d, want %d", st.body, d.PowerState, st.domainPower)
		}
		if st.wrongStateCheck != "" {
			// The same action again is in the wrong state now.
			r := cc.action(t, cc.admin, id, st.body, "2.1")
			want := fmt.Sprintf("Cannot '%s' instance %s while it is in vm_state %s", strings.TrimPrefix(st.wrongStateCheck, "os-"), id, st.vm)
			if r.Status != 409 || !strings.Contains(string(r.Body), want) {
				t.Fatalf("%v twice: %d %s, want 409 %q", st.body, r.Status, r.Body, want)
			}
		}
	}
	// Console output comes from the host's agent.
	r := cc.action(t, cc.admin, id, map[string]any{"os-getConsoleOutput": map[string]any{"length": 50}}, "2.1")
	if r.Status != 200 || r.json(t)["output"] == "" {
		t.Fatalf("console: %d %s", r.Status, r.Body)
	}
	// Lock: a member's action is 409 with Nova's message; the reason shows at 2.73.
	if r := cc.action(t, cc.admin, id, map[string]any{"lock": map[string]any{"locked_reason": "audit"}}, "2.73"); r.Status != 202 {
		t.Fatalf("lock: %d %s", r.Status, r.Body)
	}
	if s := cc.server(t, id); s["locked"] != true || s["locked_reason"] != "audit" {
		t.Fatalf("locked view %v %v", s["locked"], s["locked_reason"])
	}
	if r := cc.action(t, cc.admin, id, map[string]any{"unlock": nil}, "2.1"); r.Status != 202 {
		t.Fatalf("unlock: %d %s", r.Status, r.Body)
	}
	// Instance actions, newest first, with events.
	r = doV(t, "GET", cc.url(1)+"/compute/v2.1/servers/"+id+"/os-instance-actions", cc.admin, nil, "2.58")
	acts := r.json(t)["instanceActions"].([]any)
	if len(acts) != 11 || acts[0].(map[string]any)["action"] != "unlock" || acts[10].(map[string]any)["action"] != "create" {
		t.Fatalf("actions %d: %s", len(acts), r.Body)
	}
	req := acts[10].(map[string]any)["request_id"].(string)
	r = doV(t, "GET", cc.url(2)+"/compute/v2.1/servers/"+id+"/os-instance-actions/"+req, cc.admin, nil, "2.62")
	ev := r.json(t)["instanceAction"].(map[string]any)["events"].([]any)
	if len(ev) != 2 || ev[1].(map[string]any)["event"] != "compute__do_build_and_run_instance" || ev[1].(map[string]any)["result"] != "Success" ||
		ev[1].(map[string]any)["host"] != "compute-1" {
		t.Fatalf("create events: %s", r.Body)
	}
	// Delete removes the domain, then the server.
	if r := doV(t, "DELETE", cc.url(0)+"/compute/v2.1/servers/"+id, cc.admin, nil, "2.1"); r.Status != 204 {
		t.Fatalf("delete: %d %s", r.Status, r.Body)
	}
	cluster.WaitFor(t, 10*time.Second, "server gone", func() bool {
		return doV(t, "GET", cc.url(0)+"/compute/v2.1/servers/"+id, cc.admin, nil, "2.1").Status == 404
	})
	if hosts[0].drv.Count() != 0 {
		t.Fatalf("%d domains left after delete", hosts[0].drv.Count())
	}
}

func TestBuildFailuresRetryOtherHostsThenError(t *testing.T) {
	cc := newSchedulingCloud(t, 1)
	failing := fake.Config{FailSpawn: func(a hostapi.Assignment) error {
		if strings.HasPrefix(a.Name, "doomed") {
			return errors.New("injected: the disk would not attach")
		}
		return nil
	}}
	hosts := cc.startHosts(t, 4, failing)
	id := cc.boot(t, cc.admin, "doomed", nil)
	var s map[string]any
	cluster.WaitFor(t, 20*time.Second, "server in ERROR", func() bool {
		s = cc.server(t, id)
		return s["status"] == "ERROR"
	})
	fault, _ := s["fault"].(map[string]any)
	msg, _ := fault["message"].(string)
	if fault["code"] != 500.0 || !strings.HasPrefix(msg, "Exceeded maximum number of retries. Exceeded max scheduling attempts 3 for instance "+id) ||
		!strings.Contains(msg, "injected: the disk would not attach") {
		t.Fatalf("fault %v", fault)
	}
	var spawns int
	for _, h := range hosts {
		spawns += h.drv.Calls(fake.OpSpawn)
	}
	if spawns != 3 {
		t.Fatalf("%d spawn attempts, want 3 (each on another host)", spawns)
	}
	// The events show each failed attempt.
	r := doV(t, "GET", cc.url(0)+"/compute/v2.1/servers/"+id+"/os-instance-actions", cc.admin, nil, "2.1")
	req := r.json(t)["instanceActions"].([]any)[0].(map[string]any)["request_id"].(string)
	r = doV(t, "GET", cc.url(0)+"/compute/v2.1/servers/"+id+"/os-instance-actions/"+req, cc.admin, nil, "2.62")
	var failed int
	for _, e := range r.json(t)["instanceAction"].(map[string]any)["events"].([]any) {
		if e.(map[string]any)["result"] == "Error" {
			failed++
		}
	}
	if failed != 3 {
		t.Fatalf("events: %s", r.Body)
	}
	// A server that builds fine on these hosts still does.
	ok := cc.boot(t, cc.admin, "fine", nil)
	cc.waitStatus(t, ok, "ACTIVE")
}

func TestSpreadAndAntiAffinityOverThreeHosts(t *testing.T) {
	if testing.Short() {
		t.Skip("boots 100 servers")
	}
	cc := newSchedulingCloud(t, 3)
	hosts := cc.startHosts(t, 3, fake.Config{})
	if r := do(t, "PUT", cc.url(0)+"/compute/v2.1/os-quota-sets/"+cc.projectID(t, "admin"), cc.admin,
		map[string]any{"quota_set": map[string]any{"instances": -1, "cores": -1, "ram": -1}}); r.Status != 200 {
		t.Fatalf("quota: %d %s", r.Status, r.Body)
	}
	body := map[string]any{"server": map[string]any{"name": "many", "imageRef": cc.imageID, "flavorRef": "1", "networks": "none", "min_count": 100, "max_count": 100}}
	if r := doV(t, "POST", cc.url(1)+"/compute/v2.1/servers", cc.admin, body, "2.74"); r.Status != 202 {
		t.Fatalf("create 100: %d %s", r.Status, r.Body)
	}
	cluster.WaitFor(t, 60*time.Second, "100 servers ACTIVE", func() bool {
		r := doV(t, "GET", cc.url(2)+"/compute/v2.1/servers/detail?status=ACTIVE&limit=1000", cc.admin, nil, "2.1")
		return len(r.json(t)["servers"].([]any)) == 100
	})
	for _, h := range hosts {
		// The RAM weigher spreads: 100 m1.tiny over 3 equal hosts.
		if n := h.drv.Count(); n < 30 || n > 37 {
			t.Errorf("host %s runs %d servers, want about a third of 100", h.name, n)
		}
	}
	// An anti-affinity group of 3 takes the 3 hosts; a 4th member fails.
	r := doV(t, "POST", cc.url(0)+"/compute/v2.1/os-server-groups", cc.admin, map[string]any{"server_group": map[string]any{"name": "spread", "policy": "anti-affinity"}}, "2.64")
	if r.Status != 200 {
		t.Fatalf("group: %d %s", r.Status, r.Body)
	}
	group := r.json(t)["server_group"].(map[string]any)["id"].(string)
	hint := map[string]any{"os:scheduler_hints": map[string]any{"group": group}}
	seen := map[string]bool{}
	for i := range 3 {
		id := cc.boot(t, cc.admin, fmt.Sprintf("aa-%d", i), hint)
		s := cc.waitStatus(t, id, "ACTIVE")
		seen[s["OS-EXT-SRV-ATTR:host"].(string)] = true
	}
	if len(seen) != 3 {
		t.Fatalf("anti-affinity members on %v, want 3 hosts", seen)
	}
	id := cc.boot(t, cc.admin, "aa-4", hint)
	var s map[string]any
	cluster.WaitFor(t, 20*time.Second, "4th member in ERROR", func() bool {
		s = cc.server(t, id)
		return s["status"] == "ERROR"
	})
	if f, _ := s["fault"].(map[string]any); f["message"] != "No valid host was found. There are not enough hosts available." {
		t.Fatalf("fault %v", s["fault"])
	}
}

// TestKillLeaderAndAgentWhileBuilding: every server reaches ACTIVE exactly
// once whatever fails while they build (domains == servers).
func TestKillLeaderAndAgentWhileBuilding(t *testing.T) {
	if testing.Short() {
		t.Skip("kills nodes")
	}
	cc := newSchedulingCloud(t, 3)
	slow := fake.Config{Delays: map[string]time.Duration{fake.OpSpawn: 300 * time.Millisecond}}
	hosts := cc.startHosts(t, 3, slow)
	if r := do(t, "PUT", cc.url(0)+"/compute/v2.1/os-quota-sets/"+cc.projectID(t, "admin"), cc.admin,
		map[string]any{"quota_set": map[string]any{"instances": -1, "cores": -1, "ram": -1}}); r.Status != 200 {
		t.Fatalf("quota: %d %s", r.Status, r.Body)
	}
	create := func(name string, n int) {
		body := map[string]any{"server": map[string]any{"name": name, "imageRef": cc.imageID, "flavorRef": "1", "networks": "none", "min_count": n, "max_count": n}}
		cluster.WaitFor(t, 20*time.Second, "create accepted", func() bool {
			for i := range cc.Nodes {
				if cc.Nodes[i].Node == nil {
					continue
				}
				if r := doV(t, "POST", cc.url(i)+"/compute/v2.1/servers", cc.admin, body, "2.74"); r.Status == 202 {
					return true
				}
			}
			return false
		})
	}
	allActive := func(want int) {
		cluster.WaitFor(t, 60*time.Second, fmt.Sprintf("%d servers ACTIVE", want), func() bool {
			for i := range cc.Nodes {
				if cc.Nodes[i].Node == nil {
					continue
				}
				r := doV(t, "GET", cc.url(i)+"/compute/v2.1/servers/detail?limit=1000", cc.admin, nil, "2.1")
				if r.Status != 200 {
					continue
				}
				active := 0
				for _, s := range r.json(t)["servers"].([]any) {
					if s.(map[string]any)["status"] == "ACTIVE" {
						active++
					}
				}
				return active == want
			}
			return false
		})
		var domains, defined int
		for _, h := range hosts {
			domains += h.drv.Count()
			defined += h.drv.Defined()
		}
		if domains != want || defined != want {
			t.Fatalf("%d domains running, %d ever defined, for %d servers", domains, defined, want)
		}
	}

	create("lk", 50)
	leader := cc.leaderIndex(t)
	cc.Kill(leader)
	allActive(50)
	cc.Restart(leader)

	// Kill an agent mid-build (domains may be half made) and restart it.
	create("ak", 30)
	time.Sleep(200 * time.Millisecond)
	victim := hosts[1]
	victim.stop()
	time.Sleep(500 * time.Millisecond)
	hosts[1] = cc.startHost(t, victim.name, victim.drv)
	allActive(80)
}

// doV is do at a compute microversion.
func doV(t testing.TB, method, url, tok string, body any, version string) resp {
	t.Helper()
	return do(t, method, url, tok, body, "OpenStack-API-Version", "compute "+version)
}

// projectID is the id of a project of the Default domain.
func (cc *computeCloud) projectID(t testing.TB, name string) string {
	t.Helper()
	p, err := fsm.ProjectByName(cc.Nodes[0].State(), "default", name)
	if err != nil {
		t.Fatal(err)
	}
	return p.ID
}

// LeaderIndex is the index of the current leader in cc.Nodes.
func (cc *computeCloud) leaderIndex(t testing.TB) int {
	t.Helper()
	l := cc.WaitLeader(10 * time.Second)
	for i, n := range cc.Nodes {
		if n == l {
			return i
		}
	}
	t.Fatal("leader not among the nodes")
	return -1
}

// A member of the server's project is refused actions on a locked server
// with Nova's 409; an administrator's lock is not the member's to lift.
func TestLockedServerActions(t *testing.T) {
	cc := newSchedulingCloud(t, 1)
	cc.startHosts(t, 1, fake.Config{})
	member, err := fsm.RoleByName(cc.Nodes[0].State(), "member")
	if err != nil {
		t.Fatal(err)
	}
	proj := cc.projectID(t, "admin")
	apply(t, cc.apiCluster, &fsm.CreateUser{User: fsm.User{ID: strings.Repeat("d", 32), Name: "lockee", DomainID: "default", PasswordHash: qtHash(t, "lockee-pw"), Enabled: true}})
	apply(t, cc.apiCluster, &fsm.GrantRole{Assignment: fsm.RoleAssignment{UserID: strings.Repeat("d", 32), RoleID: member.ID, ProjectID: proj}})
	tok := login(t, cc.url(0), "lockee", "lockee-pw", projectScope("admin"))
	id := cc.boot(t, tok, "locked", nil)
	cc.waitStatus(t, id, "ACTIVE")
	if r := cc.action(t, tok, id, map[string]any{"lock": nil}, "2.1"); r.Status != 202 {
		t.Fatalf("lock: %d %s", r.Status, r.Body)
	}
	for _, body := range []map[string]any{{"os-stop": nil}, {"reboot": map[string]any{"type": "HARD"}}, {"pause": nil}} {
		r := cc.action(t, tok, id, body, "2.1")
		if r.Status != 409 || !strings.Contains(string(r.Body), fmt.Sprintf("Instance %s is locked", id)) {
			t.Fatalf("%v on a locked server: %d %s", body, r.Status, r.Body)
		}
	}
	if r := doV(t, "DELETE", cc.url(0)+"/compute/v2.1/servers/"+id, tok, nil, "2.1"); r.Status != 409 {
		t.Fatalf("delete of a locked server: %d %s", r.Status, r.Body)
	}
	if r := cc.action(t, tok, id, map[string]any{"unlock": nil}, "2.1"); r.Status != 202 {
		t.Fatalf("owner unlock: %d %s", r.Status, r.Body)
	}
	if r := cc.action(t, cc.admin, id, map[string]any{"lock": nil}, "2.1"); r.Status != 202 {
		t.Fatalf("admin lock: %d %s", r.Status, r.Body)
	}
	// The admin locked it as the owner project's admin: the lock is the
	// owner's (Nova's locked_by "owner"), so the member may lift it.
	if r := cc.action(t, tok, id, map[string]any{"unlock": nil}, "2.1"); r.Status != 202 {
		t.Fatalf("unlock of an owner-project lock: %d %s", r.Status, r.Body)
	}
	// An unknown status filter matches nothing before 2.38, and is a 400
	// from 2.38 on (Nova's rule).
	if r := doV(t, "GET", cc.url(0)+"/compute/v2.1/servers/detail?status=SLEEPY", tok, nil, "2.38"); r.Status != 400 {
		t.Fatalf("bad status at 2.38: %d %s", r.Status, r.Body)
	}
	if r := doV(t, "GET", cc.url(0)+"/compute/v2.1/servers/detail?status=SLEEPY", tok, nil, "2.37"); r.Status != 200 || len(r.json(t)["servers"].([]any)) != 0 {
		t.Fatalf("bad status at 2.37: %d %s", r.Status, r.Body)
	}
	if r := doV(t, "GET", cc.url(0)+"/compute/v2.1/servers/"+id, tok, nil, "2.1"); r.Header.Get("X-Compute-Request-Id") == "" ||
		r.Header.Get("X-Compute-Request-Id") != r.Header.Get("X-Openstack-Request-Id") {
		t.Fatalf("request id headers: %v", r.Header)
	}
	// No metadata service: no guest ever posted a password.
	if r := doV(t, "GET", cc.url(0)+"/compute/v2.1/servers/"+id+"/os-server-password", tok, nil, "2.1"); r.Status != 200 || r.json(t)["password"] != "" {
		t.Fatalf("server password: %d %s", r.Status, r.Body)
	}
	if r := doV(t, "DELETE", cc.url(0)+"/compute/v2.1/servers/"+id+"/os-server-password", tok, nil, "2.1"); r.Status != 204 {
		t.Fatalf("clear server password: %d %s", r.Status, r.Body)
	}
	// restore needs a soft-deleted server, which Keel never has.
	if r := cc.action(t, tok, id, map[string]any{"restore": nil}, "2.1"); r.Status != 409 || !strings.Contains(string(r.Body), "Cannot 'restore' instance "+id+" while it is in vm_state active") {
		t.Fatalf("restore: %d %s", r.Status, r.Body)
	}
	// os-resetState is an administrator's.
	if r := cc.action(t, tok, id, map[string]any{"os-resetState": map[string]any{"state": "error"}}, "2.1"); r.Status != 403 {
		t.Fatalf("member reset-state: %d %s", r.Status, r.Body)
	}
	if r := cc.action(t, cc.admin, id, map[string]any{"os-resetState": map[string]any{"state": "error"}}, "2.1"); r.Status != 202 {
		t.Fatalf("admin reset-state: %d %s", r.Status, r.Body)
	}
	if s := cc.server(t, id); s["status"] != "ERROR" || s["OS-EXT-STS:task_state"] != nil {
		t.Fatalf("after reset-state error: %v %v", s["status"], s["OS-EXT-STS:task_state"])
	}
	if r := cc.action(t, cc.admin, id, map[string]any{"os-resetState": map[string]any{"state": "active"}}, "2.1"); r.Status != 202 || cc.server(t, id)["status"] != "ACTIVE" {
		t.Fatalf("admin reset-state active: %d %s", r.Status, r.Body)
	}
	if r := cc.action(t, cc.admin, id, map[string]any{"os-resetState": map[string]any{"state": "paused"}}, "2.1"); r.Status != 400 {
		t.Fatalf("reset-state to paused: %d %s", r.Status, r.Body)
	}
	// Console output is tailed as Nova does: the last N newline pieces.
	r := cc.action(t, tok, id, map[string]any{"os-getConsoleOutput": map[string]any{"length": 2}}, "2.1")
	if out, _ := r.json(t)["output"].(string); r.Status != 200 || len(strings.Split(out, "\n")) != 2 {
		t.Fatalf("console length 2: %d %q", r.Status, out)
	}
	if r := cc.action(t, tok, id, map[string]any{"frobnicate": nil}, "2.1"); r.Status != 400 {
		t.Fatalf("unknown action: %d %s", r.Status, r.Body)
	}
	if r := cc.action(t, tok, id, map[string]any{"resize": map[string]any{"flavorRef": "2"}}, "2.1"); r.Status != 501 {
		t.Fatalf("an action not built: %d %s", r.Status, r.Body)
	}
	if r := cc.action(t, tok, id, map[string]any{"reboot": map[string]any{"type": "sideways"}}, "2.1"); r.Status != 400 {
		t.Fatalf("bad reboot type: %d %s", r.Status, r.Body)
	}
}

// Malformed action bodies are Nova's 400 and change nothing stored.
func TestServerActionBadInput(t *testing.T) {
	cc := newSchedulingCloud(t, 1)
	cc.startHosts(t, 1, fake.Config{})
	id := cc.boot(t, cc.admin, "vm", nil)
	cc.waitStatus(t, id, "ACTIVE")
	before, _ := cc.Nodes[0].FSM().Hash()
	for _, c := range []struct {
		body    any
		version string
	}{
		{map[string]any{}, "2.1"},
		{map[string]any{"os-stop": nil, "os-start": nil}, "2.1"},
		{map[string]any{"reboot": "HARD"}, "2.1"},
		{map[string]any{"reboot": map[string]any{}}, "2.1"},
		{map[string]any{"reboot": map[string]any{"type": "HARD", "extra": 1}}, "2.1"},
		{map[string]any{"os-getConsoleOutput": map[string]any{"length": "abc"}}, "2.1"},
		{map[string]any{"os-getConsoleOutput": map[string]any{"length": -2}}, "2.1"},
		{map[string]any{"lock": map[string]any{"locked_reason": 5}}, "2.73"},
		{map[string]any{"lock": map[string]any{"locked_reason": strings.Repeat("r", 256)}}, "2.73"},
		{map[string]any{"os-resetState": map[string]any{"state": 5}}, "2.1"},
		{map[string]any{"os-resetState": map[string]any{}}, "2.1"},
		{`{"reboot": `, "2.1"},
	} {
		var r resp
		if s, ok := c.body.(string); ok {
			r = do(t, "POST", cc.url(0)+"/compute/v2.1/servers/"+id+"/action", cc.admin, s, "OpenStack-API-Version", "compute "+c.version)
		} else {
			r = cc.action(t, cc.admin, id, c.body.(map[string]any), c.version)
		}
		if r.Status != 400 || r.json(t)["badRequest"] == nil {
			t.Errorf("%v: %d %s, want a 400 badRequest fault", c.body, r.Status, r.Body)
		}
	}
	if after, _ := cc.Nodes[0].FSM().Hash(); after != before {
		t.Fatal("malformed actions changed the stored state")
	}
}
