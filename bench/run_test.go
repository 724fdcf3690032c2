package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"encoding/xml"
	"errors"
	"io"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/keel-cloud/keel/bench/fakecloud"
)

func envOf(c *fakecloud.Cloud) Env {
	return Env{AuthURL: c.AuthURL(), Username: "admin", Password: c.Password, ProjectName: "admin", Interface: "public"}
}

// fastConfig is a run that polls often, so tests are quick.
func fastConfig(scenario string) Config {
	cfg := DefaultConfig()
	cfg.Scenario = scenario
	cfg.Poll = 5 * time.Millisecond
	cfg.Timeout = 10 * time.Second
	cfg.NamePrefix = "kbt-"
	return cfg
}

// syncBuffer is a bytes.Buffer safe for the progress goroutine.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func runOn(t *testing.T, c *fakecloud.Cloud, cfg Config) (*Report, string) {
	t.Helper()
	var progress syncBuffer
	rep, err := Run(context.Background(), cfg, envOf(c), Output{Progress: &progress, ProgressEvery: 50 * time.Millisecond})
	if err != nil {
		t.Fatalf("Run: %v\nprogress:\n%s", err, progress.String())
	}
	return rep, progress.String()
}

func opOf(t *testing.T, rep *Report, name string) OpStats {
	t.Helper()
	for _, o := range rep.Operations {
		if o.Name == name {
			return o
		}
	}
	t.Fatalf("no operation %q in the report (%d operations)", name, len(rep.Operations))
	return OpStats{}
}

// checkLatency: the known delay is a floor; the ceiling is generous (the
// machine is shared and -race slows everything), but catches a unit error.
func checkLatency(t *testing.T, o OpStats, delay time.Duration) {
	t.Helper()
	floor := float64(delay) / 1e6
	if o.MinMs < floor || o.P50Ms < floor {
		t.Errorf("%s: min %.3f ms, p50 %.3f ms, below the server's delay %v", o.Name, o.MinMs, o.P50Ms, delay)
	}
	if o.P50Ms > floor*4+200 {
		t.Errorf("%s: p50 %.3f ms is absurdly above the server's delay %v", o.Name, o.P50Ms, delay)
	}
	if !(o.MinMs <= o.P50Ms && o.P50Ms <= o.P90Ms && o.P90Ms <= o.P99Ms && o.P99Ms <= o.MaxMs) {
		t.Errorf("%s: percentiles out of order: %+v", o.Name, o)
	}
}

func checkOpsPerSec(t *testing.T, rep *Report, o OpStats) {
	t.Helper()
	want := float64(o.Count-o.Errors) / rep.WallSeconds
	if math.Abs(o.OpsPerSec-want) > 0.02*want+0.01 {
		t.Errorf("%s: ops/s %.2f, but %d successes in %.3f s is %.2f/s", o.Name, o.OpsPerSec, o.Count-o.Errors, rep.WallSeconds, want)
	}
}

