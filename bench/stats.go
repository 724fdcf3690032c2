package bench

import (
	"math"
	"slices"
	"sort"
	"sync"
	"time"
)

// Percentile is the nearest-rank percentile of an ascending sample: the
// smallest value such that at least p percent of the sample is less than or
// equal to it, i.e. sorted[ceil(p/100·n) - 1]. Every value it returns was
// measured; there is no interpolation. p <= 0 gives the minimum, p >= 100
// the maximum, an empty sample 0.
func Percentile(sorted []time.Duration, p float64) time.Duration {
	n := len(sorted)
	if n == 0 {
		return 0
	}
	rank := int(math.Ceil(p * float64(n) / 100))
	rank = min(max(rank, 1), n)
	return sorted[rank-1]
}

// Bucket is one bar of a latency histogram: samples in [LoMs, HiMs).
type Bucket struct {
	LoMs  float64 `json:"lo_ms"`
	HiMs  float64 `json:"hi_ms"`
	Count int     `json:"count"`
}

// bucketsPerDecade: log-spaced histogram buckets, ten per factor of ten
// (each bucket ~26% wider than the one before).
const bucketsPerDecade = 10

// bucketOf is the index of the bucket holding d: floor(10·log10(µs)).
// Anything under 1 µs goes to the bucket [1 µs, 1.26 µs).
func bucketOf(d time.Duration) int {
	us := float64(d) / float64(time.Microsecond)
	if us < 1 {
		us = 1
	}
	b := int(math.Floor(bucketsPerDecade * math.Log10(us)))
	// guard against log10 rounding at exact bucket edges
	if bucketLo(b+1) <= us {
		b++
	} else if bucketLo(b) > us {
		b--
	}
	return b
}

// bucketLo is the lower edge of bucket b, in µs.
func bucketLo(b int) float64 { return math.Pow(10, float64(b)/bucketsPerDecade) }

// Histogram puts the samples in log-spaced buckets (ten per decade, edges
// at 10^(k/10) µs), from the first non-empty bucket to the last one, empty
// ones between included.
func Histogram(samples []time.Duration) []Bucket {
	if len(samples) == 0 {
		return nil
	}
	counts := map[int]int{}
	lo, hi := math.MaxInt, math.MinInt
	for _, d := range samples {
		b := bucketOf(d)
		counts[b]++
		lo, hi = min(lo, b), max(hi, b)
	}
	out := make([]Bucket, 0, hi-lo+1)
	for b := lo; b <= hi; b++ {
		out = append(out, Bucket{LoMs: round3(bucketLo(b) / 1000), HiMs: round3(bucketLo(b+1) / 1000), Count: counts[b]})
	}
	return out
}

// round3 rounds a bucket edge to 4 significant digits (edges are
// irrational: 10^(k/10) µs).
func round3(ms float64) float64 {
	if ms <= 0 {
		return 0
	}
	scale := math.Pow(10, 3-math.Floor(math.Log10(ms)))
	return math.Round(ms*scale) / scale
}

// OpStats are the figures of one operation over a run.
type OpStats struct {
	Name string `json:"name"`
	// Count is every call or iteration that ended, Errors those that
	// failed. Latencies and ops/s are over the successful ones only.
	Count     int      `json:"count"`
	Errors    int      `json:"errors"`
	OpsPerSec float64  `json:"ops_per_sec"`
	MinMs     float64  `json:"min_ms"`
	MeanMs    float64  `json:"mean_ms"`
	P50Ms     float64  `json:"p50_ms"`
	P90Ms     float64  `json:"p90_ms"`
	P99Ms     float64  `json:"p99_ms"`
	MaxMs     float64  `json:"max_ms"`
	Histogram []Bucket `json:"histogram"`
}

// FaultCount is how often one fault (normalized, see NormalizeFault) ended
// an operation.
type FaultCount struct {
	Operation string `json:"operation"`
	Fault     string `json:"fault"`
	Count     int    `json:"count"`
	// Example is the first such error in full, ids included.
	Example string `json:"example"`
}

