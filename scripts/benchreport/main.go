// Command benchreport writes the generated part of BENCHMARKS.md from the
// results `make bench` (scripts/bench.sh) leaves in a directory: the
// targets of the benchmarks issue beside the measured figures, and one
// table per benchmark. Everything between the markers
//
//	<!-- BEGIN make bench -->
//	<!-- END make bench -->
//
// is replaced (the markers are added after the first paragraph if missing);
// the hand-written history below them is kept.
//
// Usage: go run ./scripts/benchreport RESULTS-DIR BENCHMARKS.md
package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
)

const (
	beginMark = "<!-- BEGIN make bench -->"
	endMark   = "<!-- END make bench -->"
	// benchstat is golang.org/x/perf's, at a version the module proxy
	// serves (see the env notes); it summarises repeated Go benchmarks.
	benchstat = "golang.org/x/perf/cmd/benchstat@v0.0.0-20260908200009-22c9c6c9d4da"
)

func main() {
	if len(os.Args) != 3 {
		fmt.Fprintln(os.Stderr, "usage: benchreport RESULTS-DIR BENCHMARKS.md")
		os.Exit(2)
	}
	if err := run(os.Args[1], os.Args[2]); err != nil {
		fmt.Fprintln(os.Stderr, "benchreport:", err)
		os.Exit(1)
	}
}

func run(dir, target string) error {
	r, err := load(dir)
	if err != nil {
		return err
	}
	gen := r.render()
	old, err := os.ReadFile(target)
	if err != nil {
		return err
	}
	doc := string(old)
	i, j := strings.Index(doc, beginMark), strings.Index(doc, endMark)
	switch {
	case i >= 0 && j > i:
		doc = doc[:i] + gen + doc[j+len(endMark):]
	default:
		// After the title and the first paragraph.
		k := strings.Index(doc, "\n\n##")
		if k < 0 {
			k = len(doc)
		}
		doc = doc[:k] + "\n\n" + gen + doc[k:]
	}
	return os.WriteFile(target, []byte(doc), 0o644)
}

// results is everything read from the results directory.
type results struct {
	dir       string
	machine   map[string]string
	gobench   map[string][]goResult // file stem → results
	scenarios []scenario
	compare   map[string]map[string]*scenario // cloud ("keel", "nova") → scenario name → result
	servers   []string                        // lines of bench-servers.sh
	wrk       []string                        // lines of bench-api.sh
	detection []float64
}

// goResult is one line of `go test -bench` output.
type goResult struct {
	name    string // without the -GOMAXPROCS suffix
	metrics map[string]float64
}

var benchLine = regexp.MustCompile(`^(Benchmark\S+?)(?:-\d+)?\s+\d+\s+(.*)$`)

