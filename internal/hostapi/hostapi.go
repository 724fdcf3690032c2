// Package hostapi is the wire contract between the controllers and
// keel-agent: what an agent sends when it registers its host, what the
// blocking query of its assignments returns, and what it reports back.
//
// The flow is level-triggered (see DESIGN.md): the agent asks
//
//	GET  /internal/v1/hosts/{host}/servers?index=N&wait=30s  -> Assignments
//
// and converges every assigned server to the state its Assignment asks for,
// then reports each finished task with
//
//	POST /internal/v1/hosts/{host}/servers/{id}/report        Report -> 200
//
// A lost report is never a lost operation: the next query returns the same
// task until a report lands. Registration is
//
//	POST /internal/v1/hosts/{host}                            Registration -> 200 HostStatus
//
// and images come from any controller, checked by sha256 on the agent:
//
//	GET  /internal/v1/images/{id}/file                        bytes; header X-Image-Sha256
//
// The agent serves one call of its own, on its --listen address, for the
// controllers:
//
//	GET  /internal/v1/servers/{id}/console?length=N            text/plain, the serial log's last N lines (all if 0)
//
// After an evacuation the old host's agent, once back, destroys its copies
// of the servers listed in Assignments.Evacuated and reports each with
//
//	POST /internal/v1/hosts/{host}/migrations/{id}/complete          -> 200
//
// so the evacuation's migration record becomes "completed".
//
// Every call is signed with the cluster key (internal/clusterauth), both
// ways. Errors are JSON {"code": "...", "error": "..."} with an HTTP status.
package hostapi

// Registration describes a compute host. The agent sends it when it starts
// and whenever what it reports changes; the controllers keep the usage
// (what servers on the host consume), never the agent.
type Registration struct {
	Host      string `json:"host"`       // service host and hypervisor_hostname
	Zone      string `json:"zone"`       // availability zone ("nova" by default)
	AgentAddr string `json:"agent_addr"` // host:port of the agent's own internal API
	HostIP    string `json:"host_ip"`
	Version   string `json:"version"` // keel-agent version

	HypervisorType    string `json:"hypervisor_type"`    // "QEMU" (TCG) or "KVM"; "fake"
	HypervisorVersion int    `json:"hypervisor_version"` // libvirt's encoding: major*1e6+minor*1e3+release
	CPUInfo           string `json:"cpu_info"`           // JSON text, as os-hypervisors shows it
	// Capabilities are the host's facts for the ComputeCapabilitiesFilter
	// and ImagePropertiesFilter: "cpu_info:arch" ("x86_64"),
	// "hypervisor_type", "hypervisor_version", "vm_mode" ("hvm").
	Capabilities map[string]string `json:"capabilities,omitempty"`

	VCPUs    int `json:"vcpus"`
	MemoryMB int `json:"memory_mb"`
	DiskGB   int `json:"disk_gb"`
	// Allocation ratios of this host; 0 means the cluster's default
	// (Nova's 4.0, 1.0, 1.0 unless configured).
	CPUAllocationRatio  float64 `json:"cpu_allocation_ratio,omitempty"`
	RAMAllocationRatio  float64 `json:"ram_allocation_ratio,omitempty"`
	DiskAllocationRatio float64 `json:"disk_allocation_ratio,omitempty"`

	// Gossip: the agent is a member of the cluster's gossip pool, and the
	// host's liveness (service state up/down) follows it. A host without
	// gossip (simulated hosts, the all-in-one embedded agent) is up unless
	// an operator forces it down.
	Gossip bool `json:"gossip,omitempty"`
	// FenceAfterMS is the agent's --fence-after in milliseconds: after that
	// long without a fresh answer from the controllers saying the host is
	// up, the agent stops its domains and starts nothing. The controllers
	// allow evacuating a host that gossip reports down only after this
	// window plus a safety margin. 0: the agent does not fence itself, and
	// its host can be evacuated only once forced down.
	FenceAfterMS int64 `json:"fence_after_ms,omitempty"`
}

// HostStatus is the administrators' word on a host, published to its agent.
type HostStatus struct {
	Host           string `json:"host"`
	Registered     bool   `json:"registered"`
	Disabled       bool   `json:"disabled"` // no new servers; existing ones keep running
	DisabledReason string `json:"disabled_reason,omitempty"`
	// ForcedDown: the host is fenced by an operator. Its agent starts
	// nothing from then on; and since a forced-down host is not Up, the
	// answers no longer renew the agent's lease, so it also stops its
	// domains once its fencing window has passed.
	ForcedDown bool `json:"forced_down"`
	// Up: the cluster considers the host up (gossip says alive, or the
	// host has no gossip, and it is not forced down). An answer that says
	// Up renews the agent's lease only if it is Fresh.
	Up bool `json:"up"`
}

