package fsm

import (
	"cmp"
	"slices"
	"strconv"
)

// Services, as Nova's os-services shows them: every compute host is a
// nova-compute service (its record is the Host), and every controller is a
// nova-scheduler and a nova-conductor (records in TableService, created by
// the leader's liveness loop). Liveness (up/down) is committed by the
// leader from gossip (SetLiveness); administrators disable, enable and
// force down services (UpdateService) and delete them (DeleteService).

// Command types of services (hosts' range 140–159).
const (
	CmdSetLiveness    CommandType = 141
	CmdUpdateService  CommandType = 142
	CmdDeleteService  CommandType = 143
	CmdEvacuateServer CommandType = 144
	CmdCompleteMigr   CommandType = 145
)

// TableService holds the controllers' services, keyed "host/binary".
const TableService = "service"

// Nova's service binaries.
const (
	BinaryCompute   = "nova-compute"
	BinaryScheduler = "nova-scheduler"
	BinaryConductor = "nova-conductor"
)

// ControllerZone is the zone Nova shows for services that are not compute
// services (internal_service_availability_zone).
const ControllerZone = "internal"

// serviceSequence numbers services and hypervisors (their integer ids).
const serviceSequence = "service"

// Service is one Nova service. For a compute service it is a view of its
// Host record; a controller's services are stored as they are.
type Service struct {
	ID             string `json:"id"`  // uuid (the id from microversion 2.53)
	Seq            int64  `json:"seq"` // integer id (before 2.53)
	Binary         string `json:"binary"`
	Host           string `json:"host"`
	Zone           string `json:"zone"`
	Disabled       bool   `json:"disabled,omitempty"`
	DisabledReason string `json:"disabled_reason,omitempty"`
	ForcedDown     bool   `json:"forced_down,omitempty"`
	// Up is what liveness last committed; the API's state is "up" only if
	// Up and not ForcedDown (see Alive).
	Up             bool  `json:"up"`
	StateChangedAt int64 `json:"state_changed_at,omitempty"`
	CreatedAt      int64 `json:"created_at"`
	UpdatedAt      int64 `json:"updated_at"`
}

// Alive reports whether the service's state is "up".
func (s *Service) Alive() bool { return s.Up && !s.ForcedDown }

// ServiceOf is the nova-compute service of a host.
func ServiceOf(h *Host) Service {
	return Service{
		ID: h.ServiceID, Seq: h.Seq, Binary: BinaryCompute, Host: h.Host, Zone: h.AvailabilityZone(),
		Disabled: h.Disabled, DisabledReason: h.DisabledReason, ForcedDown: h.ForcedDown,
		Up: h.Up, StateChangedAt: h.StateChangedAt, CreatedAt: h.CreatedAt, UpdatedAt: h.UpdatedAt,
	}
}

// ControllerServices returns the controllers' nova-scheduler and
// nova-conductor services.
func ControllerServices(r Reader) ([]Service, error) {
	var out []Service
	var derr error
	err := r.Scan(TableService, "", func(rec Record) bool {
		var s Service
		if derr = rec.Decode(&s); derr != nil {
			return false
		}
		out = append(out, s)
		return true
	})
	if err == nil {
		err = derr
	}
	return out, err
}

// ListServices returns every service ordered by integer id (Nova's order).
func ListServices(r Reader) ([]Service, error) {
	out, err := ControllerServices(r)
	if err != nil {
		return nil, err
	}
	hosts, err := ListHosts(r)
	if err != nil {
		return nil, err
	}
	for _, h := range hosts {
		out = append(out, ServiceOf(h))
	}
	slices.SortStableFunc(out, func(a, b Service) int { return cmp.Compare(a.Seq, b.Seq) })
	return out, nil
}

// GetService finds a service by uuid, or by integer id written in decimal.
func GetService(r Reader, id string) (Service, error) {
	all, err := ListServices(r)
	if err != nil {
		return Service{}, err
	}
	for _, s := range all {
		if s.ID == id || (s.Seq > 0 && id == strconv.FormatInt(s.Seq, 10)) {
			return s, nil
		}
	}
	return Service{}, Errorf(KindNotFound, "Service %s could not be found.", id)
}

func serviceKey(host, binary string) string { return host + "/" + binary }

// HostLiveness is gossip's word on a compute host.
type HostLiveness struct {
	Host string `json:"host"`
	Up   bool   `json:"up"`
}

// ControllerLiveness is gossip's word on a controller; its services are
// created with the given ids if they do not exist yet.
type ControllerLiveness struct {
	Name        string `json:"name"`
	Up          bool   `json:"up"`
	SchedulerID string `json:"scheduler_id"`
	ConductorID string `json:"conductor_id"`
}