// Every 4th create is refused with a 409: the run must count exactly those
// as errors, group them as one fault with the server id blanked, and time
// the rest no faster than the server's delays.
func TestBootAndDeleteCountsErrorsAndLatencies(t *testing.T) {
	c := fakecloud.New()
	defer c.Close()
	c.Delay = map[string]time.Duration{fakecloud.CallCreate: 50 * time.Millisecond, fakecloud.CallShow: 20 * time.Millisecond,
		fakecloud.CallDelete: 10 * time.Millisecond}
	c.Inject = func(call string, n int) *fakecloud.Fault {
		if call == fakecloud.CallCreate && n%4 == 0 {
			return &fakecloud.Fault{Status: 409, Kind: "conflictingRequest",
				Message: "Instance " + newUUIDish(n) + " is being built: build request conflict"}
		}
		return nil
	}
	cfg := fastConfig("boot-and-delete")
	cfg.Count, cfg.Concurrency = 20, 4
	rep, _ := runOn(t, c, cfg)

	create, active, del, gone, poll, iter := opOf(t, rep, OpCreate), opOf(t, rep, OpActive), opOf(t, rep, OpDelete),
		opOf(t, rep, OpGone), opOf(t, rep, OpPoll), opOf(t, rep, OpIteration)
	if create.Count != 20 || create.Errors != 5 {
		t.Errorf("create: count %d errors %d, want 20 and 5 (every 4th refused)", create.Count, create.Errors)
	}
	if iter.Count != 20 || iter.Errors != 5 || rep.Iterations != (IterationCounts{Done: 20, Failed: 5}) {
		t.Errorf("iterations: %+v / %+v, want 20 with 5 failed", iter, rep.Iterations)
	}
	for _, o := range []OpStats{active, del, gone} {
		if o.Count != 15 || o.Errors != 0 {
			t.Errorf("%s: count %d errors %d, want 15 and 0", o.Name, o.Count, o.Errors)
		}
	}
	// two reads to ACTIVE, one to gone, for each of the 15 servers
	if poll.Count != 45 || poll.Errors != 0 {
		t.Errorf("poll: count %d errors %d, want 45 and 0", poll.Count, poll.Errors)
	}
	if len(rep.Faults) != 1 || rep.Faults[0].Count != 5 || rep.Faults[0].Operation != OpCreate ||
		rep.Faults[0].Fault != "HTTP 409 conflictingRequest: Instance <uuid> is being built: build request conflict" {
		t.Errorf("faults: %+v", rep.Faults)
	}
	checkLatency(t, create, 50*time.Millisecond)
	checkLatency(t, poll, 20*time.Millisecond)
	checkLatency(t, del, 10*time.Millisecond)
	// create→ACTIVE: the create, two polls and their sleeps at least
	checkLatency(t, active, 50*time.Millisecond+2*(20+5)*time.Millisecond)
	if iter.P50Ms < active.P50Ms {
		t.Errorf("iteration p50 %.1f ms is below create->ACTIVE p50 %.1f ms", iter.P50Ms, active.P50Ms)
	}
	for _, o := range rep.Operations {
		checkOpsPerSec(t, rep, o)
	}
	if rep.Iterations.Done > 0 && rep.WallSeconds < 0.05*20/4 {
		t.Errorf("wall %.3f s is shorter than 5 rounds of 50 ms creates", rep.WallSeconds)
	}
	if names := c.ServerNames(); len(names) != 0 {
		t.Errorf("servers left: %v", names)
	}
	if mv := c.Microversions(); mv["compute 2.37"] == 0 || len(mv) != 1 {
		t.Errorf("microversions sent: %v, want only 2.37 (networks none)", mv)
	}
	for _, b := range c.Creates() {
		if b["networks"] != "none" || b["flavorRef"] != "1" || b["imageRef"] != c.ImageID || !strings.HasPrefix(b["name"].(string), "kbt-") {
			t.Errorf("create body: %v", b)
		}
	}
}

func newUUIDish(n int) string {
	return strings.Repeat(string(rune('a'+n%6)), 8) + "-1111-2222-3333-444455556666"
}

