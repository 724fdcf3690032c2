// Package fakecloud is a test double of an OpenStack cloud for keel-bench's
// tests: just enough Keystone v3 (password tokens with a catalog), Nova
// (servers: create with min/max_count, show, list, delete, stop, start,
// reboot; flavors) and Glance (image list and show), with a delay per call
// and injected failures, so the tests know exactly what the load tool
// should have measured. Server states progress on reads: a server is
// ACTIVE after it has been read (shown or listed) PollsToActive times.
package fakecloud

import (
	"crypto/rand"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Call names, for Delay, Inject and Calls.
const (
	CallToken   = "token"
	CallCreate  = "create"
	CallShow    = "show"
	CallList    = "list"
	CallDelete  = "delete"
	CallAction  = "action"
	CallFlavors = "flavors"
	CallImages  = "images"
)

// Fault is an injected error answer.
type Fault struct {
	Status  int
	Kind    string // Nova's fault key: conflictingRequest, computeFault...
	Message string
}

// Cloud is the fake. Set its fields before the first request.
type Cloud struct {
	URL      string
	Password string
	// TokenTTL is the lifetime of a token (default one hour).
	TokenTTL time.Duration
	// Reads of a server before it leaves BUILD, before an action's
	// state is reached, and before a deleted server is gone (default 2,
	// 1, 1).
	PollsToActive, PollsForAction, PollsToGone int
	// Delay per call name.
	Delay map[string]time.Duration
	// Inject, when set, may fail the n-th call (1-based) of a name.
	Inject func(call string, n int) *Fault
	// ImageID of the one active image, "cirros".
	ImageID string

	srv *httptest.Server

	mu       sync.Mutex
	servers  map[string]*server
	order    []string
	calls    map[string]int
	tokens   map[string]time.Time
	issued   int
	refused  int
	creates  []map[string]any
	versions map[string]int
}

type server struct {
	id, name, status string
	task             *string
	reads            int
	pending          string // status an action leads to
	deleting         bool
	reservation      string
}

// New starts a fake cloud; Close it at the end.
func New() *Cloud {
	c := &Cloud{
		Password: "secret", TokenTTL: time.Hour, PollsToActive: 2, PollsForAction: 1, PollsToGone: 1,
		Delay: map[string]time.Duration{}, ImageID: uuid(),
		servers: map[string]*server{}, calls: map[string]int{}, tokens: map[string]time.Time{}, versions: map[string]int{},
	}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /identity/v3/auth/tokens", c.token)
	mux.HandleFunc("POST /compute/v2.1/servers", c.auth(CallCreate, c.create))
	mux.HandleFunc("GET /compute/v2.1/servers", c.auth(CallList, c.list(false)))
	mux.HandleFunc("GET /compute/v2.1/servers/detail", c.auth(CallList, c.list(true)))
	mux.HandleFunc("GET /compute/v2.1/servers/{id}", c.auth(CallShow, c.show))
	mux.HandleFunc("DELETE /compute/v2.1/servers/{id}", c.auth(CallDelete, c.delete))
	mux.HandleFunc("POST /compute/v2.1/servers/{id}/action", c.auth(CallAction, c.action))
	mux.HandleFunc("GET /compute/v2.1/flavors/detail", c.auth(CallFlavors, c.flavors))
	mux.HandleFunc("GET /image/v2/images", c.auth(CallImages, c.images))
	mux.HandleFunc("GET /image/v2/images/{id}", c.auth(CallImages, c.image))
	c.srv = httptest.NewServer(mux)
	c.URL = c.srv.URL
	return c
}

// Close stops the server.
func (c *Cloud) Close() { c.srv.Close() }

// AuthURL is the Keystone v3 URL (OS_AUTH_URL).
func (c *Cloud) AuthURL() string { return c.URL + "/identity/v3" }

// Calls is how many calls of a name were received (authenticated ones).
func (c *Cloud) Calls(name string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.calls[name]
}

// TokensIssued counts the tokens Keystone issued.
func (c *Cloud) TokensIssued() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.issued
}

// Refused counts the 401 answers to expired or unknown tokens.
func (c *Cloud) Refused() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.refused
}

// RevokeAll makes every token issued so far invalid.
func (c *Cloud) RevokeAll() {
	c.mu.Lock()
	defer c.mu.Unlock()
	clear(c.tokens)
}

