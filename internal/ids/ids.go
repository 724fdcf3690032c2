// Package ids makes the identifiers OpenStack clients expect: UUIDs (Nova's
// servers, request ids) and 32-hex-digit ids (Keystone's projects, users).
package ids

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
)

// UUID returns a random (version 4) UUID in its canonical 36-character form.
func UUID() string {
	b := random16()
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}

// Hex returns 32 random hex digits, the form of Keystone's ids.
func Hex() string {
	b := random16()
	return hex.EncodeToString(b[:])
}

// RequestID returns a request id as OpenStack services make them: req-<uuid>.
func RequestID() string { return "req-" + UUID() }

func random16() [16]byte {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic("ids: no randomness: " + err.Error()) // crypto/rand never fails on Linux
	}
	b[6] = b[6]&0x0f | 0x40 // version 4
	b[8] = b[8]&0x3f | 0x80 // RFC 4122 variant
	return b
}

// IsUUID reports whether s is a UUID in canonical form (any version).
func IsUUID(s string) bool {
	if len(s) != 36 {
		return false
	}
	for i, c := range s {
		switch i {
		case 8, 13, 18, 23:
			if c != '-' {
				return false
			}
		default:
			if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F') {
				return false
			}
		}
	}
	return true
}
