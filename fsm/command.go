package fsm

import (
	"encoding/binary"
	"fmt"
)

// CommandType tags each kind of Raft log entry the FSM understands. Values are
// persisted in the log: never renumber or reuse one.
type CommandType uint16

// Command is a typed, versioned payload for the Raft log. Commands are data:
// everything Apply needs (ids, timestamps, generated secrets) is made by the
// proposer and carried here, so Apply stays deterministic.
type Command interface {
	CommandType() CommandType
	// CommandVersion is the payload's schema version. A node refuses a
	// version it does not know instead of guessing.
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

// decodeEnvelope splits an encoded command into its header and payload.
func decodeEnvelope(data []byte) (CommandType, uint8, []byte, error) {
	if len(data) < envelopeHeaderLen {
		return 0, 0, nil, Errorf(KindInvalid, "malformed command: %d bytes is shorter than the %d-byte header", len(data), envelopeHeaderLen)
	}
	if data[0] != envelopeFormat {
		return 0, 0, nil, Errorf(KindInvalid, "malformed command: unknown envelope format %d", data[0])
	}
	return CommandType(binary.BigEndian.Uint16(data[1:3])), data[3], data[envelopeHeaderLen:], nil
}

func (t CommandType) String() string {
	if a, ok := registry[t]; ok {
		return a.name
	}
	return fmt.Sprintf("command(%d)", uint16(t))
}

// applier binds one command type to the function that applies it.
type applier struct {
	name    string
	version uint8
	apply   func(tx *Txn, payload []byte) (any, error)
}

// registry maps every known command type to its applier. It is filled by
// register calls in each domain's file (kv.go, sequence.go, ...), at init.
var registry = map[CommandType]applier{}

// register binds command type T to fn. fn receives the decoded payload; it
// must validate everything before writing, and returns the response value
// (encoded into Response.Value) or a typed *Error. A duplicate registration is
// a programming error and panics at start-up.
func register[T any, PT interface {
	*T
	Command
}](name string, fn func(tx *Txn, cmd PT) (any, error)) {
	var zero PT = new(T)
	typ, ver := zero.CommandType(), zero.CommandVersion()
	if _, dup := registry[typ]; dup {
		panic(fmt.Sprintf("fsm: command type %d registered twice", typ))
	}
	registry[typ] = applier{
		name:    name,
		version: ver,
		apply: func(tx *Txn, payload []byte) (any, error) {
			cmd := PT(new(T))
			if err := Unmarshal(payload, cmd); err != nil {
				return nil, Errorf(KindInvalid, "malformed %s command: %v", name, err)
			}
			return fn(tx, cmd)
		},
	}
}