func load(dir string) (*results, error) {
	r := &results{dir: dir, machine: map[string]string{}, gobench: map[string][]goResult{}}
	if b, err := os.ReadFile(filepath.Join(dir, "machine.env")); err == nil {
		for _, l := range strings.Split(string(b), "\n") {
			if k, v, ok := strings.Cut(l, "="); ok {
				r.machine[k] = v
			}
		}
	}
	files, _ := filepath.Glob(filepath.Join(dir, "go-*.txt"))
	for _, f := range files {
		stem := strings.TrimSuffix(strings.TrimPrefix(filepath.Base(f), "go-"), ".txt")
		lines, err := readLines(f)
		if err != nil {
			return nil, err
		}
		for _, l := range lines {
			m := benchLine.FindStringSubmatch(l)
			if m == nil {
				continue
			}
			f := strings.Fields(m[2])
			res := goResult{name: m[1], metrics: map[string]float64{}}
			for k := 0; k+1 < len(f); k += 2 {
				if v, err := strconv.ParseFloat(f[k], 64); err == nil {
					res.metrics[f[k+1]] = v
				}
			}
			r.gobench[stem] = append(r.gobench[stem], res)
		}
	}
	jsons, _ := filepath.Glob(filepath.Join(dir, "scenario-*.json"))
	sort.Strings(jsons)
	for _, f := range jsons {
		b, err := os.ReadFile(f)
		if err != nil {
			return nil, err
		}
		var s scenario
		if err := json.Unmarshal(b, &s); err != nil {
			return nil, fmt.Errorf("%s: %w", f, err)
		}
		s.file = strings.TrimSuffix(filepath.Base(f), ".json")
		if m := regexp.MustCompile(`-h(\d+)$`).FindStringSubmatch(s.file); m != nil {
			s.hosts, _ = strconv.Atoi(m[1])
		}
		r.scenarios = append(r.scenarios, s)
	}
	r.compare = map[string]map[string]*scenario{}
	cmp, _ := filepath.Glob(filepath.Join(dir, "compare-*-*.json"))
	for _, f := range cmp {
		m := regexp.MustCompile(`compare-(keel|nova)-(.+)-h\d+\.json$`).FindStringSubmatch(f)
		if m == nil {
			continue
		}
		b, err := os.ReadFile(f)
		if err != nil {
			return nil, err
		}
		var s scenario
		if err := json.Unmarshal(b, &s); err != nil {
			return nil, fmt.Errorf("%s: %w", f, err)
		}
		if r.compare[m[1]] == nil {
			r.compare[m[1]] = map[string]*scenario{}
		}
		r.compare[m[1]][m[2]] = &s
	}
	r.servers, _ = readLines(filepath.Join(dir, "servers.txt"))
	r.wrk, _ = readLines(filepath.Join(dir, "wrk.txt"))
	det, _ := readLines(filepath.Join(dir, "detection.txt"))
	re := regexp.MustCompile(`service down in ([0-9.]+)(ms|s)`)
	for _, l := range det {
		if m := re.FindStringSubmatch(l); m != nil {
			v, _ := strconv.ParseFloat(m[1], 64)
			if m[2] == "ms" {
				v /= 1000
			}
			r.detection = append(r.detection, v)
		}
	}
	return r, nil
}

func readLines(path string) ([]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var out []string
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		out = append(out, sc.Text())
	}
	return out, sc.Err()
}

// scenario is the part of keel-bench's JSON the report reads.
type scenario struct {
	file       string
	hosts      int
	Scenario   string `json:"scenario"`
	Parameters struct {
		Concurrency int `json:"concurrency"`
		Prepare     int `json:"prepare"`
	} `json:"parameters"`
	WallSeconds float64 `json:"wall_seconds"`
	Iterations  struct {
		Done   int `json:"done"`
		Failed int `json:"failed"`
	} `json:"iterations"`
	Operations []struct {
		Name      string  `json:"name"`
		Count     int     `json:"count"`
		Errors    int     `json:"errors"`
		OpsPerSec float64 `json:"ops_per_sec"`
		P50Ms     float64 `json:"p50_ms"`
		P90Ms     float64 `json:"p90_ms"`
		P99Ms     float64 `json:"p99_ms"`
		MaxMs     float64 `json:"max_ms"`
	} `json:"operations"`
}

// metric is the median of a Go benchmark's metric over its runs (and the
// range), or ok false when the benchmark did not run.
func (r *results) metric(stem, bench, unit string) (med, lo, hi float64, ok bool) {
	var vs []float64
	for _, g := range r.gobench[stem] {
		if g.name == bench {
			if v, has := g.metrics[unit]; has {
				vs = append(vs, v)
			}
		}
	}
	if len(vs) == 0 {
		return 0, 0, 0, false
	}
	slices.Sort(vs)
	return vs[len(vs)/2], vs[0], vs[len(vs)-1], true
}

