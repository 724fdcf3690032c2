package fsm

import (
	"cmp"
	"fmt"
	"maps"
	"math"
	"slices"
	"strings"
	"unicode/utf8"
)

// Command types of servers: 100–139.
const (
	CmdCreateServers      CommandType = 100
	CmdUpdateServer       CommandType = 101
	CmdDeleteServer       CommandType = 102
	CmdSetServerMetadata  CommandType = 103
	CmdDeleteServerMeta   CommandType = 104
	CmdSetServerTags      CommandType = 105
	CmdDeleteServerTag    CommandType = 106
	CmdAddServerTag       CommandType = 107
	CmdPurgeDeletedServer CommandType = 108
)

// Tables and indexes of servers.
const (
	TableServer = "server"
	// IndexServerProject orders a project's servers by creation:
	// (project, created key, id).
	IndexServerProject = "project"
	// IndexServerCreated orders every server by creation: (created key, id).
	IndexServerCreated = "created"
	// IndexServerDeleted lists tombstones of deleted servers: (project, id).
	IndexServerDeleted = "deleted"
)

// Server states (Nova's vm_state, task_state and API status).
const (
	StatusBuild   = "BUILD"
	StatusActive  = "ACTIVE"
	StatusError   = "ERROR"
	StatusDeleted = "DELETED"

	VMBuilding = "building"
	VMDeleted  = "deleted"

	TaskScheduling = "scheduling"
)

// ServerFlavor is the flavor a server was created with, copied at create
// time (Nova embeds it in the instance: deleting the flavor later changes
// nothing for the server).
type ServerFlavor struct {
	ID         string            `json:"id"`
	Name       string            `json:"name"`
	VCPUs      int               `json:"vcpus"`
	RAM        int               `json:"ram"`
	Disk       int               `json:"disk"`
	Ephemeral  int               `json:"ephemeral"`
	Swap       int               `json:"swap"`
	ExtraSpecs map[string]string `json:"extra_specs,omitempty"`
}

// Server is a Nova instance.
type Server struct {
	ID               string            `json:"id"`
	Name             string            `json:"name"`
	Description      *string           `json:"description,omitempty"`
	ProjectID        string            `json:"project_id"`
	UserID           string            `json:"user_id"`
	Status           string            `json:"status"`
	VMState          string            `json:"vm_state"`
	TaskState        string            `json:"task_state,omitempty"`
	PowerState       int               `json:"power_state"`
	Flavor           ServerFlavor      `json:"flavor"`
	ImageID          string            `json:"image_id"`
	KeyName          string            `json:"key_name,omitempty"`
	KeyData          string            `json:"key_data,omitempty"`
	Metadata         map[string]string `json:"metadata,omitempty"`
	Tags             []string          `json:"tags,omitempty"`
	UserData         string            `json:"user_data,omitempty"`
	AvailabilityZone string            `json:"availability_zone,omitempty"`
	PinnedAZ         string            `json:"pinned_availability_zone,omitempty"`
	Host             string            `json:"host,omitempty"`
	Node             string            `json:"node,omitempty"`
	ReservationID    string            `json:"reservation_id"`
	LaunchIndex      int               `json:"launch_index"`
	Hostname         string            `json:"hostname"`
	ConfigDrive      string            `json:"config_drive,omitempty"`
	AccessIPv4       string            `json:"access_ip_v4,omitempty"`
	AccessIPv6       string            `json:"access_ip_v6,omitempty"`
	Locked           bool              `json:"locked,omitempty"`
	LockedReason     string            `json:"locked_reason,omitempty"`
	Networks         string            `json:"networks,omitempty"` // "none" or "auto" (no networking yet)
	CreatedAt        int64             `json:"created_at"`         // unix microseconds
	UpdatedAt        int64             `json:"updated_at"`
	LaunchedAt       int64             `json:"launched_at,omitempty"`
	TerminatedAt     int64             `json:"terminated_at,omitempty"`
	SchedulerHints   map[string]any    `json:"scheduler_hints,omitempty"`
	Fault            *ServerFault      `json:"fault,omitempty"`
	Deleted          bool              `json:"deleted,omitempty"`

	// Generation is the Raft index of the server's latest placement on a
	// host: agents act only on the newest generation they have seen.
	Generation uint64 `json:"generation,omitempty"`
	// Attempts counts placements (build attempts); RetryHosts are the
	// hosts a build failed on, which the scheduler skips.
	Attempts   int      `json:"attempts,omitempty"`
	RetryHosts []string `json:"retry_hosts,omitempty"`
	// ForcedHost is the host an administrator asked for
	// (availability_zone "zone:host", or 2.74's host).
	ForcedHost string `json:"forced_host,omitempty"`
	// RequestedHost is a destination the scheduler's filters must accept
	// (an evacuation's host without force).
	RequestedHost string `json:"requested_host,omitempty"`
	// While the server is evacuated: the host it left, its migration, and
	// whether it ends stopped.
	EvacuatedFrom string `json:"evacuated_from,omitempty"`
	MigrationID   string `json:"migration_id,omitempty"`
	EvacuateStop  bool   `json:"evacuate_stop,omitempty"`
	// LockedBy is "owner" or "admin" (Nova's locked_by).
	LockedBy string `json:"locked_by,omitempty"`
	// ActionSeq numbers the server's instance actions; the newest is the
	// one its current task belongs to.
	ActionSeq uint64 `json:"action_seq,omitempty"`
}

