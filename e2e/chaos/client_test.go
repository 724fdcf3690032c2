package chaos

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/keel-cloud/keel/cluster"
)

// api talks to the cloud through haproxy as an OpenStack client does (the
// admin user's token), and to the controllers' internal API with the cluster
// key (as keelctl does).
type api struct {
	base     string // haproxy, http://127.0.0.1:PORT
	password string
	key      []byte
	http     *http.Client
	token    string // scoped to the admin project
	qtoken   string // scoped to the quota project
	image    string
	adminPID string
	quotaPID string
}

// opTimeout bounds one workload operation: past it the outcome is unknown.
const opTimeout = 10 * time.Second

func newAPI(base, password string, key []byte) *api {
	tr := &http.Transport{
		Proxy:               nil, // only our own containers, whatever the environment says
		DialContext:         (&net.Dialer{Timeout: 3 * time.Second}).DialContext,
		MaxIdleConns:        64,
		MaxIdleConnsPerHost: 64,
		// Shorter than haproxy's keep-alive timeout (30 s): a request sent
		// on a kept-alive connection just as haproxy closes it for being
		// idle is cut off unanswered, which is not the fault under test.
		IdleConnTimeout: 20 * time.Second,
	}
	return &api{base: base, password: password, key: key, http: &http.Client{Transport: tr}}
}

// answer is one HTTP exchange's result: Status 0 when there was no answer.
type answer struct {
	Status     int
	Body       []byte
	Header     http.Header
	Err        error
	RetryAfter bool
}

func (a answer) String() string {
	if a.Status == 0 {
		return fmt.Sprintf("no answer: %v", a.Err)
	}
	b := strings.TrimSpace(string(a.Body))
	if len(b) > 200 {
		b = b[:200] + "..."
	}
	return fmt.Sprintf("HTTP %d %s", a.Status, b)
}

// do sends one request. token "" sends none; sign signs it with the cluster
// key instead.
func (a *api) do(ctx context.Context, base, method, path, token string, sign bool, body any, timeout time.Duration) answer {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return answer{Err: err}
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, base+path, rd)
	if err != nil {
		return answer{Err: err}
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("Accept", "application/json")
	if strings.HasPrefix(path, "/compute/") {
		req.Header.Set("OpenStack-API-Version", "compute 2.37")
	}
	if token != "" {
		req.Header.Set("X-Auth-Token", token)
	}
	if sign {
		cluster.Sign(req, a.key)
	}
	res, err := a.http.Do(req)
	if err != nil {
		return answer{Err: err}
	}
	defer res.Body.Close()
	b, err := io.ReadAll(io.LimitReader(res.Body, 8<<20))
	if err != nil {
		return answer{Err: fmt.Errorf("reading the answer to %s %s: %w", method, path, err)}
	}
	return answer{Status: res.StatusCode, Body: b, Header: res.Header, RetryAfter: res.Header.Get("Retry-After") != ""}
}

func (a *api) compute(ctx context.Context, method, path, token string, body any) answer {
	return a.do(ctx, a.base, method, "/compute/v2.1"+path, token, false, body, opTimeout)
}

// internal calls a controller's internal API (base: haproxy or a
// controller's own http://IP:8774).
func (a *api) internal(ctx context.Context, base, path string, out any) error {
	ans := a.do(ctx, base, http.MethodGet, path, "", true, nil, 3*time.Second)
	if ans.Status != http.StatusOK {
		return fmt.Errorf("GET %s%s: %s", base, path, ans)
	}
	return json.Unmarshal(ans.Body, out)
}

func (a *api) status(ctx context.Context) (*cluster.ClusterStatus, error) {
	var st cluster.ClusterStatus
	if err := a.internal(ctx, a.base, "/internal/v1/status", &st); err != nil {
		return nil, err
	}
	return &st, nil
}

