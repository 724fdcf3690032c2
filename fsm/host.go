package fsm

import (
	"errors"
	"slices"

	"github.com/keel-cloud/keel/internal/hostapi"
)

// Command types of compute hosts: 140–159.
const (
	CmdRegisterHost CommandType = 140
)

// Tables of compute hosts.
const (
	// TableHost holds one record per compute host (its nova-compute
	// service and its hypervisor), keyed by host name.
	TableHost = "host"
	// TableHostAssignments holds one empty record per host whose
	// ModifyIndex is the last index at which any server on the host
	// changed: the blocking query of the host's agent compares it with the
	// index the agent already has, so an agent wakes only for its host.
	TableHostAssignments = "host_assign"
)

// Nova's default allocation ratios (cpu_allocation_ratio,
// ram_allocation_ratio, disk_allocation_ratio), used for a host that does
// not set its own.
const (
	DefaultCPUAllocationRatio  = 4.0
	DefaultRAMAllocationRatio  = 1.0
	DefaultDiskAllocationRatio = 1.0
)

// Host is a compute host: what its agent registered, the administrators'
// word on it (disabled, forced down) and what the servers placed on it
// consume. Usage is kept here by Apply alone, so a placement is checked
// against the same numbers every controller sees.
type Host struct {
	hostapi.Registration
	ServiceID    string `json:"service_id"`    // uuid of its nova-compute service
	HypervisorID string `json:"hypervisor_id"` // uuid of its hypervisor
	// Seq is the integer id of its service and hypervisor (the ids Nova
	// shows before microversion 2.53), from the "service" sequence.
	Seq int64 `json:"seq"`
	// AggregateZone is the availability zone given by the host aggregates
	// it belongs to ("" if none sets one): it overrides the zone its agent
	// registered (see AvailabilityZone).
	AggregateZone string `json:"aggregate_zone,omitempty"`

	// Up is the liveness the leader committed from gossip (always true for
	// a host without gossip); StateChangedAt is when it last changed.
	// Whether the service is "up" for the API also depends on ForcedDown
	// (see Alive).
	Up             bool  `json:"up"`
	StateChangedAt int64 `json:"state_changed_at,omitempty"`

	VCPUsUsed    int `json:"vcpus_used"`
	MemoryMBUsed int `json:"memory_mb_used"`
	DiskGBUsed   int `json:"disk_gb_used"`
	RunningVMs   int `json:"running_vms"`

	Disabled       bool   `json:"disabled,omitempty"`
	DisabledReason string `json:"disabled_reason,omitempty"`
	ForcedDown     bool   `json:"forced_down,omitempty"`

	CreatedAt int64 `json:"created_at"`
	UpdatedAt int64 `json:"updated_at"`
}

// AvailabilityZone is the host's zone: its aggregates' if one sets it, else
// the zone its agent registered.
func (h *Host) AvailabilityZone() string {
	if h.AggregateZone != "" {
		return h.AggregateZone
	}
	return h.Zone
}

// Alive reports whether the host's service is up: liveness says so and no
// operator forced it down.
func (h *Host) Alive() bool { return h.Up && !h.ForcedDown }

// EvacuableAt is the earliest time (unix microseconds) at which servers may
// be evacuated from the host, given the controllers' safety margin, and
// whether that time exists at all. A forced-down host is evacuable at once:
// the operator vouched that it is off. A host that liveness reports down is
// evacuable once its agent's fencing window and the margin have passed
// since it went down: by then its agent, if it still runs, has stopped its
// domains. A host that is up, or whose agent does not fence itself, is not
// evacuable until forced down.
func (h *Host) EvacuableAt(marginMS int64) (int64, bool) {
	switch {
	case h.ForcedDown:
		return 0, true
	case h.Up || h.FenceAfterMS <= 0:
		return 0, false
	}
	return h.StateChangedAt + (h.FenceAfterMS+marginMS)*1000, true
}

// Ratios returns the host's allocation ratios, Nova's defaults where unset.
func (h *Host) Ratios() (cpu, ram, disk float64) {
	cpu, ram, disk = h.CPUAllocationRatio, h.RAMAllocationRatio, h.DiskAllocationRatio
	if cpu <= 0 {
		cpu = DefaultCPUAllocationRatio
	}
	if ram <= 0 {
		ram = DefaultRAMAllocationRatio
	}
	if disk <= 0 {
		disk = DefaultDiskAllocationRatio
	}
	return cpu, ram, disk
}

// Fits reports whether a claim of the given size fits on the host under its
// allocation ratios (Nova's resource filters and placement's inventory).
func (h *Host) Fits(vcpus, ramMB, diskGB int) bool {
	cpu, ram, disk := h.Ratios()
	return float64(h.VCPUsUsed+vcpus) <= float64(h.VCPUs)*cpu &&
		float64(h.MemoryMBUsed+ramMB) <= float64(h.MemoryMB)*ram &&
		float64(h.DiskGBUsed+diskGB) <= float64(h.DiskGB)*disk
}

