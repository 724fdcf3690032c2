package fsm

import (
	"cmp"
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strings"
	"unicode/utf8"
)

// Host aggregates (Nova's os-aggregates): named groups of compute hosts
// with metadata. The metadata key "availability_zone" makes an aggregate an
// availability zone: its hosts are in that zone (Host.AggregateZone), which
// overrides the zone their agents registered. Every command that can change
// a host's zone recomputes Host.AggregateZone of the hosts concerned and
// stores the host record in the same Apply, so the scheduler, the API and
// the host's agent always see a host in exactly one zone.
//
// Nova's rules, enforced here:
//   - names are unique among aggregates;
//   - a host is never in two zones: adding a host to an aggregate, or
//     giving an aggregate a zone, is refused when one of the hosts is in
//     another aggregate with a different zone;
//   - an aggregate's zone cannot be empty (so, as in Nova, a zone once set
//     can be changed but not removed);
//   - the zone of a host that has servers never changes through an
//     aggregate (its servers would silently change zone): Nova refuses it
//     when adding or removing the host and when changing the aggregate's
//     zone. Keel compares the host's effective zone before and after (the
//     zone its agent registered when no aggregate gives one), where Nova
//     compares aggregate zones only; the two differ only where Nova refuses
//     a change that moves no server;
//   - an aggregate that still has hosts cannot be deleted.
//
// Deleting a compute service removes its host from its aggregates (a hook
// in DeleteService).

// Aggregate command types. Persisted in the Raft log: append only, never
// renumber. 160–169 are reserved for aggregates.
const (
	CmdCreateAggregate      CommandType = 160
	CmdUpdateAggregate      CommandType = 161
	CmdDeleteAggregate      CommandType = 162
	CmdAddAggregateHost     CommandType = 163
	CmdRemoveAggregateHost  CommandType = 164
	CmdSetAggregateMetadata CommandType = 165
)

// TableAggregate holds Aggregate records keyed by their integer id,
// zero-padded so that a scan lists them in id order.
const TableAggregate = "aggregate"

// Indexes of TableAggregate.
const (
	// IndexAggregateName makes names unique: (name) → key.
	IndexAggregateName = "name"
	// IndexAggregateHost lists a host's aggregates: (host, key).
	IndexAggregateHost = "host"
)

// aggregateSequence numbers aggregates (their integer ids).
const aggregateSequence = "aggregate"

// AggregateZoneKey is the metadata key that makes an aggregate an
// availability zone.
const AggregateZoneKey = "availability_zone"

// Limits of aggregate fields (Nova's columns and schemas).
const (
	AggregateMaxNameLen  = 255 // characters
	AggregateMaxKeyLen   = 255 // metadata key, characters
	AggregateMaxValueLen = 255 // metadata value, characters
	aggregateMaxUUIDLen  = 255 // bytes
)

// aggregateKeyRE is Nova's metadata key pattern.
var aggregateKeyRE = regexp.MustCompile(`^[a-zA-Z0-9-_:. ]{1,255}$`)

// Aggregate is a Nova host aggregate.
type Aggregate struct {
	// ID is the integer id (Nova's, in URLs), from the "aggregate"
	// sequence; UUID is shown from microversion 2.41.
	ID   int64  `json:"id"`
	UUID string `json:"uuid"`
	Name string `json:"name"`
	// Hosts are the member compute hosts, in the order they were added.
	Hosts []string `json:"hosts,omitempty"`
	// Metadata holds the key "availability_zone" when the aggregate is a
	// zone.
	Metadata map[string]string `json:"metadata,omitempty"`
	// CreatedAt and UpdatedAt are unix microseconds; UpdatedAt is 0 until
	// the aggregate first changes (Nova's null).
	CreatedAt int64 `json:"created_at"`
	UpdatedAt int64 `json:"updated_at,omitempty"`
}

// AvailabilityZone is the aggregate's zone, "" if it is not a zone.
func (a *Aggregate) AvailabilityZone() string { return a.Metadata[AggregateZoneKey] }

// HasHost reports whether host is a member.
func (a *Aggregate) HasHost(host string) bool { return slices.Contains(a.Hosts, host) }

func aggregateKey(id int64) string { return fmt.Sprintf("%020d", id) }

// CreateAggregate creates an aggregate, a zone if AvailabilityZone is set.
// KindConflict when the name is taken. Response: the Aggregate.
type CreateAggregate struct {
	UUID             string `json:"uuid"`
	Name             string `json:"name"`
	AvailabilityZone string `json:"availability_zone,omitempty"`
	Now              int64  `json:"now"`
}

