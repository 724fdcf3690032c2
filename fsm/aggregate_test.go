package fsm

import (
	"fmt"
	"slices"
	"testing"

	"github.com/keel-cloud/keel/internal/hostapi"
)

// aggHarness is a lifecycle harness with aggregate helpers.
type aggHarness struct{ *lifecycle }

func newAggHarness(t *testing.T, hosts ...string) *aggHarness {
	return &aggHarness{newLifecycle(t, hosts...)}
}

func (h *aggHarness) create(name, zone string) *Aggregate {
	h.t.Helper()
	var a Aggregate
	if err := h.ok(&CreateAggregate{UUID: "uuid-" + name, Name: name, AvailabilityZone: zone, Now: 5}).Decode(&a); err != nil {
		h.t.Fatal(err)
	}
	return &a
}

func (h *aggHarness) agg(id int64) *Aggregate {
	h.t.Helper()
	a, _, err := GetAggregate(h.f.State(), id)
	if err != nil {
		h.t.Fatal(err)
	}
	return a
}

// zone is the host's effective zone and its aggregate zone.
func (h *aggHarness) zone(host string) (string, string) {
	h.t.Helper()
	hr := h.host(host)
	return hr.AvailabilityZone(), hr.AggregateZone
}

func (h *aggHarness) wantZone(host, want, wantAgg string) {
	h.t.Helper()
	if z, a := h.zone(host); z != want || a != wantAgg {
		h.t.Fatalf("host %s in zone %q (aggregate zone %q), want %q (%q)", host, z, a, want, wantAgg)
	}
}

// serverOn places one new server on host.
func (h *aggHarness) serverOn(host string, n int) string {
	h.t.Helper()
	s := testServers(n+1, "p1")[n]
	h.ok(&CreateServers{Servers: []Server{s}, MinCount: 1})
	r := h.ok(&PlaceServers{Claims: []Claim{{ServerID: s.ID, Host: host}}, Now: 9})
	var res PlaceServersResult
	if err := r.Decode(&res); err != nil || len(res.Placed) != 1 {
		h.t.Fatalf("placing %s on %s: %+v %v", s.ID, host, res, err)
	}
	return s.ID
}

func str(s string) *string { return &s }

