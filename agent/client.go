package agent

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/keel-cloud/keel/internal/clusterauth"
	"github.com/keel-cloud/keel/internal/hostapi"
)

// client calls the controllers' internal API. Any controller answers any
// call (they forward writes to the leader), so the client sticks to the one
// that last answered and moves on to the next when one fails.
type client struct {
	urls    []string
	key     []byte
	http    *http.Client
	log     *slog.Logger
	timeout time.Duration // per attempt, for calls that are not streams
	minWait time.Duration // backoff between rounds over all controllers
	maxWait time.Duration

	mu        sync.Mutex
	cur       int       // index in urls of the controller that last answered
	down      bool      // a whole round failed and no call succeeded since
	downSince time.Time // when that round began
}

func newClient(cfg Config, log *slog.Logger) *client {
	rt := cfg.Transport
	if rt == nil {
		t := http.DefaultTransport.(*http.Transport).Clone()
		t.MaxIdleConnsPerHost = cfg.Parallel + 2 // the blocking query, reports, an image
		rt = t
	}
	return &client{
		urls: cfg.Controllers, key: cfg.ClusterKey, http: &http.Client{Transport: rt}, log: log,
		timeout: cfg.RequestTimeout, minWait: cfg.MinBackoff, maxWait: cfg.MaxBackoff,
	}
}

// apiError is an answer the controllers gave that another controller would
// give too (a 4xx other than 401/421/429): retrying elsewhere is pointless.
type apiError struct {
	URL     string
	Status  int
	Code    string
	Message string
}

func (e *apiError) Error() string {
	return fmt.Sprintf("controller %s answered HTTP %d (%s): %s", e.URL, e.Status, e.Code, e.Message)
}

// statusOf returns the HTTP status of an apiError, 0 for other errors.
func statusOf(err error) int {
	var ae *apiError
	if errors.As(err, &ae) {
		return ae.Status
	}
	return 0
}

// call is one internal request.
type call struct {
	method, path string
	body         []byte
	// timeout bounds each attempt, body included; 0 means c.timeout, <0
	// means a stream: no deadline, but c.timeout without progress.
	timeout time.Duration
}

// retryable reports whether another controller, or the same one later, may
// answer differently: it is down, not ready, has no leader or has a
// different key (a misconfigured controller must not stop the host).
func retryable(status int) bool {
	switch status {
	case http.StatusUnauthorized, http.StatusRequestTimeout, http.StatusMisdirectedRequest, http.StatusTooManyRequests:
		return true
	}
	return status >= 500
}

// do sends the call to the controllers in turn until one answers with
// something other than a retryable failure, backing off with jitter between
// rounds. It returns the response of a 2xx answer (the caller closes its
// body), an *apiError for any other final answer, or ctx's error.
func (c *client) do(ctx context.Context, cl call) (*http.Response, error) {
	wait := c.minWait
	for round := 0; ; round++ {
		c.mu.Lock()
		start := c.cur
		c.mu.Unlock()
		roundStart := time.Now()
		failures := make([]string, 0, len(c.urls))
		authFailed := false
		for i := range c.urls {
			idx := (start + i) % len(c.urls)
			resp, err := c.attempt(ctx, cl, idx)
			if err == nil || statusOf(err) != 0 {
				c.answered(idx, start)
				return resp, err
			}
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			var re *retryError
			if errors.As(err, &re) && re.status == http.StatusUnauthorized {
				authFailed = true
			}
			c.log.Debug("controller call failed; trying the next controller", "url", c.urls[idx], "path", cl.path, "error", err)
			failures = append(failures, err.Error())
		}
		c.roundFailed(roundStart, failures, authFailed)
		t := time.NewTimer(jitter(wait))
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, ctx.Err()
		case <-t.C:
		}
		wait = min(2*wait, c.maxWait)
	}
}

// retryError is a failed attempt worth retrying elsewhere.
type retryError struct {
	url    string
	status int // 0: no HTTP answer
	err    error
}

func (e *retryError) Error() string {
	if e.status == 0 {
		return fmt.Sprintf("%s: %v", e.url, e.err)
	}
	return fmt.Sprintf("%s: HTTP %d: %v", e.url, e.status, e.err)
}

func (e *retryError) Unwrap() error { return e.err }

// attempt sends the call to controller idx once.
func (c *client) attempt(ctx context.Context, cl call, idx int) (*http.Response, error) {
	base := c.urls[idx]
	timeout := cl.timeout
	if timeout == 0 {
		timeout = c.timeout
	}
	var actx context.Context
	var cancel context.CancelFunc
	var idle *time.Timer
	if timeout > 0 {
		actx, cancel = context.WithTimeout(ctx, timeout)
	} else {
		// A stream of unknown length has no deadline, but one that stops
		// moving for c.timeout is cut: the controller is stuck.
		actx, cancel = context.WithCancel(ctx)
		idle = time.AfterFunc(c.timeout, cancel)
	}
	var body io.Reader
	if cl.body != nil {
		body = bytes.NewReader(cl.body)
	}
	req, err := http.NewRequestWithContext(actx, cl.method, base+cl.path, body)
	if err != nil {
		cancel()
		return nil, &apiError{URL: base, Code: "invalid", Message: err.Error(), Status: 400}
	}
	if cl.body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	clusterauth.Sign(req, c.key)
	resp, err := c.http.Do(req)
	if err != nil {
		cancel()
		return nil, &retryError{url: base, err: err}
	}
	if resp.StatusCode >= 200 && resp.StatusCode < 300 {
		resp.Body = &cancelBody{ReadCloser: resp.Body, cancel: cancel, idle: idle, idleFor: c.timeout}
		return resp, nil
	}
	defer cancel()
	defer resp.Body.Close()
	ae := decodeError(base, resp)
	if retryable(resp.StatusCode) {
		return nil, &retryError{url: base, status: resp.StatusCode, err: errors.New(ae.Message)}
	}
	return nil, ae
}

