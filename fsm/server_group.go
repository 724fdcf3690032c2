package fsm

import (
	"fmt"
	"maps"
	"slices"
	"strings"
	"unicode/utf8"
)

// Server groups (Nova's os-server-groups): a named placement policy
// (affinity, anti-affinity and their soft forms) that servers join at boot
// with the "group" scheduler hint. The group's members are the servers that
// joined it and are not deleted: CreateServers adds them
// (AddServerGroupMembers) and a server's deletion removes it
// (RemoveServerGroupMember), inside the same Apply, so the scheduler always
// sees the members as they are.
//
// Quotas: server_groups is counted (ChargeQuota) against the creator's
// project and user; server_group_members is a limit per group, checked
// against the group's current size when servers join.

// Server group command types. Persisted in the Raft log: append only, never
// renumber. 120–129 are reserved for server groups.
const (
	CmdCreateServerGroup CommandType = 120
	CmdDeleteServerGroup CommandType = 121
)

// TableServerGroup holds ServerGroup records by id.
const TableServerGroup = "server_group"

// Indexes of TableServerGroup.
const (
	// IndexServerGroupProject orders a project's groups by creation:
	// (project, created) → id.
	IndexServerGroupProject = "project"
	// IndexServerGroupCreated orders every group by creation: (created) → id.
	IndexServerGroupCreated = "created"
	// IndexServerGroupMember maps a member server to its group:
	// (server id) → group id. A server is in at most one group.
	IndexServerGroupMember = "member"
)

// Server group policies.
const (
	PolicyAffinity         = "affinity"
	PolicyAntiAffinity     = "anti-affinity"
	PolicySoftAffinity     = "soft-affinity"
	PolicySoftAntiAffinity = "soft-anti-affinity"
)

// RuleMaxServerPerHost is the one rule Nova knows (2.64): how many members
// of an anti-affinity group may share a host.
const RuleMaxServerPerHost = "max_server_per_host"

// Limits of server group fields.
const (
	// ServerGroupMaxNameLen is the longest name, in characters (Nova's
	// column).
	ServerGroupMaxNameLen = 255
	// serverGroupMaxIDLen bounds the group, project and user ids, in bytes.
	serverGroupMaxIDLen = 255
	// serverGroupMaxRule bounds max_server_per_host (Nova's MAX_INT).
	serverGroupMaxRule = int(MaxQuotaLimit)
)

// ServerGroup is a Nova server group (an InstanceGroup).
type ServerGroup struct {
	// ID is the group's UUID, made by the proposer.
	ID string `json:"id"`
	// Name is 1 to 255 characters; names need not be unique.
	Name string `json:"name"`
	// ProjectID and UserID are the creator's; the group belongs to the
	// project, and its server_groups quota is charged to both.
	ProjectID string `json:"project_id"`
	UserID    string `json:"user_id"`
	// Policy is one of the Policy* constants.
	Policy string `json:"policy"`
	// Rules holds max_server_per_host, only for anti-affinity.
	Rules map[string]int `json:"rules,omitempty"`
	// Members are the ids of the servers in the group, in the order they
	// joined.
	Members []string `json:"members,omitempty"`
	// CreatedAt is the creation time in unix microseconds (it orders
	// listings, as Nova's creation order does).
	CreatedAt int64 `json:"created_at"`
}

// CreateServerGroup stores a new server group and charges one server_groups
// to its project and user. Group.Members must be empty. Refused with
// KindInvalid for a malformed group, KindConflict for an id in use, then
// KindQuota ("Quota exceeded, too
// many server groups.") when the project or user is at its limit, then
// KindInvalid ("Only anti-affinity policy supports rules.") for rules on
// another policy: Nova's order. Response: the stored ServerGroup.
type CreateServerGroup struct {
	Group ServerGroup `json:"group"`
}

func (*CreateServerGroup) CommandType() CommandType { return CmdCreateServerGroup }
func (*CreateServerGroup) CommandVersion() uint8    { return 1 }

// DeleteServerGroup deletes a group (members or not: its servers simply
// leave it, as in Nova) and releases its server_groups usage. KindNotFound
// if it does not exist. Response: the deleted ServerGroup.
type DeleteServerGroup struct {
	ID string `json:"id"`
}