func TestAggregateCreateUpdateDelete(t *testing.T) {
	h := newAggHarness(t, "h1")
	a := h.create("one", "")
	b := h.create("two", "az1")
	if a.ID != 1 || b.ID != 2 || a.UUID != "uuid-one" || a.Metadata != nil || a.CreatedAt != 5 || a.UpdatedAt != 0 {
		t.Fatalf("created %+v %+v", a, b)
	}
	if b.AvailabilityZone() != "az1" || len(b.Metadata) != 1 {
		t.Fatalf("a zone's metadata: %+v", b.Metadata)
	}
	long := string(make([]rune, 256))
	for _, c := range []struct {
		name string
		cmd  Command
		kind Kind
		msg  string
	}{
		{"name taken", &CreateAggregate{UUID: "u", Name: "one", Now: 6}, KindConflict, "Aggregate one already exists."},
		{"empty name", &CreateAggregate{UUID: "u", Name: "", Now: 6}, KindInvalid, "invalid aggregate name"},
		{"long name", &CreateAggregate{UUID: "u", Name: long, Now: 6}, KindInvalid, "invalid aggregate name"},
		{"NUL in name", &CreateAggregate{UUID: "u", Name: "a\x00b", Now: 6}, KindInvalid, "invalid aggregate name"},
		{"no uuid", &CreateAggregate{Name: "three", Now: 6}, KindInvalid, "invalid aggregate uuid"},
		{"NUL in zone", &CreateAggregate{UUID: "u", Name: "three", AvailabilityZone: "a\x00", Now: 6}, KindInvalid, "invalid availability zone"},
		{"rename to a taken name", &UpdateAggregate{ID: 1, Name: str("two"), Now: 6}, KindConflict, "Aggregate two already exists."},
		{"update nothing", &UpdateAggregate{ID: 1, Now: 6}, KindInvalid, "needs a name or an availability zone"},
		{"update unknown", &UpdateAggregate{ID: 99, Name: str("x"), Now: 6}, KindNotFound, "Aggregate 99 could not be found."},
		{"empty zone", &UpdateAggregate{ID: 1, Name: str("renamed"), AvailabilityZone: str(""), Now: 6}, KindInvalid,
			"Cannot update aggregate 1. Reason: Aggregate renamed does not support empty named availability zone."},
		{"empty zone by metadata", &SetAggregateMetadata{ID: 2, Metadata: map[string]*string{AggregateZoneKey: nil}, Now: 6}, KindInvalid,
			"Cannot update metadata of aggregate 2. Reason: Aggregate two does not support empty named availability zone."},
		{"bad metadata key", &SetAggregateMetadata{ID: 2, Metadata: map[string]*string{"a/b": str("x")}, Now: 6}, KindInvalid, "invalid aggregate metadata key"},
		{"long metadata value", &SetAggregateMetadata{ID: 2, Metadata: map[string]*string{"k": &long}, Now: 6}, KindInvalid, "invalid value"},
		{"metadata of unknown", &SetAggregateMetadata{ID: 7, Metadata: map[string]*string{"k": str("v")}, Now: 6}, KindNotFound, "Aggregate 7 could not be found."},
		{"delete unknown", &DeleteAggregate{ID: 3}, KindNotFound, "Aggregate 3 could not be found."},
	} {
		h.harness.refuse(c.name, c.cmd, c.kind, c.msg)
	}

	// Renaming to its own name is no conflict; a zone can be set by update.
	h.ok(&UpdateAggregate{ID: 1, Name: str("one"), Now: 7})
	var up Aggregate
	h.ok(&UpdateAggregate{ID: 1, Name: str("uno"), AvailabilityZone: str("az9"), Now: 8}).Decode(&up)
	if up.Name != "uno" || up.AvailabilityZone() != "az9" || up.UpdatedAt != 8 {
		t.Fatalf("updated %+v", up)
	}
	h.create("one", "") // the old name is free again
	h.harness.refuse("new name taken", &CreateAggregate{UUID: "u", Name: "uno", Now: 9}, KindConflict, "Aggregate uno already exists.")

	// Metadata: set, delete (nil), deleting a missing key is no error.
	h.ok(&SetAggregateMetadata{ID: 2, Metadata: map[string]*string{"ssd": str("true"), "tier": str("gold")}, Now: 10})
	h.ok(&SetAggregateMetadata{ID: 2, Metadata: map[string]*string{"ssd": nil, "nothing": nil}, Now: 11})
	if m := h.agg(2).Metadata; len(m) != 2 || m["tier"] != "gold" || m[AggregateZoneKey] != "az1" {
		t.Fatalf("metadata %v", m)
	}

	// An aggregate with hosts cannot be deleted; an empty one can.
	h.ok(&AddAggregateHost{ID: 2, Host: "h1", Now: 12})
	h.harness.refuse("delete with hosts", &DeleteAggregate{ID: 2}, KindInvalid, "Cannot remove host from aggregate 2. Reason: Host aggregate is not empty.")
	h.ok(&RemoveAggregateHost{ID: 2, Host: "h1", Now: 13})
	h.ok(&DeleteAggregate{ID: 2})
	all, _ := ListAggregates(h.f.State())
	var names []string
	for _, a := range all {
		names = append(names, fmt.Sprintf("%d %s", a.ID, a.Name))
	}
	if !slices.Equal(names, []string{"1 uno", "3 one"}) {
		t.Fatalf("aggregates %v", names)
	}
	h.create("two", "") // and its name is free
}