// show over prepared servers for a duration, with one 500: the error is
// counted once, the reads are no faster than the delay.
func TestShowDurationAndOneServerError(t *testing.T) {
	c := fakecloud.New()
	defer c.Close()
	c.Delay = map[string]time.Duration{fakecloud.CallShow: 20 * time.Millisecond}
	c.Inject = func(call string, n int) *fakecloud.Fault {
		if call == fakecloud.CallShow && n == 3 {
			return &fakecloud.Fault{Status: 500, Kind: "computeFault",
				Message: "Unexpected API Error. Please report this at http://bugs.launchpad.net/nova/ and attach the Nova API log if possible. req-0b9a39e4-6a0c-4a5c-8c7e-4f0d6f3e2a11"}
		}
		return nil
	}
	cfg := fastConfig("show")
	cfg.Duration, cfg.Concurrency, cfg.Count = 700*time.Millisecond, 3, 0
	rep, _ := runOn(t, c, cfg)
	if rep.Prepare == nil || rep.Prepare.Servers != 3 {
		t.Errorf("prepare: %+v, want 3 servers (one per client by default)", rep.Prepare)
	}
	show := opOf(t, rep, OpShow)
	if show.Errors != 1 || show.Count != c.Calls(fakecloud.CallShow) {
		t.Errorf("show: count %d errors %d; the cloud answered %d shows with one 500", show.Count, show.Errors, c.Calls(fakecloud.CallShow))
	}
	// at 20 ms a call, 3 clients over 0.7 s: not more than 3*0.7/0.02 = 105
	if show.Count < 6 || show.Count > 110 {
		t.Errorf("show count %d for 3 clients x 0.7 s at 20 ms a call", show.Count)
	}
	if rep.WallSeconds < 0.7 || rep.WallSeconds > 5 {
		t.Errorf("wall %.3f s for --duration 0.7s", rep.WallSeconds)
	}
	checkLatency(t, show, 20*time.Millisecond)
	checkOpsPerSec(t, rep, show)
	if len(rep.Faults) != 1 || !strings.HasPrefix(rep.Faults[0].Fault, "HTTP 500 computeFault: Unexpected API Error.") ||
		!strings.HasSuffix(rep.Faults[0].Fault, "req-<uuid>") || !strings.Contains(rep.Faults[0].Example, "req-0b9a39e4") {
		t.Errorf("faults: %+v", rep.Faults)
	}
	if rep.Iterations.Failed != 1 {
		t.Errorf("iterations: %+v", rep.Iterations)
	}
}

// list-detail prepares its population with min_count/max_count batches,
// lists with limit=N, and deletes the population at the end; --keep keeps
// it.
func TestListDetailPreparesInBatches(t *testing.T) {
	for _, keep := range []bool{false, true} {
		c := fakecloud.New()
		c.Delay = map[string]time.Duration{fakecloud.CallList: 5 * time.Millisecond}
		cfg := fastConfig("list-detail")
		cfg.Prepare, cfg.Batch, cfg.Count, cfg.Concurrency, cfg.Keep = 25, 10, 6, 2, keep
		rep, _ := runOn(t, c, cfg)
		var sizes []any
		for _, b := range c.Creates() {
			sizes = append(sizes, b["max_count"])
			if b["min_count"] != b["max_count"] || b["return_reservation_id"] != true {
				t.Errorf("batch create body: %v", b)
			}
		}
		slices.SortFunc(sizes, func(a, b any) int { return int(a.(float64) - b.(float64)) })
		if len(sizes) != 3 || sizes[0] != 5.0 || sizes[1] != 10.0 || sizes[2] != 10.0 {
			t.Errorf("batches: %v, want 10, 10, 5", sizes)
		}
		list := opOf(t, rep, OpList)
		if list.Count != 6 || list.Errors != 0 || rep.Params.Limit != 25 {
			t.Errorf("list: %+v, limit %d", list, rep.Params.Limit)
		}
		checkLatency(t, list, 5*time.Millisecond)
		left := len(c.ServerNames())
		if keep && left != 25 {
			t.Errorf("--keep: %d servers left, want 25", left)
		}
		if !keep && (left != 0 || rep.Cleanup == nil || rep.Cleanup.Servers != 25) {
			t.Errorf("without --keep: %d servers left, cleanup %+v", left, rep.Cleanup)
		}
		c.Close()
	}
}

func TestActions(t *testing.T) {
	c := fakecloud.New()
	defer c.Close()
	c.Delay = map[string]time.Duration{fakecloud.CallAction: 15 * time.Millisecond}
	cfg := fastConfig("actions")
	cfg.Count, cfg.Concurrency = 5, 2
	rep, _ := runOn(t, c, cfg)
	for _, op := range []string{OpStop, OpShutoff, OpStart, OpStarted, OpReboot, OpRebooted, OpIteration} {
		if o := opOf(t, rep, op); o.Count != 5 || o.Errors != 0 {
			t.Errorf("%s: count %d errors %d, want 5 and 0; faults %+v", op, o.Count, o.Errors, rep.Faults)
		}
	}
	checkLatency(t, opOf(t, rep, OpStop), 15*time.Millisecond)
	if c.Calls(fakecloud.CallAction) != 15 {
		t.Errorf("%d actions sent, want 15", c.Calls(fakecloud.CallAction))
	}
}