func (*CreateAggregate) CommandType() CommandType { return CmdCreateAggregate }
func (*CreateAggregate) CommandVersion() uint8    { return 1 }

// UpdateAggregate renames an aggregate and/or sets its zone (PUT
// /os-aggregates/{id}); nil fields are kept. A zone of "" is refused
// (Nova's "does not support empty named availability zone"). Response: the
// Aggregate.
type UpdateAggregate struct {
	ID               int64   `json:"id"`
	Name             *string `json:"name,omitempty"`
	AvailabilityZone *string `json:"availability_zone,omitempty"`
	Now              int64   `json:"now"`
}

func (*UpdateAggregate) CommandType() CommandType { return CmdUpdateAggregate }
func (*UpdateAggregate) CommandVersion() uint8    { return 1 }

// DeleteAggregate deletes an aggregate that has no hosts (KindInvalid
// otherwise, Nova's 400).
type DeleteAggregate struct {
	ID int64 `json:"id"`
}

func (*DeleteAggregate) CommandType() CommandType { return CmdDeleteAggregate }
func (*DeleteAggregate) CommandVersion() uint8    { return 1 }

// AddAggregateHost adds a registered compute host to an aggregate.
// KindNotFound for an unknown host or aggregate; KindConflict when the host
// is already a member, is in another zone, or has servers whose zone would
// change. Response: the Aggregate.
type AddAggregateHost struct {
	ID   int64  `json:"id"`
	Host string `json:"host"`
	Now  int64  `json:"now"`
}

func (*AddAggregateHost) CommandType() CommandType { return CmdAddAggregateHost }
func (*AddAggregateHost) CommandVersion() uint8    { return 1 }

// RemoveAggregateHost removes a host from an aggregate. KindNotFound when
// the host or the aggregate is unknown or the host is not a member;
// KindConflict when the host has servers whose zone would change.
// Response: the Aggregate.
type RemoveAggregateHost struct {
	ID   int64  `json:"id"`
	Host string `json:"host"`
	Now  int64  `json:"now"`
}

func (*RemoveAggregateHost) CommandType() CommandType { return CmdRemoveAggregateHost }
func (*RemoveAggregateHost) CommandVersion() uint8    { return 1 }

// SetAggregateMetadata is Nova's set_metadata action: each key is set, or
// deleted when its value is nil (deleting a key that is not there is not
// an error). "availability_zone" moves the aggregate's hosts to that zone,
// with the zone rules above. Response: the Aggregate.
type SetAggregateMetadata struct {
	ID       int64              `json:"id"`
	Metadata map[string]*string `json:"metadata"`
	Now      int64              `json:"now"`
}

func (*SetAggregateMetadata) CommandType() CommandType { return CmdSetAggregateMetadata }
func (*SetAggregateMetadata) CommandVersion() uint8    { return 1 }

func init() {
	register("CreateAggregate", applyCreateAggregate)
	register("UpdateAggregate", applyUpdateAggregate)
	register("DeleteAggregate", applyDeleteAggregate)
	register("AddAggregateHost", applyAddAggregateHost)
	register("RemoveAggregateHost", applyRemoveAggregateHost)
	register("SetAggregateMetadata", applySetAggregateMetadata)
	hostDeleteHooks = append(hostDeleteHooks, removeHostFromAggregates)
}

// --- reads ------------------------------------------------------------------

// GetAggregate returns an aggregate by integer id, or KindNotFound with
// Nova's message.
func GetAggregate(r Reader, id int64) (*Aggregate, Meta, error) {
	a, m, err := Get[Aggregate](r, TableAggregate, aggregateKey(id))
	if IsNotFound(err) {
		return nil, Meta{}, aggregateNotFound(id)
	}
	return a, m, err
}

func aggregateNotFound(id int64) *Error {
	return Errorf(KindNotFound, "Aggregate %d could not be found.", id)
}

// ListAggregates returns every aggregate, by id.
func ListAggregates(r Reader) ([]*Aggregate, error) {
	var out []*Aggregate
	var derr error
	err := r.Scan(TableAggregate, "", func(rec Record) bool {
		var a Aggregate
		if derr = rec.Decode(&a); derr != nil {
			return false
		}
		out = append(out, &a)
		return true
	})
	if err == nil {
		err = derr
	}
	return out, err
}