func TestAggregateHostsAndZones(t *testing.T) {
	h := newAggHarness(t, "h1", "h2", "h3")
	az1 := h.create("az1-agg", "az1").ID
	az2 := h.create("az2-agg", "az2").ID
	plain := h.create("plain", "").ID

	h.ok(&AddAggregateHost{ID: az1, Host: "h1", Now: 6})
	h.wantZone("h1", "az1", "az1")
	h.ok(&AddAggregateHost{ID: plain, Host: "h1", Now: 6})
	h.wantZone("h1", "az1", "az1")
	if aggs, _ := HostAggregates(h.f.State(), "h1"); len(aggs) != 2 || aggs[0].ID != az1 || aggs[1].ID != plain {
		t.Fatalf("aggregates of h1: %+v", aggs)
	}

	for _, c := range []struct {
		name string
		cmd  Command
		kind Kind
		msg  string
	}{
		{"add twice", &AddAggregateHost{ID: az1, Host: "h1"}, KindConflict, fmt.Sprintf("Aggregate %d already has host h1.", az1)},
		{"add unknown host", &AddAggregateHost{ID: az1, Host: "ghost"}, KindNotFound, "Compute host ghost could not be found."},
		{"add to unknown", &AddAggregateHost{ID: 42, Host: "h1"}, KindNotFound, "Aggregate 42 could not be found."},
		{"host in two zones", &AddAggregateHost{ID: az2, Host: "h1"}, KindConflict,
			fmt.Sprintf("Cannot add host to aggregate %d. Reason: One or more hosts already in availability zone(s) ['az1'].", az2)},
		{"zone over a host in another zone", &SetAggregateMetadata{ID: plain, Metadata: map[string]*string{AggregateZoneKey: str("az2")}}, KindInvalid,
			fmt.Sprintf("Cannot update metadata of aggregate %d. Reason: One or more hosts already in availability zone(s) ['az1'].", plain)},
		{"zone over a host in another zone by update", &UpdateAggregate{ID: plain, AvailabilityZone: str("az2")}, KindInvalid,
			fmt.Sprintf("Cannot update aggregate %d. Reason: One or more hosts already in availability zone(s) ['az1'].", plain)},
		{"remove non-member", &RemoveAggregateHost{ID: az2, Host: "h1"}, KindNotFound, fmt.Sprintf("Cannot remove host h1 in aggregate %d", az2)},
		{"remove unknown host", &RemoveAggregateHost{ID: az1, Host: "ghost"}, KindNotFound, fmt.Sprintf("Cannot remove host ghost in aggregate %d", az1)},
		{"remove from unknown", &RemoveAggregateHost{ID: 42, Host: "h1"}, KindNotFound, "Cannot remove host h1 in aggregate 42"},
	} {
		h.harness.refuse(c.name, c.cmd, c.kind, c.msg)
	}

	// The same zone on a second aggregate of the host is fine.
	h.ok(&SetAggregateMetadata{ID: plain, Metadata: map[string]*string{AggregateZoneKey: str("az1")}, Now: 7})
	// Moving the zone of one of its aggregates now conflicts with the other.
	h.harness.refuse("move one of two zones", &SetAggregateMetadata{ID: az1, Metadata: map[string]*string{AggregateZoneKey: str("az3")}},
		KindInvalid, "Reason: One or more hosts already in availability zone(s) ['az1'].")
	// Leaving one aggregate keeps the zone the other gives; leaving both
	// returns the host to the zone its agent registered.
	h.ok(&RemoveAggregateHost{ID: az1, Host: "h1", Now: 8})
	h.wantZone("h1", "az1", "az1")
	// Moving the zone of an aggregate moves its hosts (no servers there).
	h.ok(&UpdateAggregate{ID: plain, AvailabilityZone: str("az7"), Now: 9})
	h.wantZone("h1", "az7", "az7")
	h.ok(&RemoveAggregateHost{ID: plain, Host: "h1", Now: 10})
	h.wantZone("h1", DefaultZone, "")

	// A host with servers does not change zone through an aggregate.
	h.serverOn("h2", 0)
	h.harness.refuse("add a busy host to a zone", &AddAggregateHost{ID: az1, Host: "h2"}, KindConflict,
		fmt.Sprintf("Cannot add host to aggregate %d. Reason: The host cannot be added to the aggregate as the availability zone of the host would change from 'nova' to 'az1' but the host already has 1 instance(s).", az1))
	noZone := h.create("no-zone", "").ID
	h.ok(&AddAggregateHost{ID: noZone, Host: "h2", Now: 11}) // no zone: nothing moves
	h.wantZone("h2", DefaultZone, "")
	h.harness.refuse("zone over a busy host", &SetAggregateMetadata{ID: noZone, Metadata: map[string]*string{AggregateZoneKey: str("az5")}},
		KindInvalid, fmt.Sprintf("Cannot update metadata of aggregate %d. Reason: One or more hosts contain instances in this zone.", noZone))
	// Metadata other than the zone is free.
	h.ok(&SetAggregateMetadata{ID: noZone, Metadata: map[string]*string{"ssd": str("true")}, Now: 12})

	h.ok(&AddAggregateHost{ID: az2, Host: "h3", Now: 13})
	h.serverOn("h3", 1)
	h.wantZone("h3", "az2", "az2")
	h.harness.refuse("move a busy zone", &UpdateAggregate{ID: az2, AvailabilityZone: str("az4")}, KindInvalid,
		fmt.Sprintf("Cannot update aggregate %d. Reason: One or more hosts contain instances in this zone.", az2))
	h.harness.refuse("remove a busy host from its zone", &RemoveAggregateHost{ID: az2, Host: "h3"}, KindConflict,
		fmt.Sprintf("Cannot remove host from aggregate %d. Reason: The host cannot be removed from the aggregate as the availability zone of the host would change from 'az2' to 'nova' but the host already has 1 instance(s).", az2))
	// Setting the zone it already has, or renaming, moves nothing.
	h.ok(&UpdateAggregate{ID: az2, Name: str("zone-two"), AvailabilityZone: str("az2"), Now: 14})
	h.wantZone("h3", "az2", "az2")
}

