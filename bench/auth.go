package bench

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Env is the usual OS_* environment of an OpenStack client (an openrc file).
type Env struct {
	AuthURL                            string
	Username, UserID, Password         string
	UserDomainName, UserDomainID       string
	ProjectName, ProjectID             string
	ProjectDomainName, ProjectDomainID string
	RegionName                         string
	// Interface of the catalog endpoints: public (default), internal, admin.
	Interface string
	// ComputeAPIVersion is OS_COMPUTE_API_VERSION (empty: keel-bench picks).
	ComputeAPIVersion string
	// CACert is a PEM file of CAs to trust (OS_CACERT); Insecure skips
	// certificate checks (OS_INSECURE=true).
	CACert   string
	Insecure bool
}

// openrcHint tells an operator where the OS_* variables come from.
const openrcHint = "source your cloud's openrc file (for Keel: eval $(bin/keelctl openrc))"

// EnvFrom reads and checks the OS_* variables through getenv (os.Getenv).
func EnvFrom(getenv func(string) string) (Env, error) {
	g := func(k string) string { return strings.TrimSpace(getenv(k)) }
	e := Env{
		AuthURL: g("OS_AUTH_URL"), Username: g("OS_USERNAME"), UserID: g("OS_USER_ID"),
		Password: getenv("OS_PASSWORD"), UserDomainName: g("OS_USER_DOMAIN_NAME"),
		UserDomainID: g("OS_USER_DOMAIN_ID"), ProjectName: g("OS_PROJECT_NAME"),
		ProjectID: g("OS_PROJECT_ID"), ProjectDomainName: g("OS_PROJECT_DOMAIN_NAME"),
		ProjectDomainID: g("OS_PROJECT_DOMAIN_ID"), RegionName: g("OS_REGION_NAME"),
		Interface: g("OS_INTERFACE"), ComputeAPIVersion: g("OS_COMPUTE_API_VERSION"),
		CACert: g("OS_CACERT"),
	}
	// older openrc files name the project "tenant"
	if e.ProjectName == "" {
		e.ProjectName = g("OS_TENANT_NAME")
	}
	if e.ProjectID == "" {
		e.ProjectID = g("OS_TENANT_ID")
	}
	if v := g("OS_INSECURE"); v != "" {
		b, err := strconv.ParseBool(v)
		if err != nil {
			return e, fmt.Errorf("OS_INSECURE=%q: want true or false", v)
		}
		e.Insecure = b
	}
	switch {
	case e.AuthURL == "":
		return e, errors.New("OS_AUTH_URL is not set: " + openrcHint)
	case e.Username == "" && e.UserID == "":
		return e, errors.New("OS_USERNAME (or OS_USER_ID) is not set: " + openrcHint)
	case e.Password == "":
		return e, errors.New("OS_PASSWORD is not set: " + openrcHint + "; keel-bench authenticates with a password")
	case e.ProjectName == "" && e.ProjectID == "":
		return e, errors.New("OS_PROJECT_NAME (or OS_PROJECT_ID) is not set: the compute API needs a project-scoped token; " + openrcHint)
	}
	if t := g("OS_AUTH_TYPE"); t != "" && t != "password" && t != "v3password" {
		return e, fmt.Errorf("OS_AUTH_TYPE=%s is not supported: keel-bench authenticates with a password (OS_AUTH_TYPE=password, or unset it)", t)
	}
	if v := g("OS_IDENTITY_API_VERSION"); v != "" && v != "3" && !strings.HasPrefix(v, "3.") {
		return e, fmt.Errorf("OS_IDENTITY_API_VERSION=%s is not supported: keel-bench speaks Keystone v3 only", v)
	}
	switch strings.TrimSuffix(strings.ToLower(e.Interface), "url") { // "publicURL" in old openrc files
	case "", "public":
		e.Interface = "public"
	case "internal":
		e.Interface = "internal"
	case "admin":
		e.Interface = "admin"
	default:
		return e, fmt.Errorf("OS_INTERFACE=%s: want public, internal or admin", e.Interface)
	}
	if e.ComputeAPIVersion != "" {
		if _, err := parseMicroversion(e.ComputeAPIVersion); err != nil {
			return e, fmt.Errorf("OS_COMPUTE_API_VERSION=%s: %v", e.ComputeAPIVersion, err)
		}
	}
	return e, nil
}

