package chaos

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"time"
)

// partition cuts a controller off from the other two controllers with
// iptables in its own network namespace (entered with nsenter from the
// Docker host) for the hold time. Unlike isolate, haproxy and the compute
// hosts still reach it: clients keep sending it requests until its /readyz
// fails, so a controller on the minority side must refuse (503 with
// Retry-After) rather than answer from its own, possibly stale, state.
func (s *scenarioRun) partition(name string) error {
	for _, tool := range []string{"nsenter", "iptables"} {
		if _, err := exec.LookPath(tool); err != nil {
			return fmt.Errorf("the partition scenarios need %s on the Docker host, run as root (Debian: apt-get install iptables util-linux): %v", tool, err)
		}
	}
	pid, err := docker(30*time.Second, "inspect", "-f", "{{.State.Pid}}", s.d.cids[name])
	if err != nil {
		return err
	}
	pid = strings.TrimSpace(pid)
	if n, err := strconv.Atoi(pid); err != nil || n <= 0 {
		return fmt.Errorf("%s's container has no process (pid %q): is it running?", name, pid)
	}
	var rules [][]string
	for _, peer := range controllers {
		if peer == name {
			continue
		}
		ip := s.d.ip(peer)
		rules = append(rules, []string{"INPUT", "-s", ip, "-j", "DROP"}, []string{"OUTPUT", "-d", ip, "-j", "DROP"})
	}
	ipt := func(op string, rule []string) error {
		args := append([]string{"-t", pid, "-n", "iptables", "-w", op}, rule...)
		out, err := exec.Command("nsenter", args...).CombinedOutput()
		if err != nil {
			return fmt.Errorf("nsenter %s: %v: %s", strings.Join(args, " "), err, strings.TrimSpace(string(out)))
		}
		return nil
	}
	s.logf("partitioning %s from the other controllers (iptables DROP in its network namespace; haproxy and the hosts still reach it)", name)
	var added [][]string
	var addErr error
	for _, r := range rules {
		if addErr = ipt("-I", r); addErr != nil {
			break
		}
		added = append(added, r)
	}
	if addErr == nil {
		s.mark()
		time.Sleep(s.hold)
	}
	s.logf("healing the partition of %s", name)
	for _, r := range added {
		if err := ipt("-D", r); err != nil && addErr == nil {
			addErr = err
		}
	}
	return addErr
}

// service is a row of os-services (compute API 2.37: integer ids).
type service struct {
	Host       string `json:"host"`
	State      string `json:"state"`
	Status     string `json:"status"`
	ForcedDown bool   `json:"forced_down"`
}

func (s *scenarioRun) computeService(ctx context.Context, host string) (*service, error) {
	a := s.d.api
	ans := a.compute(ctx, http.MethodGet, "/os-services?binary=nova-compute&host="+host, a.token, nil)
	var out struct{ Services []service }
	if err := a.mustJSON(ctx, "list the compute service of "+host, ans, http.StatusOK, &out); err != nil {
		return nil, err
	}
	if len(out.Services) != 1 {
		return nil, fmt.Errorf("os-services lists %d nova-compute services on %s, want 1", len(out.Services), host)
	}
	return &out.Services[0], nil
}

// forceDown sets or clears forced_down on a compute host (the 2.11–2.52
// force-down action), retried while the cluster answers 5xx.
func (s *scenarioRun) forceDown(ctx context.Context, host string, down bool) answer {
	body := map[string]any{"host": host, "binary": "nova-compute", "forced_down": down}
	var ans answer
	for try := 0; try < 20; try++ {
		ans = s.d.api.compute(ctx, http.MethodPut, "/os-services/force-down", s.d.api.token, body)
		if ans.Status != 0 && ans.Status < 500 {
			return ans
		}
		time.Sleep(500 * time.Millisecond)
	}
	return ans
}