// create-and-show: the first GET follows the create at once; then every
// poll until ACTIVE; the servers are removed at the end.
func TestCreateAndShow(t *testing.T) {
	c := fakecloud.New()
	defer c.Close()
	c.PollsToActive = 3
	cfg := fastConfig("create-and-show")
	cfg.Count, cfg.Concurrency = 4, 2
	rep, _ := runOn(t, c, cfg)
	if o := opOf(t, rep, OpShow); o.Count != 12 || o.Errors != 0 {
		t.Errorf("show: %+v, want 12 (3 reads to ACTIVE x 4)", o)
	}
	if o := opOf(t, rep, OpActive); o.Count != 4 {
		t.Errorf("create->ACTIVE: %+v", o)
	}
	if rep.Cleanup == nil || rep.Cleanup.Servers != 4 || len(c.ServerNames()) != 0 {
		t.Errorf("cleanup %+v, left %v", rep.Cleanup, c.ServerNames())
	}
}

// A server that never becomes ACTIVE is the wait's error (timeout), not
// the create's.
func TestWaitTimeoutIsCounted(t *testing.T) {
	c := fakecloud.New()
	defer c.Close()
	c.PollsToActive = 1 << 30
	cfg := fastConfig("boot-and-delete")
	cfg.Count, cfg.Timeout = 2, 60*time.Millisecond
	rep, _ := runOn(t, c, cfg)
	if o := opOf(t, rep, OpActive); o.Count != 2 || o.Errors != 2 {
		t.Errorf("create->ACTIVE: %+v", o)
	}
	if o := opOf(t, rep, OpCreate); o.Errors != 0 {
		t.Errorf("create: %+v", o)
	}
	if len(rep.Faults) != 1 || rep.Faults[0].Fault != "timeout: not ACTIVE within 60ms (last status BUILD)" {
		t.Errorf("faults: %+v", rep.Faults)
	}
}

// The cleanup at the start removes leftovers with the prefix, and only
// those: a server whose name merely contains the prefix survives, as do
// everybody else's.
func TestCleanupDeletesOnlyPrefixedServers(t *testing.T) {
	c := fakecloud.New()
	defer c.Close()
	c.AddServer("web-1")
	c.AddServer("kbt-old-run-3") // a leftover
	c.AddServer("xkbt-not-ours")
	c.AddServer("KBT-other-case")
	c.AddServer("kbt") // shorter than the prefix "kbt-"
	cfg := fastConfig("boot-and-list")
	cfg.Count, cfg.Concurrency = 3, 3
	rep, _ := runOn(t, c, cfg)
	if rep.LeftoversDeleted != 1 {
		t.Errorf("leftovers deleted: %d, want 1", rep.LeftoversDeleted)
	}
	if rep.Cleanup == nil || rep.Cleanup.Servers != 3 {
		t.Errorf("end cleanup: %+v, want the 3 servers of the run", rep.Cleanup)
	}
	got := c.ServerNames()
	want := []string{"web-1", "xkbt-not-ours", "KBT-other-case", "kbt"}
	if !slices.Equal(got, want) {
		t.Errorf("servers after the run: %v, want %v", got, want)
	}
	if o := opOf(t, rep, OpList); o.Count != 3 || o.Errors != 0 {
		t.Errorf("list: %+v", o)
	}
}

