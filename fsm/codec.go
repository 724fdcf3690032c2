package fsm

import (
	"github.com/hashicorp/go-msgpack/v2/codec"
)

// msgpackHandle is the one encoding of everything the FSM stores or carries in
// the Raft log: MessagePack with canonical (sorted) map keys, so the same value
// always encodes to the same bytes on every node and in every Go version.
// Struct fields are named by their `json` tags.
var msgpackHandle = func() *codec.MsgpackHandle {
	h := &codec.MsgpackHandle{}
	h.Canonical = true
	h.RawToString = true
	h.WriteExt = true
	h.TypeInfos = codec.NewTypeInfos([]string{"json"})
	return h
}()

// Marshal encodes v with the FSM's canonical MessagePack encoding.
func Marshal(v any) ([]byte, error) {
	var out []byte
	if err := codec.NewEncoderBytes(&out, msgpackHandle).Encode(v); err != nil {
		return nil, err
	}
	return out, nil
}

// Unmarshal decodes b, produced by Marshal, into v.
func Unmarshal(b []byte, v any) error {
	return codec.NewDecoderBytes(b, msgpackHandle).Decode(v)
}