// HTTPClient builds the client keel-bench uses for every call: TLS from
// OS_CACERT/OS_INSECURE, and enough idle connections per host that each
// concurrent client keeps its own.
func (e Env) HTTPClient(conns int) (*http.Client, error) {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConns = 0
	tr.MaxIdleConnsPerHost = conns + 16
	if e.CACert != "" || e.Insecure {
		cfg := &tls.Config{InsecureSkipVerify: e.Insecure} //nolint:gosec // the operator asked for it (OS_INSECURE)
		if e.CACert != "" {
			pem, err := os.ReadFile(e.CACert)
			if err != nil {
				return nil, fmt.Errorf("OS_CACERT: %w", err)
			}
			pool := x509.NewCertPool()
			if !pool.AppendCertsFromPEM(pem) {
				return nil, fmt.Errorf("OS_CACERT=%s holds no PEM certificate", e.CACert)
			}
			cfg.RootCAs = pool
		}
		tr.TLSClientConfig = cfg
	}
	return &http.Client{Transport: tr}, nil
}

// identityURL is OS_AUTH_URL as a Keystone v3 base: ".../v3" is kept, an
// unversioned URL gets "/v3".
func identityURL(raw string) (string, error) {
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return "", fmt.Errorf("OS_AUTH_URL=%q is not a URL such as https://keystone.example.com:5000/v3", raw)
	}
	p := strings.TrimRight(u.Path, "/")
	switch {
	case strings.HasSuffix(p, "/v3"):
	case strings.HasSuffix(p, "/v2.0"):
		return "", fmt.Errorf("OS_AUTH_URL=%s is a Keystone v2.0 URL: keel-bench speaks v3 only (try the same URL ending in /v3)", raw)
	default:
		p += "/v3"
	}
	u.Path, u.RawPath = p, ""
	return u.String(), nil
}

// Session holds a Keystone token and the service catalog, and renews the
// token before it expires.
type Session struct {
	env     Env
	http    *http.Client
	authURL string
	// Now is the clock (tests replace it).
	now func() time.Time

	mu      sync.Mutex
	token   string
	renewAt time.Time // local clock: when to get a new one
	expires time.Time // local clock
	catalog []catalogEntry
	issued  int
	// renewing: one goroutine fetches a token at a time.
	renewing chan struct{}
}

type catalogEntry struct {
	Type      string `json:"type"`
	Name      string `json:"name"`
	Endpoints []struct {
		Interface string `json:"interface"`
		Region    string `json:"region"`
		RegionID  string `json:"region_id"`
		URL       string `json:"url"`
	} `json:"endpoints"`
}

// NewSession authenticates with env's password and returns the session.
func NewSession(ctx context.Context, env Env, hc *http.Client) (*Session, error) {
	au, err := identityURL(env.AuthURL)
	if err != nil {
		return nil, err
	}
	s := &Session{env: env, http: hc, authURL: au, now: time.Now, renewing: make(chan struct{}, 1)}
	if err := s.renew(ctx, ""); err != nil {
		return nil, err
	}
	return s, nil
}

// AuthURL is the Keystone v3 URL tokens come from.
func (s *Session) AuthURL() string { return s.authURL }

// Issued is how many tokens the session obtained. It waits for a renewal in
// flight, so the count matches what the cloud has issued.
func (s *Session) Issued() int {
	s.renewing <- struct{}{}
	defer func() { <-s.renewing }()
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.issued
}