func (r *results) render() string {
	var b strings.Builder
	w := func(format string, a ...any) { fmt.Fprintf(&b, format, a...) }
	m := r.machine
	w("%s\n\n", beginMark)
	w("## The latest `make bench`\n\n")
	w("Generated by `make bench` (scripts/bench.sh, then scripts/benchreport) on %s, commit `%s`: %s, %s cores, %s, Linux %s, %s.",
		m["date"], m["commit"], m["cpu"], m["cores"], m["memory"], m["kernel"], m["go"])
	if m["quick"] != "" {
		w(" **BENCH_QUICK run: small sizes, the figures only check the harness.**")
	}
	w(" Everything runs on this one machine: controllers, simulated hosts and load. Figures are medians over the runs where a benchmark ran several times (range in brackets).\n\n")

	w("### Targets\n\n| target | measured | met? |\n|---|---|---|\n")
	row := func(target, measured string, met, known bool) {
		verdict := "not measured"
		if known {
			verdict = map[bool]string{true: "**met**", false: "**not met**"}[met]
		}
		w("| %s | %s | %s |\n", target, measured, verdict)
	}
	if v, lo, hi, ok := r.metric("create", "BenchmarkServerCreate", "creates/s"); ok {
		row("2,000 server creates accepted/s", fmt.Sprintf("%.0f/s (%.0f–%.0f)", v, lo, hi), v >= 2000, true)
	} else {
		row("2,000 server creates accepted/s", "-", false, false)
	}
	if v, lo, hi, ok := r.metric("boot", "BenchmarkBootToActive/hosts=1000", "active/s"); ok {
		row("1,000 servers/s reaching ACTIVE with 1,000 fake hosts", fmt.Sprintf("%.0f/s (%.0f–%.0f)", v, lo, hi), v >= 1000, true)
	} else {
		row("1,000 servers/s reaching ACTIVE with 1,000 fake hosts", "-", false, false)
	}
	if v, lo, hi, ok := r.metric("scheduler", "BenchmarkPlace10kHosts/uniform/spread", "placements/s"); ok {
		measured := fmt.Sprintf("%.0f/s (%.0f–%.0f) for ordinary requests", v, lo, hi)
		if mixed, _, _, ok := r.metric("scheduler", "BenchmarkPlaceMixed", "placements/s"); ok {
			measured += fmt.Sprintf("; %.0f/s for a mix with groups and hints", mixed)
			v = min(v, mixed)
		}
		row("10,000 placements/s at 10,000 hosts", measured, v >= 10000, true)
	} else {
		row("10,000 placements/s at 10,000 hosts", "-", false, false)
	}
	if s := r.find("show"); s != nil && len(s.Operations) > 0 {
		op := s.op("show")
		row("`GET /servers/{id}` p99 under 5 ms at 50 concurrent clients", fmt.Sprintf("p99 %.1f ms (p50 %.1f ms, %d clients, %.0f/s)", op.P99Ms, op.P50Ms, s.Parameters.Concurrency, op.OpsPerSec), op.P99Ms < 5, true)
	} else {
		row("`GET /servers/{id}` p99 under 5 ms at 50 concurrent clients", "-", false, false)
	}
	if rss, ok := r.rssAt(100000); ok {
		row("controller RSS under 500 MiB at 100,000 servers", fmt.Sprintf("%d MiB", rss), rss < 500, true)
	} else {
		row("controller RSS under 500 MiB at 100,000 servers", "-", false, false)
	}
	if p50, _, _, ok := r.metric("failover", "BenchmarkLeaderFailover", "p50-ms"); ok {
		mx, _, _, _ := r.metric("failover", "BenchmarkLeaderFailover", "max-ms")
		row("failover (leader killed → first accepted write) under 3 s", fmt.Sprintf("p50 %.0f ms, max %.0f ms", p50, mx), mx < 3000, true)
	} else {
		row("failover (leader killed → first accepted write) under 3 s", "-", false, false)
	}
	if len(r.detection) > 0 {
		d := slices.Sorted(slices.Values(r.detection))
		p99 := d[min(len(d)-1, len(d)*99/100)]
		row("host-down detection under 5 s", fmt.Sprintf("p50 %.2f s, p99 %.2f s (%d trials)", d[len(d)/2], p99, len(d)), p99 < 5, true)
	} else {
		row("host-down detection under 5 s", "-", false, false)
	}
	w("\n")

	r.renderScenarios(w)
	r.renderCompare(w)
	r.renderGo(w)
	if len(r.servers) > 0 {
		w("### Controller memory and snapshots (scripts/bench-servers.sh)\n\nA single controller; servers created through the API in batches of 1,000; RSS from /proc; then `keelctl snapshot save` and `restore` of the whole state.\n\n```\n%s\n```\n\n", strings.Join(r.servers, "\n"))
	}
	if len(r.wrk) > 0 {
		w("### HTTP throughput of one controller (scripts/bench-api.sh)\n\n`GET /compute/v2.1/` with wrk over loopback, without a token and with one (validated on every request).\n\n```\n%s\n```\n\n", strings.Join(r.wrk, "\n"))
	}
	if len(r.detection) > 0 {
		w("### Host-down detection\n\n`TestHostDownDetectionAndNoFlap` with `KEEL_DETECTION_TRIALS`: 3 controllers and 2 agents (processes, gossip on loopback), SIGKILL of an agent to its service `down` in `keelctl hosts`, per trial (s): %s.\n\n",
			strings.Join(func() []string {
				var s []string
				for _, v := range r.detection {
					s = append(s, fmt.Sprintf("%.2f", v))
				}
				return s
			}(), ", "))
	}
	w("%s", endMark)
	return b.String()
}

