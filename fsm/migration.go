package fsm

import (
	"fmt"
	"math"
	"slices"
	"time"

	"github.com/keel-cloud/keel/internal/hostapi"
)

// Evacuation and migration records. An evacuation moves a server off a
// host that is down: Apply refuses it unless the host is forced down or its
// fencing window has passed (Host.EvacuableAt), releases the claim on the
// old host and queues the server for the scheduler, which places it with a
// new generation. The old host's agent, if it comes back, no longer finds
// the server among its assignments, destroys its copy and completes the
// migration (CompleteMigration).

// TableMigration holds migration records, keyed by uuid.
const TableMigration = "migration"

// Indexes of migrations.
const (
	IndexMigrationCreated = "created" // newest first: (inverted created, inverted id)
	IndexMigrationServer  = "server"  // (server id)
	IndexMigrationSource  = "source"  // (source host)
)

// migrationSequence numbers migrations (their integer ids).
const migrationSequence = "migration"

// Migration types and statuses, Nova's words.
const (
	MigrationEvacuation = "evacuation"

	MigrationAccepted     = "accepted"
	MigrationPreMigrating = "pre-migrating"
	MigrationDone         = "done"
	MigrationCompleted    = "completed"
	MigrationFailed       = "failed"
	MigrationError        = "error"
)

// TaskRebuilding is the task of an evacuated server waiting for a host;
// TaskRebuildSpawning while its new host builds it.
const (
	TaskRebuilding      = "rebuilding"
	TaskRebuildSpawning = hostapi.TaskRebuildSpawning
)

// Migration is a Nova migration record.
type Migration struct {
	ID            string `json:"id"`  // uuid (shown from 2.59)
	Seq           int64  `json:"seq"` // integer id
	ServerID      string `json:"server_id"`
	ProjectID     string `json:"project_id"`
	UserID        string `json:"user_id"`
	Type          string `json:"type"`
	Status        string `json:"status"`
	SourceCompute string `json:"source_compute"`
	SourceNode    string `json:"source_node"`
	DestCompute   string `json:"dest_compute,omitempty"`
	DestNode      string `json:"dest_node,omitempty"`
	DestHost      string `json:"dest_host,omitempty"` // the destination's IP, as Nova records it
	// FlavorID is the server's flavor (old and new are the same for an
	// evacuation).
	FlavorID string `json:"flavor_id"`
	// SourceGeneration is the server's generation on the source host: its
	// copies there are of this generation or older.
	SourceGeneration uint64 `json:"source_generation"`
	CreatedAt        int64  `json:"created_at"`
	UpdatedAt        int64  `json:"updated_at"`
}

// open reports whether the source host still has to clean up.
func (m *Migration) open() bool {
	return m.Status == MigrationAccepted || m.Status == MigrationPreMigrating || m.Status == MigrationDone
}

func (m *Migration) indexKeys() []string {
	inv := []byte(m.ID)
	for i, b := range inv {
		inv[i] = 0xff - b
	}
	return []string{fmt.Sprintf("%020d", math.MaxInt64-m.CreatedAt), string(inv)}
}

func putMigration(tx *Txn, m *Migration, isNew bool) error {
	if isNew {
		if err := tx.PutIndex(TableMigration, IndexMigrationCreated, m.ID, m.indexKeys()...); err != nil {
			return err
		}
		if err := tx.PutIndex(TableMigration, IndexMigrationServer, m.ID, m.ServerID); err != nil {
			return err
		}
		if err := tx.PutIndex(TableMigration, IndexMigrationSource, m.ID, m.SourceCompute); err != nil {
			return err
		}
	}
	if err := tx.Put(TableMigration, m.ID, m); err != nil {
		return err
	}
	// The source host's agent learns of the migration (and of its end).
	return touchHost(tx, m.SourceCompute)
}

