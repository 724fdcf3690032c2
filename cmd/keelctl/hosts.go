package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/keel-cloud/keel/api"
)

// Operating compute hosts: `keelctl services`, `keelctl hosts`, and
// `keelctl host disable|enable|force-down|evacuate HOST`, over the
// controllers' internal admin API (api/admin_internal.go).

func (a *app) getJSON(c *client, path string, out any) error {
	raw, err := c.call(context.Background(), http.MethodGet, path, nil)
	if err != nil {
		return err
	}
	if err := json.Unmarshal(raw, out); err != nil {
		return fmt.Errorf("the answer from %s to %s is not what keelctl expects (%v): is --url a Keel controller of the same version?", c.base, path, err)
	}
	return nil
}

func (a *app) printJSON(v any) error {
	enc := json.NewEncoder(a.stdout)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// listing runs a listing command: GET path into out, then either JSON
// (--json) or the table that table writes.
func (a *app) listing(name, summary, path string, args []string, out any, table func(tw io.Writer)) error {
	fs := a.flags(name, "", summary)
	asJSON := fs.Bool("json", false, "print JSON")
	if _, err := parseArgs(fs, args, 0); err != nil {
		return err
	}
	c, err := a.newClient()
	if err != nil {
		return err
	}
	if err := a.getJSON(c, path, out); err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	if *asJSON {
		return a.printJSON(out)
	}
	tw := tabwriter.NewWriter(a.stdout, 0, 4, 2, ' ', 0)
	table(tw)
	return tw.Flush()
}

func (a *app) services(args []string) error {
	var out struct {
		Services []api.ServiceRow `json:"services"`
	}
	return a.listing("services", "List the services (nova-compute of each host, nova-scheduler and nova-conductor of each controller):\n"+
		"the state the cluster committed (up/down) beside this controller's gossip view of the host.",
		"/internal/v1/admin/services", args, &out, func(tw io.Writer) {
			fmt.Fprintln(tw, "ID\tBINARY\tHOST\tZONE\tSTATUS\tSTATE\tGOSSIP\tFORCED DOWN\tDISABLED REASON")
			for _, s := range out.Services {
				status := "enabled"
				if s.Disabled {
					status = "disabled"
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%v\t%s\n", s.ID, s.Binary, s.Host, s.Zone, status, s.State, s.Gossip, s.ForcedDown, dash(s.DisabledReason))
			}
		})
}

func (a *app) hosts(args []string) error {
	var out struct {
		Hosts []api.HostRow `json:"hosts"`
	}
	return a.listing("hosts", "List the compute hosts: the state the cluster committed beside this controller's gossip view\n"+
		"(a host 'down' while gossip says 'alive', or the reverse, is a disagreement worth a look), usage, and\n"+
		"whether the host may be evacuated now.",
		"/internal/v1/admin/hosts", args, &out, func(tw io.Writer) {
			fmt.Fprintln(tw, "HOST\tZONE\tSTATE\tGOSSIP\tSTATUS\tSERVERS\tVCPUS\tRAM MB\tFENCE AFTER\tEVACUABLE")
			for _, h := range out.Hosts {
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%d\t%d/%d\t%d/%d\t%s\t%s\n", h.Host, h.Zone, hostState(h), h.Gossip, hostStatus(h),
					h.Servers, h.VCPUsUsed, h.VCPUs, h.MemoryMBUsed, h.MemoryMB, fenceWindow(h.FenceAfterMS), evacuable(h))
			}
		})
}

func hostState(h api.HostRow) string {
	if h.ForcedDown {
		return "down (forced)"
	}
	return h.State
}

func hostStatus(h api.HostRow) string {
	if !h.Disabled {
		return "enabled"
	}
	if h.DisabledReason != "" {
		return "disabled (" + h.DisabledReason + ")"
	}
	return "disabled"
}

func fenceWindow(ms int64) string {
	if ms <= 0 {
		return "none"
	}
	return (time.Duration(ms) * time.Millisecond).String()
}

func evacuable(h api.HostRow) string {
	switch {
	case h.EvacuableInMS < 0:
		return "no"
	case h.EvacuableInMS == 0:
		return "yes"
	}
	return "in " + (time.Duration(h.EvacuableInMS) * time.Millisecond).Round(time.Second).String()
}

// hostChange sends a change of a host's compute service and prints the row.
func (a *app) hostChange(name, summary string, args []string, change func(fs flagSet) func() api.HostServiceChange) error {
	fs := a.flags("host "+name, "HOST", summary)
	build := change(fs)
	rest, err := parseArgs(fs, args, 1)
	if err != nil {
		return err
	}
	host := rest[0]
	c, err := a.newClient()
	if err != nil {
		return err
	}
	raw, err := c.call(context.Background(), http.MethodPost, "/internal/v1/admin/hosts/"+url.PathEscape(host)+"/service", build())
	if err != nil {
		return fmt.Errorf("host %s %s: %w", name, host, err)
	}
	var row api.HostRow
	if err := json.Unmarshal(raw, &row); err != nil {
		return fmt.Errorf("host %s %s: unexpected answer: %v", name, host, err)
	}
	fmt.Fprintf(a.stdout, "host %s: state %s, %s, %d servers\n", row.Host, hostState(row), hostStatus(row), row.Servers)
	return nil
}

// flagSet is the part of *flag.FlagSet the host commands use.
type flagSet interface {
	String(name, value, usage string) *string
	Bool(name string, value bool, usage string) *bool
}

func (a *app) hostDisable(args []string) error {
	return a.hostChange("disable", "Disable HOST's compute service: it gets no new servers; its servers keep running.", args,
		func(fs flagSet) func() api.HostServiceChange {
			reason := fs.String("reason", "", "why (shown by `openstack compute service list --long`)")
			return func() api.HostServiceChange {
				yes := true
				ch := api.HostServiceChange{Disabled: &yes}
				if *reason != "" {
					ch.DisabledReason = reason
				}
				return ch
			}
		})
}

func (a *app) hostEnable(args []string) error {
	return a.hostChange("enable", "Enable HOST's compute service again (it gets new servers).", args,
		func(fs flagSet) func() api.HostServiceChange {
			return func() api.HostServiceChange { no := false; return api.HostServiceChange{Disabled: &no} }
		})
}

func (a *app) hostForceDown(args []string) error {
	return a.hostChange("force-down", "Force HOST down (fence it): you vouch that the host is off or cut off, so its servers\n"+
		"may be evacuated at once. Its agent, if it still runs, starts nothing. --clear lifts it.", args,
		func(fs flagSet) func() api.HostServiceChange {
			clear := fs.Bool("clear", false, "lift forced_down: the host's state follows gossip again")
			return func() api.HostServiceChange { v := !*clear; return api.HostServiceChange{ForcedDown: &v} }
		})
}

// evacuateConcurrency bounds the evacuate calls in flight.
const evacuateConcurrency = 16

func (a *app) hostEvacuate(args []string) error {
	fs := a.flags("host evacuate", "HOST", "Evacuate every server of HOST, which must be down: forced down, or down for longer than its\n"+
		"agent's fencing window plus the controllers' margin. Servers are rebuilt on hosts the scheduler picks\n"+
		"(or --target). Shows progress and a summary; exit status 1 if any server did not reach ACTIVE/SHUTOFF.")
	target := fs.String("target", "", "rebuild every server on this host (the scheduler's filters still check it)")
	wait := fs.Duration("wait", 10*time.Minute, "how long to wait for the servers to be rebuilt")
	rest, err := parseArgs(fs, args, 1)
	if err != nil {
		return err
	}
	host := rest[0]
	c, err := a.newClient()
	if err != nil {
		return err
	}
	var row api.HostRow
	if err := a.getJSON(c, "/internal/v1/admin/hosts/"+url.PathEscape(host), &row); err != nil {
		return fmt.Errorf("host evacuate %s: %w", host, err)
	}
	switch {
	case row.EvacuableInMS < 0 && row.State == "up":
		return fmt.Errorf("host evacuate %s: the host is up (gossip: %s): evacuating it could run its servers twice. If it is really dead, force it down first: keelctl host force-down %s", host, row.Gossip, host)
	case row.EvacuableInMS < 0:
		return fmt.Errorf("host evacuate %s: the host is down but its agent does not fence itself (no --fence-after), so its servers may still run: make sure it is off, then keelctl host force-down %s", host, host)
	case row.EvacuableInMS > 0:
		return fmt.Errorf("host evacuate %s: the host is down, but its agent may still run servers for %s more (fencing window %s plus the margin): try again then, or force it down if it is known to be off (keelctl host force-down %s)",
			host, evacuable(row)[3:], fenceWindow(row.FenceAfterMS), host)
	}
	var list struct {
		Servers []api.HostServer `json:"servers"`
	}
	if err := a.getJSON(c, "/internal/v1/admin/hosts/"+url.PathEscape(host)+"/servers", &list); err != nil {
		return fmt.Errorf("host evacuate %s: %w", host, err)
	}
	if len(list.Servers) == 0 {
		fmt.Fprintf(a.stdout, "host %s has no servers to evacuate\n", host)
		return nil
	}
	start := time.Now()
	fmt.Fprintf(a.stderr, "evacuating %d servers from %s\n", len(list.Servers), host)

	// Start every evacuation, a few at a time.
	results := make([]evacStart, len(list.Servers))
	var wg sync.WaitGroup
	sem := make(chan struct{}, evacuateConcurrency)
	for i, srv := range list.Servers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			raw, err := c.call(context.Background(), http.MethodPost, "/internal/v1/admin/servers/"+srv.ID+"/evacuate", api.EvacuateRequest{Host: *target})
			results[i] = evacStart{srv: srv, err: err}
			if err == nil {
				var e api.Evacuation
				if err := json.Unmarshal(raw, &e); err != nil {
					results[i].err = err
				}
				results[i].mig = e.MigrationID
			}
		}()
	}
	wg.Wait()
	mine := map[string]bool{}
	for _, r := range results {
		if r.err == nil {
			mine[r.mig] = true
		}
	}

	// Follow them until each is rebuilt or failed.
	final := map[string]api.Evacuation{}
	deadline := time.Now().Add(*wait)
	p := &evacProgress{w: a.stderr, on: a.progress, host: host, total: len(mine)}
	for len(final) < len(mine) {
		var evs struct {
			Evacuations []api.Evacuation `json:"evacuations"`
		}
		if err := a.getJSON(c, "/internal/v1/admin/hosts/"+url.PathEscape(host)+"/evacuations", &evs); err != nil {
			var ue *unreachableError
			if !errors.As(err, &ue) {
				return fmt.Errorf("host evacuate %s: following the evacuations: %w", host, err)
			}
			fmt.Fprintf(a.stderr, "\nkeelctl: %v; retrying\n", err)
		}
		for _, e := range evs.Evacuations {
			if mine[e.MigrationID] && evacuationOver(e) {
				final[e.MigrationID] = e
			}
		}
		p.show(len(final), failedCount(final), start, false)
		if len(final) == len(mine) {
			break
		}
		if time.Now().After(deadline) {
			break
		}
		time.Sleep(250 * time.Millisecond)
	}
	p.show(len(final), failedCount(final), start, true)
	p.done()
	return a.evacuationSummary(host, results, final, mine, time.Since(start))
}

