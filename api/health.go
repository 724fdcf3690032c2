package api

import (
	"context"
	"net/http"
	"time"
)

func (s *Server) registerHealth() {
	s.mux.HandleFunc("GET /healthz", s.healthz)
	s.mux.HandleFunc("GET /readyz", s.readyz)
}

// healthz: the process is up and serving HTTP.
func (s *Server) healthz(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, map[string]string{"status": "ok", "node": s.node.Name()})
}

// readyz: 200 only when this controller knows a leader and has applied
// everything the leader had applied when the check began, i.e. when it can
// serve a linearizable read right now. Load balancers route on it.
func (s *Server) readyz(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
	defer cancel()
	body := map[string]any{"node": s.node.Name(), "leader": s.node.Leader()}
	if s.draining.Load() {
		body["status"], body["reason"] = "unavailable", "draining: this controller is stopping"
		writeJSON(w, http.StatusServiceUnavailable, body)
		return
	}
	if s.node.Leader() == "" {
		body["status"], body["reason"] = "unavailable", "no known leader: an election is running or this controller is cut off from a quorum"
		writeJSON(w, http.StatusServiceUnavailable, body)
		return
	}
	if err := s.node.Consistent(ctx); err != nil {
		body["status"], body["reason"] = "unavailable", "not caught up with the leader: "+err.Error()
		writeJSON(w, http.StatusServiceUnavailable, body)
		return
	}
	body["status"], body["applied_index"] = "ready", s.node.FSM().AppliedIndex()
	writeJSON(w, http.StatusOK, body)
}