// Creates returns the bodies ("server" objects) of the create requests.
func (c *Cloud) Creates() []map[string]any {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]map[string]any(nil), c.creates...)
}

// Microversions counts the compute microversions requested.
func (c *Cloud) Microversions() map[string]int {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := map[string]int{}
	for k, v := range c.versions {
		out[k] = v
	}
	return out
}

// AddServer adds an ACTIVE server (someone else's, or a leftover).
func (c *Cloud) AddServer(name string) string {
	c.mu.Lock()
	defer c.mu.Unlock()
	id := uuid()
	c.servers[id] = &server{id: id, name: name, status: "ACTIVE"}
	c.order = append(c.order, id)
	return id
}

// ServerNames lists the servers that exist (not yet gone), in creation
// order.
func (c *Cloud) ServerNames() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []string
	for _, id := range c.order {
		if s := c.servers[id]; s != nil {
			out = append(out, s.name)
		}
	}
	return out
}

// auth checks the token, counts the call, sleeps its delay and answers an
// injected fault if there is one; else h answers.
func (c *Cloud) auth(call string, h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		c.mu.Lock()
		exp, ok := c.tokens[r.Header.Get("X-Auth-Token")]
		if !ok || time.Now().After(exp) {
			c.refused++
			c.mu.Unlock()
			writeJSON(w, http.StatusUnauthorized, map[string]any{"error": map[string]any{
				"code": 401, "title": "Unauthorized", "message": "The request you have made requires authentication."}})
			return
		}
		c.calls[call]++
		n := c.calls[call]
		if strings.HasPrefix(r.URL.Path, "/compute/") {
			c.versions[r.Header.Get("OpenStack-API-Version")]++
		}
		d, inject := c.Delay[call], c.Inject
		c.mu.Unlock()
		time.Sleep(d)
		if inject != nil {
			if f := inject(call, n); f != nil {
				writeJSON(w, f.Status, map[string]any{f.Kind: map[string]any{"code": f.Status, "message": f.Message}})
				return
			}
		}
		h(w, r)
	}
}

func (c *Cloud) token(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Auth struct {
			Identity struct {
				Password struct {
					User struct {
						Name     string `json:"name"`
						Password string `json:"password"`
					} `json:"user"`
				} `json:"password"`
			} `json:"identity"`
			Scope struct {
				Project struct {
					Name string `json:"name"`
				} `json:"project"`
			} `json:"scope"`
		} `json:"auth"`
	}
	if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
		writeJSON(w, 400, map[string]any{"error": map[string]any{"code": 400, "message": err.Error(), "title": "Bad Request"}})
		return
	}
	c.mu.Lock()
	d := c.Delay[CallToken]
	c.mu.Unlock()
	time.Sleep(d)
	u := req.Auth.Identity.Password.User
	if u.Name != "admin" || u.Password != c.Password || req.Auth.Scope.Project.Name != "admin" {
		writeJSON(w, 401, map[string]any{"error": map[string]any{"code": 401, "title": "Unauthorized",
			"message": "The request you have made requires authentication."}})
		return
	}
	now := time.Now().UTC()
	tok := "tok-" + uuid()
	c.mu.Lock()
	c.tokens[tok] = now.Add(c.TokenTTL)
	c.issued++
	c.mu.Unlock()
	ep := func(typ, name, u string) map[string]any {
		var eps []map[string]any
		for _, i := range []string{"public", "internal", "admin"} {
			eps = append(eps, map[string]any{"id": typ + i, "interface": i, "region": "RegionOne", "region_id": "RegionOne", "url": u})
		}
		return map[string]any{"type": typ, "name": name, "id": typ, "endpoints": eps}
	}
	w.Header().Set("X-Subject-Token", tok)
	const layout = "2006-01-02T15:04:05.000000Z"
	writeJSON(w, http.StatusCreated, map[string]any{"token": map[string]any{
		"methods": []string{"password"}, "issued_at": now.Format(layout), "expires_at": now.Add(c.TokenTTL).Format(layout),
		"project": map[string]any{"id": "p1", "name": "admin", "domain": map[string]any{"id": "default", "name": "Default"}},
		"user":    map[string]any{"id": "u1", "name": "admin", "domain": map[string]any{"id": "default", "name": "Default"}},
		"catalog": []any{
			ep("compute", "nova", c.URL+"/compute/v2.1"),
			ep("image", "glance", c.URL+"/image"),
			ep("identity", "keystone", c.URL+"/identity"),
		},
	}})
}