// RegisterHost creates or refreshes a compute host from its agent's
// registration. Usage and administrative state are kept; ServiceID and
// HypervisorID are used only when the host is new.
type RegisterHost struct {
	Registration hostapi.Registration `json:"registration"`
	ServiceID    string               `json:"service_id"`
	HypervisorID string               `json:"hypervisor_id"`
	Now          int64                `json:"now"`
}

func (*RegisterHost) CommandType() CommandType { return CmdRegisterHost }
func (*RegisterHost) CommandVersion() uint8    { return 1 }

func init() {
	register("RegisterHost", applyRegisterHost)
	// An agent's blocking query waits on its host's two records only.
	keyedTables[TableHost] = true
	keyedTables[TableHostAssignments] = true
}

func applyRegisterHost(tx *Txn, c *RegisterHost) (any, error) {
	r := c.Registration
	if r.Host == "" || !validKeyPart(r.Host) || len(r.Host) > 255 {
		return nil, Errorf(KindInvalid, "invalid host name %q: 1 to 255 characters without control characters", r.Host)
	}
	if r.VCPUs < 0 || r.MemoryMB < 0 || r.DiskGB < 0 {
		return nil, Errorf(KindInvalid, "host %s reports negative capacity (vcpus %d, memory %d MB, disk %d GB)", r.Host, r.VCPUs, r.MemoryMB, r.DiskGB)
	}
	if r.CPUAllocationRatio < 0 || r.RAMAllocationRatio < 0 || r.DiskAllocationRatio < 0 {
		return nil, Errorf(KindInvalid, "host %s reports a negative allocation ratio", r.Host)
	}
	if r.Zone == "" {
		r.Zone = DefaultZone
	}
	h, _, err := Get[Host](tx, TableHost, r.Host)
	if err != nil && !IsNotFound(err) {
		return nil, err
	}
	if h == nil {
		if c.ServiceID == "" || c.HypervisorID == "" {
			return nil, Errorf(KindInvalid, "registering host %s needs service and hypervisor ids", r.Host)
		}
		seq, err := nextSeq(tx, serviceSequence, 1)
		if err != nil {
			return nil, err
		}
		h = &Host{ServiceID: c.ServiceID, HypervisorID: c.HypervisorID, Seq: seq, CreatedAt: c.Now,
			Up: true, StateChangedAt: c.Now}
	}
	if !r.Gossip && !h.Up {
		// A host that left gossip is up while its agent can register.
		h.Up, h.StateChangedAt = true, c.Now
	}
	h.Registration = r
	h.UpdatedAt = c.Now
	return h, tx.Put(TableHost, r.Host, h)
}

// GetHost returns a compute host.
func GetHost(r Reader, name string) (*Host, Meta, error) {
	h, m, err := Get[Host](r, TableHost, name)
	if err != nil {
		return nil, Meta{}, Errorf(KindNotFound, "Compute host %s could not be found.", name)
	}
	return h, m, nil
}

// ListHosts returns every compute host, by name.
func ListHosts(r Reader) ([]*Host, error) {
	var out []*Host
	var derr error
	err := r.Scan(TableHost, "", func(rec Record) bool {
		var h Host
		if derr = rec.Decode(&h); derr != nil {
			return false
		}
		out = append(out, &h)
		return true
	})
	if err == nil {
		err = derr
	}
	slices.SortFunc(out, func(a, b *Host) int {
		switch {
		case a.Host < b.Host:
			return -1
		case a.Host > b.Host:
			return 1
		}
		return 0
	})
	return out, err
}

// HostAssignmentsIndex is the last index at which any server on host
// changed (0 if none ever did).
func HostAssignmentsIndex(r Reader, host string) (uint64, error) {
	rec, ok, err := r.Get(TableHostAssignments, host)
	if err != nil || !ok {
		return 0, err
	}
	return rec.ModifyIndex, nil
}

// touchHost marks that something the host's agent must see changed.
func touchHost(tx *Txn, host string) error {
	if host == "" {
		return nil
	}
	return tx.Put(TableHostAssignments, host, struct{}{})
}

// chargeHost adds (sign +1) or releases (sign -1) a server's claim on its
// host. A host that no longer exists has nothing to release.
func chargeHost(tx *Txn, s *Server, sign int) error {
	if s.Host == "" {
		return nil
	}
	h, _, err := Get[Host](tx, TableHost, s.Host)
	if IsNotFound(err) {
		return nil
	} else if err != nil {
		return err
	}
	h.charge(s.Flavor, sign)
	return tx.Put(TableHost, s.Host, h)
}

// charge adds (sign +1) or releases (sign -1) one server's claim in the
// host's usage, never below zero.
func (h *Host) charge(f ServerFlavor, sign int) {
	vcpus, ram, disk := f.Claim()
	h.VCPUsUsed = max(h.VCPUsUsed+sign*vcpus, 0)
	h.MemoryMBUsed = max(h.MemoryMBUsed+sign*ram, 0)
	h.DiskGBUsed = max(h.DiskGBUsed+sign*disk, 0)
	h.RunningVMs = max(h.RunningVMs+sign, 0)
}

// DefaultZone is Nova's default availability zone
// (default_availability_zone).
const DefaultZone = "nova"

// IsNotFound reports whether err is a KindNotFound refusal.
func IsNotFound(err error) bool { return errors.Is(err, ErrNotFound) }
