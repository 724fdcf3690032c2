package api

import (
	"cmp"
	"net/http"
	"slices"
	"time"

	"github.com/keel-cloud/keel/fsm"
	"github.com/keel-cloud/keel/internal/ids"
)

// The operators' internal API, for keelctl (signed with the cluster key
// like every internal call): services and hosts with this controller's
// gossip view beside the state the cluster committed, so a disagreement is
// visible; the administrators' switches; and evacuation with progress.
//
//	GET  /internal/v1/admin/services                       {"services": [ServiceRow]}
//	GET  /internal/v1/admin/hosts                          {"hosts": [HostRow]}
//	GET  /internal/v1/admin/hosts/{host}                   HostRow
//	POST /internal/v1/admin/hosts/{host}/service           HostServiceChange -> HostRow
//	GET  /internal/v1/admin/hosts/{host}/servers           {"servers": [HostServer]}
//	GET  /internal/v1/admin/hosts/{host}/evacuations       {"evacuations": [Evacuation]}
//	POST /internal/v1/admin/servers/{server_id}/evacuate   EvacuateRequest -> Evacuation

func (s *Server) registerAdminAPI() {
	auth := func(h func(http.ResponseWriter, *http.Request) error) http.Handler {
		return s.node.Authenticate(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if err := s.node.Consistent(r.Context()); err != nil {
				s.hostError(w, err)
				return
			}
			if err := h(w, r); err != nil {
				s.hostError(w, err)
			}
		}))
	}
	const base = "/internal/v1/admin"
	s.mux.Handle("GET "+base+"/services", auth(s.adminServices))
	s.mux.Handle("GET "+base+"/hosts", auth(s.adminHosts))
	s.mux.Handle("GET "+base+"/hosts/{host}", auth(s.adminHost))
	s.mux.Handle("POST "+base+"/hosts/{host}/service", auth(s.adminHostService))
	s.mux.Handle("GET "+base+"/hosts/{host}/servers", auth(s.adminHostServers))
	s.mux.Handle("GET "+base+"/hosts/{host}/evacuations", auth(s.adminHostEvacuations))
	s.mux.Handle("POST "+base+"/servers/{server_id}/evacuate", auth(s.adminEvacuate))
}

// ServiceRow is one service in `keelctl services`.
type ServiceRow struct {
	fsm.Service
	State string `json:"state"` // up or down, as the API says
	// Gossip is this controller's gossip view of the service's host:
	// alive, suspect, failed, left, unknown; "none" for a host without
	// gossip.
	Gossip string `json:"gossip"`
}

// HostRow is one compute host in `keelctl hosts`.
type HostRow struct {
	Host           string `json:"host"`
	Zone           string `json:"zone"`
	State          string `json:"state"` // up or down (committed)
	ForcedDown     bool   `json:"forced_down"`
	Disabled       bool   `json:"disabled"`
	DisabledReason string `json:"disabled_reason,omitempty"`
	Gossip         string `json:"gossip"`
	Servers        int    `json:"servers"`
	VCPUsUsed      int    `json:"vcpus_used"`
	VCPUs          int    `json:"vcpus"`
	MemoryMBUsed   int    `json:"memory_mb_used"`
	MemoryMB       int    `json:"memory_mb"`
	FenceAfterMS   int64  `json:"fence_after_ms"`
	// EvacuableInMS: 0 when the host may be evacuated now, the wait
	// otherwise, -1 when it may not be (up, or down without fencing and
	// not forced down).
	EvacuableInMS  int64  `json:"evacuable_in_ms"`
	StateChangedAt string `json:"state_changed_at,omitempty"`
	AgentAddr      string `json:"agent_addr"`
}

func (s *Server) gossipOf(name string, hasGossip bool) string {
	if !hasGossip {
		return "none"
	}
	return s.node.GossipStatus(name)
}