// Tokens expire during the run: the session renews them before expiry (no
// call is refused), and after a revocation a 401 is retried with a new
// token.
func TestTokenRenewal(t *testing.T) {
	c := fakecloud.New()
	defer c.Close()
	c.TokenTTL = 400 * time.Millisecond
	c.Delay = map[string]time.Duration{fakecloud.CallShow: 5 * time.Millisecond}
	cfg := fastConfig("show")
	cfg.Duration, cfg.Count, cfg.Concurrency = 1200*time.Millisecond, 0, 2
	rep, _ := runOn(t, c, cfg)
	if c.TokensIssued() < 3 {
		t.Errorf("%d tokens issued over 1.2 s with 0.4 s tokens: not renewed", c.TokensIssued())
	}
	if c.Refused() != 0 || opOf(t, rep, OpShow).Errors != 0 {
		t.Errorf("%d calls refused (401), %d show errors: the token expired before renewal", c.Refused(), opOf(t, rep, OpShow).Errors)
	}
	if rep.TokensIssued != c.TokensIssued() {
		t.Errorf("report says %d tokens, the cloud issued %d", rep.TokensIssued, c.TokensIssued())
	}

	// revocation: the next call gets a 401, renews, and succeeds
	env := envOf(c)
	c.TokenTTL = time.Hour
	hc, _ := env.HTTPClient(1)
	sess, err := NewSession(context.Background(), env, hc)
	if err != nil {
		t.Fatal(err)
	}
	cl, err := NewClient(sess, hc, "2.1", time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	before := c.TokensIssued()
	c.RevokeAll()
	if _, err := cl.Flavors(context.Background()); err != nil {
		t.Fatalf("after revocation: %v", err)
	}
	if c.TokensIssued() != before+1 || c.Refused() != 1 {
		t.Errorf("after revocation: %d new tokens, %d refusals; want 1 and 1", c.TokensIssued()-before, c.Refused())
	}
}

// --json and --histogram: the JSON has the parameters, target, start,
// stats and faults; the SVG is well-formed XML with a chart per operation.
func TestJSONAndSVGOutput(t *testing.T) {
	c := fakecloud.New()
	defer c.Close()
	c.Delay = map[string]time.Duration{fakecloud.CallCreate: 5 * time.Millisecond}
	c.Inject = func(call string, n int) *fakecloud.Fault {
		if call == fakecloud.CallCreate && n == 2 {
			return &fakecloud.Fault{Status: 403, Kind: "forbidden", Message: "Quota exceeded for instances: Requested 1, but already used 10 of 10 instances"}
		}
		return nil
	}
	cfg := fastConfig("boot-and-delete")
	cfg.Count, cfg.Concurrency = 4, 2
	rep, _ := runOn(t, c, cfg)
	dir := t.TempDir()
	jp, sp := filepath.Join(dir, "run.json"), filepath.Join(dir, "run.svg")
	if err := rep.WriteJSON(jp, io.Discard); err != nil {
		t.Fatal(err)
	}
	if err := rep.WriteSVGFile(sp); err != nil {
		t.Fatal(err)
	}
	raw, err := os.ReadFile(jp)
	if err != nil {
		t.Fatal(err)
	}
	var j struct {
		Scenario   string         `json:"scenario"`
		Parameters map[string]any `json:"parameters"`
		Target     map[string]any `json:"target"`
		Start      time.Time      `json:"start"`
		Method     string         `json:"method"`
		Iterations map[string]int `json:"iterations"`
		Operations []struct {
			Name      string  `json:"name"`
			Count     int     `json:"count"`
			Errors    int     `json:"errors"`
			P99Ms     float64 `json:"p99_ms"`
			Histogram []struct {
				LoMs  float64 `json:"lo_ms"`
				HiMs  float64 `json:"hi_ms"`
				Count int     `json:"count"`
			} `json:"histogram"`
		} `json:"operations"`
		Faults []map[string]any `json:"faults"`
	}
	if err := json.Unmarshal(raw, &j); err != nil {
		t.Fatalf("JSON: %v\n%s", err, raw)
	}
	if j.Scenario != "boot-and-delete" || j.Parameters["concurrency"] != 2.0 || j.Parameters["count"] != 4.0 ||
		j.Parameters["compute_microversion"] != "2.37" || j.Parameters["flavor"].(map[string]any)["name"] != "m1.tiny" {
		t.Errorf("parameters: %v", j.Parameters)
	}
	if j.Target["compute_url"] != c.URL+"/compute/v2.1" || j.Target["auth_url"] != c.AuthURL() {
		t.Errorf("target: %v", j.Target)
	}
	if time.Since(j.Start) > time.Minute || !strings.Contains(j.Method, "nearest-rank") {
		t.Errorf("start %v, method %q", j.Start, j.Method)
	}
	if j.Iterations["done"] != 4 || j.Iterations["failed"] != 1 {
		t.Errorf("iterations: %v", j.Iterations)
	}
	if len(j.Faults) != 1 || j.Faults[0]["fault"] != "HTTP 403 forbidden: Quota exceeded for instances: Requested N, but already used N of N instances" || j.Faults[0]["count"] != 1.0 {
		t.Errorf("faults: %v", j.Faults)
	}
	for _, o := range j.Operations {
		n := 0
		for _, b := range o.Histogram {
			n += b.Count
		}
		if n != o.Count-o.Errors {
			t.Errorf("%s: histogram holds %d samples, want %d", o.Name, n, o.Count-o.Errors)
		}
	}

	f, err := os.Open(sp)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	dec := xml.NewDecoder(f)
	var texts []string
	rects, root := 0, ""
	for {
		tok, err := dec.Token()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("SVG is not well-formed XML: %v", err)
		}
		switch el := tok.(type) {
		case xml.StartElement:
			if root == "" {
				root = el.Name.Space + " " + el.Name.Local
			}
			if el.Name.Local == "rect" {
				rects++
			}
		case xml.CharData:
			if s := strings.TrimSpace(string(el)); s != "" {
				texts = append(texts, s)
			}
		}
	}
	all := strings.Join(texts, "\n")
	if root != "http://www.w3.org/2000/svg svg" {
		t.Errorf("root element %q", root)
	}
	for _, want := range []string{"keel-bench boot-and-delete · concurrency 2 · " + rep.Start.Format("2006-01-02"),
		"latency (ms, log scale)", "count", "create  —  n=3", "create->ACTIVE", "p99"} {
		if !strings.Contains(all, want) {
			t.Errorf("SVG text lacks %q:\n%s", want, all)
		}
	}
	if rects < 2 {
		t.Errorf("SVG has %d rects: no bars", rects)
	}

	var table bytes.Buffer
	if err := rep.WriteTable(&table); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"operation", "p50 ms", "p99 ms", "create", "errors by fault:", "HTTP 403 forbidden: Quota exceeded"} {
		if !strings.Contains(table.String(), want) {
			t.Errorf("table lacks %q:\n%s", want, table.String())
		}
	}
}

