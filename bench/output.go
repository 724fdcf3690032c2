package bench

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"
	"time"
)

// Report is a run's result, written as the table, the JSON and the SVG.
type Report struct {
	Tool     string `json:"tool"`
	Version  string `json:"version"`
	Scenario string `json:"scenario"`
	Params   Params `json:"parameters"`
	Target   Target `json:"target"`
	// Method says how the figures are computed.
	Method string `json:"method"`
	// Start of the measured phase (after prepare), UTC.
	Start       time.Time       `json:"start"`
	WallSeconds float64         `json:"wall_seconds"`
	Iterations  IterationCounts `json:"iterations"`
	// Interrupted: the run was stopped (Ctrl-C) before all iterations
	// ended; the ones under way are not counted.
	Interrupted      bool         `json:"interrupted"`
	Prepare          *Phase       `json:"prepare,omitempty"`
	Cleanup          *Phase       `json:"cleanup,omitempty"`
	LeftoversDeleted int          `json:"leftovers_deleted"`
	TokensIssued     int          `json:"tokens_issued"`
	Operations       []OpStats    `json:"operations"`
	Faults           []FaultCount `json:"faults"`
}

// Params are the run's parameters.
type Params struct {
	Count              int     `json:"count"`
	DurationSeconds    float64 `json:"duration_seconds"`
	Concurrency        int     `json:"concurrency"`
	Flavor             *Named  `json:"flavor,omitempty"`
	Image              *Named  `json:"image,omitempty"`
	Network            string  `json:"network,omitempty"`
	NICNet             string  `json:"nic_net,omitempty"`
	TimeoutSeconds     float64 `json:"timeout_seconds"`
	PollSeconds        float64 `json:"poll_seconds"`
	HTTPTimeoutSeconds float64 `json:"http_timeout_seconds"`
	NamePrefix         string  `json:"name_prefix"`
	Prepare            int     `json:"prepare"`
	Batch              int     `json:"batch"`
	Limit              int     `json:"limit"`
	Keep               bool    `json:"keep"`
	Microversion       string  `json:"compute_microversion"`
}

// Named is a flavor or image.
type Named struct {
	ID   string `json:"id"`
	Name string `json:"name"`
}

// Target is the cloud measured.
type Target struct {
	AuthURL      string `json:"auth_url"`
	ComputeURL   string `json:"compute_url"`
	ImageURL     string `json:"image_url,omitempty"`
	Region       string `json:"region,omitempty"`
	Interface    string `json:"interface"`
	Microversion string `json:"compute_microversion"`
}

// IterationCounts: iterations that ended, and those that failed.
type IterationCounts struct {
	Done   int `json:"done"`
	Failed int `json:"failed"`
}

// Phase is the prepare or cleanup phase: servers created or deleted.
type Phase struct {
	Servers int     `json:"servers"`
	Seconds float64 `json:"seconds"`
	Error   string  `json:"error,omitempty"`
}

// method is Report.Method.
const method = "Each HTTP call, each wait (from the call to the poll that saw the state) and each iteration is timed " +
	"with the monotonic clock. count = ended, errors = failed; latencies and ops/s are over successful operations; " +
	"ops/s = successes / wall time of the measured phase. Percentiles are nearest-rank over every sample " +
	"(sorted[ceil(p/100*n)-1], no interpolation). Histogram buckets are log-spaced, 10 per decade (edges 10^(k/10) us). " +
	"An iteration stops at its first error, counted once, under the operation that failed."

func paramsOf(c Config, mv string) Params {
	p := Params{
		Count: c.Count, DurationSeconds: c.Duration.Seconds(), Concurrency: c.Concurrency,
		Network: c.Network, NICNet: c.NICNet, TimeoutSeconds: c.Timeout.Seconds(), PollSeconds: c.Poll.Seconds(),
		HTTPTimeoutSeconds: c.HTTPTimeout.Seconds(), NamePrefix: c.NamePrefix, Prepare: c.Prepare, Batch: c.Batch,
		Limit: c.Limit, Keep: c.Keep, Microversion: mv,
	}
	if c.NICNet != "" {
		p.Network = ""
	}
	return p
}

