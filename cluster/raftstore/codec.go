package raftstore

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math/bits"
	"time"

	"github.com/hashicorp/raft"
)

// Errors returned (wrapped) when a stored log entry cannot be decoded.
var (
	// ErrCorrupt reports a stored log entry that is truncated, has trailing
	// garbage or contains out-of-range fields.
	ErrCorrupt = errors.New("corrupt log entry")
	// ErrUnsupportedVersion reports a stored log entry written with an
	// encoding version this build does not understand (for example by a
	// newer release).
	ErrUnsupportedVersion = errors.New("unsupported log entry encoding version")
)

// logFormatV1 is the only encoding version written and accepted today.
//
// Layout of a version 1 entry, in order:
//
//	byte     format version (1)
//	uvarint  Index
//	uvarint  Term
//	byte     Type
//	uvarint  len(Data), then Data
//	uvarint  len(Extensions), then Extensions
//	byte     AppendedAt marker: 0 = zero time (nothing follows), 1 = set
//	varint   AppendedAt seconds since the Unix epoch   (only when marker = 1)
//	uvarint  AppendedAt nanoseconds within the second  (only when marker = 1)
//
// Nothing may follow the last field. The encoding of a given raft.Log is
// deterministic; the time zone and monotonic clock reading of AppendedAt are
// not kept, and decoded times are in UTC.
const logFormatV1 byte = 1

const (
	timeZero byte = 0
	timeSet  byte = 1
)

// uvarintSize returns how many bytes binary.AppendUvarint uses for x.
func uvarintSize(x uint64) int {
	return (bits.Len64(x|1) + 6) / 7
}

// varintSize returns how many bytes binary.AppendVarint uses for x.
func varintSize(x int64) int {
	return uvarintSize(uint64(x<<1) ^ uint64(x>>63))
}

// encodedLogSize returns the exact length of the encoding of l.
func encodedLogSize(l *raft.Log) int {
	n := 1 + uvarintSize(l.Index) + uvarintSize(l.Term) + 1
	n += uvarintSize(uint64(len(l.Data))) + len(l.Data)
	n += uvarintSize(uint64(len(l.Extensions))) + len(l.Extensions)
	n++
	if !l.AppendedAt.IsZero() {
		n += varintSize(l.AppendedAt.Unix()) + uvarintSize(uint64(l.AppendedAt.Nanosecond()))
	}
	return n
}

// appendLog appends the encoding of l to dst and returns the extended slice.
func appendLog(dst []byte, l *raft.Log) []byte {
	dst = append(dst, logFormatV1)
	dst = binary.AppendUvarint(dst, l.Index)
	dst = binary.AppendUvarint(dst, l.Term)
	dst = append(dst, byte(l.Type))
	dst = binary.AppendUvarint(dst, uint64(len(l.Data)))
	dst = append(dst, l.Data...)
	dst = binary.AppendUvarint(dst, uint64(len(l.Extensions)))
	dst = append(dst, l.Extensions...)
	if l.AppendedAt.IsZero() {
		return append(dst, timeZero)
	}
	dst = append(dst, timeSet)
	dst = binary.AppendVarint(dst, l.AppendedAt.Unix())
	return binary.AppendUvarint(dst, uint64(l.AppendedAt.Nanosecond()))
}

// encodeLogInto writes the encoding of l into buf, which must be exactly
// encodedLogSize(l) bytes long.
func encodeLogInto(buf []byte, l *raft.Log) error {
	// Capping the capacity makes append reallocate instead of writing past
	// buf if the size computation and the encoder ever disagree; the length
	// check below then catches it.
	out := appendLog(buf[:0:len(buf)], l)
	if len(out) != len(buf) {
		return fmt.Errorf("internal error: encoded log %d is %d bytes, expected %d",
			l.Index, len(out), len(buf))
	}
	return nil
}

// logDecoder walks an encoded entry, remembering the first failure.
type logDecoder struct {
	buf []byte
	err error
}

func (d *logDecoder) fail(format string, args ...any) {
	if d.err == nil {
		d.err = fmt.Errorf("%w: "+format, append([]any{ErrCorrupt}, args...)...)
	}
}

func (d *logDecoder) byte(field string) byte {
	if d.err != nil {
		return 0
	}
	if len(d.buf) == 0 {
		d.fail("truncated before %s", field)
		return 0
	}
	b := d.buf[0]
	d.buf = d.buf[1:]
	return b
}

func (d *logDecoder) uvarint(field string) uint64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Uvarint(d.buf)
	switch {
	case n == 0:
		d.fail("truncated in %s", field)
		return 0
	case n < 0:
		d.fail("%s overflows 64 bits", field)
		return 0
	}
	d.buf = d.buf[n:]
	return v
}

func (d *logDecoder) varint(field string) int64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Varint(d.buf)
	switch {
	case n == 0:
		d.fail("truncated in %s", field)
		return 0
	case n < 0:
		d.fail("%s overflows 64 bits", field)
		return 0
	}
	d.buf = d.buf[n:]
	return v
}

// bytes returns the next length-prefixed field without copying it.
func (d *logDecoder) bytes(field string) []byte {
	n := d.uvarint(field + " length")
	if d.err != nil {
		return nil
	}
	if n > uint64(len(d.buf)) {
		d.fail("%s claims %d bytes but only %d remain", field, n, len(d.buf))
		return nil
	}
	b := d.buf[:n:n]
	d.buf = d.buf[n:]
	return b
}

// decodeLog decodes buf into l, overwriting every field. Data and Extensions
// are copied into fresh memory, so buf may be reused or released as soon as
// decodeLog returns. Empty Data or Extensions decode as nil.
func decodeLog(buf []byte, l *raft.Log) error {
	if len(buf) == 0 {
		return fmt.Errorf("%w: empty value", ErrCorrupt)
	}
	if buf[0] != logFormatV1 {
		return fmt.Errorf("%w: got version %d, this build reads version %d",
			ErrUnsupportedVersion, buf[0], logFormatV1)
	}
	d := logDecoder{buf: buf[1:]}
	index := d.uvarint("index")
	term := d.uvarint("term")
	typ := d.byte("type")
	data := d.bytes("data")
	ext := d.bytes("extensions")
	var appendedAt time.Time
	switch marker := d.byte("appended-at marker"); {
	case d.err != nil:
	case marker == timeZero:
	case marker == timeSet:
		sec := d.varint("appended-at seconds")
		nsec := d.uvarint("appended-at nanoseconds")
		if d.err == nil && nsec >= uint64(time.Second) {
			d.fail("appended-at nanoseconds %d out of range", nsec)
		}
		if d.err == nil {
			appendedAt = time.Unix(sec, int64(nsec)).UTC()
		}
	default:
		d.fail("unknown appended-at marker %d", marker)
	}
	if d.err == nil && len(d.buf) != 0 {
		d.fail("%d trailing bytes", len(d.buf))
	}
	if d.err != nil {
		return d.err
	}

	// One allocation holds both byte fields; the three-index slices keep an
	// append to Data from running into Extensions.
	var dataCopy, extCopy []byte
	if total := len(data) + len(ext); total > 0 {
		mem := make([]byte, total)
		copy(mem, data)
		copy(mem[len(data):], ext)
		if len(data) > 0 {
			dataCopy = mem[:len(data):len(data)]
		}
		if len(ext) > 0 {
			extCopy = mem[len(data):]
		}
	}
	*l = raft.Log{
		Index:      index,
		Term:       term,
		Type:       raft.LogType(typ),
		Data:       dataCopy,
		Extensions: extCopy,
		AppendedAt: appendedAt,
	}
	return nil
}
