package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"time"

	"github.com/keel-cloud/keel/cluster"
	"github.com/keel-cloud/keel/fsm"
	"github.com/keel-cloud/keel/internal/hostapi"
	"github.com/keel-cloud/keel/internal/ids"
)

// The controllers' side of the agent contract (internal/hostapi): host
// registration, the blocking query of a host's assignments, task reports
// and image data for the hosts. Every call is signed with the cluster key.

func (s *Server) registerHostAPI() {
	auth := func(h http.HandlerFunc) http.Handler { return s.node.Authenticate(h) }
	s.mux.Handle("POST /internal/v1/hosts/{host}", auth(s.registerHost))
	s.mux.Handle("GET /internal/v1/hosts/{host}/servers", auth(s.hostAssignments))
	s.mux.Handle("POST /internal/v1/hosts/{host}/servers/{server_id}/report", auth(s.hostReport))
	s.mux.Handle("POST /internal/v1/hosts/{host}/migrations/{migration_id}/complete", auth(s.hostCompleteMigration))
	s.mux.Handle("GET /internal/v1/images/{image_id}/file", auth(s.hostImage))
}

// hostError answers an agent's call with the contract's error body.
func (s *Server) hostError(w http.ResponseWriter, err error) {
	status, code := http.StatusInternalServerError, "internal"
	if fe, ok := fsm.AsError(err); ok {
		switch fe.Kind {
		case fsm.KindInvalid:
			status, code = http.StatusBadRequest, "invalid"
		case fsm.KindNotFound:
			status, code = http.StatusNotFound, "not_found"
		case fsm.KindConflict:
			status, code = http.StatusConflict, "conflict"
		}
	} else if errors.Is(err, cluster.ErrNoLeader) || errors.Is(err, cluster.ErrShutdown) || errors.Is(err, cluster.ErrOutcomeUnknown) ||
		errors.Is(err, context.DeadlineExceeded) {
		status, code = http.StatusServiceUnavailable, "unavailable"
		w.Header().Set("Retry-After", "1")
	} else if errors.Is(err, cluster.ErrUpgradeIncomplete) {
		// The agent keeps its report and sends it again: it goes through
		// once every controller runs the new binary.
		status, code = http.StatusServiceUnavailable, "upgrade_incomplete"
		w.Header().Set("Retry-After", "10")
	}
	writeJSON(w, status, map[string]string{"code": code, "error": err.Error()})
}

func decodeInternal(r *http.Request, v any) error {
	if err := json.NewDecoder(io.LimitReader(r.Body, 1<<20)).Decode(v); err != nil {
		return fsm.Errorf(fsm.KindInvalid, "request body is not the JSON the contract expects: %v", err)
	}
	return nil
}

// registerHost is POST /internal/v1/hosts/{host}.
func (s *Server) registerHost(w http.ResponseWriter, r *http.Request) {
	var reg hostapi.Registration
	if err := decodeInternal(r, &reg); err != nil {
		s.hostError(w, err)
		return
	}
	if reg.Host != r.PathValue("host") {
		s.hostError(w, fsm.Errorf(fsm.KindInvalid, "registration of host %q sent to the path of host %q", reg.Host, r.PathValue("host")))
		return
	}
	cmd := &fsm.RegisterHost{Registration: reg, ServiceID: ids.UUID(), HypervisorID: ids.UUID(), Now: time.Now().UnixMicro()}
	var h fsm.Host
	if err := s.apply(r.Context(), cmd, &h); err != nil {
		s.hostError(w, err)
		return
	}
	s.log.Info("compute host registered", "host", h.Host, "zone", h.Zone, "vcpus", h.VCPUs, "memory_mb", h.MemoryMB, "disk_gb", h.DiskGB, "agent", h.AgentAddr)
	writeJSON(w, http.StatusOK, hostStatus(&h))
}

func hostStatus(h *fsm.Host) hostapi.HostStatus {
	return hostapi.HostStatus{Host: h.Host, Registered: true, Disabled: h.Disabled, DisabledReason: h.DisabledReason, ForcedDown: h.ForcedDown, Up: h.Alive()}
}