func (r *results) find(name string) *scenario {
	for i := range r.scenarios {
		if r.scenarios[i].Scenario == name {
			return &r.scenarios[i]
		}
	}
	return nil
}

func (s *scenario) op(name string) (op struct {
	Name      string  `json:"name"`
	Count     int     `json:"count"`
	Errors    int     `json:"errors"`
	OpsPerSec float64 `json:"ops_per_sec"`
	P50Ms     float64 `json:"p50_ms"`
	P90Ms     float64 `json:"p90_ms"`
	P99Ms     float64 `json:"p99_ms"`
	MaxMs     float64 `json:"max_ms"`
}) {
	for _, o := range s.Operations {
		if o.Name == name {
			return o
		}
	}
	return s.Operations[0]
}

var rssLine = regexp.MustCompile(`^servers (\d+): controller RSS (\d+) MiB`)

func (r *results) rssAt(n int) (int, bool) {
	for _, l := range r.servers {
		if m := rssLine.FindStringSubmatch(l); m != nil && m[1] == strconv.Itoa(n) {
			v, _ := strconv.Atoi(m[2])
			return v, true
		}
	}
	return 0, false
}

func (r *results) renderScenarios(w func(string, ...any)) {
	if len(r.scenarios) == 0 {
		return
	}
	w("### Scenarios on real processes (keel-bench)\n\n")
	w("`scripts/bench-cluster.sh HOSTS`: three `keel-controller` processes and one `keel-agent --fake-hosts HOSTS` on loopback, driven by `keel-bench` through the public API with the admin's `OS_*` environment (the same command runs against any OpenStack cloud; see bench/README.md). Latencies are per HTTP call (or per iteration, waits included); nearest-rank percentiles over every sample. Histograms: [docs/bench](docs/bench).\n\n")
	w("| scenario | hosts | clients | operation | count | errors | ops/s | p50 ms | p90 ms | p99 ms | max ms |\n|---|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|\n")
	for _, s := range r.scenarios {
		for _, o := range s.Operations {
			w("| [%s](docs/bench/%s.svg) | %d | %d | %s | %d | %d | %.0f | %.1f | %.1f | %.1f | %.1f |\n",
				s.Scenario, s.file, s.hosts, s.Parameters.Concurrency, o.Name, o.Count, o.Errors, o.OpsPerSec, o.P50Ms, o.P90Ms, o.P99Ms, o.MaxMs)
		}
	}
	w("\n")
}

// renderCompare puts the same load on Keel and on the reference Nova side
// by side (scripts/bench-compare.sh), when both were run.
func (r *results) renderCompare(w func(string, ...any)) {
	keel, nova := r.compare["keel"], r.compare["nova"]
	if len(keel) == 0 || len(nova) == 0 {
		return
	}
	w("### Side by side with the real Nova (scripts/bench-compare.sh)\n\n")
	w("The same `keel-bench` commands against Keel (3 controller processes, 1 simulated host) and against ../shared/novaref (Debian's Nova Zed 26.2.2 with its fake driver, one compute host, Keystone, Placement, Glance, MariaDB and RabbitMQ on loopback), one after the other on this machine. Per-operation throughput and latency; `X->ACTIVE` is from the create call to the poll that saw ACTIVE.\n\n")
	w("| scenario | operation | Keel ops/s | Nova ops/s | Keel p50 ms | Nova p50 ms | Keel p99 ms | Nova p99 ms | errors Keel / Nova |\n|---|---|---:|---:|---:|---:|---:|---:|---|\n")
	names := slices.Sorted(func(yield func(string) bool) {
		for k := range keel {
			if !yield(k) {
				return
			}
		}
	})
	for _, name := range names {
		k, n := keel[name], nova[name]
		if n == nil {
			continue
		}
		for _, ko := range k.Operations {
			if ko.Name == "poll" || ko.Name == "iteration" {
				continue
			}
			for _, no := range n.Operations {
				if no.Name == ko.Name {
					w("| %s | %s | %.1f | %.1f | %.1f | %.1f | %.1f | %.1f | %d / %d |\n", name, ko.Name, ko.OpsPerSec, no.OpsPerSec, ko.P50Ms, no.P50Ms, ko.P99Ms, no.P99Ms, ko.Errors, no.Errors)
				}
			}
		}
	}
	w("\n")
}