// Recorder collects the samples and errors of a run; safe for concurrent
// use. Every successful sample is kept (percentiles are exact).
type Recorder struct {
	mu     sync.Mutex
	ops    map[string]*opRecord
	order  []string
	faults map[[2]string]*FaultCount
}

type opRecord struct {
	samples []time.Duration
	errors  int
}

// NewRecorder returns an empty recorder.
func NewRecorder() *Recorder {
	return &Recorder{ops: map[string]*opRecord{}, faults: map[[2]string]*FaultCount{}}
}

// Add records one ended operation: its latency when err is nil, else one
// error grouped by fault.
func (r *Recorder) Add(op string, d time.Duration, err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	rec := r.op(op)
	if err == nil {
		rec.samples = append(rec.samples, d)
		return
	}
	rec.errors++
	k := [2]string{op, faultKey(err)}
	f := r.faults[k]
	if f == nil {
		f = &FaultCount{Operation: op, Fault: k[1], Example: truncate(err.Error(), 500)}
		r.faults[k] = f
	}
	f.Count++
}

// Counts returns how many operations op ended and how many failed.
func (r *Recorder) Counts(op string) (count, errors int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if rec := r.ops[op]; rec != nil {
		return len(rec.samples) + rec.errors, rec.errors
	}
	return 0, 0
}

// Stats computes every operation's figures; ops/s is successful operations
// over wall. Operations named in order come first, in that order, then the
// others in the order they were first seen.
func (r *Recorder) Stats(wall time.Duration, order []string) []OpStats {
	r.mu.Lock()
	defer r.mu.Unlock()
	names := make([]string, 0, len(r.order))
	for _, n := range order {
		if r.ops[n] != nil {
			names = append(names, n)
		}
	}
	for _, n := range r.order {
		if !slices.Contains(names, n) {
			names = append(names, n)
		}
	}
	out := make([]OpStats, 0, len(names))
	for _, n := range names {
		rec := r.ops[n]
		s := slices.Clone(rec.samples)
		slices.Sort(s)
		st := OpStats{Name: n, Count: len(s) + rec.errors, Errors: rec.errors}
		if len(s) > 0 {
			var sum time.Duration
			for _, d := range s {
				sum += d
			}
			st.MinMs = ms(s[0])
			st.MeanMs = ms(sum / time.Duration(len(s)))
			st.P50Ms = ms(Percentile(s, 50))
			st.P90Ms = ms(Percentile(s, 90))
			st.P99Ms = ms(Percentile(s, 99))
			st.MaxMs = ms(s[len(s)-1])
			st.Histogram = Histogram(s)
		}
		if wall > 0 {
			st.OpsPerSec = math.Round(float64(len(s))/wall.Seconds()*100) / 100
		}
		out = append(out, st)
	}
	return out
}

// Faults lists the faults, most frequent first.
func (r *Recorder) Faults() []FaultCount {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]FaultCount, 0, len(r.faults))
	for _, f := range r.faults {
		out = append(out, *f)
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Count != out[j].Count {
			return out[i].Count > out[j].Count
		}
		if out[i].Operation != out[j].Operation {
			return out[i].Operation < out[j].Operation
		}
		return out[i].Fault < out[j].Fault
	})
	return out
}

// ms is a duration in milliseconds, rounded to the microsecond.
func ms(d time.Duration) float64 {
	return math.Round(float64(d)/float64(time.Microsecond)) / 1000
}

// AddUngrouped records an ended operation whose failure is already grouped
// under another operation (an iteration failed by its create): counted as
// an error, without a fault of its own.
func (r *Recorder) AddUngrouped(op string, d time.Duration, failed bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	rec := r.op(op)
	if failed {
		rec.errors++
		return
	}
	rec.samples = append(rec.samples, d)
}

// op is op's record, created on first use; r.mu held.
func (r *Recorder) op(name string) *opRecord {
	rec := r.ops[name]
	if rec == nil {
		rec = &opRecord{}
		r.ops[name] = rec
		r.order = append(r.order, name)
	}
	return rec
}
