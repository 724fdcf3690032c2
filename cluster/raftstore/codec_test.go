package raftstore

import (
	"bytes"
	"encoding/hex"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/raft"
)

func sampleLogs() []*raft.Log {
	return []*raft.Log{
		{},
		{Index: 1, Term: 1, Type: raft.LogNoop},
		{Index: 2, Term: 2, Type: raft.LogCommand, Data: []byte("hello"), Extensions: []byte("ext"),
			AppendedAt: time.Date(2025, 1, 2, 3, 4, 5, 6, time.UTC)},
		{Index: 1<<64 - 1, Term: 1<<64 - 1, Type: raft.LogType(255), Data: bytes.Repeat([]byte{0xab}, 300),
			AppendedAt: time.Date(1900, 1, 1, 0, 0, 0, 999999999, time.UTC)},
		{Index: 3, Term: 1, Type: raft.LogConfiguration, Extensions: []byte{0},
			AppendedAt: time.Unix(0, 0)},
	}
}

func encode(t testing.TB, l *raft.Log) []byte {
	t.Helper()
	buf := make([]byte, encodedLogSize(l))
	if err := encodeLogInto(buf, l); err != nil {
		t.Fatal(err)
	}
	return buf
}

func equalLogs(a, b *raft.Log) bool {
	return a.Index == b.Index && a.Term == b.Term && a.Type == b.Type &&
		bytes.Equal(a.Data, b.Data) && bytes.Equal(a.Extensions, b.Extensions) &&
		a.AppendedAt.Equal(b.AppendedAt) && a.AppendedAt.IsZero() == b.AppendedAt.IsZero()
}

func TestCodecRoundTrip(t *testing.T) {
	for _, want := range sampleLogs() {
		buf := encode(t, want)
		if again := encode(t, want); !bytes.Equal(buf, again) {
			t.Fatalf("encoding of log %d is not deterministic", want.Index)
		}
		var got raft.Log
		if err := decodeLog(buf, &got); err != nil {
			t.Fatalf("decode log %d: %v", want.Index, err)
		}
		if !equalLogs(&got, want) {
			t.Fatalf("round trip: got %+v, want %+v", got, *want)
		}
	}
}

// TestCodecGolden pins the version 1 byte layout. Changing it breaks every
// store already on disk: add a new version instead.
func TestCodecGolden(t *testing.T) {
	cases := []struct {
		log raft.Log
		hex string
	}{
		{raft.Log{Index: 1, Term: 2, Type: raft.LogCommand, Data: []byte("hi"), AppendedAt: time.Unix(1, 5)},
			"01" + "01" + "02" + "00" + "02" + "6869" + "00" + "01" + "02" + "05"},
		{raft.Log{Index: 300, Term: 1, Type: raft.LogNoop, Extensions: []byte{7}},
			"01" + "ac02" + "01" + "01" + "00" + "01" + "07" + "00"},
		{raft.Log{Index: 1, Term: 1, AppendedAt: time.Unix(-1, 0)},
			"01" + "01" + "01" + "00" + "00" + "00" + "01" + "01" + "00"},
	}
	for _, tc := range cases {
		if got := hex.EncodeToString(encode(t, &tc.log)); got != tc.hex {
			t.Errorf("encode(%+v) = %s, want %s", tc.log, got, tc.hex)
		}
	}
}

func TestDecodeRejectsTruncated(t *testing.T) {
	for _, l := range sampleLogs() {
		buf := encode(t, l)
		for n := 0; n < len(buf); n++ {
			var got raft.Log
			err := decodeLog(buf[:n], &got)
			if !errors.Is(err, ErrCorrupt) {
				t.Fatalf("decode of %d/%d bytes of log %d: err = %v, want ErrCorrupt", n, len(buf), l.Index, err)
			}
		}
	}
}

func TestDecodeRejectsMalformed(t *testing.T) {
	valid := encode(t, sampleLogs()[2])
	withVersion := func(v byte) []byte {
		b := bytes.Clone(valid)
		b[0] = v
		return b
	}
	for name, tc := range map[string]struct {
		in   []byte
		want error
		msg  string // the error must say this
	}{
		"version 0":        {withVersion(0), ErrUnsupportedVersion, "got version 0"},
		"version 2":        {withVersion(2), ErrUnsupportedVersion, "got version 2"},
		"version 255":      {withVersion(255), ErrUnsupportedVersion, "got version 255"},
		"trailing byte":    {append(bytes.Clone(valid), 0), ErrCorrupt, "1 trailing bytes"},
		"bad time marker":  {mustHex(t, "01010100000002"), ErrCorrupt, "unknown appended-at marker 2"},
		"nanos too large":  {mustHex(t, "010101000000"+"01"+"00"+"8094ebdc03"), ErrCorrupt, "nanoseconds 1000000000 out of range"},
		"data length huge": {mustHex(t, "01010100ffffffffffffffffff01"), ErrCorrupt, "data claims"},
		"index overflow":   {mustHex(t, "01ffffffffffffffffffff01"), ErrCorrupt, "index overflows"},
		"empty":            {nil, ErrCorrupt, "empty value"},
	} {
		t.Run(name, func(t *testing.T) {
			var l raft.Log
			err := decodeLog(tc.in, &l)
			if !errors.Is(err, tc.want) || !strings.Contains(err.Error(), tc.msg) {
				t.Fatalf("decodeLog(%x) = %v, want %v mentioning %q", tc.in, err, tc.want, tc.msg)
			}
		})
	}
}

func mustHex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// FuzzDecodeLog feeds arbitrary bytes to the decoder. Without -fuzz only
// the seed corpus below runs, which takes milliseconds.
func FuzzDecodeLog(f *testing.F) {
	for _, l := range sampleLogs() {
		buf := encode(f, l)
		f.Add(buf)
		f.Add(buf[:len(buf)/2])
		f.Add(append([]byte{2}, buf[1:]...))
	}
	f.Add([]byte{})
	f.Add([]byte{1})
	f.Add([]byte{1, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01})

	f.Fuzz(func(t *testing.T, in []byte) {
		var l raft.Log
		err := decodeLog(in, &l)
		if err != nil {
			if !errors.Is(err, ErrCorrupt) && !errors.Is(err, ErrUnsupportedVersion) {
				t.Fatalf("decode error %v wraps neither ErrCorrupt nor ErrUnsupportedVersion", err)
			}
			return
		}
		// The decoded entry must not alias the input.
		data, ext := bytes.Clone(l.Data), bytes.Clone(l.Extensions)
		for i := range in {
			in[i] ^= 0xff
		}
		if !bytes.Equal(l.Data, data) || !bytes.Equal(l.Extensions, ext) {
			t.Fatal("decoded fields alias the input buffer")
		}
		// Anything accepted must survive encode/decode unchanged.
		var again raft.Log
		if err := decodeLog(encode(t, &l), &again); err != nil {
			t.Fatalf("re-decoding an accepted entry: %v", err)
		}
		if !equalLogs(&again, &l) {
			t.Fatalf("re-encoded entry changed: %+v vs %+v", again, l)
		}
	})
}