func stateWord(alive bool) string {
	if alive {
		return "up"
	}
	return "down"
}

func (s *Server) adminServices(w http.ResponseWriter, r *http.Request) error {
	st := s.node.State()
	ctrls, err := fsm.ControllerServices(st)
	if err != nil {
		return err
	}
	hosts, err := fsm.ListHosts(st)
	if err != nil {
		return err
	}
	rows := make([]ServiceRow, 0, len(ctrls)+len(hosts))
	for _, sv := range ctrls {
		rows = append(rows, ServiceRow{Service: sv, State: stateWord(sv.Alive()), Gossip: s.gossipOf(sv.Host, true)})
	}
	for _, h := range hosts {
		sv := fsm.ServiceOf(h)
		rows = append(rows, ServiceRow{Service: sv, State: stateWord(sv.Alive()), Gossip: s.gossipOf(h.Host, h.Gossip)})
	}
	slices.SortStableFunc(rows, func(a, b ServiceRow) int { return cmp.Compare(a.Seq, b.Seq) })
	writeJSON(w, http.StatusOK, map[string]any{"services": rows})
	return nil
}

func (s *Server) hostRow(st fsm.Reader, h *fsm.Host, now time.Time) (HostRow, error) {
	servers, err := fsm.HostServers(st, h.Host)
	if err != nil {
		return HostRow{}, err
	}
	row := HostRow{
		Host: h.Host, Zone: h.AvailabilityZone(), State: stateWord(h.Alive()), ForcedDown: h.ForcedDown,
		Disabled: h.Disabled, DisabledReason: h.DisabledReason, Gossip: s.gossipOf(h.Host, h.Gossip),
		Servers: len(servers), VCPUsUsed: h.VCPUsUsed, VCPUs: h.VCPUs, MemoryMBUsed: h.MemoryMBUsed, MemoryMB: h.MemoryMB,
		FenceAfterMS: h.FenceAfterMS, EvacuableInMS: -1, AgentAddr: h.AgentAddr,
	}
	if h.StateChangedAt > 0 {
		row.StateChangedAt = time.UnixMicro(h.StateChangedAt).UTC().Format(time.RFC3339)
	}
	if at, ok := h.EvacuableAt(s.evacuateMargin().Milliseconds()); ok {
		row.EvacuableInMS = max(0, time.UnixMicro(at).Sub(now).Milliseconds())
	}
	return row, nil
}

func (s *Server) adminHosts(w http.ResponseWriter, r *http.Request) error {
	st := s.node.State()
	hosts, err := fsm.ListHosts(st)
	if err != nil {
		return err
	}
	now := time.Now()
	rows := make([]HostRow, 0, len(hosts))
	for _, h := range hosts {
		row, err := s.hostRow(st, h, now)
		if err != nil {
			return err
		}
		rows = append(rows, row)
	}
	writeJSON(w, http.StatusOK, map[string]any{"hosts": rows})
	return nil
}

func (s *Server) adminHost(w http.ResponseWriter, r *http.Request) error {
	st := s.node.State()
	h, _, err := fsm.GetHost(st, r.PathValue("host"))
	if err != nil {
		return err
	}
	row, err := s.hostRow(st, h, time.Now())
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, row)
	return nil
}

// HostServiceChange is what `keelctl host disable|enable|force-down`
// changes; nil fields are kept.
type HostServiceChange struct {
	Disabled       *bool   `json:"disabled,omitempty"`
	DisabledReason *string `json:"disabled_reason,omitempty"`
	ForcedDown     *bool   `json:"forced_down,omitempty"`
}

