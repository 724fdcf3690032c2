package fsm

import (
	"encoding/binary"
	"fmt"
	"slices"
)

// CommandType tags each kind of Raft log entry the FSM understands. Values are
// persisted in the log: never renumber or reuse one.
type CommandType uint16

// Command is a typed, versioned payload for the Raft log. Commands are data:
// everything Apply needs (ids, timestamps, generated secrets) is made by the
// proposer and carried here, so Apply stays deterministic.
type Command interface {
	CommandType() CommandType
	// CommandVersion is the payload's schema version. A node stops rather
	// than apply a version it does not know (see README.md).
	CommandVersion() uint8
}

// envelopeFormat is the first byte of every encoded command. It lets a future
// envelope layout coexist with this one.
const envelopeFormat byte = 1

const envelopeHeaderLen = 4 // format, type (2 bytes, big endian), version

// EncodeCommand is the one way a command becomes a Raft log entry:
// [format][type hi][type lo][version][msgpack payload].
func EncodeCommand(c Command) ([]byte, error) {
	payload, err := Marshal(c)
	if err != nil {
		return nil, fmt.Errorf("encode command %s: %w", c.CommandType(), err)
	}
	out := make([]byte, envelopeHeaderLen, envelopeHeaderLen+len(payload))
	out[0] = envelopeFormat
	binary.BigEndian.PutUint16(out[1:3], uint16(c.CommandType()))
	out[3] = c.CommandVersion()
	return append(out, payload...), nil
}

// UnknownCommandError says that an encoded command is one this binary
// cannot understand: its envelope format, its command type, or that type's
// version is unknown here. A newer Keel wrote it (or it is corrupt). The FSM
// stops on such an entry rather than refuse it, because a newer controller
// applies it: refusing would silently diverge (see FSM.ApplyBatch).
type UnknownCommandError struct {
	// Index is the entry's Raft index (0 for a command not yet proposed).
	Index uint64
	// Format is the envelope format byte. When it is not the one this
	// binary reads, Type and Version are zero: they cannot be read.
	Format  byte
	Type    CommandType
	Version uint8
	// Known lists the versions of Type this binary applies; empty when the
	// type itself is unknown.
	Known []uint8
}

func (e *UnknownCommandError) Error() string {
	switch {
	case e.Format != envelopeFormat:
		return fmt.Sprintf("envelope format %d is unknown to this binary, which reads format %d (the command type and version cannot be read)", e.Format, envelopeFormat)
	case len(e.Known) == 0:
		return fmt.Sprintf("command type %d version %d is unknown to this binary (no command of that type is registered)", uint16(e.Type), e.Version)
	}
	known := fmt.Sprintf("version %d", e.Known[0])
	if len(e.Known) > 1 {
		known = fmt.Sprintf("versions %v", e.Known)
	}
	return fmt.Sprintf("command type %d (%s) version %d is unknown to this binary, which applies %s", uint16(e.Type), e.Type, e.Version, known)
}

// Header is what the envelope of an encoded command says, with the FSM
// schema its type and version were registered at.
type Header struct {
	Type    CommandType
	Version uint8
	// Schema is the FSM schema a controller must implement to apply the
	// command (the since of its registration).
	Schema int
}

// InspectCommand reads the envelope of an encoded command without decoding
// its payload, and looks up the schema it needs. Errors: a KindInvalid *Error
// for data that is not a format-1 envelope at all (empty, or a truncated
// header), an *UnknownCommandError when the format, type or version is one
// this binary does not know. The leader calls it before proposing (the
// cluster package's schema gate).
func InspectCommand(data []byte) (Header, error) {
	a, typ, ver, _, err := lookup(data)
	if err != nil {
		return Header{}, err
	}
	return Header{Type: typ, Version: ver, Schema: a.since}, nil
}

// decodeEnvelope splits an encoded command into its header and payload. Its
// format byte is read first, so an entry of an unknown format is always
// reported as such (a future format may have a shorter header): an
// *UnknownCommandError. Then a format-1 entry shorter than its header is
// malformed (KindInvalid): no Keel writes one, and every binary that reads
// format 1 refuses it alike.
func decodeEnvelope(data []byte) (CommandType, uint8, []byte, error) {
	if len(data) == 0 {
		return 0, 0, nil, Errorf(KindInvalid, "malformed command: empty entry")
	}
	if data[0] != envelopeFormat {
		return 0, 0, nil, &UnknownCommandError{Format: data[0]}
	}
	if len(data) < envelopeHeaderLen {
		return 0, 0, nil, Errorf(KindInvalid, "malformed command: %d bytes is shorter than the %d-byte header", len(data), envelopeHeaderLen)
	}
	return CommandType(binary.BigEndian.Uint16(data[1:3])), data[3], data[envelopeHeaderLen:], nil
}