// Token returns a valid token. In the last quarter of the token's life (at
// most its last 5 minutes) a new one is fetched in the background while
// the current one is still handed out, so callers never wait for Keystone
// unless the token has expired.
func (s *Session) Token(ctx context.Context) (string, error) {
	s.mu.Lock()
	tok, now := s.token, s.now()
	due, valid := !now.Before(s.renewAt), now.Before(s.expires)
	s.mu.Unlock()
	if !due {
		return tok, nil
	}
	if valid {
		select {
		case s.renewing <- struct{}{}:
			go func() {
				defer func() { <-s.renewing }()
				ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
				defer cancel()
				// on failure the next Token call tries again, until expiry
				_ = s.renewLocked(ctx, tok)
			}()
		default: // already renewing
		}
		return tok, nil
	}
	if err := s.renew(ctx, tok); err != nil {
		return "", err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.token, nil
}

// Refused tells the session that the cloud answered 401 to token old: the
// next Token gets a new one (once, however many callers saw the 401).
func (s *Session) Refused(ctx context.Context, old string) error {
	return s.renew(ctx, old)
}

// renew gets a new token unless another caller already replaced old.
func (s *Session) renew(ctx context.Context, old string) error {
	select {
	case s.renewing <- struct{}{}:
	case <-ctx.Done():
		return ctx.Err()
	}
	defer func() { <-s.renewing }()
	return s.renewLocked(ctx, old)
}

// renewLocked is renew for the holder of the renewing slot.
func (s *Session) renewLocked(ctx context.Context, old string) error {
	s.mu.Lock()
	replaced := s.token != old && s.now().Before(s.renewAt)
	s.mu.Unlock()
	if replaced {
		return nil
	}
	now := s.now() // before the request: the token may be older than it looks, never younger
	tok, lifetime, catalog, err := s.issue(ctx)
	if err != nil {
		return err
	}
	margin := min(lifetime/4, 5*time.Minute)
	s.mu.Lock()
	s.token, s.catalog, s.issued = tok, catalog, s.issued+1
	s.expires, s.renewAt = now.Add(lifetime), now.Add(lifetime-margin)
	s.mu.Unlock()
	return nil
}

// issue is POST /v3/auth/tokens with the password, scoped to the project.
func (s *Session) issue(ctx context.Context) (token string, lifetime time.Duration, catalog []catalogEntry, err error) {
	e := s.env
	domain := func(id, name string) map[string]string {
		switch {
		case id != "":
			return map[string]string{"id": id}
		case name != "":
			return map[string]string{"name": name}
		}
		return map[string]string{"id": "default"}
	}
	user := map[string]any{"password": e.Password}
	if e.UserID != "" {
		user["id"] = e.UserID
	} else {
		user["name"] = e.Username
		user["domain"] = domain(e.UserDomainID, e.UserDomainName)
	}
	project := map[string]any{}
	if e.ProjectID != "" {
		project["id"] = e.ProjectID
	} else {
		project["name"] = e.ProjectName
		project["domain"] = domain(e.ProjectDomainID, e.ProjectDomainName)
	}
	body, _ := json.Marshal(map[string]any{"auth": map[string]any{
		"identity": map[string]any{"methods": []string{"password"}, "password": map[string]any{"user": user}},
		"scope":    map[string]any{"project": project},
	}})
	u := s.authURL + "/auth/tokens"
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u, bytes.NewReader(body))
	if err != nil {
		return "", 0, nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", userAgent)
	resp, err := s.http.Do(req)
	if err != nil {
		return "", 0, nil, fmt.Errorf("cannot reach Keystone at %s: %v: check OS_AUTH_URL and that the cloud is up", s.authURL, unwrapURLError(err))
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if err != nil {
		return "", 0, nil, fmt.Errorf("Keystone at %s: reading the token answer: %v", s.authURL, err)
	}
	who := e.Username
	if who == "" {
		who = e.UserID
	}
	proj := e.ProjectName
	if proj == "" {
		proj = e.ProjectID
	}
	if resp.StatusCode != http.StatusCreated && resp.StatusCode != http.StatusOK {
		_, msg := parseFault(raw)
		if msg == "" {
			msg = http.StatusText(resp.StatusCode)
		}
		switch resp.StatusCode {
		case http.StatusUnauthorized:
			return "", 0, nil, fmt.Errorf("Keystone at %s refused user %q for project %q (HTTP 401: %s): check OS_USERNAME, OS_PASSWORD, OS_PROJECT_NAME and the OS_*_DOMAIN_* variables", s.authURL, who, proj, msg)
		case http.StatusNotFound:
			return "", 0, nil, fmt.Errorf("Keystone at %s: POST /auth/tokens answered 404 (%s): check that OS_AUTH_URL is the identity service's URL (Keel: http://controller:8774/identity/v3)", s.authURL, msg)
		}
		return "", 0, nil, fmt.Errorf("Keystone at %s could not issue a token for %q (HTTP %d: %s)", s.authURL, who, resp.StatusCode, msg)
	}
	var ans struct {
		Token struct {
			ExpiresAt string         `json:"expires_at"`
			IssuedAt  string         `json:"issued_at"`
			Catalog   []catalogEntry `json:"catalog"`
		} `json:"token"`
	}
	if err := json.Unmarshal(raw, &ans); err != nil {
		return "", 0, nil, fmt.Errorf("Keystone at %s: the token answer is not Keystone v3 JSON (%v): check OS_AUTH_URL", s.authURL, err)
	}
	token = resp.Header.Get("X-Subject-Token")
	if token == "" {
		return "", 0, nil, fmt.Errorf("Keystone at %s answered without an X-Subject-Token header: check OS_AUTH_URL", s.authURL)
	}
	exp, err := time.Parse(time.RFC3339Nano, ans.Token.ExpiresAt)
	if err != nil {
		return "", 0, nil, fmt.Errorf("Keystone at %s: token expires_at %q: %v", s.authURL, ans.Token.ExpiresAt, err)
	}
	// Lifetime by the server's own clock (issued_at to expires_at), so a
	// skewed local clock does not matter; without issued_at, by ours.
	if iss, err := time.Parse(time.RFC3339Nano, ans.Token.IssuedAt); err == nil {
		lifetime = exp.Sub(iss)
	} else {
		lifetime = time.Until(exp)
	}
	if lifetime <= 0 {
		return "", 0, nil, fmt.Errorf("Keystone at %s issued a token that is already expired (expires_at %s): check the clocks", s.authURL, ans.Token.ExpiresAt)
	}
	if len(ans.Token.Catalog) == 0 {
		return "", 0, nil, fmt.Errorf("Keystone at %s issued a token without a service catalog for project %q: check that the user has a role on the project", s.authURL, proj)
	}
	return token, lifetime, ans.Token.Catalog, nil
}

// Endpoint is the catalog URL of a service type (compute, image) for
// OS_INTERFACE and OS_REGION_NAME (any region when unset).
func (s *Session) Endpoint(typ string) (string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var seen []string
	for _, c := range s.catalog {
		for _, ep := range c.Endpoints {
			region := ep.RegionID
			if region == "" {
				region = ep.Region
			}
			seen = append(seen, fmt.Sprintf("%s %s %s", c.Type, ep.Interface, region))
			if c.Type != typ || ep.Interface != s.env.Interface {
				continue
			}
			if s.env.RegionName != "" && s.env.RegionName != ep.RegionID && s.env.RegionName != ep.Region {
				continue
			}
			return strings.TrimRight(ep.URL, "/"), nil
		}
	}
	region := s.env.RegionName
	if region == "" {
		region = "(any)"
	}
	return "", fmt.Errorf("the service catalog has no %s endpoint with interface %s in region %s (it has: %s): check OS_REGION_NAME and OS_INTERFACE",
		typ, s.env.Interface, region, strings.Join(seen, ", "))
}

func unwrapURLError(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}