// HostAggregates returns the aggregates host belongs to, by id.
func HostAggregates(r Reader, host string) ([]*Aggregate, error) {
	var keys []string
	if err := r.ScanIndex(TableAggregate, IndexAggregateHost, []string{host}, func(pk string) bool {
		keys = append(keys, pk)
		return true
	}); err != nil {
		return nil, err
	}
	out := make([]*Aggregate, 0, len(keys))
	for _, k := range keys {
		a, _, err := Get[Aggregate](r, TableAggregate, k)
		if err != nil {
			return nil, err
		}
		out = append(out, a)
	}
	return out, nil
}

// --- validation -------------------------------------------------------------

func aggregateTextOK(s string, max int) bool {
	n := utf8.RuneCountInString(s)
	return n >= 1 && n <= max && utf8.ValidString(s) && !strings.ContainsRune(s, 0)
}

func validAggregateName(name string) error {
	if !aggregateTextOK(name, AggregateMaxNameLen) {
		return Errorf(KindInvalid, "invalid aggregate name %s: want 1 to %d characters of UTF-8 without NUL", identShow(name), AggregateMaxNameLen)
	}
	return nil
}

func validZoneName(z string) error {
	if !aggregateTextOK(z, AggregateMaxValueLen) {
		return Errorf(KindInvalid, "invalid availability zone %s: want 1 to %d characters of UTF-8 without NUL", identShow(z), AggregateMaxValueLen)
	}
	return nil
}

// --- zones ------------------------------------------------------------------

// Aggregate actions, for Nova's messages.
const (
	aggActionAdd        = "Cannot add host to aggregate %d. Reason: %s."
	aggActionRemove     = "Cannot remove host from aggregate %d. Reason: %s."
	aggActionUpdate     = "Cannot update aggregate %d. Reason: %s."
	aggActionUpdateMeta = "Cannot update metadata of aggregate %d. Reason: %s."
)

// zoneAfter is the AggregateZone a host has once the aggregate a (its new
// state, or a deleted aggregate's id with a == nil) replaces the stored one.
// Nova's rules keep at most one zone among a host's aggregates; should
// there be several, the lowest id wins, so every node agrees.
func zoneAfter(r Reader, host string, a *Aggregate) (string, error) {
	aggs, err := HostAggregates(r, host)
	if err != nil {
		return "", err
	}
	aggs = slices.DeleteFunc(aggs, func(x *Aggregate) bool { return x.ID == a.ID })
	if a.HasHost(host) {
		aggs = append(aggs, a)
	}
	slices.SortFunc(aggs, func(x, y *Aggregate) int { return cmp.Compare(x.ID, y.ID) })
	for _, x := range aggs {
		if z := x.AvailabilityZone(); z != "" {
			return z, nil
		}
	}
	return "", nil
}

// zoneMove is one host whose effective zone an aggregate change alters.
type zoneMove struct {
	host     *Host
	from, to string // effective zones
	newAgg   string // the AggregateZone it gets
}

// zoneMoves returns the hosts among hosts whose AggregateZone changes when
// a (its new state) replaces the stored aggregate.
func zoneMoves(r Reader, a *Aggregate, hosts []string) ([]zoneMove, error) {
	var out []zoneMove
	for _, name := range hosts {
		h, _, err := Get[Host](r, TableHost, name)
		if IsNotFound(err) {
			continue
		} else if err != nil {
			return nil, err
		}
		z, err := zoneAfter(r, name, a)
		if err != nil {
			return nil, err
		}
		if z == h.AggregateZone {
			continue
		}
		m := zoneMove{host: h, from: h.AvailabilityZone(), newAgg: z}
		h2 := *h
		h2.AggregateZone = z
		m.to = h2.AvailabilityZone()
		out = append(out, m)
	}
	return out, nil
}

// hostServers counts the servers assigned to host.
func hostServers(r Reader, host string) (int, error) {
	n := 0
	err := r.ScanIndex(TableServer, IndexServerHost, []string{host}, func(string) bool { n++; return true })
	return n, err
}

// zoneConflicts is Nova's is_safe_to_update_az: the zones, other than
// zone, of the other aggregates the hosts are in.
func zoneConflicts(r Reader, a *Aggregate, zone string, hosts []string) ([]string, error) {
	seen := map[int64]bool{}
	var others []*Aggregate
	for _, h := range hosts {
		aggs, err := HostAggregates(r, h)
		if err != nil {
			return nil, err
		}
		for _, x := range aggs {
			if x.ID != a.ID && !seen[x.ID] {
				seen[x.ID] = true
				others = append(others, x)
			}
		}
	}
	slices.SortFunc(others, func(x, y *Aggregate) int { return cmp.Compare(x.ID, y.ID) })
	var out []string
	for _, x := range others {
		if z := x.AvailabilityZone(); z != "" && z != zone {
			out = append(out, z)
		}
	}
	return out, nil
}

