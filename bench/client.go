package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/keel-cloud/keel/internal/version"
)

var userAgent = "keel-bench/" + version.Version

// Client calls the compute API (and the image API, to find an image) with
// the session's token. Only documented Nova, Glance and Keystone calls are
// made: nothing Keel-specific.
type Client struct {
	sess *Session
	http *http.Client
	// ComputeURL is the compute endpoint, versioned (…/v2.1[/project]).
	ComputeURL string
	// ImageURL is the image endpoint with /v2, empty when the catalog has
	// none (then --image must be an id).
	ImageURL string
	// Microversion sent with every compute call.
	Microversion string
	// HTTPTimeout bounds each call.
	HTTPTimeout time.Duration
}

// NewClient finds the compute and image endpoints in the session's catalog.
func NewClient(sess *Session, hc *http.Client, microversion string, httpTimeout time.Duration) (*Client, error) {
	cu, err := sess.Endpoint("compute")
	if err != nil {
		return nil, err
	}
	c := &Client{sess: sess, http: hc, ComputeURL: versioned(cu, "v2.1"), Microversion: microversion, HTTPTimeout: httpTimeout}
	if iu, err := sess.Endpoint("image"); err == nil {
		c.ImageURL = versioned(iu, "v2")
	}
	return c, nil
}

// versioned appends /v to an endpoint URL whose path names no version.
// Compute endpoints are usually registered versioned
// (http://nova:8774/v2.1), image endpoints without (http://glance:9292).
func versioned(endpoint, v string) string {
	u, err := url.Parse(endpoint)
	if err != nil {
		return endpoint
	}
	for _, seg := range strings.Split(u.Path, "/") {
		if len(seg) >= 2 && seg[0] == 'v' && seg[1] >= '0' && seg[1] <= '9' {
			return strings.TrimRight(endpoint, "/")
		}
	}
	return strings.TrimRight(endpoint, "/") + "/" + v
}

// do sends one call and decodes a JSON answer into out (nil: ignore it).
// A 401 makes the session fetch a new token and the call is sent again,
// once; its time counts in the caller's measurement.
func (c *Client) do(ctx context.Context, method, u string, compute bool, in, out any) error {
	var body []byte
	if in != nil {
		var err error
		if body, err = json.Marshal(in); err != nil {
			return err
		}
	}
	for attempt := 0; ; attempt++ {
		tok, err := c.sess.Token(ctx)
		if err != nil {
			return err
		}
		status, raw, err := c.send(ctx, method, u, compute, tok, body)
		if err != nil {
			return err
		}
		if status == http.StatusUnauthorized && attempt == 0 {
			if err := c.sess.Refused(ctx, tok); err != nil {
				return fmt.Errorf("%s %s answered 401 and a new token could not be had: %w", method, u, err)
			}
			continue
		}
		if status >= 300 {
			kind, msg := parseFault(raw)
			return &HTTPError{Method: method, URL: u, Status: status, Kind: kind, Message: msg}
		}
		if out != nil && len(raw) > 0 {
			if err := json.Unmarshal(raw, out); err != nil {
				return fmt.Errorf("%s %s: the answer (HTTP %d) is not the JSON expected: %v", method, u, status, err)
			}
		}
		return nil
	}
}

func (c *Client) send(ctx context.Context, method, u string, compute bool, tok string, body []byte) (int, []byte, error) {
	if c.HTTPTimeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, c.HTTPTimeout)
		defer cancel()
	}
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, u, rd)
	if err != nil {
		return 0, nil, err
	}
	req.Header.Set("X-Auth-Token", tok)
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", userAgent)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if compute && c.Microversion != "" {
		req.Header.Set("OpenStack-API-Version", "compute "+c.Microversion)
		req.Header.Set("X-OpenStack-Nova-API-Version", c.Microversion)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return 0, nil, fmt.Errorf("%s %s: reading the answer: %w", method, u, err)
	}
	return resp.StatusCode, raw, nil
}

// Server is what keel-bench reads of a server.
type Server struct {
	ID        string  `json:"id"`
	Name      string  `json:"name"`
	Status    string  `json:"status"`
	TaskState *string `json:"OS-EXT-STS:task_state"`
	Fault     *struct {
		Code    int    `json:"code"`
		Message string `json:"message"`
	} `json:"fault"`
}

func (s *Server) task() string {
	if s.TaskState == nil {
		return ""
	}
	return *s.TaskState
}

func (s *Server) faultMessage() string {
	if s.Fault == nil {
		return ""
	}
	return s.Fault.Message
}

// CreateServer is POST /servers; it returns the new server's id, or the
// reservation id when the body asks for return_reservation_id.
func (c *Client) CreateServer(ctx context.Context, server map[string]any) (id, reservation string, err error) {
	var ans struct {
		Server        struct{ ID string } `json:"server"`
		ReservationID string              `json:"reservation_id"`
	}
	if err := c.do(ctx, http.MethodPost, c.ComputeURL+"/servers", true, map[string]any{"server": server}, &ans); err != nil {
		return "", "", err
	}
	if ans.Server.ID == "" && ans.ReservationID == "" {
		return "", "", fmt.Errorf("POST %s/servers: the answer has neither server.id nor reservation_id", c.ComputeURL)
	}
	return ans.Server.ID, ans.ReservationID, nil
}