// EvacuateServer is an administrator's evacuate action.
type EvacuateServer struct {
	ID string `json:"id"`
	// Host is the destination asked for ("" lets the scheduler choose).
	// Without Force the scheduler's filters still check it (2.29+).
	Host  string `json:"host,omitempty"`
	Force bool   `json:"force,omitempty"`
	// Stop: the server ends SHUTOFF whatever its state (2.95); otherwise
	// a stopped server stays stopped and any other becomes ACTIVE.
	Stop bool `json:"stop,omitempty"`
	// MarginMS is the controllers' safety margin added to the host's
	// fencing window (--evacuate-margin).
	MarginMS    int64  `json:"margin_ms"`
	MigrationID string `json:"migration_id"`
	RequestID   string `json:"request_id"`
	UserID      string `json:"user_id"`
	ProjectID   string `json:"project_id"`
	Now         int64  `json:"now"`
}

func (*EvacuateServer) CommandType() CommandType { return CmdEvacuateServer }
func (*EvacuateServer) CommandVersion() uint8    { return 1 }

// evacuateStates are the vm_states Nova evacuates from.
var evacuateStates = []string{VMActive, VMStopped, VMError}

func applyEvacuateServer(tx *Txn, c *EvacuateServer) (any, error) {
	s, err := liveServer(tx, c.ID)
	if err != nil {
		return nil, err
	}
	if c.MigrationID == "" {
		return nil, Errorf(KindInvalid, "evacuating server %s needs a migration id", s.ID)
	}
	if !slices.Contains(evacuateStates, s.VMState) {
		return nil, invalidState("evacuate", s.ID, "vm_state", s.VMState)
	}
	if s.TaskState != "" {
		return nil, invalidState("evacuate", s.ID, "task_state", s.TaskState)
	}
	if s.Host == "" {
		return nil, Errorf(KindConflict, "Instance %s has no host to evacuate it from (it never built)", s.ID)
	}
	src, _, err := Get[Host](tx, TableHost, s.Host)
	if err != nil && !IsNotFound(err) {
		return nil, err
	}
	if src != nil {
		at, ok := src.EvacuableAt(c.MarginMS)
		switch {
		case src.Alive():
			return nil, Errorf(KindConflict, "Compute service of %s is still in use.", src.Host)
		case !ok:
			return nil, Errorf(KindConflict, "Compute service of %s is down, but its agent does not fence itself (no --fence-after), so it may still run servers: make sure the host is off, then force it down (openstack compute service set --down %s %s) and evacuate again.", src.Host, src.Host, BinaryCompute)
		case c.Now < at:
			wait := time.Duration(at-c.Now) * time.Microsecond
			return nil, Errorf(KindConflict, "Compute service of %s is down, but its agent may still run servers until its fencing window (%s) and the safety margin (%s) have passed: evacuate again in %s, or force the service down (openstack compute service set --down %s %s) once the host is known to be off.",
				src.Host, time.Duration(src.FenceAfterMS)*time.Millisecond, time.Duration(c.MarginMS)*time.Millisecond, wait.Round(time.Second), src.Host, BinaryCompute)
		}
	}
	if c.Host != "" {
		if c.Host == s.Host {
			return nil, Errorf(KindInvalid, "The target host can't be the same one.")
		}
		if _, _, err := Get[Host](tx, TableHost, c.Host); IsNotFound(err) {
			return nil, Errorf(KindNotFound, "Compute host %s could not be found.", c.Host)
		} else if err != nil {
			return nil, err
		}
	}
	seq, err := nextSeq(tx, migrationSequence, 1)
	if err != nil {
		return nil, err
	}
	m := &Migration{
		ID: c.MigrationID, Seq: seq, ServerID: s.ID, ProjectID: s.ProjectID, UserID: s.UserID,
		Type: MigrationEvacuation, Status: MigrationAccepted,
		SourceCompute: s.Host, SourceNode: s.Node, DestCompute: c.Host, DestNode: c.Host,
		FlavorID: s.Flavor.ID, SourceGeneration: s.Generation, CreatedAt: c.Now, UpdatedAt: c.Now,
	}
	if err := putMigration(tx, m, true); err != nil {
		return nil, err
	}
	if err := chargeHost(tx, s, -1); err != nil {
		return nil, err
	}
	if err := tx.DeleteIndex(TableServer, IndexServerHost, s.ID, s.Host); err != nil {
		return nil, err
	}
	// The old host's agent is woken by putMigration: the server is no
	// longer among its assignments.
	s.EvacuatedFrom, s.MigrationID = s.Host, m.ID
	s.EvacuateStop = c.Stop || s.VMState == VMStopped
	s.Host, s.Node = "", ""
	s.ForcedHost, s.RequestedHost = "", ""
	if c.Force {
		s.ForcedHost = c.Host
	} else {
		s.RequestedHost = c.Host
	}
	s.setState(s.VMState, TaskRebuilding)
	s.UpdatedAt = c.Now
	if err := recordAction(tx, s, "evacuate", c.RequestID, c.UserID, c.ProjectID, c.Now, "conductor_rebuild_server"); err != nil {
		return nil, err
	}
	if err := tx.PutIndex(TableServer, IndexServerPending, s.ID, pendingKey(s)...); err != nil {
		return nil, err
	}
	if err := putServer(tx, s); err != nil {
		return nil, err
	}
	return m, nil
}