func (*DeleteServerGroup) CommandType() CommandType { return CmdDeleteServerGroup }
func (*DeleteServerGroup) CommandVersion() uint8    { return 1 }

func init() {
	register("CreateServerGroup", applyCreateServerGroup)
	register("DeleteServerGroup", applyDeleteServerGroup)
}

// Nova's messages.
const (
	serverGroupQuotaMessage  = "Quota exceeded, too many server groups."
	serverGroupMembersQuota  = "Quota exceeded, too many servers in group"
	serverGroupRulesMessage  = "Only anti-affinity policy supports rules."
	serverGroupNotFoundTempl = "Instance group %s could not be found."
)

// serverGroupNotFound is Nova's InstanceGroupNotFound. Its kind is the
// caller's: a 404 on /os-server-groups/{id}, a 400 for a scheduler hint.
func serverGroupNotFound(kind Kind, id string) *Error {
	return Errorf(kind, serverGroupNotFoundTempl, id)
}

// --- validation -------------------------------------------------------------

// ValidServerGroupPolicy reports whether p is one of the four policies.
func ValidServerGroupPolicy(p string) bool {
	switch p {
	case PolicyAffinity, PolicyAntiAffinity, PolicySoftAffinity, PolicySoftAntiAffinity:
		return true
	}
	return false
}

// serverGroupIDOK reports whether id can be a key or index value: 1 to 255
// bytes of UTF-8 without NUL or '/'.
func serverGroupIDOK(id string) bool {
	return id != "" && len(id) <= serverGroupMaxIDLen && utf8.ValidString(id) && !strings.ContainsAny(id, "\x00/")
}

func (g *ServerGroup) validate() error {
	for _, f := range []struct{ what, id string }{{"server group", g.ID}, {"project", g.ProjectID}, {"user", g.UserID}} {
		if !serverGroupIDOK(f.id) {
			return Errorf(KindInvalid, "invalid %s id %s: want 1 to %d bytes of UTF-8 without NUL or '/'", f.what, identShow(f.id), serverGroupMaxIDLen)
		}
	}
	if n := utf8.RuneCountInString(g.Name); n < 1 || n > ServerGroupMaxNameLen || !utf8.ValidString(g.Name) || strings.ContainsRune(g.Name, 0) {
		return Errorf(KindInvalid, "invalid server group name %s: want 1 to %d characters of UTF-8 without NUL", identShow(g.Name), ServerGroupMaxNameLen)
	}
	if !ValidServerGroupPolicy(g.Policy) {
		return Errorf(KindInvalid, "invalid server group policy %s: want one of %s, %s, %s, %s",
			identShow(g.Policy), PolicyAffinity, PolicyAntiAffinity, PolicySoftAffinity, PolicySoftAntiAffinity)
	}
	for _, k := range slices.Sorted(maps.Keys(g.Rules)) {
		if k != RuleMaxServerPerHost {
			return Errorf(KindInvalid, "invalid server group rule %s: the only rule is %s", identShow(k), RuleMaxServerPerHost)
		}
		if v := g.Rules[k]; v < 1 || v > serverGroupMaxRule {
			return Errorf(KindInvalid, "invalid server group rule %s=%d: want 1 to %d", k, v, serverGroupMaxRule)
		}
	}
	if len(g.Members) > 0 {
		return Errorf(KindInvalid, "a new server group has no members: servers join it when they are created")
	}
	if g.CreatedAt <= 0 {
		return Errorf(KindInvalid, "server group %s needs a creation time (unix microseconds)", identShow(g.ID))
	}
	return nil
}

// serverGroupCreated is the index value that orders groups by creation
// (the primary key, the id, breaks ties).
func serverGroupCreated(g *ServerGroup) string {
	return fmt.Sprintf("%020d", g.CreatedAt)
}

// --- appliers ---------------------------------------------------------------