// decodeError reads the internal API's {"code": ..., "error": ...} answer.
func decodeError(base string, resp *http.Response) *apiError {
	data, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	var e struct {
		Code    string `json:"code"`
		Message string `json:"error"`
	}
	if json.Unmarshal(data, &e) != nil || e.Message == "" {
		e.Message = strings.Join(strings.Fields(string(data)), " ")
		if len(e.Message) > 200 {
			e.Message = e.Message[:200] + "..."
		}
		if e.Message == "" {
			e.Message = resp.Status
		}
	}
	return &apiError{URL: base, Status: resp.StatusCode, Code: e.Code, Message: e.Message}
}

// cancelBody releases an attempt's context when the body is closed, and
// for a stream pushes its idle deadline back on every read.
type cancelBody struct {
	io.ReadCloser
	cancel  context.CancelFunc
	idle    *time.Timer // nil: not a stream
	idleFor time.Duration
}

func (b *cancelBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	if b.idle != nil && n > 0 {
		b.idle.Reset(b.idleFor)
	}
	return n, err
}

func (b *cancelBody) Close() error {
	err := b.ReadCloser.Close()
	if b.idle != nil {
		b.idle.Stop()
	}
	b.cancel()
	return err
}

// answered records that controller idx answered: the next calls start
// there, and an outage, if one was logged, is over.
func (c *client) answered(idx, start int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.cur != idx {
		if !c.down {
			c.log.Warn("controller did not answer; using the next one", "failed", c.urls[start], "using", c.urls[idx])
		}
		c.cur = idx
	}
	if c.down {
		c.down = false
		c.log.Info("controllers reachable again", "controller", c.urls[idx], "outage", time.Since(c.downSince).Round(time.Millisecond))
	}
}

// roundFailed logs the start of an outage once; the retries that follow
// are quiet until a controller answers.
func (c *client) roundFailed(since time.Time, failures []string, authFailed bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.down {
		return
	}
	c.down, c.downSince = true, since
	hint := "check that keel-controller runs at these addresses (--controllers), and the network and firewall between this host and them; the agent retries until one answers"
	if authFailed {
		hint = "a controller refused this host's signature: check that --cluster-key is the controllers' key and that this host's clock is right (NTP); the agent retries until one answers"
	}
	c.log.Error("cannot reach any controller", "controllers", strings.Join(c.urls, ","), "errors", strings.Join(failures, "; "), "hint", hint)
}

// jitter spreads d over [d/2, 3d/2) so that many agents that lost the
// controllers at once do not all come back at the same instant.
func jitter(d time.Duration) time.Duration {
	if d <= 0 {
		return 0
	}
	return d/2 + rand.N(d)
}

// maxAnswer bounds a JSON answer (the assignments of a full host).
const maxAnswer = 64 << 20

func (c *client) doJSON(ctx context.Context, cl call, out any) error {
	resp, err := c.do(ctx, cl)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if out == nil {
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, maxAnswer))
		return nil
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, maxAnswer)).Decode(out); err != nil {
		return fmt.Errorf("decode the answer to %s %s: %w", cl.method, cl.path, err)
	}
	return nil
}

func hostPath(host string) string { return "/internal/v1/hosts/" + url.PathEscape(host) }

// register is POST /internal/v1/hosts/{host}.
func (c *client) register(ctx context.Context, reg hostapi.Registration) (hostapi.HostStatus, error) {
	body, err := json.Marshal(reg)
	if err != nil {
		return hostapi.HostStatus{}, err
	}
	var st hostapi.HostStatus
	err = c.doJSON(ctx, call{method: http.MethodPost, path: hostPath(reg.Host), body: body}, &st)
	return st, err
}

// servers is the blocking query GET /internal/v1/hosts/{host}/servers.
// Index 0 asks for the current state at once; fresh asks the controller to
// confirm with the Raft leader before answering (?fresh=1), which an
// answer that renews the fencing lease must have done (Assignments.Fresh).
func (c *client) servers(ctx context.Context, host string, index uint64, wait time.Duration, fresh bool) (hostapi.Assignments, error) {
	q := url.Values{}
	q.Set("index", strconv.FormatUint(index, 10))
	q.Set("wait", wait.String())
	if fresh {
		q.Set("fresh", "1")
	}
	var a hostapi.Assignments
	// The controller holds the answer for up to wait; a controller that
	// holds it much longer is stuck, and the next one is asked.
	err := c.doJSON(ctx, call{method: http.MethodGet, path: hostPath(host) + "/servers?" + q.Encode(), timeout: wait + c.timeout/2}, &a)
	return a, err
}

// completeMigration is POST /internal/v1/hosts/{host}/migrations/{id}/complete:
// this host holds no copy of an evacuated server any more.
func (c *client) completeMigration(ctx context.Context, host, migrationID string) error {
	return c.doJSON(ctx, call{method: http.MethodPost, path: hostPath(host) + "/migrations/" + url.PathEscape(migrationID) + "/complete"}, nil)
}

// report is POST /internal/v1/hosts/{host}/servers/{id}/report. It returns
// the state index at which the report was applied when the controller says
// it ({"index": N}; 0 otherwise).
func (c *client) report(ctx context.Context, host, id string, r hostapi.Report) (uint64, error) {
	body, err := json.Marshal(r)
	if err != nil {
		return 0, err
	}
	var ans struct {
		Index uint64 `json:"index"`
	}
	err = c.doJSON(ctx, call{method: http.MethodPost, path: hostPath(host) + "/servers/" + url.PathEscape(id) + "/report", body: body}, &ans)
	return ans.Index, err
}