// ServerFault is why a server is in ERROR.
type ServerFault struct {
	Code    int    `json:"code"`
	Message string `json:"message"`
	Details string `json:"details,omitempty"`
	Created int64  `json:"created"`
}

// newestFirst are the index values that make a forward scan return servers
// newest first, ties by id descending (Nova's default order, created_at
// desc then id desc): the creation time and the id, both inverted.
func newestFirst(s *Server) []string {
	inv := []byte(s.ID)
	for i, b := range inv {
		inv[i] = 0xff - b
	}
	return []string{fmt.Sprintf("%020d", math.MaxInt64-s.CreatedAt), string(inv)}
}

// Limits of server fields, as Nova's schemas set them.
const (
	MaxServerName       = 255
	MaxMetadataKey      = 255
	MaxMetadataValue    = 255
	MaxServerTags       = 50
	MaxServerTagLength  = 60
	MaxUserDataEncoded  = 65535
	MaxServerDescLength = 255
)

// CreateServers creates a batch of servers (min_count/max_count): all of
// them or, if the quota allows fewer than MaxCount but at least MinCount, as
// many as it allows, as Nova does. Servers holds MaxCount fully formed
// servers (ids, names, launch indexes made by the proposer).
type CreateServers struct {
	Servers   []Server `json:"servers"`
	MinCount  int      `json:"min_count"`
	RequestID string   `json:"request_id,omitempty"`
	// GroupID is the server group of the scheduler hint "group"; the
	// servers become its members (within its member quota).
	GroupID string `json:"group_id,omitempty"`
	// MetadataLimit is not carried: the metadata_items quota is read here.
}

func (*CreateServers) CommandType() CommandType { return CmdCreateServers }
func (*CreateServers) CommandVersion() uint8    { return 1 }

// CreateServersResult lists the ids created.
type CreateServersResult struct {
	IDs []string `json:"ids"`
}

// UpdateServer changes a server's name, description or access addresses.
type UpdateServer struct {
	ID          string  `json:"id"`
	Name        *string `json:"name,omitempty"`
	Description *string `json:"description,omitempty"`
	ClearDesc   bool    `json:"clear_description,omitempty"`
	AccessIPv4  *string `json:"access_ip_v4,omitempty"`
	AccessIPv6  *string `json:"access_ip_v6,omitempty"`
	Now         int64   `json:"now"`
}

func (*UpdateServer) CommandType() CommandType { return CmdUpdateServer }
func (*UpdateServer) CommandVersion() uint8    { return 1 }

// DeleteServer deletes a server. One never placed on a host is removed at
// once (Nova's "local delete"); one on a host gets the task "deleting", and
// is removed when its agent reports the domain and disk gone. Either way
// its quota is released at removal and a tombstone kept for changes-since.
type DeleteServer struct {
	ID        string `json:"id"`
	Admin     bool   `json:"admin,omitempty"` // administrators may delete locked servers
	RequestID string `json:"request_id,omitempty"`
	UserID    string `json:"user_id,omitempty"`
	ProjectID string `json:"project_id,omitempty"`
	Now       int64  `json:"now"`
}

func (*DeleteServer) CommandType() CommandType { return CmdDeleteServer }
func (*DeleteServer) CommandVersion() uint8    { return 1 }