// placeEvacuated is PlaceServers' part for a server being evacuated: it is
// built on its new host, keeping its vm_state.
func placeEvacuated(tx *Txn, s *Server, h *Host, now int64) error {
	s.setState(s.VMState, TaskRebuildSpawning)
	if err := withAction(tx, s, func(a *InstanceAction) {
		a.finishEvent("conductor_rebuild_server", now, "")
		a.startEvent("compute_rebuild_instance", h.Host, now)
	}); err != nil {
		return err
	}
	return updateMigration(tx, s.MigrationID, now, func(m *Migration) {
		m.DestCompute, m.DestNode, m.DestHost = h.Host, h.Host, h.HostIP
		if m.Status == MigrationAccepted {
			m.Status = MigrationPreMigrating
		}
	})
}

// failEvacuation returns a server whose evacuation found no host to its old
// host, in ERROR (as Nova does), with the migration in error.
func failEvacuation(tx *Txn, s *Server, msg string, now int64) error {
	if err := tx.DeleteIndex(TableServer, IndexServerPending, s.ID, pendingKey(s)...); err != nil {
		return err
	}
	m, _, err := Get[Migration](tx, TableMigration, s.MigrationID)
	if err != nil {
		return err
	}
	s.Host, s.Node, s.Generation = m.SourceCompute, m.SourceNode, m.SourceGeneration
	if err := chargeHost(tx, s, +1); err != nil {
		return err
	}
	if err := tx.PutIndex(TableServer, IndexServerHost, s.ID, s.Host); err != nil {
		return err
	}
	s.setState(VMError, "")
	s.Fault = &ServerFault{Code: 500, Message: msg, Created: now}
	s.UpdatedAt = now
	s.MigrationID, s.EvacuatedFrom, s.EvacuateStop = "", "", false
	if err := withAction(tx, s, func(a *InstanceAction) { a.finishEvent("conductor_rebuild_server", now, msg) }); err != nil {
		return err
	}
	m.Status, m.UpdatedAt = MigrationError, now
	if err := putMigration(tx, m, false); err != nil {
		return err
	}
	return saveServer(tx, s)
}

// finishEvacuation records the end of the build on the new host.
func finishEvacuation(tx *Txn, s *Server, errMsg string, now int64) error {
	id := s.MigrationID
	if errMsg != "" {
		s.setState(VMError, "")
		s.Fault = &ServerFault{Code: 500, Message: errMsg, Created: now}
	} else if s.EvacuateStop {
		// Built running; stopped next, as Nova stops an evacuated server
		// that was stopped (or any, from 2.95).
		s.setState(VMActive, hostapi.TaskPoweringOff)
	} else {
		s.setState(VMActive, "")
	}
	s.MigrationID, s.EvacuatedFrom, s.EvacuateStop = "", "", false
	if err := withAction(tx, s, func(a *InstanceAction) {
		a.finishEvent("compute_rebuild_instance", now, errMsg)
		if errMsg == "" && s.TaskState == hostapi.TaskPoweringOff {
			a.startEvent("compute_stop_instance", s.Host, now)
		}
	}); err != nil {
		return err
	}
	return updateMigration(tx, id, now, func(m *Migration) {
		switch {
		case errMsg != "":
			m.Status = MigrationFailed
		case m.Status == MigrationAccepted || m.Status == MigrationPreMigrating:
			m.Status = MigrationDone
		}
	})
}