func (s *Server) adminHostService(w http.ResponseWriter, r *http.Request) error {
	var c HostServiceChange
	if err := decodeInternal(r, &c); err != nil {
		return err
	}
	host := r.PathValue("host")
	cmd := &fsm.UpdateService{Host: host, Binary: fsm.BinaryCompute, Disabled: c.Disabled, DisabledReason: c.DisabledReason,
		ForcedDown: c.ForcedDown, Now: time.Now().UnixMicro()}
	if err := s.apply(r.Context(), cmd, nil); err != nil {
		return err
	}
	s.log.Warn("an operator changed a compute service (keelctl)", "host", host, "disabled", c.Disabled, "reason", c.DisabledReason, "forced_down", c.ForcedDown)
	return s.adminHost(w, r)
}

// HostServer is a server on a host, as keelctl follows an evacuation.
type HostServer struct {
	ID        string `json:"id"`
	Name      string `json:"name"`
	Status    string `json:"status"`
	TaskState string `json:"task_state,omitempty"`
	ProjectID string `json:"project_id"`
}

func (s *Server) adminHostServers(w http.ResponseWriter, r *http.Request) error {
	servers, err := fsm.HostServers(s.node.State(), r.PathValue("host"))
	if err != nil {
		return err
	}
	out := make([]HostServer, 0, len(servers))
	for _, srv := range servers {
		out = append(out, HostServer{ID: srv.ID, Name: srv.Name, Status: srv.Status, TaskState: srv.TaskState, ProjectID: srv.ProjectID})
	}
	writeJSON(w, http.StatusOK, map[string]any{"servers": out})
	return nil
}

// Evacuation is one server's evacuation: its migration and where the
// server is now.
type Evacuation struct {
	MigrationID     string `json:"migration_id"`
	MigrationStatus string `json:"migration_status"`
	ServerID        string `json:"server_id"`
	ServerStatus    string `json:"server_status"`
	TaskState       string `json:"task_state,omitempty"`
	Host            string `json:"host,omitempty"` // the server's host now
	Fault           string `json:"fault,omitempty"`
}

func (s *Server) evacuationOf(st fsm.Reader, m *fsm.Migration) Evacuation {
	e := Evacuation{MigrationID: m.ID, MigrationStatus: m.Status, ServerID: m.ServerID, ServerStatus: fsm.StatusDeleted}
	if srv, _, err := fsm.GetServer(st, m.ServerID); err == nil && !srv.Deleted {
		e.ServerStatus, e.TaskState, e.Host = srv.Status, srv.TaskState, srv.Host
		if srv.Fault != nil {
			e.Fault = srv.Fault.Message
		}
	}
	return e
}

func (s *Server) adminHostEvacuations(w http.ResponseWriter, r *http.Request) error {
	st := s.node.State()
	host := r.PathValue("host")
	var out []Evacuation
	err := fsm.Migrations(st, func(m *fsm.Migration) bool {
		if m.SourceCompute == host && m.Type == fsm.MigrationEvacuation {
			out = append(out, s.evacuationOf(st, m))
		}
		return true
	})
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]any{"evacuations": out})
	return nil
}

// EvacuateRequest is keelctl's evacuation of one server.
type EvacuateRequest struct {
	Host  string `json:"host,omitempty"`
	Force bool   `json:"force,omitempty"`
}

func (s *Server) adminEvacuate(w http.ResponseWriter, r *http.Request) error {
	var req EvacuateRequest
	if err := decodeInternal(r, &req); err != nil {
		return err
	}
	cmd := &fsm.EvacuateServer{ID: r.PathValue("server_id"), Host: req.Host, Force: req.Force,
		MarginMS: s.evacuateMargin().Milliseconds(), MigrationID: ids.UUID(), RequestID: "req-" + ids.UUID(),
		Now: time.Now().UnixMicro()}
	var m fsm.Migration
	if err := s.apply(r.Context(), cmd, &m); err != nil {
		return err
	}
	s.log.Info("server evacuation accepted (keelctl)", "server_id", m.ServerID, "from_host", m.SourceCompute, "migration_id", m.ID)
	writeJSON(w, http.StatusOK, s.evacuationOf(s.node.State(), &m))
	return nil
}
