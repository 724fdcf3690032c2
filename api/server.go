// Package api serves Keel's HTTP API on one port: the OpenStack services
// under path prefixes (added by later work: /compute, /identity, /image),
// health endpoints, and the internal controller-to-controller API.
package api

import (
	"context"
	"encoding/json"
	"net/http"
	"time"

	"github.com/julienschmidt/httprouter"

	"github.com/keel-cloud/keel/cluster"
)

// Server routes every HTTP request of a controller.
type Server struct {
	node   *cluster.Node
	router *httprouter.Router
}

// New builds the controller's HTTP handler.
func New(node *cluster.Node) *Server {
	s := &Server{node: node, router: httprouter.New()}
	s.router.GET("/healthz", s.healthz)
	s.router.GET("/readyz", s.readyz)
	internal := node.Handler()
	for _, m := range []string{http.MethodGet, http.MethodPost} {
		s.router.Handler(m, "/internal/v1/*path", internal)
	}
	return s
}

func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.router.ServeHTTP(w, r) }

// healthz: the process is up and serving HTTP.
func (s *Server) healthz(w http.ResponseWriter, r *http.Request, _ httprouter.Params) {
	writeJSON(w, http.StatusOK, map[string]string{"status": "ok", "node": s.node.Name()})
}

// readyz: 200 only when this controller knows a leader and has applied
// everything the leader had applied when the check began, i.e. when it can
// serve a linearizable read right now. Load balancers route on it.
func (s *Server) readyz(w http.ResponseWriter, r *http.Request, _ httprouter.Params) {
	ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
	defer cancel()
	body := map[string]any{"node": s.node.Name(), "leader": s.node.Leader()}
	if s.node.Leader() == "" {
		body["status"], body["reason"] = "unavailable", "no known leader: an election is running or this controller is cut off from a quorum"
		writeJSON(w, http.StatusServiceUnavailable, body)
		return
	}
	idx, err := s.node.ReadIndex(ctx)
	if err == nil && s.node.FSM().AppliedIndex() < idx {
		err = s.node.WaitApplied(ctx, idx)
	}
	if err != nil {
		body["status"], body["reason"] = "unavailable", "not caught up with the leader: "+err.Error()
		writeJSON(w, http.StatusServiceUnavailable, body)
		return
	}
	body["status"], body["applied_index"] = "ready", s.node.FSM().AppliedIndex()
	writeJSON(w, http.StatusOK, body)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}