// Assignments is the answer of the blocking query: every server assigned to
// the host, with the task the agent must carry out.
type Assignments struct {
	// Index is the state index the answer reflects; pass it back as
	// ?index= to block until something newer.
	Index   uint64       `json:"index"`
	Host    HostStatus   `json:"host"`
	Servers []Assignment `json:"servers"`
	// Fresh: the answering controller confirmed with the Raft leader that
	// its state was current when it answered (the agent asks for this
	// with ?fresh=1). Only fresh answers renew the agent's fencing lease:
	// a controller cut off from the leader may answer from old state.
	Fresh bool `json:"fresh,omitempty"`
	// Evacuated lists servers evacuated away from this host whose
	// migration is not completed: the agent destroys its copies (domains
	// of generation Generation or older) and reports the migration
	// complete.
	Evacuated []Evacuated `json:"evacuated,omitempty"`
}

// Evacuated is a server that was evacuated away from this host.
type Evacuated struct {
	ServerID    string `json:"server_id"`
	MigrationID string `json:"migration_id"`
	// Generation is the server's generation on this host: domains of this
	// generation or older are the stale copies.
	Generation uint64 `json:"generation"`
}

// Tasks an Assignment can carry (Nova's task_state values). An empty task
// means "keep the server as its VMState says".
const (
	TaskSpawning      = "spawning"
	TaskPoweringOff   = "powering-off"
	TaskPoweringOn    = "powering-on"
	TaskRebooting     = "rebooting"
	TaskRebootingHard = "rebooting_hard"
	TaskPausing       = "pausing"
	TaskUnpausing     = "unpausing"
	TaskSuspending    = "suspending"
	TaskResuming      = "resuming"
	TaskDeleting      = "deleting"
	// TaskRebuildSpawning: an evacuated server is built on its new host
	// (an agent carries it out like spawning).
	TaskRebuildSpawning = "rebuild_spawning"
)

// VM states (Nova's vm_state values) the agent converges to when no task is
// set.
const (
	VMBuilding  = "building"
	VMActive    = "active"
	VMStopped   = "stopped"
	VMPaused    = "paused"
	VMSuspended = "suspended"
	VMError     = "error"
)

// Power states (Nova's power_state values).
const (
	PowerNoState   = 0
	PowerRunning   = 1
	PowerPaused    = 3
	PowerShutdown  = 4
	PowerCrashed   = 6
	PowerSuspended = 7
)

// Assignment is one server the host must run, and how.
type Assignment struct {
	ID        string `json:"id"`
	Name      string `json:"name"`
	ProjectID string `json:"project_id"`
	UserID    string `json:"user_id"`
	Hostname  string `json:"hostname"`
	// Generation increases every time the server is placed on a host. A
	// host acts only on the newest generation it has seen for a server;
	// reports carry it, and a report of an older generation is refused.
	Generation uint64 `json:"generation"`
	VMState    string `json:"vm_state"`
	TaskState  string `json:"task_state,omitempty"`
	PowerState int    `json:"power_state"`

	VCPUs       int               `json:"vcpus"`
	MemoryMB    int               `json:"memory_mb"`
	RootGB      int               `json:"root_gb"`
	EphemeralGB int               `json:"ephemeral_gb,omitempty"`
	SwapMB      int               `json:"swap_mb,omitempty"`
	ExtraSpecs  map[string]string `json:"extra_specs,omitempty"`

	ImageID     string `json:"image_id"`
	ImageSHA256 string `json:"image_sha256,omitempty"` // SHA-256 of the image data (hex), as X-Image-Sha256 says
	ImageFormat string `json:"image_format,omitempty"` // disk_format: qcow2, raw
	ImageSize   int64  `json:"image_size,omitempty"`

	KeyData  string            `json:"key_data,omitempty"`
	UserData string            `json:"user_data,omitempty"` // base64, as given
	Metadata map[string]string `json:"metadata,omitempty"`
}

// Report tells the controllers that the agent finished (or failed) the
// task it was given, or, with an empty Task, what it observes of a server
// that has no task (a domain that stopped by itself: Nova's power-state
// sync).
type Report struct {
	Generation uint64 `json:"generation"`
	Task       string `json:"task"`        // the task carried out; "" for an observation
	PowerState int    `json:"power_state"` // what the driver sees now
	// Error, when set, says the task failed (for spawning: the build
	// failed on this host, and the server is rescheduled on another host).
	Error string `json:"error,omitempty"`
}