// SetServerMetadata merges (Replace false) or replaces all metadata.
type SetServerMetadata struct {
	ID       string            `json:"id"`
	Metadata map[string]string `json:"metadata"`
	Replace  bool              `json:"replace,omitempty"`
	Now      int64             `json:"now"`
}

func (*SetServerMetadata) CommandType() CommandType { return CmdSetServerMetadata }
func (*SetServerMetadata) CommandVersion() uint8    { return 1 }

// DeleteServerMetadata removes one metadata key; it must exist.
type DeleteServerMetadata struct {
	ID  string `json:"id"`
	Key string `json:"key"`
	Now int64  `json:"now"`
}

func (*DeleteServerMetadata) CommandType() CommandType { return CmdDeleteServerMeta }
func (*DeleteServerMetadata) CommandVersion() uint8    { return 1 }

// SetServerTags replaces all tags (nil removes them all).
type SetServerTags struct {
	ID   string   `json:"id"`
	Tags []string `json:"tags"`
	Now  int64    `json:"now"`
}

func (*SetServerTags) CommandType() CommandType { return CmdSetServerTags }
func (*SetServerTags) CommandVersion() uint8    { return 1 }

// AddServerTag adds one tag (a no-op if present).
type AddServerTag struct {
	ID  string `json:"id"`
	Tag string `json:"tag"`
	Now int64  `json:"now"`
}

func (*AddServerTag) CommandType() CommandType { return CmdAddServerTag }
func (*AddServerTag) CommandVersion() uint8    { return 1 }

// DeleteServerTag removes one tag; it must exist.
type DeleteServerTag struct {
	ID  string `json:"id"`
	Tag string `json:"tag"`
	Now int64  `json:"now"`
}

func (*DeleteServerTag) CommandType() CommandType { return CmdDeleteServerTag }
func (*DeleteServerTag) CommandVersion() uint8    { return 1 }

func init() {
	register("CreateServers", applyCreateServers)
	register("UpdateServer", applyUpdateServer)
	register("DeleteServer", applyDeleteServer)
	register("SetServerMetadata", applySetServerMetadata)
	register("DeleteServerMetadata", applyDeleteServerMetadata)
	register("SetServerTags", applySetServerTags)
	register("AddServerTag", applyAddServerTag)
	register("DeleteServerTag", applyDeleteServerTag)
}

// ValidServerName: 1–255 characters of UTF-8, not only whitespace... Nova's
// name type: no leading or trailing whitespace.
func ValidServerName(s string) error {
	if s == "" || utf8.RuneCountInString(s) > MaxServerName || !utf8.ValidString(s) || strings.ContainsRune(s, 0) {
		return Errorf(KindInvalid, "Invalid input for field/attribute name. Value: %q. The name must be 1 to %d characters.", s, MaxServerName)
	}
	if strings.TrimSpace(s) != s {
		return Errorf(KindInvalid, "Invalid input for field/attribute name. Value: %q. The name may not start or end with whitespace.", s)
	}
	return nil
}

// ValidMetadata checks metadata keys and values against Nova's limits.
func ValidMetadata(md map[string]string) error {
	for k, v := range md {
		if k == "" || utf8.RuneCountInString(k) > MaxMetadataKey || strings.ContainsRune(k, 0) {
			return Errorf(KindInvalid, "Invalid input for field/attribute metadata. Keys must be 1 to %d characters: %q.", MaxMetadataKey, k)
		}
		if utf8.RuneCountInString(v) > MaxMetadataValue || strings.ContainsRune(v, 0) {
			return Errorf(KindInvalid, "Invalid input for field/attribute metadata. Value of %q is longer than %d characters.", k, MaxMetadataValue)
		}
	}
	return nil
}

// ValidTag checks one tag as Nova does (2.26): 1–60 characters, no '/' or ','.
func ValidTag(t string) error {
	if t == "" || utf8.RuneCountInString(t) > MaxServerTagLength || strings.ContainsAny(t, "/,") || strings.ContainsRune(t, 0) {
		return Errorf(KindInvalid, "Invalid tag %q: tags are 1 to %d characters without '/' or ','.", t, MaxServerTagLength)
	}
	return nil
}