// hostAssignments is the blocking query GET
// /internal/v1/hosts/{host}/servers?index=N&wait=30s: it answers as soon as
// anything the host's agent must see (its servers, its host record) changed
// after index N, or when the wait runs out.
func (s *Server) hostAssignments(w http.ResponseWriter, r *http.Request) {
	host := r.PathValue("host")
	q := r.URL.Query()
	minIndex, _ := strconv.ParseUint(q.Get("index"), 10, 64)
	wait := cluster.MaxBlockingWait
	if v := q.Get("wait"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d < 0 {
			s.hostError(w, fsm.Errorf(fsm.KindInvalid, "wait=%q is not a duration such as 30s", v))
			return
		}
		wait = min(d, cluster.MaxBlockingWait)
	}
	ctx := r.Context()
	if minIndex == 0 {
		// A first query (an agent that just started) reads what the
		// cluster committed, not what this controller applied so far.
		if err := s.node.Consistent(ctx); err != nil {
			s.hostError(w, err)
			return
		}
	}
	timer := time.NewTimer(wait)
	defer timer.Stop()
	f := s.node.FSM()
wait:
	for {
		// Woken only by writes of this host's records (or a restore),
		// not by every change of the cluster: a thousand waiting agents
		// cost nothing while other hosts' servers change.
		assign, rec := f.KeyChanged(fsm.TableHostAssignments, host), f.KeyChanged(fsm.TableHost, host)
		idx, _, err := hostIndex(s.node.State(), host)
		if err != nil {
			s.hostError(w, err)
			return
		}
		if idx > minIndex || minIndex == 0 {
			break
		}
		select {
		case <-assign:
		case <-rec:
		case <-timer.C:
			break wait
		case <-ctx.Done():
			return
		}
	}
	fresh := q.Get("fresh") == "1"
	if fresh && minIndex != 0 {
		// The agent renews its fencing lease with this answer: confirm
		// with the leader that this controller's state is current (a
		// controller cut off from the leader must not keep a host's
		// lease alive with old state).
		if err := s.node.Consistent(ctx); err != nil {
			s.hostError(w, err)
			return
		}
	}
	out, err := s.assignments(host)
	if err != nil {
		s.hostError(w, err)
		return
	}
	out.Fresh = fresh
	writeJSON(w, http.StatusOK, out)
}

// hostIndex is the newest index at which the host or any of its servers
// changed.
func hostIndex(r fsm.Reader, host string) (uint64, *fsm.Host, error) {
	idx, err := fsm.HostAssignmentsIndex(r, host)
	if err != nil {
		return 0, nil, err
	}
	h, m, err := fsm.GetHost(r, host)
	if err != nil {
		return idx, nil, nil // not registered (yet, or any more)
	}
	return max(idx, m.ModifyIndex), h, nil
}

// assignments reads what the host's agent must do, from one snapshot of
// the state.
func (s *Server) assignments(host string) (*hostapi.Assignments, error) {
	st := s.node.State()
	idx, h, err := hostIndex(st, host)
	if err != nil {
		return nil, err
	}
	out := &hostapi.Assignments{Index: idx, Host: hostapi.HostStatus{Host: host}, Servers: []hostapi.Assignment{}}
	if h != nil {
		out.Host = hostStatus(h)
	}
	servers, err := fsm.HostServers(st, host)
	if err != nil {
		return nil, err
	}
	images := map[string]*fsm.Image{}
	for _, srv := range servers {
		a := assignmentOf(srv)
		img, seen := images[srv.ImageID]
		if !seen {
			img, _, _ = fsm.GetImage(st, srv.ImageID)
			images[srv.ImageID] = img
		}
		if img != nil {
			a.ImageSHA256, a.ImageFormat, a.ImageSize = img.SHA256, img.DiskFormat, img.Size
		}
		out.Servers = append(out.Servers, a)
	}
	evacuated, err := fsm.EvacuatedFrom(st, host)
	if err != nil {
		return nil, err
	}
	for _, m := range evacuated {
		out.Evacuated = append(out.Evacuated, hostapi.Evacuated{ServerID: m.ServerID, MigrationID: m.ID, Generation: m.SourceGeneration})
	}
	return out, nil
}

