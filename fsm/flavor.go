package fsm

// Nova flavors: the records, their access lists (which projects may use a
// private flavor) and the commands that change them. Appliers are in
// flavor_apply.go, reads in flavor_read.go, field rules in
// flavor_validate.go.
//
// Input rules that follow the API's microversion or that may grow with new
// Keel releases (the namespaced extra spec validation of Nova 2.86, the JSON
// schema of the request bodies) are the API layer's: an applier must decide
// the same way on every node and on every replay of the log, so it only
// checks rules that never change (shapes, lengths, ranges, uniqueness,
// existence).

// Flavor command types. Persisted in the Raft log: append only, never
// renumber. 40–59 are reserved for flavors.
const (
	CmdCreateFlavor            CommandType = 40
	CmdDeleteFlavor            CommandType = 41
	CmdUpdateFlavorDescription CommandType = 42
	CmdSetFlavorExtraSpecs     CommandType = 43
	CmdDeleteFlavorExtraSpec   CommandType = 44
	CmdAddFlavorAccess         CommandType = 45
	CmdRemoveFlavorAccess      CommandType = 46
	CmdCreateDefaultFlavors    CommandType = 47
)

// Flavor tables.
//
//	flavor           <flavor id>               index "name" [name] (names are unique)
//	flavor_access    <flavor id>/<project id>  (flavor ids never contain '/')
//	flavor_defaults  "done"                    written once by CreateDefaultFlavors
const (
	// TableFlavor holds Flavor records by flavor id.
	TableFlavor = "flavor"
	// TableFlavorAccess holds FlavorAccessEntry records by
	// "<flavor id>/<project id>".
	TableFlavorAccess = "flavor_access"
	// TableFlavorDefaults holds one record once the default flavors were
	// considered (created, or skipped because flavors existed), so that a
	// later leader never creates them again after an operator deleted them.
	TableFlavorDefaults = "flavor_defaults"
)

const (
	flavorIdxName     = "name"
	flavorDefaultsKey = "done"
)

// Flavor is a Nova flavor (an instance type).
type Flavor struct {
	// ID is Nova's flavorid: 1 to 255 characters of [a-zA-Z0-9. _-], not
	// starting or ending with a space. Unique.
	ID string `json:"id"`
	// Name is 1 to 255 characters without leading or trailing whitespace.
	// Unique (case-sensitive).
	Name string `json:"name"`
	// VCPUs is the number of virtual CPUs (at least 1).
	VCPUs int `json:"vcpus"`
	// RAM is the memory in MiB (at least 1).
	RAM int `json:"ram"`
	// Disk is the root disk in GiB (0: the image's size).
	Disk int `json:"disk"`
	// Ephemeral is the ephemeral disk in GiB.
	Ephemeral int `json:"ephemeral"`
	// Swap is the swap disk in MiB.
	Swap int `json:"swap"`
	// RxTxFactor is the (legacy) network bandwidth factor, > 0.
	RxTxFactor float64 `json:"rxtx_factor"`
	// IsPublic: every project may use the flavor. A private flavor is
	// usable by the projects of its access list (and by admins).
	IsPublic bool `json:"is_public"`
	// Disabled flavors are hidden from non-admin listings.
	Disabled bool `json:"disabled"`
	// Description is free text (Nova 2.55), "" when none.
	Description string `json:"description"`
	// ExtraSpecs are the flavor's extra specs (keys 1 to 255 characters of
	// [a-zA-Z0-9-_:. ], values at most 255 characters).
	ExtraSpecs map[string]string `json:"extra_specs,omitempty"`
	// CreatedAt is the creation time in unix microseconds.
	CreatedAt int64 `json:"created_at"`
}

// FlavorAccessEntry grants a project the use of a (private) flavor.
type FlavorAccessEntry struct {
	FlavorID  string `json:"flavor_id"`
	ProjectID string `json:"project_id"`
}

// flavorDefaults is the record of TableFlavorDefaults.
type flavorDefaults struct {
	// Created is the number of flavors CreateDefaultFlavors created (0 if
	// flavors already existed).
	Created int `json:"created"`
	// At is the command's Now (unix microseconds).
	At int64 `json:"at"`
}

// CreateFlavor creates a flavor. Refused (KindConflict) when its id or its
// name is taken, with Nova's messages. Response: the stored Flavor.
type CreateFlavor struct {
	Flavor Flavor `json:"flavor"`
}

func (*CreateFlavor) CommandType() CommandType { return CmdCreateFlavor }
func (*CreateFlavor) CommandVersion() uint8    { return 1 }

// DeleteFlavor deletes a flavor and its access list. Servers keep their
// copy of the flavor. No response value.
type DeleteFlavor struct {
	ID string `json:"id"`
}

func (*DeleteFlavor) CommandType() CommandType { return CmdDeleteFlavor }
func (*DeleteFlavor) CommandVersion() uint8    { return 1 }