func updateMigration(tx *Txn, id string, now int64, fn func(m *Migration)) error {
	if id == "" {
		return nil
	}
	m, _, err := Get[Migration](tx, TableMigration, id)
	if IsNotFound(err) {
		return nil
	} else if err != nil {
		return err
	}
	fn(m)
	m.UpdatedAt = now
	return putMigration(tx, m, false)
}

// CompleteMigration is the old host's agent saying it destroyed its copy of
// an evacuated server.
type CompleteMigration struct {
	ID   string `json:"id"`
	Host string `json:"host"`
	Now  int64  `json:"now"`
}

func (*CompleteMigration) CommandType() CommandType { return CmdCompleteMigr }
func (*CompleteMigration) CommandVersion() uint8    { return 1 }

func applyCompleteMigration(tx *Txn, c *CompleteMigration) (any, error) {
	m, _, err := Get[Migration](tx, TableMigration, c.ID)
	if err != nil {
		return nil, Errorf(KindNotFound, "Migration %s could not be found.", c.ID)
	}
	if m.SourceCompute != c.Host {
		return nil, Errorf(KindConflict, "migration %s is from host %s, not %s", m.ID, m.SourceCompute, c.Host)
	}
	if !m.open() {
		return m, nil // completed already, or failed: nothing to do
	}
	m.Status, m.UpdatedAt = MigrationCompleted, c.Now
	return m, putMigration(tx, m, false)
}

// GetMigration returns a migration by uuid.
func GetMigration(r Reader, id string) (*Migration, error) {
	m, _, err := Get[Migration](r, TableMigration, id)
	if err != nil {
		return nil, Errorf(KindNotFound, "Migration %s could not be found.", id)
	}
	return m, nil
}

// Migrations calls fn with every migration, newest first (created_at, then
// id, descending: Nova's order), until fn returns false.
func Migrations(r Reader, fn func(*Migration) bool) error {
	var ids []string
	if err := r.ScanIndex(TableMigration, IndexMigrationCreated, nil, func(pk string) bool { ids = append(ids, pk); return true }); err != nil {
		return err
	}
	return eachMigration(r, ids, fn)
}

// ServerMigrations returns a server's migrations.
func ServerMigrations(r Reader, serverID string) ([]*Migration, error) {
	return migrationsBy(r, IndexMigrationServer, serverID)
}

// EvacuatedFrom returns the migrations away from host whose clean-up on
// that host is still to be done.
func EvacuatedFrom(r Reader, host string) ([]*Migration, error) {
	all, err := migrationsBy(r, IndexMigrationSource, host)
	if err != nil {
		return nil, err
	}
	return slices.DeleteFunc(all, func(m *Migration) bool { return !m.open() }), nil
}

func migrationsBy(r Reader, index, value string) ([]*Migration, error) {
	var ids []string
	if err := r.ScanIndex(TableMigration, index, []string{value}, func(pk string) bool { ids = append(ids, pk); return true }); err != nil {
		return nil, err
	}
	var out []*Migration
	err := eachMigration(r, ids, func(m *Migration) bool { out = append(out, m); return true })
	return out, err
}

func eachMigration(r Reader, ids []string, fn func(*Migration) bool) error {
	for _, id := range ids {
		m, _, err := Get[Migration](r, TableMigration, id)
		if err != nil {
			return fmt.Errorf("fsm: migration index names %s, which cannot be read: %w", id, err)
		}
		if !fn(m) {
			return nil
		}
	}
	return nil
}

func init() {
	register("EvacuateServer", applyEvacuateServer)
	register("CompleteMigration", applyCompleteMigration)
}