// checkNewZone applies Nova's checks to giving aggregate old (stored state)
// the zone zone, for the message format action: not empty, no host of it
// in another zone, no host with servers changing zone.
func checkNewZone(r Reader, old, next *Aggregate, zone, action string) error {
	if zone == "" {
		return Errorf(KindInvalid, action, old.ID, fmt.Sprintf("Aggregate %s does not support empty named availability zone", next.Name))
	}
	if err := validZoneName(zone); err != nil {
		return err
	}
	conflicts, err := zoneConflicts(r, old, zone, old.Hosts)
	if err != nil {
		return err
	}
	if len(conflicts) > 0 {
		return Errorf(KindInvalid, action, old.ID, "One or more hosts already in availability zone(s) "+pyStrList(conflicts))
	}
	moves, err := zoneMoves(r, next, old.Hosts)
	if err != nil {
		return err
	}
	for _, m := range moves {
		if m.from == m.to {
			continue
		}
		n, err := hostServers(r, m.host.Host)
		if err != nil {
			return err
		}
		if n > 0 {
			return Errorf(KindInvalid, action, old.ID, "One or more hosts contain instances in this zone")
		}
	}
	return nil
}

// moveHosts stores the new AggregateZone of the hosts whose zone changes
// with next (the aggregate's new state).
func moveHosts(tx *Txn, next *Aggregate, hosts []string) error {
	moves, err := zoneMoves(tx, next, hosts)
	if err != nil {
		return err
	}
	for _, m := range moves {
		m.host.AggregateZone = m.newAgg
		if err := tx.Put(TableHost, m.host.Host, m.host); err != nil {
			return err
		}
	}
	return nil
}

// pyStrList renders strings as Python's repr of a list does.
func pyStrList(ss []string) string {
	parts := make([]string, len(ss))
	for i, s := range ss {
		q := "'"
		if strings.Contains(s, "'") && !strings.Contains(s, `"`) {
			q = `"`
		}
		s = strings.ReplaceAll(s, `\`, `\\`)
		if q == "'" {
			s = strings.ReplaceAll(s, "'", `\'`)
		}
		parts[i] = q + s + q
	}
	return "[" + strings.Join(parts, ", ") + "]"
}

// --- appliers ---------------------------------------------------------------

func applyCreateAggregate(tx *Txn, c *CreateAggregate) (any, error) {
	if err := validAggregateName(c.Name); err != nil {
		return nil, err
	}
	if c.UUID == "" || len(c.UUID) > aggregateMaxUUIDLen || !utf8.ValidString(c.UUID) || strings.ContainsRune(c.UUID, 0) {
		return nil, Errorf(KindInvalid, "invalid aggregate uuid %s", identShow(c.UUID))
	}
	if c.AvailabilityZone != "" {
		if err := validZoneName(c.AvailabilityZone); err != nil {
			return nil, err
		}
	}
	if err := aggregateNameFree(tx, c.Name); err != nil {
		return nil, err
	}
	id, err := nextSeq(tx, aggregateSequence, 1)
	if err != nil {
		return nil, err
	}
	a := &Aggregate{ID: id, UUID: c.UUID, Name: c.Name, CreatedAt: c.Now}
	if c.AvailabilityZone != "" {
		a.Metadata = map[string]string{AggregateZoneKey: c.AvailabilityZone}
	}
	key := aggregateKey(id)
	if err := tx.Put(TableAggregate, key, a); err != nil {
		return nil, err
	}
	return a, tx.PutIndex(TableAggregate, IndexAggregateName, key, a.Name)
}

// aggregateNameFree refuses a name another aggregate has.
func aggregateNameFree(r Reader, name string) error {
	taken := false
	if err := r.ScanIndex(TableAggregate, IndexAggregateName, []string{name}, func(string) bool { taken = true; return false }); err != nil {
		return err
	}
	if taken {
		return Errorf(KindConflict, "Aggregate %s already exists.", name)
	}
	return nil
}

// cloneAggregate copies a so that its new state can be built beside the
// stored one.
func cloneAggregate(a *Aggregate) *Aggregate {
	b := *a
	b.Hosts = slices.Clone(a.Hosts)
	b.Metadata = maps.Clone(a.Metadata)
	return &b
}