// WriteJSON writes the report as indented JSON to path ("-": w).
func (rep *Report) WriteJSON(path string, w io.Writer) error {
	b, err := json.MarshalIndent(rep, "", "  ")
	if err != nil {
		return err
	}
	b = append(b, '\n')
	if path == "-" {
		_, err = w.Write(b)
		return err
	}
	if err := os.WriteFile(path, b, 0o644); err != nil {
		return fmt.Errorf("--json: %w", err)
	}
	return nil
}

// WriteTable writes the human summary: parameters, one row per
// operation, and the faults.
func (rep *Report) WriteTable(w io.Writer) error {
	var b strings.Builder
	p := rep.Params
	run := fmt.Sprintf("%d iterations", rep.Iterations.Done)
	if rep.Iterations.Failed > 0 {
		run += fmt.Sprintf(" (%d failed)", rep.Iterations.Failed)
	}
	fmt.Fprintf(&b, "scenario  %s: %s, concurrency %d, wall %.2f s, started %s\n",
		rep.Scenario, run, p.Concurrency, rep.WallSeconds, rep.Start.Format("2006-01-02 15:04:05 UTC"))
	fmt.Fprintf(&b, "target    %s (compute API %s)\n", rep.Target.ComputeURL, rep.Target.Microversion)
	if p.Flavor != nil {
		net := "networks " + p.Network
		if p.NICNet != "" {
			net = "network " + p.NICNet
		}
		fmt.Fprintf(&b, "servers   flavor %s, image %s, %s, names %s*\n", p.Flavor.Name, p.Image.Name, net, p.NamePrefix)
	}
	if rep.Prepare != nil {
		fmt.Fprintf(&b, "prepare   %d servers ACTIVE in %.1f s\n", rep.Prepare.Servers, rep.Prepare.Seconds)
	}
	if rep.Interrupted {
		b.WriteString("INTERRUPTED: iterations under way when the run was stopped are not counted\n")
	}
	b.WriteString("\n")
	width := len("operation")
	for _, o := range rep.Operations {
		width = max(width, len(o.Name))
	}
	fmt.Fprintf(&b, "%-*s %7s %7s %9s %9s %9s %9s %9s %9s\n", width, "operation", "count", "errors", "ops/s",
		"p50 ms", "p90 ms", "p99 ms", "max ms", "mean ms")
	for _, o := range rep.Operations {
		fmt.Fprintf(&b, "%-*s %7d %7d %9.2f %9s %9s %9s %9s %9s\n", width, o.Name, o.Count, o.Errors, o.OpsPerSec,
			msCell(o, o.P50Ms), msCell(o, o.P90Ms), msCell(o, o.P99Ms), msCell(o, o.MaxMs), msCell(o, o.MeanMs))
	}
	if len(rep.Faults) > 0 {
		b.WriteString("\nerrors by fault:\n")
		for _, f := range rep.Faults {
			fmt.Fprintf(&b, "%7d  %-*s  %s\n", f.Count, width, f.Operation, f.Fault)
		}
	}
	if rep.Cleanup != nil && rep.Cleanup.Error != "" {
		fmt.Fprintf(&b, "\ncleanup failed: %s\n", rep.Cleanup.Error)
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// msCell formats a latency: 3 significant digits at least, "-" without
// successful samples.
func msCell(o OpStats, v float64) string {
	if o.Count == o.Errors {
		return "-"
	}
	switch {
	case v < 10:
		return fmt.Sprintf("%.3f", v)
	case v < 1000:
		return fmt.Sprintf("%.1f", v)
	}
	return fmt.Sprintf("%.0f", v)
}