// hostCompleteMigration is POST
// /internal/v1/hosts/{host}/migrations/{migration_id}/complete: the host's
// agent destroyed its copy of a server evacuated away from it.
func (s *Server) hostCompleteMigration(w http.ResponseWriter, r *http.Request) {
	cmd := &fsm.CompleteMigration{ID: r.PathValue("migration_id"), Host: r.PathValue("host"), Now: time.Now().UnixMicro()}
	var m fsm.Migration
	if err := s.apply(r.Context(), cmd, &m); err != nil {
		s.hostError(w, err)
		return
	}
	s.log.Info("an evacuated host destroyed its copy of a server: migration completed", "host", cmd.Host, "server_id", m.ServerID, "migration_id", m.ID)
	writeJSON(w, http.StatusOK, map[string]string{"status": m.Status})
}

func assignmentOf(srv *fsm.Server) hostapi.Assignment {
	f := srv.Flavor
	return hostapi.Assignment{
		ID: srv.ID, Name: srv.Name, ProjectID: srv.ProjectID, UserID: srv.UserID, Hostname: srv.Hostname,
		Generation: srv.Generation, VMState: srv.VMState, TaskState: srv.TaskState, PowerState: srv.PowerState,
		VCPUs: f.VCPUs, MemoryMB: f.RAM, RootGB: f.Disk, EphemeralGB: f.Ephemeral, SwapMB: f.Swap, ExtraSpecs: f.ExtraSpecs,
		ImageID: srv.ImageID, KeyData: srv.KeyData, UserData: srv.UserData, Metadata: srv.Metadata,
	}
}

// hostReport is POST /internal/v1/hosts/{host}/servers/{server_id}/report.
func (s *Server) hostReport(w http.ResponseWriter, r *http.Request) {
	var rep hostapi.Report
	if err := decodeInternal(r, &rep); err != nil {
		s.hostError(w, err)
		return
	}
	cmd := &fsm.ReportServer{ID: r.PathValue("server_id"), Host: r.PathValue("host"), Report: rep, Now: time.Now().UnixMicro()}
	resp, err := s.node.Apply(r.Context(), cmd)
	if err != nil {
		s.hostError(w, err)
		return
	}
	if rep.Error != "" {
		s.log.Warn("a host reports a failed task", "host", cmd.Host, "server_id", cmd.ID, "task", rep.Task, "error", rep.Error)
	}
	// The index the report was applied at: an agent that switches
	// controllers ignores answers older than its own report.
	writeJSON(w, http.StatusOK, map[string]uint64{"index": resp.Index})
}

// hostImage is GET /internal/v1/images/{image_id}/file: an image's data
// for a host that builds a server from it, whatever the image's visibility
// (the server's creation was authorised already).
func (s *Server) hostImage(w http.ResponseWriter, r *http.Request) {
	is := s.images
	img, _, err := fsm.GetImage(s.node.State(), r.PathValue("image_id"))
	if err != nil {
		s.hostError(w, err)
		return
	}
	if img.Status != fsm.ImageActive || img.SHA256 == "" {
		s.hostError(w, fsm.Errorf(fsm.KindConflict, "image %s has no data (status %s)", img.ID, img.Status))
		return
	}
	if is.blobs == nil {
		s.hostError(w, fmt.Errorf("this controller cannot serve image data: %v", is.blobsErr))
		return
	}
	defer is.pin(img.SHA256)()
	f, err := is.localBlob(img)
	if err != nil {
		if err := is.fetch(r.Context(), img); err != nil {
			s.hostError(w, err)
			return
		}
		if f, err = is.localBlob(img); err != nil {
			s.hostError(w, err)
			return
		}
	}
	defer f.Close()
	w.Header().Set("Content-Type", "application/octet-stream")
	w.Header().Set("X-Image-Sha256", img.SHA256)
	http.ServeContent(w, r, "", time.Time{}, f)
}
