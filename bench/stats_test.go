package bench

import (
	"errors"
	"fmt"
	"math"
	"net/url"
	"testing"
	"time"
)

func msList(v ...int) []time.Duration {
	out := make([]time.Duration, len(v))
	for i, x := range v {
		out[i] = time.Duration(x) * time.Millisecond
	}
	return out
}

func seq(n int) []int {
	out := make([]int, n)
	for i := range out {
		out[i] = i + 1
	}
	return out
}

func TestPercentileNearestRank(t *testing.T) {
	for _, tc := range []struct {
		name   string
		sorted []time.Duration
		p      float64
		want   time.Duration
	}{
		{"empty", nil, 50, 0},
		{"one sample is every percentile", msList(7), 0, 7 * time.Millisecond},
		{"one sample p99", msList(7), 99, 7 * time.Millisecond},
		{"1..10 p50 is the 5th", msList(seq(10)...), 50, 5 * time.Millisecond},
		{"1..10 p90 is the 9th", msList(seq(10)...), 90, 9 * time.Millisecond},
		{"1..10 p99 rounds the rank up to the 10th", msList(seq(10)...), 99, 10 * time.Millisecond},
		{"1..10 p91 rank 9.1 -> 10th", msList(seq(10)...), 91, 10 * time.Millisecond},
		{"1..100 p99 is the 99th, no interpolation", msList(seq(100)...), 99, 99 * time.Millisecond},
		{"1..100 p50", msList(seq(100)...), 50, 50 * time.Millisecond},
		{"three samples p50 is the middle one", msList(1, 2, 30), 50, 2 * time.Millisecond},
		{"p0 is the minimum", msList(3, 4, 5), 0, 3 * time.Millisecond},
		{"p100 is the maximum", msList(3, 4, 5), 100, 5 * time.Millisecond},
		{"above 100 is clamped", msList(3, 4, 5), 150, 5 * time.Millisecond},
		{"1..1000 p99.9", msList(seq(1000)...), 99.9, 999 * time.Millisecond},
		{"outlier only shows at p99 of 100", append(msList(seq(99)...), 10*time.Second), 99, 99 * time.Millisecond},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := Percentile(tc.sorted, tc.p); got != tc.want {
				t.Errorf("Percentile(p%v) = %v, want %v", tc.p, got, tc.want)
			}
		})
	}
}

func TestNormalizeFault(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"Cannot 'stop' instance 0b9a39e4-6a0c-4a5c-8c7e-4f0d6f3e2a11 while it is in vm_state stopped",
			"Cannot 'stop' instance <uuid> while it is in vm_state stopped"},
		{"Instance 0B9A39E46A0C4A5C8C7E4F0D6F3E2A11 could not be found.", "Instance <uuid> could not be found."},
		{"Unexpected API Error. Request req-3f2a1b4c-1111-2222-3333-444455556666 failed",
			"Unexpected API Error. Request req-<uuid> failed"},
		{"Quota exceeded for instances: Requested 1, but already used 10 of 10 instances",
			"Quota exceeded for instances: Requested N, but already used N of N instances"},
		{"Flavor m1.tiny could not be found.", "Flavor m1.tiny could not be found."},
		{"dial tcp 127.0.0.1:40211: connect: connection refused", "dial tcp N.N.N.N:N: connect: connection refused"},
		{"checksum deadbeefdeadbeefdeadbeef mismatch", "checksum <id> mismatch"},
		{"  two\n lines\tand   spaces ", "two lines and spaces"},
		{"", ""},
	} {
		if got := NormalizeFault(tc.in); got != tc.want {
			t.Errorf("NormalizeFault(%q)\n got %q\nwant %q", tc.in, got, tc.want)
		}
	}
	if got := NormalizeFault(string(make([]byte, 500))); len(got) > 210 {
		t.Errorf("a long message is not cut: %d bytes", len(got))
	}
}

func TestFaultKeyGroupsEqualFaults(t *testing.T) {
	conflict := func(id string) error {
		return &HTTPError{Method: "POST", URL: "http://x/servers/" + id + "/action", Status: 409, Kind: "conflictingRequest",
			Message: "Cannot 'stop' instance " + id + " while it is in vm_state stopped"}
	}
	a := faultKey(conflict("0b9a39e4-6a0c-4a5c-8c7e-4f0d6f3e2a11"))
	b := faultKey(fmt.Errorf("wrapped: %w", conflict("11111111-2222-3333-4444-555555555555")))
	if a != b || a != "HTTP 409 conflictingRequest: Cannot 'stop' instance <uuid> while it is in vm_state stopped" {
		t.Errorf("equal faults give %q and %q", a, b)
	}
	for _, tc := range []struct {
		err  error
		want string
	}{
		{&HTTPError{Status: 500}, "HTTP 500"},
		{&WaitError{ServerID: "x", Want: "ACTIVE", Status: "BUILD", Timeout: true, After: "5m0s"}, "timeout: not ACTIVE within 5m0s (last status BUILD)"},
		{&WaitError{ServerID: "x", Want: "ACTIVE", Status: "ERROR", Fault: "No valid host was found. There are not enough hosts available."},
			"status ERROR: No valid host was found. There are not enough hosts available."},
		{&url.Error{Op: "Get", URL: "http://x/servers/abc", Err: errors.New("connection reset by peer")}, "network: connection reset by peer"},
	} {
		if got := faultKey(tc.err); got != tc.want {
			t.Errorf("faultKey(%v) = %q, want %q", tc.err, got, tc.want)
		}
	}
}