// SetLiveness is the leader's liveness loop committing what gossip says.
// Only changes are applied; a host that is not registered is skipped.
type SetLiveness struct {
	Hosts       []HostLiveness       `json:"hosts,omitempty"`
	Controllers []ControllerLiveness `json:"controllers,omitempty"`
	Now         int64                `json:"now"`
}

func (*SetLiveness) CommandType() CommandType { return CmdSetLiveness }
func (*SetLiveness) CommandVersion() uint8    { return 1 }

// SetLivenessResult names the hosts and controllers whose state changed.
type SetLivenessResult struct {
	Changed []string `json:"changed,omitempty"`
}

func applySetLiveness(tx *Txn, c *SetLiveness) (any, error) {
	res := SetLivenessResult{}
	for _, l := range c.Hosts {
		h, _, err := Get[Host](tx, TableHost, l.Host)
		if IsNotFound(err) {
			continue
		} else if err != nil {
			return nil, err
		}
		if h.Up == l.Up {
			continue
		}
		h.Up, h.StateChangedAt, h.UpdatedAt = l.Up, c.Now, c.Now
		if err := tx.Put(TableHost, h.Host, h); err != nil {
			return nil, err
		}
		res.Changed = append(res.Changed, h.Host)
	}
	// Read first, so that the services to create take their integer ids
	// from one draw of the sequence (a command does not read its writes).
	type slot struct {
		key, binary, id, host string
		up                    bool
		s                     *Service
	}
	var slots []slot
	missing := 0
	for _, l := range c.Controllers {
		if l.Name == "" || !validKeyPart(l.Name) {
			return nil, Errorf(KindInvalid, "invalid controller name %q", l.Name)
		}
		for _, b := range []struct{ binary, id string }{{BinaryScheduler, l.SchedulerID}, {BinaryConductor, l.ConductorID}} {
			key := serviceKey(l.Name, b.binary)
			s, _, err := Get[Service](tx, TableService, key)
			if IsNotFound(err) {
				if b.id == "" {
					return nil, Errorf(KindInvalid, "controller %s has no %s service yet and no id was given for it", l.Name, b.binary)
				}
				s, missing = nil, missing+1
			} else if err != nil {
				return nil, err
			}
			slots = append(slots, slot{key: key, binary: b.binary, id: b.id, host: l.Name, up: l.Up, s: s})
		}
	}
	var next int64
	if missing > 0 {
		var err error
		if next, err = nextSeq(tx, serviceSequence, missing); err != nil {
			return nil, err
		}
	}
	for _, sl := range slots {
		s := sl.s
		switch {
		case s == nil:
			s = &Service{ID: sl.id, Seq: next, Binary: sl.binary, Host: sl.host, Zone: ControllerZone, CreatedAt: c.Now}
			next++
		case s.Up == sl.up:
			continue
		}
		s.Up, s.StateChangedAt, s.UpdatedAt = sl.up, c.Now, c.Now
		if err := tx.Put(TableService, sl.key, s); err != nil {
			return nil, err
		}
		res.Changed = append(res.Changed, sl.key)
	}
	return res, nil
}

// UpdateService is an administrator's change to a service: fields left nil
// are kept. The service is named by ID (uuid or integer id) or by Host and
// Binary (the legacy actions of os-services).
type UpdateService struct {
	ID             string  `json:"id,omitempty"`
	Host           string  `json:"host,omitempty"`
	Binary         string  `json:"binary,omitempty"`
	Disabled       *bool   `json:"disabled,omitempty"`
	DisabledReason *string `json:"disabled_reason,omitempty"`
	ForcedDown     *bool   `json:"forced_down,omitempty"`
	Now            int64   `json:"now"`
}

func (*UpdateService) CommandType() CommandType { return CmdUpdateService }
func (*UpdateService) CommandVersion() uint8    { return 1 }

// MaxDisabledReason is the longest disabled_reason Nova accepts.
const MaxDisabledReason = 255

// findService resolves an UpdateService/DeleteService's name.
func findService(r Reader, id, host, binary string) (Service, error) {
	if id != "" {
		return GetService(r, id)
	}
	if binary == BinaryCompute {
		h, _, err := Get[Host](r, TableHost, host)
		if err != nil {
			return Service{}, Errorf(KindNotFound, "Host '%s' is not mapped to any cell", host)
		}
		return ServiceOf(h), nil
	}
	s, _, err := Get[Service](r, TableService, serviceKey(host, binary))
	if err != nil {
		return Service{}, Errorf(KindNotFound, "Service %s on host %s could not be found.", binary, host)
	}
	return *s, nil
}

