package api

import (
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/keel-cloud/keel/cluster"
)

// metrics are the controller's Prometheus figures, in a registry of its own
// (several controllers may share a process in tests).
type metrics struct {
	reg      *prometheus.Registry
	requests *prometheus.CounterVec
	duration *prometheus.HistogramVec
}

func newMetrics(node *cluster.Node) *metrics {
	m := &metrics{reg: prometheus.NewRegistry()}
	m.requests = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "keel_http_requests_total",
		Help: "API requests by service, route, method and status code.",
	}, []string{"service", "route", "method", "code"})
	m.duration = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "keel_http_request_duration_seconds",
		Help:    "API request latency by service, route and method.",
		Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
	}, []string{"service", "route", "method"})
	gauge := func(name, help string, f func(cluster.ServerStatus) float64) prometheus.Collector {
		return prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: name, Help: help}, func() float64 { return f(node.Self()) })
	}
	m.reg.MustRegister(m.requests, m.duration,
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		gauge("keel_raft_applied_index", "Last Raft index applied to this controller's state machine.",
			func(s cluster.ServerStatus) float64 { return float64(s.AppliedIndex) }),
		gauge("keel_raft_commit_index", "Raft commit index known to this controller.",
			func(s cluster.ServerStatus) float64 { return float64(s.CommitIndex) }),
		gauge("keel_raft_term", "Current Raft term.",
			func(s cluster.ServerStatus) float64 { return float64(s.Term) }),
		gauge("keel_raft_is_leader", "1 if this controller is the Raft leader.",
			func(s cluster.ServerStatus) float64 {
				if s.Role == "leader" {
					return 1
				}
				return 0
			}),
		gauge("keel_raft_last_contact_seconds", "Time since this controller last heard from the leader (0 on the leader, -1 never).",
			func(s cluster.ServerStatus) float64 {
				if s.LastContactMS < 0 {
					return -1
				}
				return float64(s.LastContactMS) / 1000
			}),
	)
	return m
}

func (m *metrics) handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{})
}

// observe records a finished request: access log line and metrics.
func (s *Server) observe(c *Call, svc Service, route string, status int, start time.Time) {
	if status == 0 {
		status = http.StatusOK
	}
	d := time.Since(start)
	s.metrics.requests.WithLabelValues(svc.String(), route, c.R.Method, strconv.Itoa(status)).Inc()
	s.metrics.duration.WithLabelValues(svc.String(), route, c.R.Method).Observe(d.Seconds())
	c.Log.Info("request", "method", c.R.Method, "path", c.R.URL.Path, "status", status,
		"duration_ms", float64(d.Microseconds())/1000, "remote", c.R.RemoteAddr)
}
