// Package api serves Keel's HTTP API on one port: the OpenStack services
// under path prefixes (/compute: Nova v2.1, /identity: Keystone v3, /image:
// Glance v2), health, metrics and the internal controller API.
//
// Every request goes through one chain (ServeHTTP): request id, routing,
// recovery, microversion (compute), token validation, policy, handler, fault
// rendering, access log and metrics. Handlers return errors; faultFor maps
// them to faults in one place. See README.md in this folder.
package api

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"runtime/debug"
	"strings"
	"sync/atomic"
	"time"

	"github.com/keel-cloud/keel/cluster"
	"github.com/keel-cloud/keel/internal/ids"
)

// Service is the OpenStack service a route belongs to; it decides the fault
// format and whether microversions apply.
type Service int

const (
	ServiceNone     Service = iota // health, metrics
	ServiceCompute                 // /compute: Nova faults, microversions
	ServiceIdentity                // /identity: Keystone errors
	ServiceImage                   // /image: Glance
)

func (s Service) String() string {
	return [...]string{"none", "compute", "identity", "image"}[s]
}

// HandlerFunc handles one API call. It writes the response through c, or
// returns an error that becomes the fault.
type HandlerFunc func(c *Call) error

// Route is one registered endpoint.
type Route struct {
	Method  string
	Path    string // net/http ServeMux pattern path: /compute/v2.1/servers/{server_id}
	Service Service
	Policy  Rule
	Handle  HandlerFunc
}

func (r Route) pattern() string { return r.Method + " " + r.Path }

// Config configures the API server.
type Config struct {
	Node   *cluster.Node
	Logger *slog.Logger
	// PublicURL is the base URL clients use (the load balancer's), e.g.
	// http://cloud.example.com:8774; the catalog and version documents are
	// built from it. Empty: taken from each request's Host.
	PublicURL string
	// AdminPassword is the password of the admin user created when the
	// cluster is first bootstrapped; empty generates one.
	AdminPassword string
	// DataDir is where a generated admin password is saved (admin-password).
	DataDir string
	// TokenTTL is how long issued tokens are valid (default 1 hour).
	TokenTTL time.Duration
	// NoDefaultFlavors: do not create Nova's m1.* flavors when the cluster
	// is first bootstrapped.
	NoDefaultFlavors bool
	// EvacuateMargin is the safety margin added to a host's fencing window
	// before a host that gossip reports down may be evacuated
	// (DefaultEvacuateMargin if 0).
	EvacuateMargin time.Duration
}

// Server routes every HTTP request of a controller.
type Server struct {
	cfg     Config
	node    *cluster.Node
	log     *slog.Logger
	mux     *http.ServeMux
	routes  []Route
	metrics *metrics
	tokens  *tokenValidator
	images  *imageService
	// hostClient calls the agents' internal API (console output).
	hostClient *http.Client
	// draining: the controller is stopping; /readyz fails so load
	// balancers stop sending requests here (Drain).
	draining atomic.Bool
}

// Drain makes /readyz fail from now on, while every request is still
// served: the controller is about to stop, and a load balancer that
// health-checks /readyz stops sending it new requests before it closes its
// listener (a request sent to a closing listener is cut off unanswered).
func (s *Server) Drain() { s.draining.Store(true) }

// maxBodyBytes bounds a JSON request body, as Nova's
// osapi_max_request_body_size does.
const maxBodyBytes = 114688

// New builds the controller's HTTP handler and registers its leader loops.
func New(cfg Config) *Server {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.TokenTTL <= 0 {
		cfg.TokenTTL = time.Hour
	}
	s := &Server{cfg: cfg, node: cfg.Node, log: cfg.Logger, mux: http.NewServeMux()}
	s.metrics = newMetrics(cfg.Node)
	s.hostClient = &http.Client{Timeout: 30 * time.Second}
	s.tokens = newTokenValidator(cfg.Node)
	s.registerHealth()
	s.registerCompute()
	s.registerAggregates()
	s.registerOperations() // services.go: os-services, os-hypervisors, os-hosts, usage, migrations
	s.registerIdentity()
	s.registerImage()
	s.registerHostAPI()
	s.registerAdminAPI()
	internal := cfg.Node.Handler()
	s.mux.Handle("/internal/v1/", internal)
	s.mux.Handle("GET /metrics", s.metrics.handler())
	s.registerLeaderLoops()
	return s
}