func applyUpdateAggregate(tx *Txn, c *UpdateAggregate) (any, error) {
	old, _, err := GetAggregate(tx, c.ID)
	if err != nil {
		return nil, err
	}
	if c.Name == nil && c.AvailabilityZone == nil {
		return nil, Errorf(KindInvalid, "updating aggregate %d needs a name or an availability zone", c.ID)
	}
	next := cloneAggregate(old)
	next.UpdatedAt = c.Now
	if c.Name != nil {
		if err := validAggregateName(*c.Name); err != nil {
			return nil, err
		}
		if *c.Name != old.Name {
			if err := aggregateNameFree(tx, *c.Name); err != nil {
				return nil, err
			}
		}
		next.Name = *c.Name
	}
	if c.AvailabilityZone != nil {
		if next.Metadata == nil {
			next.Metadata = map[string]string{}
		}
		next.Metadata[AggregateZoneKey] = *c.AvailabilityZone
		if err := checkNewZone(tx, old, next, *c.AvailabilityZone, aggActionUpdate); err != nil {
			return nil, err
		}
	}
	return next, storeAggregate(tx, old, next)
}

// storeAggregate writes next over old: the record, its name index, and the
// zones of the hosts the change moves.
func storeAggregate(tx *Txn, old, next *Aggregate) error {
	key := aggregateKey(next.ID)
	if len(next.Metadata) == 0 {
		next.Metadata = nil // one encoding for "no metadata"
	}
	if len(next.Hosts) == 0 {
		next.Hosts = nil
	}
	if err := tx.Put(TableAggregate, key, next); err != nil {
		return err
	}
	if next.Name != old.Name {
		if err := tx.DeleteIndex(TableAggregate, IndexAggregateName, key, old.Name); err != nil {
			return err
		}
		if err := tx.PutIndex(TableAggregate, IndexAggregateName, key, next.Name); err != nil {
			return err
		}
	}
	for _, h := range old.Hosts {
		if !next.HasHost(h) {
			if err := tx.DeleteIndex(TableAggregate, IndexAggregateHost, key, h); err != nil {
				return err
			}
		}
	}
	for _, h := range next.Hosts {
		if !old.HasHost(h) {
			if err := tx.PutIndex(TableAggregate, IndexAggregateHost, key, h); err != nil {
				return err
			}
		}
	}
	hosts := slices.Clone(old.Hosts)
	for _, h := range next.Hosts {
		if !slices.Contains(hosts, h) {
			hosts = append(hosts, h)
		}
	}
	return moveHosts(tx, next, hosts)
}

func applyDeleteAggregate(tx *Txn, c *DeleteAggregate) (any, error) {
	a, _, err := GetAggregate(tx, c.ID)
	if err != nil {
		return nil, err
	}
	if len(a.Hosts) > 0 {
		return nil, Errorf(KindInvalid, aggActionRemove, a.ID, "Host aggregate is not empty")
	}
	key := aggregateKey(a.ID)
	if err := tx.DeleteIndex(TableAggregate, IndexAggregateName, key, a.Name); err != nil {
		return nil, err
	}
	return nil, tx.Delete(TableAggregate, key)
}

// zoneChangeRefusal is Nova's refusal to move a host with servers between
// zones by adding it to or removing it from an aggregate.
func zoneChangeRefusal(format string, id int64, verb string, from, to string, servers int) error {
	return Errorf(KindConflict, format, id, fmt.Sprintf(
		"The host cannot be %s the aggregate as the availability zone of the host would change from '%s' to '%s' "+
			"but the host already has %d instance(s). Changing the AZ of an existing instance is not supported by this action. "+
			"Move the instances away from this host then try again. If you need to move the instances between AZs then you "+
			"can use shelve_offload and unshelve to achieve this.", verb, from, to, servers))
}

// checkHostZoneMove refuses a membership change that moves a host with
// servers to another zone.
func checkHostZoneMove(r Reader, next *Aggregate, host, format, verb string) error {
	moves, err := zoneMoves(r, next, []string{host})
	if err != nil {
		return err
	}
	for _, m := range moves {
		if m.from == m.to {
			continue
		}
		n, err := hostServers(r, host)
		if err != nil {
			return err
		}
		if n > 0 {
			return zoneChangeRefusal(format, next.ID, verb, m.from, m.to, n)
		}
	}
	return nil
}