// mustJSON: a setup call that must succeed with want.
func (a *api) mustJSON(ctx context.Context, what string, ans answer, want int, out any) error {
	if ans.Status != want {
		return fmt.Errorf("%s through haproxy (%s): want HTTP %d, got %s", what, a.base, want, ans)
	}
	if out != nil {
		if err := json.Unmarshal(ans.Body, out); err != nil {
			return fmt.Errorf("%s: the answer is not the JSON expected: %v: %s", what, err, ans)
		}
	}
	return nil
}

// login takes a token scoped to project (by id; "" = the admin project by name).
func (a *api) login(ctx context.Context, projectID string) (token string, userID string, pid string, err error) {
	scope := map[string]any{"project": map[string]any{"name": "admin", "domain": map[string]string{"id": "default"}}}
	if projectID != "" {
		scope = map[string]any{"project": map[string]any{"id": projectID}}
	}
	body := map[string]any{"auth": map[string]any{
		"identity": map[string]any{"methods": []string{"password"}, "password": map[string]any{"user": map[string]any{
			"name": "admin", "domain": map[string]string{"id": "default"}, "password": a.password}}},
		"scope": scope,
	}}
	ans := a.do(ctx, a.base, http.MethodPost, "/identity/v3/auth/tokens", "", false, body, opTimeout)
	var out struct {
		Token struct {
			User    struct{ ID string } `json:"user"`
			Project struct{ ID string } `json:"project"`
		} `json:"token"`
	}
	if err := a.mustJSON(ctx, "admin login", ans, http.StatusCreated, &out); err != nil {
		return "", "", "", err
	}
	return ans.Header.Get("X-Subject-Token"), out.Token.User.ID, out.Token.Project.ID, nil
}