// Routes returns every registered OpenStack route (for tests and docs).
func (s *Server) Routes() []Route { return append([]Route(nil), s.routes...) }

func (s *Server) handle(r Route) {
	if r.Policy == 0 {
		panic(fmt.Sprintf("api: route %s has no policy rule", r.pattern()))
	}
	s.routes = append(s.routes, r)
	s.mux.Handle(r.pattern(), &routeHandler{s: s, route: r})
}

// Call is one request on its way through the chain.
type Call struct {
	W         http.ResponseWriter
	R         *http.Request
	RequestID string
	Log       *slog.Logger
	Route     *Route
	// Version is the negotiated compute microversion (compute routes).
	Version Microversion
	// Auth is the validated caller, nil if the request carried no token.
	Auth *Auth
	s    *Server
}

// Context is the request's context.
func (c *Call) Context() context.Context { return c.R.Context() }

// Param returns a path parameter.
func (c *Call) Param(name string) string { return c.R.PathValue(name) }

type routeHandler struct {
	s     *Server
	route Route
}

// ServeHTTP is the chain of every OpenStack route.
func (h *routeHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s, route := h.s, h.route
	rw := &statusWriter{ResponseWriter: w}
	c := &Call{W: rw, R: r, RequestID: requestID(w), Route: &route, s: s}
	if route.Service == ServiceCompute {
		// Nova also sends its request id under the older name, which
		// clients (Tempest among them) read to find a request's
		// instance action.
		w.Header().Set("X-Compute-Request-Id", c.RequestID)
	}
	c.Log = s.log.With("request_id", c.RequestID)
	start := time.Now()
	defer func() {
		if p := recover(); p != nil {
			c.Log.Error("handler panicked; answered 500", "route", route.pattern(), "panic", p, "stack", string(debug.Stack()))
			if !rw.wroteHeader {
				s.writeFault(c, Errorf(http.StatusInternalServerError,
					"Unexpected API Error. The controller log has the details under request id %s.", c.RequestID))
			}
		}
		s.observe(c, route.Service, route.pattern(), rw.status, start)
	}()
	if err := s.prepare(c); err != nil {
		s.writeFault(c, err)
		return
	}
	if err := route.Handle(c); err != nil {
		if !rw.wroteHeader {
			e := faultFor(err, c.RequestID)
			if e.Status >= 500 {
				// The client's message is generic; the cause is here, under
				// the request id the message names.
				c.Log.Error("request failed: the cause", "error", err)
			}
			s.writeFault(c, e)
		} else {
			c.Log.Error("handler failed after writing its response", "error", err)
		}
	}
}

// prepare negotiates the microversion, validates the token and checks the
// policy of c's route.
func (s *Server) prepare(c *Call) *Error {
	route := c.Route
	if route.Service == ServiceCompute {
		v, verr := requestedMicroversion(c.R.Header)
		if verr != nil {
			return verr
		}
		c.Version = v
		setVersionHeaders(c.W.Header(), v)
	}
	if tok := c.R.Header.Get("X-Auth-Token"); tok != "" {
		a, err := s.tokens.validate(c.Context(), tok)
		if err != nil {
			c.Log.Info("token rejected", "route", route.pattern(), "reason", err.Error())
			if route.Policy != Public {
				return unauthorized("")
			}
		}
		c.Auth = a
	}
	if route.Service == ServiceCompute && route.Policy != Public && c.Auth != nil && c.Auth.ProjectID == "" && !c.Auth.System {
		// The compute API acts within a project: an unscoped token is
		// not enough (keystonemiddleware would not pass it either).
		return unauthorized("The compute API needs a token scoped to a project (or to the system).")
	}
	if err := Check(route.Policy, c.Auth, c.R.PathValue("user_id")); err != nil {
		return err
	}
	return nil
}

// requestID makes the request's id and echoes it, as OpenStack services do.
func requestID(w http.ResponseWriter) string {
	id := ids.RequestID()
	w.Header().Set("X-Openstack-Request-Id", id)
	return id
}