// A host whose agent registered a zone keeps its servers' zone when it
// joins an aggregate of that same zone.
func TestAggregateZoneOfARegisteredZone(t *testing.T) {
	h := newAggHarness(t)
	h.ok(&RegisterHost{Registration: hostapi.Registration{Host: "h5", Zone: "az5", VCPUs: 4, MemoryMB: 4096, DiskGB: 40},
		ServiceID: "svc-h5", HypervisorID: "hv-h5", Now: 1})
	h.serverOn("h5", 0)
	same := h.create("same", "az5").ID
	other := h.create("other", "az6").ID
	h.ok(&AddAggregateHost{ID: same, Host: "h5", Now: 6})
	h.wantZone("h5", "az5", "az5")
	h.harness.refuse("another zone", &AddAggregateHost{ID: other, Host: "h5"}, KindConflict, "already in availability zone(s) ['az5']")
	// A re-registration keeps the aggregate zone.
	h.ok(&RegisterHost{Registration: hostapi.Registration{Host: "h5", Zone: "elsewhere", VCPUs: 4, MemoryMB: 4096, DiskGB: 40}, Now: 7})
	h.wantZone("h5", "az5", "az5")
}

// Deleting a compute service takes its host out of its aggregates.
func TestDeletedHostLeavesItsAggregates(t *testing.T) {
	h := newAggHarness(t, "h1", "h2")
	a := h.create("a", "az1").ID
	b := h.create("b", "").ID
	for _, c := range []Command{&AddAggregateHost{ID: a, Host: "h1"}, &AddAggregateHost{ID: b, Host: "h1"}, &AddAggregateHost{ID: b, Host: "h2"}} {
		h.ok(c)
	}
	h.ok(&DeleteService{ID: "svc-h1"})
	if hs := h.agg(a).Hosts; len(hs) != 0 {
		t.Fatalf("hosts of a: %v", hs)
	}
	if hs := h.agg(b).Hosts; !slices.Equal(hs, []string{"h2"}) {
		t.Fatalf("hosts of b: %v", hs)
	}
	if aggs, _ := HostAggregates(h.f.State(), "h1"); len(aggs) != 0 {
		t.Fatalf("the deleted host is still indexed in %+v", aggs)
	}
	h.ok(&DeleteAggregate{ID: a}) // empty now
	// The host registers again: a host like any other, in its own zone.
	h.ok(&RegisterHost{Registration: hostapi.Registration{Host: "h1", VCPUs: 4, MemoryMB: 4096, DiskGB: 40},
		ServiceID: "svc-h1b", HypervisorID: "hv-h1b", Now: 20})
	h.wantZone("h1", DefaultZone, "")
}

// Commands carry nil metadata values through the log unchanged.
func TestSetAggregateMetadataEncoding(t *testing.T) {
	c := &SetAggregateMetadata{ID: 3, Metadata: map[string]*string{"gone": nil, "kept": str("v"), "empty": str("")}, Now: 1}
	b, err := EncodeCommand(c)
	if err != nil {
		t.Fatal(err)
	}
	var back SetAggregateMetadata
	if err := Unmarshal(b[envelopeHeaderLen:], &back); err != nil {
		t.Fatal(err)
	}
	if v, ok := back.Metadata["gone"]; !ok || v != nil {
		t.Fatalf("nil value: %v %v", v, ok)
	}
	if v := back.Metadata["empty"]; v == nil || *v != "" {
		t.Fatalf("empty value: %v", v)
	}
	u := &UpdateAggregate{ID: 1, AvailabilityZone: str("")}
	b, _ = EncodeCommand(u)
	var ub UpdateAggregate
	if err := Unmarshal(b[envelopeHeaderLen:], &ub); err != nil || ub.AvailabilityZone == nil || *ub.AvailabilityZone != "" || ub.Name != nil {
		t.Fatalf("an empty zone must survive encoding: %+v %v", ub, err)
	}
}