// setup logs in, uploads the test image, lifts the admin project's quotas,
// and makes the quota project (instances quota q) with the admin user as
// its admin.
func (a *api) setup(ctx context.Context, q int, suffix string) error {
	tok, uid, pid, err := a.login(ctx, "")
	if err != nil {
		return err
	}
	a.token, a.adminPID = tok, pid
	if a.image == "" {
		var img struct{ ID string }
		ans := a.do(ctx, a.base, http.MethodPost, "/image/v2/images", a.token, false, map[string]any{
			"name": "chaos", "disk_format": "raw", "container_format": "bare", "visibility": "public"}, opTimeout)
		if err := a.mustJSON(ctx, "create the image", ans, http.StatusCreated, &img); err != nil {
			return err
		}
		status := 0
		for try := 0; try < 30 && status != http.StatusNoContent; try++ {
			if try > 0 {
				time.Sleep(100 * time.Millisecond) // see setupRetry
			}
			req, _ := http.NewRequestWithContext(ctx, http.MethodPut, a.base+"/image/v2/images/"+img.ID+"/file", strings.NewReader(strings.Repeat("k", 4096)))
			req.Header.Set("X-Auth-Token", a.token)
			req.Header.Set("Content-Type", "application/octet-stream")
			res, err := a.http.Do(req)
			if err != nil {
				return fmt.Errorf("upload the image: %w", err)
			}
			res.Body.Close()
			status = res.StatusCode
			if status != http.StatusNotFound {
				break
			}
		}
		if status != http.StatusNoContent {
			return fmt.Errorf("upload the image: HTTP %d", status)
		}
		a.image = img.ID
	}
	unlimited := map[string]any{"quota_set": map[string]any{"instances": -1, "cores": -1, "ram": -1}}
	if err := a.mustJSON(ctx, "lift the admin project's quotas", a.compute(ctx, http.MethodPut, "/os-quota-sets/"+a.adminPID, a.token, unlimited), http.StatusOK, nil); err != nil {
		return err
	}
	var proj struct{ Project struct{ ID string } }
	ans := a.do(ctx, a.base, http.MethodPost, "/identity/v3/projects", a.token, false, map[string]any{"project": map[string]any{
		"name": "chaos-quota-" + suffix, "domain_id": "default"}}, opTimeout)
	if err := a.mustJSON(ctx, "create the quota project", ans, http.StatusCreated, &proj); err != nil {
		return err
	}
	a.quotaPID = proj.Project.ID
	var roles struct{ Roles []struct{ ID, Name string } }
	if err := a.mustJSON(ctx, "list roles", a.do(ctx, a.base, http.MethodGet, "/identity/v3/roles?name=admin", a.token, false, nil, opTimeout), http.StatusOK, &roles); err != nil {
		return err
	}
	roleID := ""
	for _, r := range roles.Roles {
		if r.Name == "admin" {
			roleID = r.ID
		}
	}
	if roleID == "" {
		return fmt.Errorf("no role named admin in GET /identity/v3/roles: %+v", roles.Roles)
	}
	grant := "/identity/v3/projects/" + a.quotaPID + "/users/" + uid + "/roles/" + roleID
	if ans := setupRetry(func() answer { return a.do(ctx, a.base, http.MethodPut, grant, a.token, false, nil, opTimeout) }); ans.Status != http.StatusNoContent && ans.Status != http.StatusOK {
		return fmt.Errorf("grant the admin role on the quota project: %s", ans)
	}
	limits := map[string]any{"quota_set": map[string]any{"instances": q, "cores": -1, "ram": -1}}
	if err := a.mustJSON(ctx, "set the quota project's quota", setupRetry(func() answer {
		return a.compute(ctx, http.MethodPut, "/os-quota-sets/"+a.quotaPID, a.token, limits)
	}), http.StatusOK, nil); err != nil {
		return err
	}
	for try := 0; ; try++ {
		// Retried for the broken build, as setupRetry.
		if a.qtoken, _, _, err = a.login(ctx, a.quotaPID); err == nil {
			return nil
		} else if try == 30 {
			return fmt.Errorf("token for the quota project: %w", err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// setupRetry retries a setup call answered 404 or 401 for up to 3 s: with
// the broken build (KEEL_UNSAFE_STALE_READS) a controller that has not yet
// applied what was just created answers as if it did not exist. A correct
// build never needs it.
func setupRetry(f func() answer) answer {
	var ans answer
	for try := 0; try < 30; try++ {
		if ans = f(); ans.Status != http.StatusNotFound && ans.Status != http.StatusUnauthorized {
			return ans
		}
		time.Sleep(100 * time.Millisecond)
	}
	return ans
}

// serverView is what the checks read of a server.
type serverView struct {
	ID        string            `json:"id"`
	Name      string            `json:"name"`
	Status    string            `json:"status"`
	TaskState *string           `json:"OS-EXT-STS:task_state"`
	Host      string            `json:"OS-EXT-SRV-ATTR:host"`
	TenantID  string            `json:"tenant_id"`
	Metadata  map[string]string `json:"metadata"`
}

func (s serverView) deleting() bool { return s.TaskState != nil && *s.TaskState == "deleting" }

// listAll lists every project's servers (admin).
func (a *api) listAll(ctx context.Context) ([]serverView, error) {
	return a.list(ctx, a.token, "?all_tenants=1")
}

// list lists servers (detail), following the pages.
func (a *api) list(ctx context.Context, token, query string) ([]serverView, error) {
	var all []serverView
	marker := ""
	for {
		q := query
		sep := "?"
		if strings.Contains(q, "?") {
			sep = "&"
		}
		q += sep + "limit=500"
		if marker != "" {
			q += "&marker=" + url.QueryEscape(marker)
		}
		ans := a.compute(ctx, http.MethodGet, "/servers/detail"+q, token, nil)
		var out struct{ Servers []serverView }
		if err := a.mustJSON(ctx, "list servers", ans, http.StatusOK, &out); err != nil {
			return nil, err
		}
		all = append(all, out.Servers...)
		if len(out.Servers) < 500 {
			return all, nil
		}
		marker = out.Servers[len(out.Servers)-1].ID
	}
}

// refresh takes new tokens (they live an hour; a full run is longer).
func (a *api) refresh(ctx context.Context) error {
	tok, _, _, err := a.login(ctx, "")
	if err != nil {
		return err
	}
	qtok, _, _, err := a.login(ctx, a.quotaPID)
	if err != nil {
		return fmt.Errorf("token for the quota project: %w", err)
	}
	a.token, a.qtoken = tok, qtok
	return nil
}