// goSections lists the Go benchmark files in the order of the report, with
// what each measures.
var goSections = []struct{ stem, title, method string }{
	{"create", "Server creates", "3 controllers in one process, 64 clients, creates through all three (`BenchmarkServerCreate`)."},
	{"boot", "Boot to ACTIVE", "3 controllers and N simulated hosts (fake driver) in one process, 16 clients creating 50 servers per request; per-server latency is launched_at − created_at (`BenchmarkBootToActive`)."},
	{"detail", "A page of server details", "`GET /servers/detail?limit=1000` on a controller holding the given number of servers (`BenchmarkServerDetailPage`)."},
	{"evacuate", "Evacuating 100 servers", "100 servers on a forced-down host, 16 clients posting evacuate, until all ACTIVE on the other host (`BenchmarkEvacuate100`)."},
	{"propose", "Proposals through Raft", "a 3-node loopback cluster, fsynced log (`BenchmarkPropose`)."},
	{"failover", "Leader failover", "leader killed → first write accepted by a survivor (`BenchmarkLeaderFailover`)."},
	{"scheduler", "Scheduler", "`Place` over 10,000 hosts (`BenchmarkPlace10kHosts`, `BenchmarkPlaceMixed`)."},
	{"token", "Token validation", "HMAC tokens checked from local state (`BenchmarkValidateToken`, `BenchmarkValidatedRequest`)."},
	{"fsm", "FSM", "command encoding and applying a batch of 64 (`BenchmarkEncodeCommand`, `BenchmarkDecodeCommand`, `BenchmarkApplyBatch64`)."},
	{"raftstore", "Raft log store", "Pebble-backed log store (`BenchmarkStoreLogs`, `BenchmarkGetLog`)."},
}

func (r *results) renderGo(w func(string, ...any)) {
	for _, sec := range goSections {
		res := r.gobench[sec.stem]
		if len(res) == 0 {
			continue
		}
		w("### %s\n\n%s\n\n", sec.title, sec.method)
		if stat := r.benchstat(sec.stem); stat != "" {
			w("```\n%s\n```\n\n", strings.TrimRight(stat, "\n"))
			continue
		}
		w("```\n")
		for _, g := range res {
			keys := slices.Sorted(func(yield func(string) bool) {
				for k := range g.metrics {
					if !yield(k) {
						return
					}
				}
			})
			var parts []string
			for _, k := range keys {
				if k == "ns/op" && g.metrics[k] == 0 {
					continue
				}
				parts = append(parts, number(g.metrics[k])+" "+k)
			}
			w("%s  %s\n", g.name, strings.Join(parts, "  "))
		}
		w("```\n\n")
	}
}

// number writes a figure plainly: whole numbers from 100 up, three
// significant digits below.
func number(v float64) string {
	if v >= 100 || v <= -100 {
		return strconv.FormatFloat(v, 'f', 0, 64)
	}
	return strconv.FormatFloat(v, 'g', 3, 64)
}

// benchstat summarises a file of repeated Go benchmarks, or returns ""
// when benchstat cannot run (no module proxy) or there are too few runs.
func (r *results) benchstat(stem string) string {
	counts := map[string]int{}
	for _, g := range r.gobench[stem] {
		counts[g.name]++
	}
	// benchstat's confidence intervals need at least 6 runs of each
	// benchmark; fewer are shown as the raw lines.
	for _, n := range counts {
		if n < 6 {
			return ""
		}
	}
	cmd := exec.Command("go", "run", benchstat, "go-"+stem+".txt")
	cmd.Dir = r.dir
	out, err := cmd.Output()
	if err != nil {
		fmt.Fprintf(os.Stderr, "benchreport: benchstat on go-%s.txt: %v (showing the raw lines instead)\n", stem, err)
		return ""
	}
	return string(out)
}