func applyUpdateService(tx *Txn, c *UpdateService) (any, error) {
	svc, err := findService(tx, c.ID, c.Host, c.Binary)
	if err != nil {
		return nil, err
	}
	if c.DisabledReason != nil && len(*c.DisabledReason) > MaxDisabledReason {
		return nil, Errorf(KindInvalid, "Invalid input for field/attribute disabled_reason. Value: %s. is too long", *c.DisabledReason)
	}
	if c.ForcedDown != nil && svc.Binary != BinaryCompute {
		return nil, Errorf(KindInvalid, "Updating a %s service is not supported. Only nova-compute services can be updated.", svc.Binary)
	}
	set := func(disabled, forcedDown *bool, reason *string) {
		if c.Disabled != nil {
			*disabled = *c.Disabled
			if !*c.Disabled {
				*reason = "" // Nova clears the reason on enable
			}
		}
		if c.DisabledReason != nil {
			*reason = *c.DisabledReason
		}
		if c.ForcedDown != nil {
			*forcedDown = *c.ForcedDown
		}
	}
	if svc.Binary == BinaryCompute {
		h, _, err := Get[Host](tx, TableHost, svc.Host)
		if err != nil {
			return nil, err
		}
		if c.ForcedDown != nil && !*c.ForcedDown && h.ForcedDown {
			// Nova's rule: servers evacuated away are still on the host's
			// disks until its agent, back, destroys them.
			open, err := EvacuatedFrom(tx, h.Host)
			if err != nil {
				return nil, err
			}
			if slices.ContainsFunc(open, func(m *Migration) bool { return m.Status == MigrationDone }) {
				return nil, Errorf(KindInvalid, "Unable to force up host %s as `done` evacuation migration records remain associated with the host. Ensure the compute service has been restarted, allowing these records to move to `completed` before retrying this request.", h.Host)
			}
		}
		set(&h.Disabled, &h.ForcedDown, &h.DisabledReason)
		h.UpdatedAt = c.Now
		if err := tx.Put(TableHost, h.Host, h); err != nil {
			return nil, err
		}
		return ServiceOf(h), nil
	}
	set(&svc.Disabled, &svc.ForcedDown, &svc.DisabledReason)
	svc.UpdatedAt = c.Now
	return svc, tx.Put(TableService, serviceKey(svc.Host, svc.Binary), &svc)
}

// DeleteService removes a service. A compute service that still hosts
// servers cannot be deleted (Nova's 409); deleting one removes its host
// and hypervisor, and its agent, if it runs, registers the host again.
type DeleteService struct {
	ID  string `json:"id"`
	Now int64  `json:"now"`
}

func (*DeleteService) CommandType() CommandType { return CmdDeleteService }
func (*DeleteService) CommandVersion() uint8    { return 1 }

// hostDeleteHooks run inside the DeleteService of a compute host (an
// aggregate's membership goes with the host).
var hostDeleteHooks []func(tx *Txn, host string) error

func applyDeleteService(tx *Txn, c *DeleteService) (any, error) {
	svc, err := GetService(tx, c.ID)
	if err != nil {
		return nil, err
	}
	if svc.Binary != BinaryCompute {
		return nil, tx.Delete(TableService, serviceKey(svc.Host, svc.Binary))
	}
	busy := false
	if err := tx.ScanIndex(TableServer, IndexServerHost, []string{svc.Host}, func(string) bool { busy = true; return false }); err != nil {
		return nil, err
	}
	if busy {
		return nil, Errorf(KindConflict, "Unable to delete compute service that is hosting instances. Migrate or delete the instances first.")
	}
	moving := false
	if err := Migrations(tx, func(m *Migration) bool {
		inProgress := m.Status == MigrationAccepted || m.Status == MigrationPreMigrating
		moving = inProgress && (m.SourceCompute == svc.Host || m.DestCompute == svc.Host)
		return !moving
	}); err != nil {
		return nil, err
	}
	if moving {
		return nil, Errorf(KindConflict, "Unable to delete compute service that has in-progress migrations. Complete the migrations or delete the instances first.")
	}
	for _, hook := range hostDeleteHooks {
		if err := hook(tx, svc.Host); err != nil {
			return nil, err
		}
	}
	if err := tx.Delete(TableHost, svc.Host); err != nil {
		return nil, err
	}
	return nil, touchHost(tx, svc.Host)
}

func init() {
	register("SetLiveness", applySetLiveness)
	register("UpdateService", applyUpdateService)
	register("DeleteService", applyDeleteService)
}