func (c *Cloud) create(w http.ResponseWriter, r *http.Request) {
	var body struct {
		Server map[string]any `json:"server"`
	}
	if err := json.NewDecoder(r.Body).Decode(&body); err != nil || body.Server == nil {
		badRequest(w, "Malformed request body")
		return
	}
	s := body.Server
	name, _ := s["name"].(string)
	if name == "" || s["flavorRef"] == nil || s["imageRef"] == nil {
		badRequest(w, "Invalid input: name, flavorRef and imageRef are required")
		return
	}
	if v := r.Header.Get("OpenStack-API-Version"); v != "" && !strings.HasSuffix(v, " 2.1") && s["networks"] == nil {
		badRequest(w, "Invalid input for field/attribute server. Value: {...}. 'networks' is a required property")
		return
	}
	n := 1
	if f, ok := s["max_count"].(float64); ok {
		n = int(f)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.creates = append(c.creates, s)
	resv := "r-" + uuid()[:8]
	var first string
	for i := range n {
		id := uuid()
		nm := name
		if n > 1 {
			nm = fmt.Sprintf("%s-%d", name, i+1)
		}
		c.servers[id] = &server{id: id, name: nm, status: "BUILD", task: ptr("scheduling"), reservation: resv}
		c.order = append(c.order, id)
		if first == "" {
			first = id
		}
	}
	if rr, _ := s["return_reservation_id"].(bool); rr {
		writeJSON(w, http.StatusAccepted, map[string]any{"reservation_id": resv})
		return
	}
	writeJSON(w, http.StatusAccepted, map[string]any{"server": map[string]any{"id": first, "adminPass": "x", "links": []any{}}})
}

// read advances a server's state by one read; it reports whether the
// server is gone. c.mu held.
func (c *Cloud) read(s *server) bool {
	s.reads++
	switch {
	case s.deleting:
		if s.reads >= c.PollsToGone {
			delete(c.servers, s.id)
			return true
		}
	case s.status == "BUILD":
		if s.reads >= c.PollsToActive {
			s.status, s.task = "ACTIVE", nil
		}
	case s.pending != "":
		if s.reads >= c.PollsForAction {
			s.status, s.task, s.pending = s.pending, nil, ""
		}
	}
	return false
}

func (c *Cloud) view(s *server, detail bool) map[string]any {
	v := map[string]any{"id": s.id, "name": s.name, "links": []any{}}
	if detail {
		v["status"] = s.status
		v["OS-EXT-STS:task_state"] = s.task
		if s.status == "ERROR" {
			v["fault"] = map[string]any{"code": 500, "message": "No valid host was found."}
		}
	}
	return v
}

func (c *Cloud) show(w http.ResponseWriter, r *http.Request) {
	c.mu.Lock()
	defer c.mu.Unlock()
	s := c.servers[r.PathValue("id")]
	if s == nil || c.read(s) {
		notFound(w, r.PathValue("id"))
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"server": c.view(s, true)})
}

func (c *Cloud) list(detail bool) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		var re *regexp.Regexp
		if v := q.Get("name"); v != "" {
			var err error
			if re, err = regexp.Compile(v); err != nil {
				re = regexp.MustCompile(regexp.QuoteMeta(v))
			}
		}
		limit := 1000
		if v := q.Get("limit"); v != "" {
			n, err := strconv.Atoi(v)
			if err != nil || n < 0 {
				badRequest(w, "limit must be a non-negative integer")
				return
			}
			limit = min(n, 1000)
		}
		marker := q.Get("marker")
		c.mu.Lock()
		defer c.mu.Unlock()
		var page []map[string]any
		more := false
		past := marker == ""
		for _, id := range c.order {
			s := c.servers[id]
			if !past {
				past = id == marker
				continue
			}
			if s == nil || (re != nil && !re.MatchString(s.name)) ||
				(q.Get("reservation_id") != "" && s.reservation != q.Get("reservation_id")) {
				continue
			}
			if len(page) == limit {
				more = true
				break
			}
			if c.read(s) {
				continue
			}
			if st := q.Get("status"); st != "" && s.status != st {
				continue
			}
			page = append(page, c.view(s, detail))
		}
		ans := map[string]any{"servers": page}
		if page == nil {
			ans["servers"] = []any{}
		}
		if more && len(page) > 0 {
			nq := r.URL.Query()
			nq.Set("marker", page[len(page)-1]["id"].(string))
			ans["servers_links"] = []any{map[string]any{"rel": "next", "href": c.URL + r.URL.Path + "?" + nq.Encode()}}
		}
		writeJSON(w, http.StatusOK, ans)
	}
}