func (s *Server) writeFault(c *Call, e *Error) {
	svc := ServiceCompute
	if c.Route != nil {
		svc = c.Route.Service
	}
	for k, vs := range e.Header {
		for _, v := range vs {
			c.W.Header().Add(k, v)
		}
	}
	if e.Status == http.StatusUnauthorized {
		c.W.Header().Set("WWW-Authenticate", fmt.Sprintf("Keystone uri=%q", s.publicURL(c.R)+"/identity"))
	}
	if e.Status == http.StatusServiceUnavailable && c.W.Header().Get("Retry-After") == "" {
		// No leader, a leader change, a timeout: worth retrying soon,
		// and clients (and load balancers) are told when.
		c.W.Header().Set("Retry-After", "1")
	}
	if e.Status >= 500 {
		c.Log.Error("request failed", "status", e.Status, "error", e.Message, "path", c.R.URL.Path)
	}
	writeJSON(c.W, e.Status, faultBody(svc, e))
}

// ServeHTTP routes a request. Unknown paths and wrong methods get faults in
// the style of the service their prefix names.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h, pattern := s.mux.Handler(r)
	if pattern != "" {
		s.mux.ServeHTTP(w, r) // sets the path values Handler does not
		return
	}
	// ServeMux answers 404 or 405 (with Allow) itself; keep its verdict and
	// headers, write an OpenStack fault instead of its text body.
	probe := &headerProbe{h: http.Header{}}
	h.ServeHTTP(probe, r)
	svc := serviceOf(r.URL.Path)
	route := Route{Service: svc, Method: r.Method, Path: "unmatched"}
	rw := &statusWriter{ResponseWriter: w}
	c := &Call{W: rw, R: r, RequestID: requestID(w), Route: &route, s: s}
	if route.Service == ServiceCompute {
		// Nova also sends its request id under the older name, which
		// clients (Tempest among them) read to find a request's
		// instance action.
		w.Header().Set("X-Compute-Request-Id", c.RequestID)
	}
	c.Log = s.log.With("request_id", c.RequestID)
	start := time.Now()
	var e *Error
	switch probe.status {
	case http.StatusMethodNotAllowed:
		e = Errorf(http.StatusMethodNotAllowed, "The method %s is not allowed for %s.", r.Method, r.URL.Path)
		e.Header = http.Header{"Allow": probe.h.Values("Allow")}
	case http.StatusMovedPermanently, http.StatusTemporaryRedirect, http.StatusPermanentRedirect:
		for k, v := range probe.h {
			w.Header()[k] = v
		}
		w.WriteHeader(probe.status)
		return
	default:
		e = notFound("The resource could not be found.")
	}
	if svc == ServiceCompute {
		if v, verr := requestedMicroversion(r.Header); verr == nil {
			setVersionHeaders(w.Header(), v)
		}
	}
	s.writeFault(c, e)
	s.observe(c, svc, "unmatched", rw.status, start)
}

func serviceOf(path string) Service {
	switch {
	case strings.HasPrefix(path, "/identity"):
		return ServiceIdentity
	case strings.HasPrefix(path, "/image"):
		return ServiceImage
	}
	return ServiceCompute
}

// publicURL is the base URL clients reach this cloud at.
func (s *Server) publicURL(r *http.Request) string {
	if s.cfg.PublicURL != "" {
		return strings.TrimRight(s.cfg.PublicURL, "/")
	}
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	return scheme + "://" + r.Host
}

// statusWriter records the status a handler wrote.
type statusWriter struct {
	http.ResponseWriter
	status      int
	wroteHeader bool
}

func (w *statusWriter) WriteHeader(code int) {
	if !w.wroteHeader {
		w.status, w.wroteHeader = code, true
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if !w.wroteHeader {
		w.WriteHeader(http.StatusOK)
	}
	return w.ResponseWriter.Write(b)
}

// headerProbe captures what ServeMux's own 404/405 handler would answer.
type headerProbe struct {
	h      http.Header
	status int
}

func (p *headerProbe) Header() http.Header         { return p.h }
func (p *headerProbe) Write(b []byte) (int, error) { return len(b), nil }
func (p *headerProbe) WriteHeader(code int)        { p.status = code }
