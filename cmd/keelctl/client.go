package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/keel-cloud/keel/cluster"
)

// maxAnswer bounds the JSON answers keelctl reads.
const maxAnswer = 16 << 20

// client calls one controller's internal API, signing every request with
// the cluster key.
type client struct {
	base    string // scheme://host:port[/prefix], no trailing slash
	key     []byte
	timeout time.Duration
	http    *http.Client
}

func (a *app) newClient() (*client, error) {
	if a.g.url == "" { // KEEL_URL set but empty
		a.g.url = defaultURL
	}
	base, err := normalizeURL(a.g.url)
	if err != nil {
		return nil, err
	}
	if a.g.timeout <= 0 {
		return nil, fmt.Errorf("--timeout %s: want a positive duration such as 10s", a.g.timeout)
	}
	key, err := a.g.key()
	if err != nil {
		return nil, err
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.DialContext = (&net.Dialer{Timeout: a.g.timeout, KeepAlive: 30 * time.Second}).DialContext
	return &client{base: base, key: key, timeout: a.g.timeout, http: &http.Client{Transport: tr}}, nil
}

// normalizeURL accepts "http://host:port", "https://host:port/prefix" or a
// bare "host:port".
func normalizeURL(s string) (string, error) {
	s = strings.TrimSpace(s)
	raw := s
	if !strings.Contains(s, "://") {
		s = "http://" + s
	}
	u, err := url.Parse(s)
	if err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https") || u.RawQuery != "" || u.Fragment != "" {
		return "", fmt.Errorf("--url %q is not a controller's API address: want something like %s (or set KEEL_URL)", raw, defaultURL)
	}
	u.Path = strings.TrimRight(u.Path, "/")
	u.RawPath = ""
	return u.String(), nil
}

// do sends a signed request and returns the response if it is a 200. A body
// of known length is sent with that Content-Length (size < 0: let net/http
// work it out). Other answers come back as *authError or *apiError; no
// answer at all as *unreachableError.
func (c *client) do(ctx context.Context, method, path string, body io.Reader, size int64) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, body)
	if err != nil {
		return nil, fmt.Errorf("build the request to %s: %w", c.base, err)
	}
	if body != nil && size >= 0 {
		req.ContentLength = size
		if size == 0 {
			req.Body = http.NoBody
		}
	}
	cluster.Sign(req, c.key)
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, c.unreachable(ctx, err)
	}
	if resp.StatusCode == http.StatusOK {
		return resp, nil
	}
	defer resp.Body.Close()
	return nil, c.decodeError(resp)
}

// call sends a signed request with a JSON body (nil for none) and returns
// the answer's body, bounded by --timeout.
func (c *client) call(ctx context.Context, method, path string, in any) ([]byte, error) {
	ctx, cancel := context.WithTimeoutCause(ctx, c.timeout, fmt.Errorf("timed out after %s (raise --timeout if it is just slow)", c.timeout))
	defer cancel()
	var body io.Reader
	size := int64(-1)
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return nil, err
		}
		body, size = bytes.NewReader(b), int64(len(b))
	}
	resp, err := c.do(ctx, method, path, body, size)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	out, err := io.ReadAll(io.LimitReader(resp.Body, maxAnswer))
	if err != nil {
		return nil, c.unreachable(ctx, err)
	}
	return out, nil
}

// unreachableError: the controller at --url gave no answer.
type unreachableError struct {
	url   string
	cause error
	// dial: the connection could not even be opened.
	dial bool
}

func (e *unreachableError) Error() string {
	if e.dial {
		return fmt.Sprintf("cannot reach the controller at %s (%v): check that keel-controller is running there and that --url (or KEEL_URL) is its API address, or try another controller",
			e.url, e.cause)
	}
	return fmt.Sprintf("the controller at %s did not answer: %v; check that keel-controller is running and healthy there, or try another controller",
		e.url, e.cause)
}

func (e *unreachableError) Unwrap() error { return e.cause }

// unreachable describes a failed exchange: why the context ended, if it
// did, else the network error without net/http's wrapping.
func (c *client) unreachable(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		if cause := context.Cause(ctx); cause != nil {
			return &unreachableError{url: c.base, cause: cause}
		}
	}
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err
	}
	var op *net.OpError
	var dns *net.DNSError
	dial := errors.As(err, &dns) || (errors.As(err, &op) && op.Op == "dial")
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		err = fmt.Errorf("the connection was closed before the answer was complete (%v)", err)
	}
	return &unreachableError{url: c.base, cause: err, dial: dial}
}

// authError: the controller rejected the cluster-key signature (HTTP 401).
type authError struct {
	url, message string
}

func (e *authError) Error() string {
	const hint = "the cluster key does not match the controllers' (check --cluster-key / KEEL_CLUSTER_KEY)"
	if e.message == "" || e.message == cluster.ErrUnauthorized.Error() {
		return fmt.Sprintf("the controller at %s rejected the request: %s", e.url, hint)
	}
	return fmt.Sprintf("the controller at %s rejected the request (%s); if its clock is right, %s", e.url, e.message, hint)
}

// apiError is any other error answer of the internal API.
type apiError struct {
	url     string
	status  int
	code    string
	message string
}

func (e *apiError) Error() string {
	var hint string
	switch e.code {
	case "not_leader", "no_leader", "outcome_unknown":
		hint = "; check `keelctl cluster status`"
	case "shutdown":
		hint = "; try another controller"
	case "internal":
		hint = "; see the log of the controller at " + e.url
	case "":
		return e.message
	}
	return fmt.Sprintf("%s (HTTP %d, %s)%s", e.message, e.status, e.code, hint)
}

// decodeError turns an error answer into an error: the internal API answers
// {"code": ..., "error": ...}.
func (c *client) decodeError(resp *http.Response) error {
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	var e struct {
		Code    string `json:"code"`
		Message string `json:"error"`
	}
	if err := json.Unmarshal(body, &e); err != nil || e.Code == "" {
		if resp.StatusCode == http.StatusUnauthorized {
			return &authError{url: c.base}
		}
		text := strings.Join(strings.Fields(string(body)), " ")
		if len(text) > 200 {
			text = text[:200] + "..."
		}
		if text == "" {
			text = "empty body"
		}
		return &apiError{url: c.base, status: resp.StatusCode, message: fmt.Sprintf(
			"unexpected answer from %s: %s (%s); is --url the API address of a Keel controller?",
			resp.Request.URL.Redacted(), resp.Status, text)}
	}
	if resp.StatusCode == http.StatusUnauthorized || e.Code == "unauthorized" {
		return &authError{url: c.base, message: e.Message}
	}
	if e.Message == "" {
		e.Message = resp.Status
	}
	return &apiError{url: c.base, status: resp.StatusCode, code: e.Code, message: e.Message}
}