func TestParseFault(t *testing.T) {
	for _, tc := range []struct{ body, kind, msg string }{
		{`{"itemNotFound": {"code": 404, "message": "Instance x could not be found."}}`, "itemNotFound", "Instance x could not be found."},
		{`{"error": {"code": 401, "title": "Unauthorized", "message": "The request you have made requires authentication."}}`,
			"error", "The request you have made requires authentication."},
		{"404 Not Found\n\nNo image found", "", "404 Not Found\n\nNo image found"},
		{"<html><body><h1>502 Bad Gateway</h1></body></html>", "", "502 Bad Gateway"},
	} {
		kind, msg := parseFault([]byte(tc.body))
		if kind != tc.kind || msg != tc.msg {
			t.Errorf("parseFault(%q) = %q, %q; want %q, %q", tc.body, kind, msg, tc.kind, tc.msg)
		}
	}
}

func TestHistogramBuckets(t *testing.T) {
	// 1 ms is the edge of bucket 30 (10^(30/10) µs); 1.2 ms is in it too
	// (next edge 1.2589 ms); 10 ms starts bucket 40.
	h := Histogram(msList(1, 1, 10))
	if len(h) != 11 {
		t.Fatalf("buckets from 1 ms to 10 ms: got %d, want 11: %+v", len(h), h)
	}
	if h[0].LoMs != 1 || h[0].Count != 2 || h[10].LoMs != 10 || h[10].Count != 1 {
		t.Errorf("edges or counts wrong: first %+v, last %+v", h[0], h[10])
	}
	total := 0
	for i, b := range h {
		total += b.Count
		if i > 0 && math.Abs(b.LoMs-h[i-1].HiMs) > 1e-9 {
			t.Errorf("bucket %d does not start where %d ends: %+v %+v", i, i-1, h[i-1], b)
		}
		if r := b.HiMs / b.LoMs; r < 1.25 || r > 1.27 {
			t.Errorf("bucket %d is not log-spaced (ratio %.3f)", i, r)
		}
	}
	if total != 3 {
		t.Errorf("histogram holds %d samples, want 3", total)
	}
	for _, d := range []time.Duration{time.Microsecond, 999 * time.Microsecond, time.Millisecond, 1258 * time.Microsecond, 1259 * time.Microsecond, 3 * time.Second} {
		b := Histogram([]time.Duration{d})
		ms := float64(d) / 1e6
		if len(b) != 1 || ms < b[0].LoMs*0.9999 || ms >= b[0].HiMs*1.0001 {
			t.Errorf("%v falls in %+v", d, b)
		}
	}
	if Histogram(nil) != nil {
		t.Error("an empty sample has buckets")
	}
}

func TestRecorderStats(t *testing.T) {
	r := NewRecorder()
	for _, d := range msList(seq(100)...) {
		r.Add("show", d, nil)
	}
	for i := range 5 {
		r.Add("show", time.Hour, &HTTPError{Status: 500, Kind: "computeFault", Message: fmt.Sprintf("boom %d", i)})
	}
	r.Add("create", 5*time.Millisecond, nil)
	r.AddUngrouped(OpIteration, 0, true)
	st := r.Stats(10*time.Second, []string{"create", "show"})
	if st[0].Name != "create" || st[1].Name != "show" || st[2].Name != OpIteration {
		t.Fatalf("order: %v %v %v", st[0].Name, st[1].Name, st[2].Name)
	}
	s := st[1]
	if s.Count != 105 || s.Errors != 5 || s.OpsPerSec != 10 || s.P50Ms != 50 || s.P90Ms != 90 || s.P99Ms != 99 || s.MaxMs != 100 || s.MinMs != 1 || s.MeanMs != 50.5 {
		t.Errorf("show stats: %+v (failed calls must not count in latencies or ops/s)", s)
	}
	f := r.Faults()
	if len(f) != 1 || f[0].Count != 5 || f[0].Operation != "show" || f[0].Fault != "HTTP 500 computeFault: boom N" {
		t.Errorf("faults: %+v (the iteration's failure must not be a second fault)", f)
	}
	if st[2].Count != 1 || st[2].Errors != 1 {
		t.Errorf("iteration: %+v", st[2])
	}
}