func checkMetadataQuota(tx *Txn, project, user string, n int) error {
	limits, err := UserQuotas(tx, project, user)
	if err != nil {
		return err
	}
	if lim := limits["metadata_items"]; lim >= 0 && int64(n) > lim {
		return Errorf(KindQuota, "Quota exceeded for metadata_items: Requested %d, but already used 0 of %d metadata_items", n, lim)
	}
	return nil
}

func putServer(tx *Txn, s *Server) error {
	return tx.Put(TableServer, s.ID, s)
}

func applyCreateServers(tx *Txn, c *CreateServers) (any, error) {
	n := len(c.Servers)
	if n == 0 || c.MinCount < 1 || c.MinCount > n {
		return nil, Errorf(KindInvalid, "min_count (%d) must be at least 1 and at most max_count (%d)", c.MinCount, n)
	}
	first := c.Servers[0]
	for i := range c.Servers {
		s := &c.Servers[i]
		if s.ID == "" || !validKeyPart(s.ID) || strings.Contains(s.ID, "/") {
			return nil, Errorf(KindInvalid, "invalid server id %q", s.ID)
		}
		if _, ok, err := tx.Get(TableServer, s.ID); err != nil {
			return nil, err
		} else if ok {
			return nil, Errorf(KindConflict, "server %s already exists", s.ID)
		}
		if s.ProjectID != first.ProjectID || s.UserID != first.UserID || s.Flavor.ID != first.Flavor.ID {
			return nil, Errorf(KindInvalid, "servers of one request must share project, user and flavor")
		}
		if err := ValidServerName(s.Name); err != nil {
			return nil, err
		}
		if err := ValidMetadata(s.Metadata); err != nil {
			return nil, err
		}
		if len(s.Tags) > MaxServerTags {
			return nil, Errorf(KindInvalid, "A server can have at most %d tags.", MaxServerTags)
		}
		for _, t := range s.Tags {
			if err := ValidTag(t); err != nil {
				return nil, err
			}
		}
		if s.ProjectID == "" || s.UserID == "" {
			return nil, Errorf(KindInvalid, "a server needs a project and a user")
		}
	}
	if err := checkMetadataQuota(tx, first.ProjectID, first.UserID, len(first.Metadata)); err != nil {
		return nil, err
	}
	// As many as the quota allows, between MinCount and len(Servers).
	f := first.Flavor
	charge := func(k int) map[string]int64 {
		return map[string]int64{"instances": int64(k), "cores": int64(k * f.VCPUs), "ram": int64(k * f.RAM)}
	}
	count := n
	var qerr error
	for ; count >= c.MinCount; count-- {
		if qerr = ChargeQuota(tx, first.ProjectID, first.UserID, charge(count)); qerr == nil {
			break
		}
		if e, ok := AsError(qerr); !ok || e.Kind != KindQuota {
			return nil, qerr
		}
	}
	if count < c.MinCount {
		return nil, qerr
	}
	res := CreateServersResult{}
	for i := 0; i < count; i++ {
		s := c.Servers[i]
		s.setState(VMBuilding, TaskScheduling)
		s.Host, s.Node, s.Generation, s.Attempts, s.RetryHosts, s.ActionSeq = "", "", 0, 0, nil, 0
		s.RequestedHost, s.EvacuatedFrom, s.MigrationID, s.EvacuateStop = "", "", "", false
		if err := recordAction(tx, &s, "create", c.RequestID, s.UserID, s.ProjectID, s.CreatedAt, "conductor_schedule_and_build_instances"); err != nil {
			return nil, err
		}
		if err := putServer(tx, &s); err != nil {
			return nil, err
		}
		if err := tx.PutIndex(TableServer, IndexServerPending, s.ID, pendingKey(&s)...); err != nil {
			return nil, err
		}
		if err := tx.PutIndex(TableServer, IndexServerProject, s.ID, append([]string{s.ProjectID}, newestFirst(&s)...)...); err != nil {
			return nil, err
		}
		if err := tx.PutIndex(TableServer, IndexServerCreated, s.ID, newestFirst(&s)...); err != nil {
			return nil, err
		}
		res.IDs = append(res.IDs, s.ID)
	}
	if c.GroupID != "" {
		if err := AddServerGroupMembers(tx, c.GroupID, res.IDs); err != nil {
			return nil, err
		}
	}
	return res, nil
}