// evacuateHost is the agent-kill scenario: a few servers of the scenario's
// own (which the workload leaves alone, so some are still there to
// evacuate) are created, then the compute host with the most of this
// trial's servers loses its agent (SIGKILL); once gossip has it
// down an operator forces it down and evacuates every server that can be
// (ACTIVE, SHUTOFF or ERROR, no task) to the other host; the agent is then
// started again, must remove its copies and complete the migrations, and
// forced_down is cleared. The workload runs throughout.
func (s *scenarioRun) evacuateHost() error {
	ctx := context.Background()
	a := s.d.api
	own := map[string]bool{}
	for range 6 {
		o := s.w.create(ctx, 8, "main")
		if o.Outcome != outOK {
			return fmt.Errorf("creating the scenario's servers on a healthy cluster: HTTP %d %s", o.Status, o.Err)
		}
		s.w.forget(o.ServerID) // the workload leaves them alone
		own[o.ServerID] = true
	}
	var all []serverView
	for start := time.Now(); ; time.Sleep(200 * time.Millisecond) {
		var err error
		if all, err = a.listAll(ctx); err != nil {
			return err
		}
		active := 0
		for _, sv := range all {
			if own[sv.ID] && sv.Status == "ACTIVE" {
				active++
			}
		}
		if active == len(own) {
			break
		}
		if time.Since(start) > time.Minute {
			return fmt.Errorf("the scenario's %d servers: %d ACTIVE after a minute on a healthy cluster", len(own), active)
		}
	}
	count := map[string]int{}
	for _, sv := range all {
		if strings.HasPrefix(sv.Name, s.tag+"-") && sv.Status == "ACTIVE" {
			count[sv.Host]++
		}
	}
	host := computes[0]
	for _, c := range computes {
		if count[c] > count[host] {
			host = c
		}
	}
	s.logf("killing the agent of %s (SIGKILL; %d of this trial's servers ACTIVE there)", host, count[host])
	if _, err := docker(30*time.Second, "kill", s.d.cids[host]); err != nil {
		return err
	}
	killed := time.Now()
	s.mark()

	// Gossip reports the host down (the detection the evacuation waits on).
	for {
		sv, err := s.computeService(ctx, host)
		if err == nil && sv.State == "down" {
			break
		}
		if time.Since(killed) > time.Minute {
			return fmt.Errorf("%s still not reported down a minute after its agent was killed (last: %+v, %v)", host, sv, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	detected := time.Since(killed)
	s.metric("host down detected", detected)
	s.logf("%s reported down %.2f s after the kill", host, detected.Seconds())

	if ans := s.forceDown(ctx, host, true); ans.Status != http.StatusOK {
		return fmt.Errorf("forcing %s down: %s", host, ans)
	}
	forced := time.Now()
	s.logf("%s forced down; evacuating its servers", host)

	// Evacuate until nothing evacuable is left there: a server of the
	// workload may be mid-operation (a task) on the first pass.
	evacuated := map[string]bool{}
	refused := 0
	for pass := 0; ; pass++ {
		all, err := a.listAll(ctx)
		if err != nil {
			return err
		}
		pending := 0
		for _, sv := range all {
			if sv.Host != host || evacuated[sv.ID] || sv.TaskState != nil && *sv.TaskState != "" ||
				!slices.Contains([]string{"ACTIVE", "SHUTOFF", "ERROR"}, sv.Status) {
				continue
			}
			ans := a.compute(ctx, http.MethodPost, "/servers/"+sv.ID+"/action", a.token, map[string]any{"evacuate": map[string]any{}})
			switch {
			case ans.Status == http.StatusOK:
				evacuated[sv.ID] = true
			case ans.Status == http.StatusNotFound || ans.Status == http.StatusConflict:
				refused++ // deleted or busy meanwhile: the next pass sees it again if it is still there
				pending++
			default:
				pending++
				s.logf("evacuating %s: %s (retried)", sv.ID, ans)
			}
		}
		if pending == 0 {
			break
		}
		if pass > 60 {
			return fmt.Errorf("servers on %s still not evacuable after %d passes", host, pass)
		}
		time.Sleep(500 * time.Millisecond)
	}

	// Every evacuated server ACTIVE elsewhere, or deleted by the workload.
	for {
		all, err := a.listAll(ctx)
		if err == nil {
			waiting := 0
			byID := map[string]serverView{}
			for _, sv := range all {
				byID[sv.ID] = sv
			}
			for id := range evacuated {
				sv, ok := byID[id]
				if ok && !sv.deleting() && (sv.Status != "ACTIVE" || sv.Host == host || sv.TaskState != nil && *sv.TaskState != "") {
					waiting++
				}
			}
			if waiting == 0 {
				break
			}
			if time.Since(forced) > 2*time.Minute {
				return fmt.Errorf("%d of %d servers evacuated from %s not ACTIVE on another host after 2 minutes", waiting, len(evacuated), host)
			}
		}
		time.Sleep(200 * time.Millisecond)
	}
	took := time.Since(forced)
	s.metric("evacuation, forced down to all ACTIVE", took)
	s.logf("%d servers evacuated from %s, all ACTIVE elsewhere %.2f s after it was forced down (%d refusals retried)", len(evacuated), host, took.Seconds(), refused)

	// The agent comes back: it must destroy its copies and complete the
	// evacuations before forced_down can be cleared (Nova's rule).
	s.logf("starting the agent of %s again", host)
	if _, err := docker(60*time.Second, "start", s.d.cids[host]); err != nil {
		return err
	}
	restarted := time.Now()
	for {
		left, err := s.unfinishedMigrations(ctx, evacuated)
		if err == nil && len(left) == 0 {
			break
		}
		if time.Since(restarted) > 2*time.Minute {
			return fmt.Errorf("2 minutes after %s's agent restarted, evacuations not completed: %v (%v)", host, left, err)
		}
		time.Sleep(200 * time.Millisecond)
	}
	s.logf("%s's agent completed the %d evacuations %.2f s after it started", host, len(evacuated), time.Since(restarted).Seconds())
	if ans := s.forceDown(ctx, host, false); ans.Status != http.StatusOK {
		return fmt.Errorf("clearing forced_down on %s: %s", host, ans)
	}
	s.logf("forced_down cleared on %s", host)
	return nil
}

// unfinishedMigrations lists the evacuations of the given servers that are
// not completed (nor error/failed), as "server:status".
func (s *scenarioRun) unfinishedMigrations(ctx context.Context, servers map[string]bool) ([]string, error) {
	a := s.d.api
	ans := a.compute(ctx, http.MethodGet, "/os-migrations", a.token, nil)
	if ans.Status != http.StatusOK {
		return nil, fmt.Errorf("list migrations: %s", ans)
	}
	var out struct {
		Migrations []struct {
			InstanceUUID  string `json:"instance_uuid"`
			Status        string `json:"status"`
			MigrationType string `json:"migration_type"`
		}
	}
	if err := json.Unmarshal(ans.Body, &out); err != nil {
		return nil, err
	}
	var left []string
	for _, m := range out.Migrations {
		if servers[m.InstanceUUID] && m.MigrationType == "evacuation" && !slices.Contains([]string{"completed", "error", "failed"}, m.Status) {
			left = append(left, m.InstanceUUID+":"+m.Status)
		}
	}
	return left, nil
}