// GetServer is GET /servers/{id}.
func (c *Client) GetServer(ctx context.Context, id string) (*Server, error) {
	var ans struct {
		Server Server `json:"server"`
	}
	if err := c.do(ctx, http.MethodGet, c.ComputeURL+"/servers/"+url.PathEscape(id), true, nil, &ans); err != nil {
		return nil, err
	}
	return &ans.Server, nil
}

// DeleteServer is DELETE /servers/{id}.
func (c *Client) DeleteServer(ctx context.Context, id string) error {
	return c.do(ctx, http.MethodDelete, c.ComputeURL+"/servers/"+url.PathEscape(id), true, nil, nil)
}

// Action is POST /servers/{id}/action.
func (c *Client) Action(ctx context.Context, id string, action map[string]any) error {
	return c.do(ctx, http.MethodPost, c.ComputeURL+"/servers/"+url.PathEscape(id)+"/action", true, action, nil)
}

// link is one entry of a Nova listing's "*_links".
type link struct {
	Rel  string `json:"rel"`
	Href string `json:"href"`
}

type serverPage struct {
	Servers []Server `json:"servers"`
	Links   []link   `json:"servers_links"`
}

// ListServers is one page of GET /servers[/detail]?query.
func (c *Client) ListServers(ctx context.Context, detail bool, q url.Values) ([]Server, error) {
	var p serverPage
	if err := c.do(ctx, http.MethodGet, c.serversURL(detail, q), true, nil, &p); err != nil {
		return nil, err
	}
	return p.Servers, nil
}

func (c *Client) serversURL(detail bool, q url.Values) string {
	u := c.ComputeURL + "/servers"
	if detail {
		u += "/detail"
	}
	if len(q) > 0 {
		u += "?" + q.Encode()
	}
	return u
}

// allPages follows a listing's "next" links from u to the last page (a
// page without items, or a link already seen, ends it); page fetches one.
func allPages[T any](ctx context.Context, u string, page func(ctx context.Context, u string) ([]T, []link, error)) ([]T, error) {
	var all []T
	seen := map[string]bool{}
	for u != "" && !seen[u] {
		seen[u] = true
		items, links, err := page(ctx, u)
		if err != nil {
			return nil, err
		}
		all = append(all, items...)
		u = ""
		for _, l := range links {
			if l.Rel == "next" && len(items) > 0 {
				u = l.Href
			}
		}
	}
	return all, nil
}

// AllServers follows the servers_links of GET /servers[/detail]?query to
// the last page.
func (c *Client) AllServers(ctx context.Context, detail bool, q url.Values) ([]Server, error) {
	return allPages(ctx, c.serversURL(detail, q), func(ctx context.Context, u string) ([]Server, []link, error) {
		var p serverPage
		err := c.do(ctx, http.MethodGet, u, true, nil, &p)
		return p.Servers, p.Links, err
	})
}

// Flavor is what keel-bench reads of a flavor.
type Flavor struct {
	ID    string `json:"id"`
	Name  string `json:"name"`
	RAM   int    `json:"ram"`
	VCPUs int    `json:"vcpus"`
	Disk  int    `json:"disk"`
}

// Flavors is GET /flavors/detail, every page.
func (c *Client) Flavors(ctx context.Context) ([]Flavor, error) {
	return allPages(ctx, c.ComputeURL+"/flavors/detail", func(ctx context.Context, u string) ([]Flavor, []link, error) {
		var p struct {
			Flavors []Flavor `json:"flavors"`
			Links   []link   `json:"flavors_links"`
		}
		err := c.do(ctx, http.MethodGet, u, true, nil, &p)
		return p.Flavors, p.Links, err
	})
}

// Image is what keel-bench reads of an image.
type Image struct {
	ID     string `json:"id"`
	Name   string `json:"name"`
	Status string `json:"status"`
}

// Images is one page of Glance's GET /v2/images?query.
func (c *Client) Images(ctx context.Context, q url.Values) ([]Image, error) {
	if c.ImageURL == "" {
		return nil, errors.New("the service catalog has no image endpoint: pass the image's id with --image")
	}
	var p struct {
		Images []Image `json:"images"`
	}
	u := c.ImageURL + "/images"
	if len(q) > 0 {
		u += "?" + q.Encode()
	}
	if err := c.do(ctx, http.MethodGet, u, false, nil, &p); err != nil {
		return nil, err
	}
	return p.Images, nil
}

// GetImage is Glance's GET /v2/images/{id}.
func (c *Client) GetImage(ctx context.Context, id string) (*Image, error) {
	var im Image
	if err := c.do(ctx, http.MethodGet, c.ImageURL+"/images/"+url.PathEscape(id), false, nil, &im); err != nil {
		return nil, err
	}
	return &im, nil
}

// microversion is a parsed compute API version; latest sorts above all.
type microversion struct{ major, minor int }

func parseMicroversion(s string) (microversion, error) {
	if s == "latest" {
		return microversion{1 << 30, 0}, nil
	}
	majS, minS, ok := strings.Cut(s, ".")
	a, err1 := strconv.Atoi(majS)
	b, err2 := strconv.Atoi(minS)
	if !ok || err1 != nil || err2 != nil || a < 2 || b < 0 {
		return microversion{}, errors.New(`want a compute microversion such as 2.1, 2.37 or "latest"`)
	}
	return microversion{a, b}, nil
}

func (v microversion) less(o microversion) bool {
	return v.major < o.major || (v.major == o.major && v.minor < o.minor)
}
