package fsm

import "unicode/utf8"

// Command types. Persisted in the Raft log: append only, never renumber.
const (
	CmdBarrier      CommandType = 1
	CmdKVPut        CommandType = 2
	CmdKVDelete     CommandType = 3
	CmdSequenceNext CommandType = 4
)

// Tables of this file.
const (
	// TableKV holds cluster-wide settings as opaque values under string
	// keys, with compare-and-set on the modify index.
	TableKV = "kv"
	// TableSequence holds named integer sequences (Nova's integer ids).
	TableSequence = "sequence"
)

// Barrier changes nothing. A new leader applies one and waits for it, which
// proves its FSM holds every entry committed before its term; the index it
// lands at is what linearizable reads wait for.
type Barrier struct {
	Node string `json:"node"`
}

func (*Barrier) CommandType() CommandType { return CmdBarrier }
func (*Barrier) CommandVersion() uint8    { return 1 }

// KVPut sets a key. With CAS set, it succeeds only if the key's ModifyIndex
// equals IfIndex (0: the key must not exist).
type KVPut struct {
	Key     string `json:"key"`
	Value   []byte `json:"value"`
	CAS     bool   `json:"cas,omitempty"`
	IfIndex uint64 `json:"if_index,omitempty"`
}

func (*KVPut) CommandType() CommandType { return CmdKVPut }
func (*KVPut) CommandVersion() uint8    { return 1 }

// KVDelete removes a key; it must exist.
type KVDelete struct {
	Key string `json:"key"`
}

func (*KVDelete) CommandType() CommandType { return CmdKVDelete }
func (*KVDelete) CommandVersion() uint8    { return 1 }

// KVEntry is the stored form of a KV value.
type KVEntry struct {
	Value []byte `json:"value"`
}

// SequenceNext increments the named sequence and returns its new value
// (starting at 1). Every call is exactly one increment, which makes it the
// proof that no entry is ever applied twice.
type SequenceNext struct {
	Name string `json:"name"`
}

func (*SequenceNext) CommandType() CommandType { return CmdSequenceNext }
func (*SequenceNext) CommandVersion() uint8    { return 1 }

// Sequence is the stored form of a sequence.
type Sequence struct {
	Value uint64 `json:"value"`
}

const (
	maxKVKey   = 512
	maxKVValue = 512 << 10
)

func init() {
	register("Barrier", func(tx *Txn, c *Barrier) (any, error) { return nil, nil })
	register("KVPut", applyKVPut)
	register("KVDelete", applyKVDelete)
	register("SequenceNext", applySequenceNext)
}

func validKVKey(k string) error {
	if k == "" || len(k) > maxKVKey || !utf8.ValidString(k) || !validKeyPart(k) {
		return Errorf(KindInvalid, "invalid key %q: want 1 to %d bytes of UTF-8 without NUL", k, maxKVKey)
	}
	return nil
}

func applyKVPut(tx *Txn, c *KVPut) (any, error) {
	if err := validKVKey(c.Key); err != nil {
		return nil, err
	}
	if len(c.Value) > maxKVValue {
		return nil, Errorf(KindInvalid, "value of %q is %d bytes; at most %d are allowed", c.Key, len(c.Value), maxKVValue)
	}
	if c.CAS {
		cur, ok, err := tx.Get(TableKV, c.Key)
		if err != nil {
			return nil, err
		}
		var have uint64
		if ok {
			have = cur.ModifyIndex
		}
		if have != c.IfIndex {
			return nil, Errorf(KindConflict, "key %q is at index %d, not %d", c.Key, have, c.IfIndex)
		}
	}
	return nil, tx.Put(TableKV, c.Key, &KVEntry{Value: c.Value})
}

func applyKVDelete(tx *Txn, c *KVDelete) (any, error) {
	if err := validKVKey(c.Key); err != nil {
		return nil, err
	}
	if _, ok, err := tx.Get(TableKV, c.Key); err != nil {
		return nil, err
	} else if !ok {
		return nil, Errorf(KindNotFound, "key %q not found", c.Key)
	}
	return nil, tx.Delete(TableKV, c.Key)
}

// nextSeq takes the next n values of a named sequence inside a command and
// returns the first. A command reads the stored state, not its own writes:
// call it at most once per sequence in one command.
func nextSeq(tx *Txn, name string, n int) (int64, error) {
	seq := &Sequence{}
	if cur, ok, err := tx.Get(TableSequence, name); err != nil {
		return 0, err
	} else if ok {
		if err := cur.Decode(seq); err != nil {
			return 0, err
		}
	}
	first := seq.Value + 1
	seq.Value += uint64(n)
	return int64(first), tx.Put(TableSequence, name, seq)
}

func applySequenceNext(tx *Txn, c *SequenceNext) (any, error) {
	if err := validKVKey(c.Name); err != nil {
		return nil, err
	}
	v, err := nextSeq(tx, c.Name, 1)
	return uint64(v), err
}