// UpdateFlavorDescription sets a flavor's description ("" clears it).
// Response: the stored Flavor.
type UpdateFlavorDescription struct {
	ID          string `json:"id"`
	Description string `json:"description"`
}

func (*UpdateFlavorDescription) CommandType() CommandType { return CmdUpdateFlavorDescription }
func (*UpdateFlavorDescription) CommandVersion() uint8    { return 1 }

// SetFlavorExtraSpecs merges Specs into a flavor's extra specs (a key given
// replaces its value; other keys stay). Response: the stored Flavor.
type SetFlavorExtraSpecs struct {
	ID    string            `json:"id"`
	Specs map[string]string `json:"specs"`
}

func (*SetFlavorExtraSpecs) CommandType() CommandType { return CmdSetFlavorExtraSpecs }
func (*SetFlavorExtraSpecs) CommandVersion() uint8    { return 1 }

// DeleteFlavorExtraSpec removes one extra spec; KindNotFound (Nova's
// message) if the flavor does not have it. Response: the stored Flavor.
type DeleteFlavorExtraSpec struct {
	ID  string `json:"id"`
	Key string `json:"key"`
}

func (*DeleteFlavorExtraSpec) CommandType() CommandType { return CmdDeleteFlavorExtraSpec }
func (*DeleteFlavorExtraSpec) CommandVersion() uint8    { return 1 }

// AddFlavorAccess gives ProjectID (an existing project, else KindInvalid
// "Project ID ... is not a valid project.") the use of a flavor. Adding an
// existing entry is KindConflict. With RefusePublic (Nova 2.7 and later) a
// public flavor is KindConflict "Can not add access to a public flavor.".
// Response: the flavor's access list afterwards ([]string of project ids,
// sorted).
type AddFlavorAccess struct {
	FlavorID     string `json:"flavor_id"`
	ProjectID    string `json:"project_id"`
	RefusePublic bool   `json:"refuse_public,omitempty"`
}

func (*AddFlavorAccess) CommandType() CommandType { return CmdAddFlavorAccess }
func (*AddFlavorAccess) CommandVersion() uint8    { return 1 }

// RemoveFlavorAccess removes a project from a flavor's access list
// (KindNotFound if it is not there; the project need not exist any more).
// Response: the access list afterwards ([]string, sorted).
type RemoveFlavorAccess struct {
	FlavorID  string `json:"flavor_id"`
	ProjectID string `json:"project_id"`
}

func (*RemoveFlavorAccess) CommandType() CommandType { return CmdRemoveFlavorAccess }
func (*RemoveFlavorAccess) CommandVersion() uint8    { return 1 }

// CreateDefaultFlavors creates DefaultFlavors(Now) (devstack's m1.tiny to
// m1.xlarge, ids "1" to "5") the first time it is applied, unless a flavor
// exists already; either way it records that the defaults were handled, and
// every later CreateDefaultFlavors is a no-op (so flavors an operator
// deleted never come back). Now is unix microseconds. Response: the number
// of flavors created (uint64).
//
// The set of defaults belongs to version 1 of this command: a different set
// needs a new command version, so that replaying the log gives the same
// state.
type CreateDefaultFlavors struct {
	Now int64 `json:"now"`
}

func (*CreateDefaultFlavors) CommandType() CommandType { return CmdCreateDefaultFlavors }
func (*CreateDefaultFlavors) CommandVersion() uint8    { return 1 }

// DefaultFlavors are the flavors CreateDefaultFlavors creates: devstack's
// m1.* set, public, with ids 1 to 5.
func DefaultFlavors(now int64) []Flavor {
	mk := func(id, name string, vcpus, ram, disk int) Flavor {
		return Flavor{ID: id, Name: name, VCPUs: vcpus, RAM: ram, Disk: disk, RxTxFactor: 1, IsPublic: true, CreatedAt: now}
	}
	return []Flavor{
		mk("1", "m1.tiny", 1, 512, 1),
		mk("2", "m1.small", 1, 2048, 20),
		mk("3", "m1.medium", 2, 4096, 40),
		mk("4", "m1.large", 4, 8192, 80),
		mk("5", "m1.xlarge", 8, 16384, 160),
	}
}

func init() {
	register("CreateFlavor", applyCreateFlavor)
	register("DeleteFlavor", applyDeleteFlavor)
	register("UpdateFlavorDescription", applyUpdateFlavorDescription)
	register("SetFlavorExtraSpecs", applySetFlavorExtraSpecs)
	register("DeleteFlavorExtraSpec", applyDeleteFlavorExtraSpec)
	register("AddFlavorAccess", applyAddFlavorAccess)
	register("RemoveFlavorAccess", applyRemoveFlavorAccess)
	register("CreateDefaultFlavors", applyCreateDefaultFlavors)
}