// liveServer returns the server id unless it is missing or deleted.
func liveServer(tx *Txn, id string) (*Server, error) {
	s, _, err := Get[Server](tx, TableServer, id)
	if err != nil {
		return nil, Errorf(KindNotFound, "Instance %s could not be found.", id)
	}
	if s.Deleted {
		return nil, Errorf(KindNotFound, "Instance %s could not be found.", id)
	}
	return s, nil
}

func applyUpdateServer(tx *Txn, c *UpdateServer) (any, error) {
	s, err := liveServer(tx, c.ID)
	if err != nil {
		return nil, err
	}
	if c.Name != nil {
		if err := ValidServerName(*c.Name); err != nil {
			return nil, err
		}
		s.Name = *c.Name
	}
	if c.ClearDesc {
		s.Description = nil
	} else if c.Description != nil {
		if utf8.RuneCountInString(*c.Description) > MaxServerDescLength {
			return nil, Errorf(KindInvalid, "Invalid input for field/attribute description: at most %d characters.", MaxServerDescLength)
		}
		d := *c.Description
		s.Description = &d
	}
	if c.AccessIPv4 != nil {
		s.AccessIPv4 = *c.AccessIPv4
	}
	if c.AccessIPv6 != nil {
		s.AccessIPv6 = *c.AccessIPv6
	}
	s.UpdatedAt = c.Now
	return s, putServer(tx, s)
}

func applyDeleteServer(tx *Txn, c *DeleteServer) (any, error) {
	s, err := liveServer(tx, c.ID)
	if err != nil {
		return nil, err
	}
	if s.Locked && !c.Admin {
		return nil, Errorf(KindConflict, "Instance %s is locked", s.ID)
	}
	local := s.Host == ""
	if !local {
		// Nova's local delete: a server whose host is down is deleted at
		// once; the host's agent, if it comes back, destroys its copy.
		h, _, err := Get[Host](tx, TableHost, s.Host)
		if err != nil && !IsNotFound(err) {
			return nil, err
		}
		local = h == nil || !h.Alive()
	}
	if s.TaskState == TaskDeleting && !local {
		return nil, nil // already being deleted: Nova answers 204 again
	}
	user, project := c.UserID, c.ProjectID
	if user == "" {
		user, project = s.UserID, s.ProjectID
	}
	if local {
		if err := recordAction(tx, s, "delete", c.RequestID, user, project, c.Now, ""); err != nil {
			return nil, err
		}
		return nil, tombstone(tx, s, c.Now)
	}
	s.setState(s.VMState, TaskDeleting)
	s.UpdatedAt = c.Now
	if err := recordAction(tx, s, "delete", c.RequestID, user, project, c.Now, "compute_terminate_instance"); err != nil {
		return nil, err
	}
	return nil, saveServer(tx, s)
}

func applySetServerMetadata(tx *Txn, c *SetServerMetadata) (any, error) {
	s, err := liveServer(tx, c.ID)
	if err != nil {
		return nil, err
	}
	if err := ValidMetadata(c.Metadata); err != nil {
		return nil, err
	}
	md := map[string]string{}
	if !c.Replace {
		maps.Copy(md, s.Metadata)
	}
	maps.Copy(md, c.Metadata)
	if err := checkMetadataQuota(tx, s.ProjectID, s.UserID, len(md)); err != nil {
		return nil, err
	}
	s.Metadata, s.UpdatedAt = md, c.Now
	return md, putServer(tx, s)
}

func applyDeleteServerMetadata(tx *Txn, c *DeleteServerMetadata) (any, error) {
	s, err := liveServer(tx, c.ID)
	if err != nil {
		return nil, err
	}
	if _, ok := s.Metadata[c.Key]; !ok {
		return nil, Errorf(KindNotFound, "Metadata item was not found")
	}
	delete(s.Metadata, c.Key)
	s.UpdatedAt = c.Now
	return nil, putServer(tx, s)
}

func applySetServerTags(tx *Txn, c *SetServerTags) (any, error) {
	s, err := liveServer(tx, c.ID)
	if err != nil {
		return nil, err
	}
	tags := slices.Compact(slices.Sorted(slices.Values(c.Tags)))
	if len(tags) > MaxServerTags {
		return nil, Errorf(KindInvalid, "The number of tags exceeded the per-server limit %d", MaxServerTags)
	}
	for _, t := range tags {
		if err := ValidTag(t); err != nil {
			return nil, err
		}
	}
	s.Tags, s.UpdatedAt = tags, c.Now
	return tags, putServer(tx, s)
}

