package fsm

import (
	"encoding/binary"
	"fmt"
	"strings"
)

// Key layout of the FSM's Pebble store (see README.md in this folder):
//
//	t/<table>/<primary key>                      a record
//	i/<table>/<index>/<v1>\x00<v2>...\x00<pk>     a secondary index entry (empty value)
//	m/applied                                    last applied Raft index (8 bytes)
//	m/tidx/<table>                               Raft index of the table's last change
//
// Table and index names are constants declared next to the records they hold;
// they never contain '/'.
const (
	recordPrefix = "t/"
	indexPrefix  = "i/"
	metaPrefix   = "m/"

	metaApplied    = metaPrefix + "applied"
	metaTableIndex = metaPrefix + "tidx/"
)

func recordKey(table, key string) []byte {
	return []byte(recordPrefix + table + "/" + key)
}

func tablePrefix(table string) string { return recordPrefix + table + "/" }

// indexKey builds the key of one secondary index entry. Values are separated
// by NUL so that a prefix scan over the first values finds every entry.
func indexKey(table, index string, values ...string) []byte {
	return []byte(indexPrefix + table + "/" + index + "/" + strings.Join(values, "\x00"))
}

// upperBound returns the smallest key greater than every key with prefix p.
func upperBound(p []byte) []byte {
	end := append([]byte(nil), p...)
	for i := len(end) - 1; i >= 0; i-- {
		end[i]++
		if end[i] != 0 {
			return end[:i+1]
		}
	}
	return nil // p is all 0xff: no upper bound
}

// Meta is the Raft bookkeeping every record carries.
type Meta struct {
	// CreateIndex is the Raft index of the command that created the record.
	CreateIndex uint64 `json:"create_index"`
	// ModifyIndex is the Raft index of the command that last changed it.
	ModifyIndex uint64 `json:"modify_index"`
}

const recordFormat byte = 1

func encodeRecord(m Meta, payload []byte) []byte {
	out := make([]byte, 0, 1+2*binary.MaxVarintLen64+len(payload))
	out = append(out, recordFormat)
	out = binary.AppendUvarint(out, m.CreateIndex)
	out = binary.AppendUvarint(out, m.ModifyIndex)
	return append(out, payload...)
}

// decodeRecord splits a stored value; the payload aliases v.
func decodeRecord(v []byte) (Meta, []byte, error) {
	if len(v) == 0 || v[0] != recordFormat {
		return Meta{}, nil, fmt.Errorf("fsm: corrupt record: unknown format")
	}
	v = v[1:]
	c, n := binary.Uvarint(v)
	if n <= 0 {
		return Meta{}, nil, fmt.Errorf("fsm: corrupt record: bad create index")
	}
	v = v[n:]
	m, n := binary.Uvarint(v)
	if n <= 0 {
		return Meta{}, nil, fmt.Errorf("fsm: corrupt record: bad modify index")
	}
	return Meta{CreateIndex: c, ModifyIndex: m}, v[n:], nil
}

// validName reports whether s may be used as a table, index or key segment
// that other segments follow.
func validKeyPart(s string) bool {
	return s != "" && !strings.ContainsRune(s, 0)
}
