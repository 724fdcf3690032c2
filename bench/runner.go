package bench

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Config is a run's parameters (the command-line flags).
type Config struct {
	Scenario string
	// Count iterations, or as many as fit in Duration; with both, whichever
	// ends first.
	Count       int
	Duration    time.Duration
	Concurrency int
	// Flavor and Image: name or id; empty: m1.tiny (else the smallest
	// flavor) and the first active image.
	Flavor, Image string
	// Network: "none" or "auto" (microversion 2.37); NICNet, a network id,
	// takes precedence.
	Network, NICNet string
	// Timeout of each wait for a state; Poll the interval of its GETs.
	Timeout, Poll time.Duration
	// HTTPTimeout bounds each HTTP call.
	HTTPTimeout time.Duration
	// NamePrefix starts the name of every server the run creates; servers
	// with it are deleted at the start and the end.
	NamePrefix string
	// Prepare servers created before the measured phase (-1: the
	// scenario's default), Batch per create request (min_count/max_count).
	Prepare, Batch int
	// Limit of the list calls (0: none; -1: --prepare for list-detail).
	Limit int
	// Keep the servers at the end (no cleanup).
	Keep bool
}

// DefaultConfig has the flags' defaults.
func DefaultConfig() Config {
	return Config{
		Scenario: "boot-and-delete", Concurrency: 1, Network: "none",
		Timeout: 5 * time.Minute, Poll: 500 * time.Millisecond, HTTPTimeout: time.Minute,
		NamePrefix: "keel-bench-", Prepare: -1, Batch: 100, Limit: -1,
	}
}

// Output is where a run writes while it goes.
type Output struct {
	// Progress receives the live progress line and phase messages (stderr).
	Progress io.Writer
	// Terminal: Progress is a terminal (rewrite one line with \r).
	Terminal bool
	// ProgressEvery is the interval of the progress line (0: 250 ms on a
	// terminal, 5 s otherwise).
	ProgressEvery time.Duration
	// HTTP client to use (nil: one built from Env).
	HTTP *http.Client
}

var prefixRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{2,}$`)

// Check validates the configuration and fills in defaults that depend on
// the scenario; it returns the compute microversion to use given
// OS_COMPUTE_API_VERSION (empty if unset).
func (c *Config) Check(envVersion string) (string, error) {
	sc := findScenario(c.Scenario)
	if sc == nil {
		names := make([]string, len(scenarios))
		for i, s := range scenarios {
			names[i] = s.name
		}
		return "", fmt.Errorf("--scenario %q: want one of %s", c.Scenario, strings.Join(names, ", "))
	}
	switch {
	case c.Count < 0:
		return "", errors.New("--count must not be negative")
	case c.Duration < 0:
		return "", errors.New("--duration must not be negative")
	case c.Concurrency < 1:
		return "", errors.New("--concurrency must be at least 1")
	case c.Timeout <= 0 || c.Poll <= 0 || c.HTTPTimeout <= 0:
		return "", errors.New("--timeout, --poll and --http-timeout must be positive durations such as 5m, 500ms, 1m")
	case c.Batch < 1:
		return "", errors.New("--batch must be at least 1")
	case !prefixRE.MatchString(c.NamePrefix):
		return "", fmt.Errorf("--name-prefix %q: want at least 3 letters, digits, '.', '_' or '-', starting with a letter or digit: "+
			"every server whose name starts with it is deleted at the start and the end of the run", c.NamePrefix)
	}
	if c.Count == 0 && c.Duration == 0 {
		c.Count = 10
	}
	if !sc.pool && c.Prepare > 0 {
		return "", fmt.Errorf("--prepare: scenario %s creates its own servers; --prepare is for list-detail, show and actions", c.Scenario)
	}
	if sc.pool {
		if c.Prepare < 0 {
			c.Prepare = sc.minPool(c)
			if sc.name == "show" {
				c.Prepare = c.Concurrency
			}
		}
		if m := sc.minPool(c); c.Prepare < m {
			why := "at least one server to read"
			if sc.name == "actions" {
				why = "one server per client (--concurrency)"
			}
			return "", fmt.Errorf("--prepare %d: scenario %s needs %s: --prepare %d or more", c.Prepare, c.Scenario, why, m)
		}
	} else {
		c.Prepare = 0
	}
	if c.Limit < 0 {
		c.Limit = 0
		if sc.name == "list-detail" {
			c.Limit = c.Prepare
		}
	}
	need := "2.1"
	if c.NICNet == "" {
		switch c.Network {
		case "none", "auto":
			need = "2.37"
		default:
			return "", fmt.Errorf("--network %q: want none or auto (or give --nic-net with a network id)", c.Network)
		}
	}
	if envVersion == "" {
		return need, nil
	}
	have, err := parseMicroversion(envVersion)
	if err != nil {
		return "", fmt.Errorf("OS_COMPUTE_API_VERSION=%s: %v", envVersion, err)
	}
	if needV, _ := parseMicroversion(need); (sc.creates || c.Prepare > 0) && have.less(needV) {
		return "", fmt.Errorf("OS_COMPUTE_API_VERSION=%s is too old for --network %s (networks \"none\" and \"auto\" need 2.37): "+
			"set OS_COMPUTE_API_VERSION=2.37 or later, or unset it, or use --nic-net with a network id", envVersion, c.Network)
	}
	return envVersion, nil
}

// run is one run's state.
type run struct {
	cfg    Config
	sc     *scenario
	c      *Client
	rec    *Recorder
	out    Output
	runID  string
	flavor Flavor
	image  Image
	pool   []string
	limit  int
	// interrupted: the run's context ended before all iterations did.
	interrupted atomic.Bool
}

// Run carries out a run: authentication, flavor and image, removal of
// leftovers named with the prefix, --prepare servers, the measured
// iterations, and the final cleanup. The report is returned with the
// error when setup succeeded and something later failed. Cancelling ctx
// stops the iterations (those under way are not counted) and goes to the
// cleanup, which runs to its end unless the process exits.
func Run(ctx context.Context, cfg Config, env Env, out Output) (*Report, error) {
	mv, err := cfg.Check(env.ComputeAPIVersion)
	if err != nil {
		return nil, err
	}
	if out.Progress == nil {
		out.Progress = io.Discard
	}
	if out.ProgressEvery <= 0 {
		out.ProgressEvery = 5 * time.Second
		if out.Terminal {
			out.ProgressEvery = 250 * time.Millisecond
		}
	}
	hc := out.HTTP
	if hc == nil {
		if hc, err = env.HTTPClient(cfg.Concurrency); err != nil {
			return nil, err
		}
	}
	sess, err := NewSession(ctx, env, hc)
	if err != nil {
		return nil, err
	}
	c, err := NewClient(sess, hc, mv, cfg.HTTPTimeout)
	if err != nil {
		return nil, err
	}
	r := &run{cfg: cfg, sc: findScenario(cfg.Scenario), c: c, rec: NewRecorder(), out: out, runID: newRunID(), limit: cfg.Limit}
	rep := &Report{
		Tool: "keel-bench", Method: method, Version: strings.TrimPrefix(userAgent, "keel-bench/"), Scenario: cfg.Scenario,
		Params: paramsOf(cfg, mv),
		Target: Target{AuthURL: sess.AuthURL(), ComputeURL: c.ComputeURL, ImageURL: c.ImageURL,
			Region: env.RegionName, Interface: env.Interface, Microversion: mv},
	}
	if r.sc.creates || cfg.Prepare > 0 {
		if err := r.resolveFlavor(ctx); err != nil {
			return nil, err
		}
		if err := r.resolveImage(ctx); err != nil {
			return nil, err
		}
		rep.Params.Flavor = &Named{ID: r.flavor.ID, Name: r.flavor.Name}
		rep.Params.Image = &Named{ID: r.image.ID, Name: r.image.Name}
		r.logf("flavor %s (%s), image %s (%s), compute API %s at %s", r.flavor.Name, r.flavor.ID, r.image.Name, r.image.ID, mv, c.ComputeURL)
	}

	// Servers left by an earlier run with this prefix go first: they
	// would skew lists and use quota.
	if n, err := r.cleanup(ctx, "leftovers"); err != nil {
		return nil, fmt.Errorf("removing leftover servers named %s*: %w", cfg.NamePrefix, err)
	} else if n > 0 {
		rep.LeftoversDeleted = n
	}

	runErr := r.measure(ctx, rep)
	if !cfg.Keep {
		start := time.Now()
		n, err := r.cleanup(context.WithoutCancel(ctx), "end")
		rep.Cleanup = &Phase{Servers: n, Seconds: round2(time.Since(start).Seconds())}
		if err != nil {
			rep.Cleanup.Error = err.Error()
			if runErr == nil {
				runErr = fmt.Errorf("cleanup: %w; delete the servers named %s* by hand", err, cfg.NamePrefix)
			}
		}
	}
	rep.TokensIssued = sess.Issued()
	return rep, runErr
}

// measure prepares the pool and runs the iterations.
func (r *run) measure(ctx context.Context, rep *Report) error {
	if r.cfg.Prepare > 0 {
		start := time.Now()
		pool, err := r.prepare(ctx, r.cfg.Prepare)
		rep.Prepare = &Phase{Servers: len(pool), Seconds: round2(time.Since(start).Seconds())}
		if err != nil {
			rep.Prepare.Error = err.Error()
			return fmt.Errorf("preparing %d servers: %w", r.cfg.Prepare, err)
		}
		r.pool = pool
	}
	rep.Start = time.Now().UTC()
	wall := r.iterate(ctx)
	rep.WallSeconds = round3s(wall.Seconds())
	rep.Operations = r.rec.Stats(wall, r.sc.ops)
	rep.Faults = r.rec.Faults()
	n, failed := r.rec.Counts(OpIteration)
	rep.Iterations = IterationCounts{Done: n, Failed: failed}
	rep.Interrupted = r.interrupted.Load()
	return nil
}

// iterate runs the workers until --count iterations began or --duration
// passed, and returns the wall time.
func (r *run) iterate(ctx context.Context) time.Duration {
	var next, done, failed atomic.Int64
	start := time.Now()
	var deadline time.Time
	if r.cfg.Duration > 0 {
		deadline = start.Add(r.cfg.Duration)
	}
	stop := r.progress(func(elapsed time.Duration) string {
		d, f := done.Load(), failed.Load()
		total := ""
		if r.cfg.Count > 0 {
			total = fmt.Sprintf("/%d", r.cfg.Count)
		}
		rate := 0.0
		if s := elapsed.Seconds(); s > 0 {
			rate = float64(d) / s
		}
		of := ""
		if r.cfg.Duration > 0 {
			of = " of " + r.cfg.Duration.String()
		}
		return fmt.Sprintf("%s: %d%s iterations, %.1f it/s, %d failed, %s%s", r.cfg.Scenario, d, total, rate, f, elapsed.Round(100*time.Millisecond), of)
	})
	var wg sync.WaitGroup
	for w := range r.cfg.Concurrency {
		wg.Go(func() {
			for {
				i := int(next.Add(1) - 1)
				if (r.cfg.Count > 0 && i >= r.cfg.Count) || (!deadline.IsZero() && !time.Now().Before(deadline)) || ctx.Err() != nil {
					return
				}
				t0 := time.Now()
				err := r.sc.iterate(ctx, r, w, i)
				if ctx.Err() != nil && err != nil {
					r.interrupted.Store(true)
					return
				}
				r.rec.AddUngrouped(OpIteration, time.Since(t0), err != nil)
				done.Add(1)
				if err != nil {
					failed.Add(1)
				}
			}
		})
	}
	wg.Wait()
	wall := time.Since(start)
	if ctx.Err() != nil {
		r.interrupted.Store(true)
	}
	stop()
	return wall
}

// timed runs one operation and records it.
func (r *run) timed(ctx context.Context, op string, f func() error) error {
	t0 := time.Now()
	err := f()
	r.record(ctx, op, time.Since(t0), err)
	return err
}

// record adds a sample, unless the run was interrupted under it.
func (r *run) record(ctx context.Context, op string, d time.Duration, err error) {
	if err != nil && ctx.Err() != nil {
		return
	}
	r.rec.Add(op, d, err)
}

// progress prints line(elapsed) every ProgressEvery until the returned
// stop is called, which prints it a last time.
func (r *run) progress(line func(elapsed time.Duration) string) (stop func()) {
	start := time.Now()
	quit := make(chan struct{})
	var wg sync.WaitGroup
	print := func(final bool) {
		s := line(time.Since(start))
		switch {
		case r.out.Terminal && final:
			fmt.Fprintf(r.out.Progress, "\r%s\033[K\n", s)
		case r.out.Terminal:
			fmt.Fprintf(r.out.Progress, "\r%s\033[K", s)
		default:
			fmt.Fprintln(r.out.Progress, s)
		}
	}
	wg.Go(func() {
		t := time.NewTicker(r.out.ProgressEvery)
		defer t.Stop()
		for {
			select {
			case <-quit:
				return
			case <-t.C:
				print(false)
			}
		}
	})
	return func() {
		close(quit)
		wg.Wait()
		print(true)
	}
}

func (r *run) logf(format string, args ...any) {
	fmt.Fprintf(r.out.Progress, format+"\n", args...)
}

// resolveFlavor finds --flavor by id, then by name; by default m1.tiny,
// else the smallest flavor (RAM, then vCPUs, then disk).
func (r *run) resolveFlavor(ctx context.Context) error {
	fl, err := r.c.Flavors(ctx)
	if err != nil {
		return fmt.Errorf("listing flavors: %w", err)
	}
	if len(fl) == 0 {
		return errors.New("the cloud lists no flavors: create one (openstack flavor create) or check the project's access")
	}
	want := r.cfg.Flavor
	if want == "" {
		for _, f := range fl {
			if f.Name == "m1.tiny" {
				r.flavor = f
				return nil
			}
		}
		sort.SliceStable(fl, func(i, j int) bool {
			a, b := fl[i], fl[j]
			if a.RAM != b.RAM {
				return a.RAM < b.RAM
			}
			if a.VCPUs != b.VCPUs {
				return a.VCPUs < b.VCPUs
			}
			return a.Disk < b.Disk
		})
		r.flavor = fl[0]
		return nil
	}
	var byName []Flavor
	for _, f := range fl {
		if f.ID == want {
			r.flavor = f
			return nil
		}
		if f.Name == want {
			byName = append(byName, f)
		}
	}
	switch len(byName) {
	case 1:
		r.flavor = byName[0]
		return nil
	case 0:
		names := make([]string, len(fl))
		for i, f := range fl {
			names[i] = f.Name
		}
		return fmt.Errorf("--flavor %q: no flavor has that id or name (the cloud has: %s)", want, strings.Join(names, ", "))
	}
	return fmt.Errorf("--flavor %q: %d flavors have that name: give the id", want, len(byName))
}

// resolveImage finds --image by id, then by name (active images); by
// default the first active image Glance lists.
func (r *run) resolveImage(ctx context.Context) error {
	want := r.cfg.Image
	if want != "" && r.c.ImageURL == "" {
		// no image service in the catalog: trust an id, as Nova will check it
		r.image = Image{ID: want, Name: want}
		return nil
	}
	if want != "" {
		if im, err := r.c.GetImage(ctx, want); err == nil {
			if im.Status != "active" {
				return fmt.Errorf("--image %s (%s) is %s, not active: pick an active image", want, im.Name, im.Status)
			}
			r.image = *im
			return nil
		} else if !isStatus(err, http.StatusNotFound) && !isStatus(err, http.StatusBadRequest) {
			return fmt.Errorf("looking up image %q: %w", want, err)
		}
		ims, err := r.c.Images(ctx, url.Values{"name": {want}, "status": {"active"}})
		if err != nil {
			return fmt.Errorf("looking up image %q by name: %w", want, err)
		}
		switch len(ims) {
		case 0:
			return fmt.Errorf("--image %q: no active image has that id or name (openstack image list shows them)", want)
		case 1:
			r.image = ims[0]
			return nil
		}
		return fmt.Errorf("--image %q: %d active images have that name: give the id", want, len(ims))
	}
	ims, err := r.c.Images(ctx, url.Values{"status": {"active"}, "limit": {"1"}})
	if err != nil {
		return fmt.Errorf("looking for an active image: %w", err)
	}
	if len(ims) == 0 {
		return errors.New("the cloud has no active image: upload one (openstack image create; for Keel, keelctl test-image writes a tiny bootable disk) or pass --image")
	}
	r.image = ims[0]
	return nil
}

// prepare creates n servers in batches of --batch (min_count = max_count),
// --concurrency requests at a time, and waits until all are ACTIVE. It
// returns their ids, ordered by name.
func (r *run) prepare(ctx context.Context, n int) ([]string, error) {
	base := r.cfg.NamePrefix + r.runID + "-p"
	var sizes []int
	for left := n; left > 0; left -= r.cfg.Batch {
		sizes = append(sizes, min(left, r.cfg.Batch))
	}
	r.logf("preparing %d servers named %s* (%d create requests of at most %d)", n, base, len(sizes), r.cfg.Batch)
	var (
		wg    sync.WaitGroup
		sem   = make(chan struct{}, r.cfg.Concurrency)
		mu    sync.Mutex
		first error
	)
	for k, size := range sizes {
		wg.Go(func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			body := r.serverBody(fmt.Sprintf("%s%d", base, k), size)
			body["return_reservation_id"] = true
			if _, _, err := r.c.CreateServer(ctx, body); err != nil {
				mu.Lock()
				if first == nil {
					first = err
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if first != nil {
		return nil, fmt.Errorf("creating servers: %w (check the project's quota: openstack quota show)", first)
	}
	name := "^" + regexp.QuoteMeta(base)
	var active []Server
	last := 0
	deadline := time.Now().Add(r.cfg.Timeout)
	stop := r.progress(func(e time.Duration) string {
		return fmt.Sprintf("prepare: %d/%d servers ACTIVE, %s", last, n, e.Round(100*time.Millisecond))
	})
	defer stop()
	for {
		if err := sleepCtx(ctx, r.cfg.Poll); err != nil {
			return nil, err
		}
		failed, err := r.c.ListServers(ctx, true, url.Values{"name": {name}, "status": {"ERROR"}, "limit": {"1"}})
		if err != nil {
			return nil, fmt.Errorf("listing the servers being prepared: %w", err)
		}
		if len(failed) > 0 && strings.HasPrefix(failed[0].Name, base) {
			s := failed[0]
			return nil, fmt.Errorf("server %s (%s) went to ERROR: %s", s.Name, s.ID, s.faultMessage())
		}
		all, err := r.c.AllServers(ctx, false, url.Values{"name": {name}, "status": {"ACTIVE"}})
		if err != nil {
			return nil, fmt.Errorf("listing the servers being prepared: %w", err)
		}
		active = slices.DeleteFunc(all, func(s Server) bool { return !strings.HasPrefix(s.Name, base) })
		if len(active) > last { // progress: the timeout counts from here
			last = len(active)
			deadline = time.Now().Add(r.cfg.Timeout)
		}
		if len(active) >= n {
			break
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("only %d of %d servers became ACTIVE, none more within --timeout %s", len(active), n, r.cfg.Timeout)
		}
	}
	sort.Slice(active, func(i, j int) bool { return active[i].Name < active[j].Name })
	ids := make([]string, len(active))
	for i, s := range active {
		ids[i] = s.ID
	}
	return ids, nil
}

// cleanup deletes every server whose name starts with --name-prefix (the
// list is filtered by the cloud with a name regex, then here by prefix,
// so nothing else is ever deleted), --concurrency at a time, and waits
// until they are gone. It returns how many it deleted.
func (r *run) cleanup(ctx context.Context, phase string) (int, error) {
	prefix := r.cfg.NamePrefix
	q := url.Values{"name": {"^" + regexp.QuoteMeta(prefix)}}
	mine := func() ([]Server, error) {
		all, err := r.c.AllServers(ctx, true, q)
		if err != nil {
			return nil, fmt.Errorf("listing servers named %s*: %w", prefix, err)
		}
		return slices.DeleteFunc(all, func(s Server) bool { return !strings.HasPrefix(s.Name, prefix) }), nil
	}
	victims, err := mine()
	if err != nil || len(victims) == 0 {
		return 0, err
	}
	what := "servers of this run"
	if phase == "leftovers" {
		what = "leftover servers of an earlier run"
	}
	r.logf("cleanup: deleting %d %s named %s*", len(victims), what, prefix)
	var (
		wg   sync.WaitGroup
		sem  = make(chan struct{}, r.cfg.Concurrency)
		mu   sync.Mutex
		errs []string
	)
	for _, s := range victims {
		wg.Go(func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			if err := r.c.DeleteServer(ctx, s.ID); err != nil && !isStatus(err, http.StatusNotFound) {
				mu.Lock()
				errs = append(errs, fmt.Sprintf("%s (%s): %v", s.Name, s.ID, err))
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if len(errs) > 0 {
		sort.Strings(errs)
		return len(victims) - len(errs), fmt.Errorf("%d servers could not be deleted, first: %s", len(errs), errs[0])
	}
	left := len(victims)
	deadline := time.Now().Add(r.cfg.Timeout)
	for left > 0 {
		if err := sleepCtx(ctx, r.cfg.Poll); err != nil {
			return len(victims) - left, err
		}
		rest, err := mine()
		if err != nil {
			return len(victims) - left, err
		}
		if len(rest) < left {
			deadline = time.Now().Add(r.cfg.Timeout)
		}
		left = len(rest)
		if left > 0 && time.Now().After(deadline) {
			return len(victims) - left, fmt.Errorf("%d servers named %s* are still there after --timeout %s (e.g. %s, status %s)",
				left, prefix, r.cfg.Timeout, rest[0].ID, rest[0].Status)
		}
	}
	return len(victims), nil
}

func newRunID() string {
	b := make([]byte, 3)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

func round2(f float64) float64 { return float64(int64(f*100+0.5)) / 100 }

func round3s(f float64) float64 { return float64(int64(f*1000+0.5)) / 1000 }