// lookup decodes the envelope and finds the applier of its type and
// version, or says that this binary does not know them.
func lookup(data []byte) (*versionApplier, CommandType, uint8, []byte, error) {
	typ, ver, payload, err := decodeEnvelope(data)
	if err != nil {
		return nil, typ, ver, nil, err
	}
	t, ok := registry[typ]
	if !ok {
		return nil, typ, ver, nil, &UnknownCommandError{Format: envelopeFormat, Type: typ, Version: ver}
	}
	a, ok := t.versions[ver]
	if !ok {
		return nil, typ, ver, nil, &UnknownCommandError{Format: envelopeFormat, Type: typ, Version: ver, Known: t.knownVersions()}
	}
	return a, typ, ver, payload, nil
}

func (t CommandType) String() string {
	if a, ok := registry[t]; ok {
		return a.name
	}
	return fmt.Sprintf("command(%d)", uint16(t))
}

// applier binds one command type to the functions that apply each of its
// versions.
type applier struct {
	name string
	// version is the newest registered version: the one this binary's
	// command struct encodes.
	version  uint8
	versions map[uint8]*versionApplier
}

// versionApplier applies one version of one command type.
type versionApplier struct {
	name    string
	typ     CommandType
	version uint8
	// since is the FSM schema that introduced this (type, version).
	since int
	apply func(tx *Txn, payload []byte) (any, error)
}

func (a *applier) knownVersions() []uint8 {
	vs := make([]uint8, 0, len(a.versions))
	for v := range a.versions {
		vs = append(vs, v)
	}
	slices.Sort(vs)
	return vs
}

// registry maps every known command type to its appliers. It is filled by
// register calls in each domain's file (kv.go, sequence.go, ...), at init.
var registry = map[CommandType]*applier{}

// schema is the highest since of any registration: see Schema.
var schema int

// Schema is the FSM schema this binary implements: the highest "since" of
// every registered command version. Each controller advertises it in gossip,
// and the leader proposes a command only when every controller of the Raft
// configuration advertises at least the schema of that command's version,
// so no controller ever meets an entry it cannot apply.
func Schema() int { return schema }

// register binds command type T (at its version) to fn, at FSM schema 1:
// the commands every Keel controller has applied since schema numbers
// exist. A command type or version added later says which schema introduced
// it with registerSince. fn receives the decoded payload; it must validate
// everything before writing, and returns the response value (encoded into
// Response.Value) or a typed *Error. A duplicate registration is a
// programming error and panics at start-up.
func register[T any, PT interface {
	*T
	Command
}](name string, fn func(tx *Txn, cmd PT) (any, error)) {
	registerSince[T, PT](1, name, fn)
}

// registerSince is register for a command type or version introduced by
// FSM schema since (the current Schema()+1 when you add one: see README.md).
// The leader refuses to propose it until every controller advertises that
// schema. Versions of one type must be introduced in increasing schemas, so
// a version bump cannot forget to bump its since.
func registerSince[T any, PT interface {
	*T
	Command
}](since int, name string, fn func(tx *Txn, cmd PT) (any, error)) {
	var zero PT = new(T)
	typ, ver := zero.CommandType(), zero.CommandVersion()
	if since < 1 {
		panic(fmt.Sprintf("fsm: %s (type %d version %d) registered at schema %d; schemas start at 1", name, typ, ver, since))
	}
	t := registry[typ]
	if t == nil {
		t = &applier{name: name, versions: map[uint8]*versionApplier{}}
		registry[typ] = t
	}
	if t.name != name {
		panic(fmt.Sprintf("fsm: command type %d registered as both %s and %s", typ, t.name, name))
	}
	if _, dup := t.versions[ver]; dup {
		panic(fmt.Sprintf("fsm: command type %d (%s) version %d registered twice", typ, name, ver))
	}
	for v, o := range t.versions {
		if (v < ver) != (o.since < since) {
			panic(fmt.Sprintf("fsm: %s version %d is registered at schema %d and version %d at schema %d: a newer version needs a newer schema (registerSince), or controllers of the older schema would meet a version they cannot apply",
				name, v, o.since, ver, since))
		}
	}
	t.versions[ver] = &versionApplier{
		name:    name,
		typ:     typ,
		version: ver,
		since:   since,
		apply: func(tx *Txn, payload []byte) (any, error) {
			cmd := PT(new(T))
			if err := Unmarshal(payload, cmd); err != nil {
				return nil, Errorf(KindInvalid, "malformed %s command: %v", name, err)
			}
			return fn(tx, cmd)
		},
	}
	t.version = max(t.version, ver)
	schema = max(schema, since)
}