// evacuationOver: the server reached a state the evacuation ends in.
func evacuationOver(e api.Evacuation) bool {
	switch {
	case e.ServerStatus == "DELETED":
		return true
	case e.TaskState != "":
		return false
	case e.ServerStatus == "ACTIVE" || e.ServerStatus == "SHUTOFF" || e.ServerStatus == "ERROR":
		return e.MigrationStatus != "accepted" && e.MigrationStatus != "pre-migrating"
	}
	return false
}

func evacuationFailed(e api.Evacuation) bool {
	return e.ServerStatus == "ERROR" || e.MigrationStatus == "error" || e.MigrationStatus == "failed"
}

func failedCount(m map[string]api.Evacuation) int {
	n := 0
	for _, e := range m {
		if evacuationFailed(e) {
			n++
		}
	}
	return n
}

// evacStart is one server's evacuate call: its migration, or why not.
type evacStart struct {
	srv api.HostServer
	mig string
	err error
}

func (a *app) evacuationSummary(host string, results []evacStart, final map[string]api.Evacuation, mine map[string]bool, took time.Duration) error {
	tw := tabwriter.NewWriter(a.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "SERVER\tNAME\tRESULT\tNOW ON\tDETAIL")
	ok, failed, refused, pending := 0, 0, 0, 0
	for _, r := range results {
		switch e, done := final[r.mig]; {
		case r.err != nil:
			refused++
			fmt.Fprintf(tw, "%s\t%s\trefused\t%s\t%s\n", r.srv.ID, r.srv.Name, host, oneLine(r.err.Error()))
		case !done:
			pending++
			fmt.Fprintf(tw, "%s\t%s\tstill rebuilding\t-\tmigration %s\n", r.srv.ID, r.srv.Name, r.mig)
		case evacuationFailed(e):
			failed++
			fmt.Fprintf(tw, "%s\t%s\tfailed (%s)\t%s\t%s\n", r.srv.ID, r.srv.Name, e.ServerStatus, dash(e.Host), oneLine(e.Fault))
		default:
			ok++
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t\n", r.srv.ID, r.srv.Name, e.ServerStatus, dash(e.Host))
		}
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintf(a.stdout, "evacuated %d of %d servers from %s in %s (%d failed, %d refused, %d still rebuilding)\n",
		ok, len(results), host, took.Round(100*time.Millisecond), failed, refused, pending)
	if ok == len(results) {
		return nil
	}
	hint := "see `openstack server show ID` for each server's fault"
	if pending > 0 {
		hint = "servers still rebuilding: follow them with `keelctl hosts` and `openstack server list --host` (raise --wait)"
	}
	return fmt.Errorf("host evacuate %s: %d of %d servers not evacuated: %s", host, len(results)-ok, len(results), hint)
}

func oneLine(s string) string {
	s = strings.ReplaceAll(s, "\n", " ")
	if len(s) > 120 {
		s = s[:117] + "..."
	}
	return s
}

// evacProgress draws "evacuating h1: 37/100 rebuilt, 2 failed [====   ]"
// on a terminal, or a line every few seconds elsewhere.
type evacProgress struct {
	w     io.Writer
	on    bool
	host  string
	total int
	last  time.Time
	shown bool
}

func (p *evacProgress) show(done, failed int, start time.Time, final bool) {
	const width = 30
	now := time.Now()
	if p.total == 0 {
		return
	}
	if !p.on {
		if !final && now.Sub(p.last) < 2*time.Second {
			return
		}
		p.last = now
		fmt.Fprintf(p.w, "evacuating %s: %d/%d finished, %d failed, %s\n", p.host, done, p.total, failed, now.Sub(start).Round(time.Second))
		return
	}
	bar := strings.Repeat("=", done*width/p.total) + strings.Repeat(" ", width-done*width/p.total)
	fmt.Fprintf(p.w, "\revacuating %s: [%s] %d/%d finished, %d failed, %s ", p.host, bar, done, p.total, failed, now.Sub(start).Round(time.Second))
	p.shown = true
	if final {
		fmt.Fprintln(p.w)
		p.shown = false
	}
}

func (p *evacProgress) done() {
	if p.shown {
		fmt.Fprintln(p.w)
	}
}