func applyCreateServerGroup(tx *Txn, c *CreateServerGroup) (any, error) {
	g := c.Group
	if err := g.validate(); err != nil {
		return nil, err
	}
	if _, exists, err := tx.Get(TableServerGroup, g.ID); err != nil {
		return nil, err
	} else if exists {
		return nil, Errorf(KindConflict, "server group %s already exists", g.ID)
	}
	// Nova checks the quota before it looks at the rules.
	if err := ChargeQuota(tx, g.ProjectID, g.UserID, map[string]int64{"server_groups": 1}); err != nil {
		if e, ok := AsError(err); ok && e.Kind == KindQuota {
			return nil, Errorf(KindQuota, serverGroupQuotaMessage)
		}
		return nil, err
	}
	if len(g.Rules) > 0 && g.Policy != PolicyAntiAffinity {
		return nil, Errorf(KindInvalid, serverGroupRulesMessage)
	}
	if len(g.Rules) == 0 {
		g.Rules = nil // one encoding for "no rules"
	}
	g.Members = nil
	if err := tx.Put(TableServerGroup, g.ID, &g); err != nil {
		return nil, err
	}
	if err := tx.PutIndex(TableServerGroup, IndexServerGroupProject, g.ID, g.ProjectID, serverGroupCreated(&g)); err != nil {
		return nil, err
	}
	if err := tx.PutIndex(TableServerGroup, IndexServerGroupCreated, g.ID, serverGroupCreated(&g)); err != nil {
		return nil, err
	}
	return &g, nil
}

func applyDeleteServerGroup(tx *Txn, c *DeleteServerGroup) (any, error) {
	g, _, err := GetServerGroup(tx, c.ID)
	if err != nil {
		return nil, err
	}
	if err := ChargeQuota(tx, g.ProjectID, g.UserID, map[string]int64{"server_groups": -1}); err != nil {
		return nil, err
	}
	for _, m := range g.Members {
		if err := tx.DeleteIndex(TableServerGroup, IndexServerGroupMember, g.ID, m); err != nil {
			return nil, err
		}
	}
	if err := tx.DeleteIndex(TableServerGroup, IndexServerGroupProject, g.ID, g.ProjectID, serverGroupCreated(g)); err != nil {
		return nil, err
	}
	if err := tx.DeleteIndex(TableServerGroup, IndexServerGroupCreated, g.ID, serverGroupCreated(g)); err != nil {
		return nil, err
	}
	if err := tx.Delete(TableServerGroup, g.ID); err != nil {
		return nil, err
	}
	return g, nil
}

// --- helpers for the servers' appliers ---------------------------------------

// AddServerGroupMembers adds servers (being created by the same command) to
// the group groupID, in order, inside Apply. The group must exist, or the
// error is Nova's "Instance group <id> could not be found." (KindInvalid: a
// bad scheduler hint is a 400); whether the caller may use the group (its
// project) is the API's check. The group may hold at most its project's
// server_group_members limit (as set for the group's creator), or the error
// is Nova's "Quota exceeded, too many servers in group" (KindQuota, a 403)
// and nothing joins. A server already in a group is a KindConflict.
//
// Txn reads do not see the command's own writes: call it at most once per
// group in one command, with every server that joins.
func AddServerGroupMembers(tx *Txn, groupID string, serverIDs []string) error {
	if len(serverIDs) == 0 {
		return nil
	}
	if !serverGroupIDOK(groupID) {
		return serverGroupNotFound(KindInvalid, groupID)
	}
	g, _, err := Get[ServerGroup](tx, TableServerGroup, groupID)
	if err != nil {
		if e, ok := AsError(err); ok && e.Kind == KindNotFound {
			return serverGroupNotFound(KindInvalid, groupID)
		}
		return err
	}
	seen := make(map[string]bool, len(serverIDs))
	for _, id := range serverIDs {
		if !serverGroupIDOK(id) {
			return Errorf(KindInvalid, "invalid server id %s", identShow(id))
		}
		if seen[id] {
			return Errorf(KindInvalid, "server %s is given twice to join server group %s", id, groupID)
		}
		seen[id] = true
		if cur, err := serverGroupIDOf(tx, id); err != nil {
			return err
		} else if cur != "" {
			return Errorf(KindConflict, "server %s is already a member of server group %s", id, cur)
		}
	}
	limits, err := UserQuotas(tx, g.ProjectID, g.UserID)
	if err != nil {
		return err
	}
	if lim := limits["server_group_members"]; lim >= 0 && int64(len(g.Members)+len(serverIDs)) > lim {
		return Errorf(KindQuota, serverGroupMembersQuota)
	}
	g.Members = append(g.Members, serverIDs...)
	if err := tx.Put(TableServerGroup, g.ID, g); err != nil {
		return err
	}
	for _, id := range serverIDs {
		if err := tx.PutIndex(TableServerGroup, IndexServerGroupMember, g.ID, id); err != nil {
			return err
		}
	}
	return nil
}

