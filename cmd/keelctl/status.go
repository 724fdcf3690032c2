package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/keel-cloud/keel/cluster"
)

// clusterStatus prints the cluster as the controller at --url sees it, and
// exits 2 if the cluster cannot serve writes or that controller does not
// answer.
func (a *app) clusterStatus(args []string) error {
	fs := a.flags("cluster status", "", "Show every controller and whether the cluster can serve writes.\n"+
		"Exit status 0: a leader and a quorum of voters; 2: not, or the controller at --url did not answer; 1: other errors.")
	asJSON := fs.Bool("json", false, "print the status JSON as the controller sent it (indented)")
	if _, err := parseArgs(fs, args, 0); err != nil {
		return err
	}
	c, err := a.newClient()
	if err != nil {
		return err
	}
	raw, err := c.call(context.Background(), http.MethodGet, "/internal/v1/status", nil)
	if err != nil {
		var ue *unreachableError
		if errors.As(err, &ue) {
			return &exitErr{code: exitUnhealthy, err: err}
		}
		return fmt.Errorf("cluster status: %w", err)
	}
	var st cluster.ClusterStatus
	if err := json.Unmarshal(raw, &st); err != nil {
		return fmt.Errorf("cluster status: the answer from %s is not a cluster status (%v); is --url the API address of a Keel controller?", c.base, err)
	}
	if *asJSON {
		var buf bytes.Buffer
		if err := json.Indent(&buf, bytes.TrimSpace(raw), "", "  "); err != nil {
			return fmt.Errorf("cluster status: indent the answer: %w", err)
		}
		buf.WriteByte('\n')
		if _, err := a.stdout.Write(buf.Bytes()); err != nil {
			return err
		}
	} else if err := writeStatus(a.stdout, &st); err != nil {
		return err
	}
	if !st.Healthy || st.Leader == "" {
		reason := st.Reason
		if reason == "" {
			reason = "the controller reported no leader or no quorum, without a reason"
		}
		return &exitErr{code: exitUnhealthy, err: fmt.Errorf("cluster unhealthy: %s", reason)}
	}
	return nil
}

// writeStatus renders a status as a summary line and a table.
func writeStatus(w io.Writer, st *cluster.ClusterStatus) error {
	leader := st.Leader
	if leader == "" {
		leader = "(none)"
	}
	fmt.Fprintf(w, "leader: %s   voters: %d   reported by: %s\n", leader, st.Voters, dash(st.ReportedBy))
	if len(st.Servers) == 0 {
		_, err := fmt.Fprintln(w, "(no controllers reported)")
		return err
	}
	showErr := false
	for _, s := range st.Servers {
		showErr = showErr || s.Error != ""
	}
	tw := tabwriter.NewWriter(w, 0, 0, 3, ' ', 0)
	cols := []string{"NAME", "RAFT ADDRESS", "ROLE", "VOTER", "GOSSIP", "LAST CONTACT", "APPLIED", "COMMIT", "TERM", "VERSION", "SCHEMA"}
	if showErr {
		cols = append(cols, "ERROR")
	}
	fmt.Fprintln(tw, strings.Join(cols, "\t"))
	for _, s := range st.Servers {
		voter := "no"
		if s.Voter {
			voter = "yes"
		}
		row := []string{dash(s.Name), dash(s.RaftAddress), dash(s.Role), voter, dash(s.Gossip), lastContact(s),
			index(s, s.AppliedIndex), index(s, s.CommitIndex), index(s, s.Term), dash(s.Version), schema(s.FSMSchema)}
		if showErr {
			row = append(row, dash(strings.Join(strings.Fields(s.Error), " ")))
		}
		fmt.Fprintln(tw, strings.Join(row, "\t"))
	}
	return tw.Flush()
}

// schema renders a controller's FSM schema: "-" when unknown.
func schema(n int) string {
	if n <= 0 {
		return "-"
	}
	return strconv.Itoa(n)
}

// answered reports whether the row is the controller's own report (not a
// placeholder for one that could not be asked).
func answered(s cluster.ServerStatus) bool { return s.Error == "" && s.Role != "unknown" }

// lastContact renders the time since the controller last heard from the
// leader: "0s" on the leader, "never", or "-" if unknown.
func lastContact(s cluster.ServerStatus) string {
	if !answered(s) {
		return "-"
	}
	if s.LastContactMS < 0 {
		return "never"
	}
	d := time.Duration(s.LastContactMS) * time.Millisecond
	switch {
	case d < time.Second:
		return d.String()
	case d < time.Minute:
		return d.Round(100 * time.Millisecond).String()
	}
	return d.Round(time.Second).String()
}

func index(s cluster.ServerStatus, v uint64) string {
	if !answered(s) {
		return "-"
	}
	return strconv.FormatUint(v, 10)
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// removePeer takes a controller out of the Raft configuration for good.
func (a *app) removePeer(args []string) error {
	fs := a.flags("cluster remove-peer", "NAME", "Remove controller NAME from the Raft configuration (and from gossip if it failed).\n"+
		"Stop it first: the leader adds every running controller back.")
	pos, err := parseArgs(fs, args, 1)
	if err != nil {
		return err
	}
	name := pos[0]
	c, err := a.newClient()
	if err != nil {
		return err
	}
	if _, err := c.call(context.Background(), http.MethodPost, "/internal/v1/remove-peer", map[string]string{"name": name}); err != nil {
		return fmt.Errorf("remove-peer %s: %w", name, err)
	}
	fmt.Fprintf(a.stdout, "removed controller %s from the cluster: it no longer votes in Raft (and is dropped from gossip if it had failed).\n"+
		"If it is still running, stop it, or the leader will add it back.\n", name)
	return nil
}