// Progress: lines on a pipe, one rewritten line on a terminal.
func TestProgressLine(t *testing.T) {
	c := fakecloud.New()
	defer c.Close()
	c.Delay = map[string]time.Duration{fakecloud.CallShow: 10 * time.Millisecond}
	for _, tty := range []bool{false, true} {
		cfg := fastConfig("show")
		cfg.Count, cfg.Concurrency = 20, 1
		var progress syncBuffer
		if _, err := Run(context.Background(), cfg, envOf(c), Output{Progress: &progress, Terminal: tty, ProgressEvery: 40 * time.Millisecond}); err != nil {
			t.Fatal(err)
		}
		out := progress.String()
		if !strings.Contains(out, "show: 20/20 iterations") || !strings.Contains(out, "0 failed") {
			t.Errorf("tty=%v: no final progress line:\n%q", tty, out)
		}
		if tty != strings.Contains(out, "\r") {
			t.Errorf("tty=%v: carriage returns wrong:\n%q", tty, out)
		}
	}
}

// Interrupting a run stops it; the calls under way are not counted as
// errors, and the cleanup still runs.
func TestInterruptStopsAndCleansUp(t *testing.T) {
	c := fakecloud.New()
	defer c.Close()
	c.Delay = map[string]time.Duration{fakecloud.CallShow: 30 * time.Millisecond}
	c.PollsToActive = 1 << 30 // never ACTIVE: the waits go on until interrupted
	cfg := fastConfig("boot-and-delete")
	cfg.Count, cfg.Concurrency = 100, 3
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	rep, err := Run(ctx, cfg, envOf(c), Output{})
	if err != nil {
		t.Fatal(err)
	}
	if !rep.Interrupted || rep.Iterations.Done != 0 || len(rep.Faults) != 0 {
		t.Errorf("interrupted %v, iterations %+v, faults %+v", rep.Interrupted, rep.Iterations, rep.Faults)
	}
	if n := len(c.ServerNames()); n != 0 || rep.Cleanup == nil || rep.Cleanup.Servers != 3 {
		t.Errorf("after the interruption: %d servers left, cleanup %+v", n, rep.Cleanup)
	}
}