// RemoveServerGroupMember takes a deleted server out of the group that holds
// it, inside Apply; a server in no group is a no-op. Like
// AddServerGroupMembers, call it at most once per group in one command.
func RemoveServerGroupMember(tx *Txn, serverID string) error {
	if !serverGroupIDOK(serverID) {
		return nil
	}
	groupID, err := serverGroupIDOf(tx, serverID)
	if err != nil || groupID == "" {
		return err
	}
	g, _, err := GetServerGroup(tx, groupID)
	if err != nil {
		return fmt.Errorf("fsm: server %s is indexed in server group %s, which cannot be read: %w", serverID, groupID, err)
	}
	g.Members = slices.DeleteFunc(g.Members, func(m string) bool { return m == serverID })
	if err := tx.DeleteIndex(TableServerGroup, IndexServerGroupMember, g.ID, serverID); err != nil {
		return err
	}
	return tx.Put(TableServerGroup, g.ID, g)
}

// --- reads ------------------------------------------------------------------

// serverGroupIDOf returns the id of the group holding serverID, or "".
func serverGroupIDOf(r Reader, serverID string) (string, error) {
	var groupID string
	err := r.ScanIndex(TableServerGroup, IndexServerGroupMember, []string{serverID}, func(pk string) bool {
		groupID = pk
		return false
	})
	return groupID, err
}

// ServerGroupOf returns the group serverID is a member of, or nil (and no
// error) when it is in none.
func ServerGroupOf(r Reader, serverID string) (*ServerGroup, error) {
	if !serverGroupIDOK(serverID) {
		return nil, nil
	}
	groupID, err := serverGroupIDOf(r, serverID)
	if err != nil || groupID == "" {
		return nil, err
	}
	g, _, err := GetServerGroup(r, groupID)
	if err != nil {
		return nil, fmt.Errorf("fsm: server %s is indexed in server group %s, which cannot be read: %w", serverID, groupID, err)
	}
	return g, nil
}

// GetServerGroup returns the group id, or Nova's "Instance group <id> could
// not be found." (KindNotFound).
func GetServerGroup(r Reader, id string) (*ServerGroup, Meta, error) {
	if !serverGroupIDOK(id) {
		return nil, Meta{}, serverGroupNotFound(KindNotFound, id)
	}
	rec, ok, err := r.Get(TableServerGroup, id)
	if err != nil {
		return nil, Meta{}, err
	}
	if !ok {
		return nil, Meta{}, serverGroupNotFound(KindNotFound, id)
	}
	g := new(ServerGroup)
	if err := rec.Decode(g); err != nil {
		return nil, Meta{}, fmt.Errorf("fsm: decode %s/%s: %w", TableServerGroup, id, err)
	}
	return g, rec.Meta, nil
}

// ListServerGroups calls fn with the groups of projectID ("" for every
// project), oldest first (Nova's creation order), until fn returns false.
func ListServerGroups(r Reader, projectID string, fn func(*ServerGroup) bool) error {
	index, prefix := IndexServerGroupCreated, []string(nil)
	if projectID != "" {
		index, prefix = IndexServerGroupProject, []string{projectID}
	}
	var after []string
	for {
		// Records are read between index scans, never while a scan holds
		// the store (State's read lock is not reentrant).
		var ids []string
		err := r.ScanIndexAfter(TableServerGroup, index, prefix, after, func(pk string) bool {
			ids = append(ids, pk)
			return len(ids) < listPage
		})
		if err != nil {
			return err
		}
		for _, id := range ids {
			g, _, err := GetServerGroup(r, id)
			if err != nil {
				return fmt.Errorf("fsm: server group index names %s, which cannot be read: %w", id, err)
			}
			if !fn(g) {
				return nil
			}
			after = []string{serverGroupCreated(g), g.ID}
		}
		if len(ids) < listPage {
			return nil
		}
	}
}