func applyAddAggregateHost(tx *Txn, c *AddAggregateHost) (any, error) {
	if c.Host == "" || !validKeyPart(c.Host) {
		return nil, Errorf(KindNotFound, "Compute host %s could not be found.", c.Host)
	}
	if _, _, err := GetHost(tx, c.Host); err != nil {
		return nil, err
	}
	old, _, err := GetAggregate(tx, c.ID)
	if err != nil {
		return nil, err
	}
	if z := old.AvailabilityZone(); z != "" {
		conflicts, err := zoneConflicts(tx, old, z, []string{c.Host})
		if err != nil {
			return nil, err
		}
		if len(conflicts) > 0 {
			return nil, Errorf(KindConflict, aggActionAdd, old.ID, "One or more hosts already in availability zone(s) "+pyStrList(conflicts))
		}
	}
	if old.HasHost(c.Host) {
		return nil, Errorf(KindConflict, "Aggregate %d already has host %s.", old.ID, c.Host)
	}
	next := cloneAggregate(old)
	next.Hosts = append(next.Hosts, c.Host)
	next.UpdatedAt = c.Now
	if err := checkHostZoneMove(tx, next, c.Host, aggActionAdd, "added to"); err != nil {
		return nil, err
	}
	return next, storeAggregate(tx, old, next)
}

func applyRemoveAggregateHost(tx *Txn, c *RemoveAggregateHost) (any, error) {
	cannot := Errorf(KindNotFound, "Cannot remove host %s in aggregate %d", c.Host, c.ID)
	if c.Host == "" || !validKeyPart(c.Host) {
		return nil, cannot
	}
	if _, _, err := GetHost(tx, c.Host); err != nil {
		return nil, cannot
	}
	old, _, err := GetAggregate(tx, c.ID)
	if IsNotFound(err) || err == nil && !old.HasHost(c.Host) {
		return nil, cannot
	} else if err != nil {
		return nil, err
	}
	next := cloneAggregate(old)
	next.Hosts = slices.DeleteFunc(next.Hosts, func(h string) bool { return h == c.Host })
	next.UpdatedAt = c.Now
	if err := checkHostZoneMove(tx, next, c.Host, aggActionRemove, "removed from"); err != nil {
		return nil, err
	}
	return next, storeAggregate(tx, old, next)
}

func applySetAggregateMetadata(tx *Txn, c *SetAggregateMetadata) (any, error) {
	old, _, err := GetAggregate(tx, c.ID)
	if err != nil {
		return nil, err
	}
	for _, k := range slices.Sorted(maps.Keys(c.Metadata)) {
		if !aggregateKeyRE.MatchString(k) {
			return nil, Errorf(KindInvalid, "invalid aggregate metadata key %s: want 1 to %d characters of [a-zA-Z0-9-_:. ]", identShow(k), AggregateMaxKeyLen)
		}
		if v := c.Metadata[k]; v != nil && (utf8.RuneCountInString(*v) > AggregateMaxValueLen || !utf8.ValidString(*v) || strings.ContainsRune(*v, 0)) {
			return nil, Errorf(KindInvalid, "invalid value of aggregate metadata key %s: want at most %d characters of UTF-8 without NUL", k, AggregateMaxValueLen)
		}
	}
	next := cloneAggregate(old)
	next.UpdatedAt = c.Now
	if next.Metadata == nil {
		next.Metadata = map[string]string{}
	}
	for k, v := range c.Metadata {
		if v == nil {
			delete(next.Metadata, k)
		} else {
			next.Metadata[k] = *v
		}
	}
	if v, ok := c.Metadata[AggregateZoneKey]; ok {
		zone := ""
		if v != nil {
			zone = *v
		}
		if err := checkNewZone(tx, old, next, zone, aggActionUpdateMeta); err != nil {
			return nil, err
		}
	}
	return next, storeAggregate(tx, old, next)
}

// removeHostFromAggregates is DeleteService's hook: a deleted compute
// host leaves its aggregates (the host record itself goes with it, so no
// zone is recomputed).
func removeHostFromAggregates(tx *Txn, host string) error {
	aggs, err := HostAggregates(tx, host)
	if err != nil {
		return err
	}
	for _, a := range aggs {
		key := aggregateKey(a.ID)
		a.Hosts = slices.DeleteFunc(a.Hosts, func(h string) bool { return h == host })
		if len(a.Hosts) == 0 {
			a.Hosts = nil
		}
		if err := tx.Put(TableAggregate, key, a); err != nil {
			return err
		}
		if err := tx.DeleteIndex(TableAggregate, IndexAggregateHost, key, host); err != nil {
			return err
		}
	}
	return nil
}