func applyAddServerTag(tx *Txn, c *AddServerTag) (any, error) {
	s, err := liveServer(tx, c.ID)
	if err != nil {
		return nil, err
	}
	if err := ValidTag(c.Tag); err != nil {
		return nil, err
	}
	if slices.Contains(s.Tags, c.Tag) {
		return false, nil
	}
	if len(s.Tags) >= MaxServerTags {
		return nil, Errorf(KindInvalid, "The number of tags exceeded the per-server limit %d", MaxServerTags)
	}
	s.Tags = slices.Sorted(slices.Values(append(s.Tags, c.Tag)))
	s.UpdatedAt = c.Now
	return true, putServer(tx, s)
}

func applyDeleteServerTag(tx *Txn, c *DeleteServerTag) (any, error) {
	s, err := liveServer(tx, c.ID)
	if err != nil {
		return nil, err
	}
	i := slices.Index(s.Tags, c.Tag)
	if i < 0 {
		return nil, Errorf(KindNotFound, "Tag %s could not be found.", c.Tag)
	}
	s.Tags = slices.Delete(s.Tags, i, i+1)
	s.UpdatedAt = c.Now
	return nil, putServer(tx, s)
}

// GetServer returns a server, deleted ones included (callers decide).
func GetServer(r Reader, id string) (*Server, Meta, error) {
	s, m, err := Get[Server](r, TableServer, id)
	if err != nil {
		return nil, Meta{}, Errorf(KindNotFound, "Instance %s could not be found.", id)
	}
	return s, m, nil
}

// ServerListing is what ListServers walks: live servers of a project (or of
// all projects), newest first, and, on request, deleted ones.
type ServerListing struct {
	ProjectID      string // "" = all projects
	IncludeDeleted bool
	// After starts the walk after this server (a pagination marker). Not
	// with IncludeDeleted.
	After *Server
}

// listPage is how many index entries ListServers reads per scan: records
// are read between scans, never while a scan holds the store.
const listPage = 256

// ListServers calls fn with the servers of the listing, newest first
// (created_at desc, id desc: Nova's default order), until fn returns false.
// Live servers stream from an index, so a page costs what it returns, not
// the size of the project.
func ListServers(r Reader, l ServerListing, fn func(*Server) bool) error {
	if l.IncludeDeleted {
		return listWithDeleted(r, l, fn)
	}
	index, prefix := IndexServerCreated, []string(nil)
	if l.ProjectID != "" {
		index, prefix = IndexServerProject, []string{l.ProjectID}
	}
	var after []string
	if l.After != nil {
		after = append(newestFirst(l.After), l.After.ID)
	}
	for {
		var ids []string
		err := r.ScanIndexAfter(TableServer, index, prefix, after, func(pk string) bool {
			ids = append(ids, pk)
			return len(ids) < listPage
		})
		if err != nil {
			return err
		}
		for _, id := range ids {
			s, _, err := GetServer(r, id)
			if err != nil {
				return fmt.Errorf("fsm: server index names %s, which cannot be read: %w", id, err)
			}
			if !fn(s) {
				return nil
			}
			after = append(newestFirst(s), s.ID)
		}
		if len(ids) < listPage {
			return nil
		}
	}
}

// listWithDeleted merges live servers and tombstones (changes-since
// listings), newest first.
func listWithDeleted(r Reader, l ServerListing, fn func(*Server) bool) error {
	var all []*Server
	live := l
	live.IncludeDeleted, live.After = false, nil
	if err := ListServers(r, live, func(s *Server) bool { all = append(all, s); return true }); err != nil {
		return err
	}
	var vals []string
	if l.ProjectID != "" {
		vals = []string{l.ProjectID}
	}
	var ids []string
	if err := r.ScanIndex(TableServer, IndexServerDeleted, vals, func(pk string) bool { ids = append(ids, pk); return true }); err != nil {
		return err
	}
	for _, id := range ids {
		if s, _, err := GetServer(r, id); err == nil {
			all = append(all, s)
		}
	}
	slices.SortFunc(all, func(a, b *Server) int {
		if c := cmp.Compare(b.CreatedAt, a.CreatedAt); c != 0 {
			return c
		}
		return strings.Compare(b.ID, a.ID)
	})
	for _, s := range all {
		if !fn(s) {
			break
		}
	}
	return nil
}