func (c *Cloud) delete(w http.ResponseWriter, r *http.Request) {
	c.mu.Lock()
	defer c.mu.Unlock()
	s := c.servers[r.PathValue("id")]
	if s == nil {
		notFound(w, r.PathValue("id"))
		return
	}
	s.deleting, s.task, s.reads = true, ptr("deleting"), 0
	w.WriteHeader(http.StatusNoContent)
}

func (c *Cloud) action(w http.ResponseWriter, r *http.Request) {
	var body map[string]json.RawMessage
	if err := json.NewDecoder(r.Body).Decode(&body); err != nil || len(body) != 1 {
		badRequest(w, "Malformed request body")
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	s := c.servers[r.PathValue("id")]
	if s == nil || s.deleting {
		notFound(w, r.PathValue("id"))
		return
	}
	conflict := func(action, state string) {
		writeJSON(w, http.StatusConflict, map[string]any{"conflictingRequest": map[string]any{"code": 409,
			"message": fmt.Sprintf("Cannot '%s' instance %s while it is in vm_state %s", action, s.id, state)}})
	}
	busy := s.task != nil
	var status, task, pending string
	switch {
	case body["os-stop"] != nil:
		if s.status != "ACTIVE" || busy {
			conflict("stop", strings.ToLower(s.status))
			return
		}
		status, task, pending = s.status, "powering-off", "SHUTOFF"
	case body["os-start"] != nil:
		if s.status != "SHUTOFF" || busy {
			conflict("start", strings.ToLower(s.status))
			return
		}
		status, task, pending = s.status, "powering-on", "ACTIVE"
	case body["reboot"] != nil:
		if s.status != "ACTIVE" || busy {
			conflict("reboot", strings.ToLower(s.status))
			return
		}
		status, task, pending = "REBOOT", "reboot_started", "ACTIVE"
	default:
		badRequest(w, "There is no such action")
		return
	}
	s.status, s.task, s.pending, s.reads = status, &task, pending, 0
	w.WriteHeader(http.StatusAccepted)
}

func (c *Cloud) flavors(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, map[string]any{"flavors": []any{
		map[string]any{"id": "2", "name": "m1.small", "ram": 2048, "vcpus": 1, "disk": 20},
		map[string]any{"id": "1", "name": "m1.tiny", "ram": 512, "vcpus": 1, "disk": 1},
	}})
}

func (c *Cloud) imageList() []map[string]any {
	return []map[string]any{
		{"id": "00000000-0000-0000-0000-00000000beef", "name": "broken", "status": "queued"},
		{"id": c.ImageID, "name": "cirros", "status": "active"},
	}
}

func (c *Cloud) images(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	out := []map[string]any{}
	for _, im := range c.imageList() {
		if (q.Get("name") == "" || q.Get("name") == im["name"]) && (q.Get("status") == "" || q.Get("status") == im["status"]) {
			out = append(out, im)
		}
	}
	writeJSON(w, http.StatusOK, map[string]any{"images": out})
}

func (c *Cloud) image(w http.ResponseWriter, r *http.Request) {
	for _, im := range c.imageList() {
		if im["id"] == r.PathValue("id") {
			writeJSON(w, http.StatusOK, im)
			return
		}
	}
	http.Error(w, "404 Not Found\n\nNo image found with ID "+r.PathValue("id"), http.StatusNotFound)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func badRequest(w http.ResponseWriter, msg string) {
	writeJSON(w, http.StatusBadRequest, map[string]any{"badRequest": map[string]any{"code": 400, "message": msg}})
}

func notFound(w http.ResponseWriter, id string) {
	writeJSON(w, http.StatusNotFound, map[string]any{"itemNotFound": map[string]any{"code": 404,
		"message": "Instance " + id + " could not be found."}})
}

func ptr(s string) *string { return &s }

func uuid() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:])
}
