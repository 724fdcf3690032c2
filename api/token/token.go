// Package token implements Keel's Keystone-compatible authentication tokens.
//
// To clients a token is an opaque string (sent in X-Auth-Token and returned in
// X-Subject-Token). Every controller can check one on its own: a token carries
// its claims and an HMAC-SHA256 tag computed with a key that all controllers
// share (the keys live in the replicated state; this package does not know
// about storage). HMAC rather than a signature scheme because the signer and
// the verifiers are the same trust domain: a shared secret is enough, verifying
// needs no network call and no per-token storage, and it is cheap (about a
// microsecond). Each token names the key that signed it, so keys can be
// rotated: add a new key and sign with it, keep the old one verifiable until the
// last token it signed has expired, then drop it.
//
// # Format (version 1)
//
// The token string is the URL-safe base64 encoding, without padding, of these
// bytes (uvarint is encoding/binary's unsigned varint, minimal form only):
//
//	byte 0        version, 0x01
//	string        key id (1..64 bytes)
//	1 byte        flags: bit 0 system scope, bit 1 project scope,
//	              bit 2 parent audit id present; other bits zero,
//	              bits 0 and 1 never both set
//	string        user id (1..64 bytes)
//	string        project id (1..64 bytes), only if flag bit 1
//	uvarint       number of methods (1..8), then for each method a uvarint
//	              code: 1 password, 2 token, 3 application_credential,
//	              4 totp, 5 external, 6 mapped, 7 oauth1, 8 oauth2_credential,
//	              or 0 followed by a string (1..255 bytes) for any other name
//	16 bytes      audit id (the 22-character audit id, base64-decoded)
//	16 bytes      parent audit id, only if flag bit 2
//	uvarint       issued at, microseconds since the Unix epoch (> 0)
//	uvarint       lifetime in microseconds (> 0): expires at = issued at + lifetime
//	32 bytes      HMAC-SHA256(key secret, every byte above)
//
// A string is a uvarint n<<1|h followed by n bytes (at most 255 decoded bytes).
// With h = 0 the bytes are the string itself; h = 1 marks a string of
// lowercase hexadecimal digits of even length, stored as the n bytes it
// encodes, which halves Keystone's hex ids (32-character UUIDs, 64-character
// SHA-256 mapping ids). Every value has exactly one encoding (h = 1 is
// mandatory for lowercase even-length hex, a known method must use its code,
// varints are minimal), so the same claims and key always give the same token
// and a decoder rejects anything else, as well as truncated input, trailing
// bytes, unknown versions or flags and out-of-range fields. A token scoped to a
// project with 64-character hex user and project ids, a parent audit id, the
// methods password and token and a short key id is about 200 characters; ids
// that are not hex cost twice their hex size.
package token

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"math"
	"time"
)

// Claims is what a token asserts.
type Claims struct {
	UserID        string    // Keystone user id (1..64 bytes)
	ProjectID     string    // project scope; "" when System or unscoped
	System        bool      // system scope ("all")
	Methods       []string  // auth methods used: "password", "token" (1..8 distinct names)
	AuditID       string    // this token's audit id (see NewAuditID)
	ParentAuditID string    // for a token obtained with the token method: the audit id of the token it came from ("" otherwise)
	IssuedAt      time.Time // kept to microsecond precision
	ExpiresAt     time.Time // kept to microsecond precision; after IssuedAt
}

// Key is a token signing key. ID names it inside tokens (1..64 bytes, not
// secret); Secret is at least 32 bytes.
type Key struct {
	ID     string
	Secret []byte
}

// Errors returned by Parse and KeyID, wrapped with a short reason. They never
// contain the token or any key material.
var (
	ErrMalformed    = errors.New("token: malformed")
	ErrBadSignature = errors.New("token: bad signature")
	ErrExpired      = errors.New("token: expired")
	ErrUnknownKey   = errors.New("token: unknown signing key")
)

const (
	version = 1

	maxIDLen     = 64  // user, project and key ids
	maxStringLen = 255 // any string in the encoding
	maxMethods   = 8
	minSecretLen = 32
	auditRawLen  = 16
	auditIDLen   = 22 // base64 of auditRawLen bytes, unpadded
	tagLen       = sha256.Size

	flagSystem  = 1 << 0
	flagProject = 1 << 1
	flagParent  = 1 << 2
	knownFlags  = flagSystem | flagProject | flagParent

	// maxRawLen bounds the decoded size of any valid token, so longer input
	// is rejected before it is decoded.
	maxRawLen = 1 + 3*(2+maxIDLen) + 1 + 1 + maxMethods*(1+2+maxStringLen) +
		2*auditRawLen + 2*binary.MaxVarintLen64 + tagLen
)

var (
	b64 = base64.RawURLEncoding.Strict()

	// methodNames and methodCodes map well-known methods to their codes, which are
	// part of format version 1: never renumber or reuse them.
	methodNames = [...]string{1: "password", 2: "token", 3: "application_credential",
		4: "totp", 5: "external", 6: "mapped", 7: "oauth1", 8: "oauth2_credential"}
	methodCodes = func() map[string]uint64 {
		m := make(map[string]uint64, len(methodNames))
		for code, name := range methodNames {
			if name != "" {
				m[name] = uint64(code)
			}
		}
		return m
	}()

	// maxTime keeps microsecond counts far from int64 overflow.
	maxTime = time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC)
)

// NewAuditID returns a fresh audit id: 16 random bytes from crypto/rand in
// URL-safe base64 without padding (22 characters), as Keystone makes them.
func NewAuditID() string {
	var b [auditRawLen]byte
	rand.Read(b[:]) // never returns an error; crashes the program if randomness is unavailable
	return b64.EncodeToString(b[:])
}

// Validate reports whether c can be made into a token: ids present and within
// limits, at most one scope, 1..8 distinct methods, well-formed audit ids and
// an expiry after the issue time (both compared at microsecond precision).
func (c Claims) Validate() error {
	if r := c.check(); r != "" {
		return errors.New("token: invalid claims: " + r)
	}
	return nil
}

// check returns why c is invalid, or "".
func (c Claims) check() string {
	switch {
	case c.UserID == "":
		return "empty user id"
	case len(c.UserID) > maxIDLen:
		return "user id too long"
	case len(c.ProjectID) > maxIDLen:
		return "project id too long"
	case c.System && c.ProjectID != "":
		return "both system and project scope"
	case len(c.Methods) == 0:
		return "no auth methods"
	case len(c.Methods) > maxMethods:
		return "too many auth methods"
	}
	for i, m := range c.Methods {
		if m == "" || len(m) > maxStringLen {
			return "auth method name empty or too long"
		}
		for _, prev := range c.Methods[:i] {
			if prev == m {
				return "duplicate auth method"
			}
		}
	}
	if !validAuditID(c.AuditID) {
		return "malformed audit id"
	}
	if c.ParentAuditID != "" && !validAuditID(c.ParentAuditID) {
		return "malformed parent audit id"
	}
	if !inRange(c.IssuedAt) || !inRange(c.ExpiresAt) {
		return "times must be after the Unix epoch and before year 10000"
	}
	if c.ExpiresAt.UnixMicro() <= c.IssuedAt.UnixMicro() {
		return "expiry not after issue time"
	}
	return ""
}

func inRange(t time.Time) bool {
	return t.Before(maxTime) && t.UnixMicro() > 0
}

func validAuditID(s string) bool {
	if len(s) != auditIDLen {
		return false
	}
	var buf [auditRawLen + 1]byte
	_, err := b64.Decode(buf[:], []byte(s))
	return err == nil
}

func (k Key) check() string {
	switch {
	case k.ID == "" || len(k.ID) > maxIDLen:
		return "key id must be 1..64 bytes"
	case len(k.Secret) < minSecretLen:
		return "key secret shorter than 32 bytes"
	}
	return ""
}

// Sign returns the token for c, signed with k. Times are truncated to the
// microsecond. The same claims and key always give the same token.
func Sign(k Key, c Claims) (string, error) {
	if r := k.check(); r != "" {
		return "", errors.New("token: invalid key: " + r)
	}
	if err := c.Validate(); err != nil {
		return "", err
	}
	b := make([]byte, 0, 256)
	b = append(b, version)
	b = appendString(b, k.ID)
	var flags byte
	if c.System {
		flags |= flagSystem
	}
	if c.ProjectID != "" {
		flags |= flagProject
	}
	if c.ParentAuditID != "" {
		flags |= flagParent
	}
	b = append(b, flags)
	b = appendString(b, c.UserID)
	if c.ProjectID != "" {
		b = appendString(b, c.ProjectID)
	}
	b = binary.AppendUvarint(b, uint64(len(c.Methods)))
	for _, m := range c.Methods {
		code := methodCodes[m]
		b = binary.AppendUvarint(b, code)
		if code == 0 {
			b = appendString(b, m)
		}
	}
	b = appendAuditID(b, c.AuditID)
	if c.ParentAuditID != "" {
		b = appendAuditID(b, c.ParentAuditID)
	}
	iat := c.IssuedAt.UnixMicro()
	b = binary.AppendUvarint(b, uint64(iat))
	b = binary.AppendUvarint(b, uint64(c.ExpiresAt.UnixMicro()-iat))
	b = appendTag(b, k.Secret)
	return b64.EncodeToString(b), nil
}

func appendTag(b, secret []byte) []byte {
	m := hmac.New(sha256.New, secret)
	m.Write(b)
	return m.Sum(b)
}

func appendAuditID(b []byte, id string) []byte {
	b, _ = b64.AppendDecode(b, []byte(id)) // validated by Claims.check
	return b
}

// isHex reports whether s is lowercase hex of even, non-zero length, the
// strings that are stored in half their size.
func isHex(s string) bool {
	if len(s) == 0 || len(s)%2 != 0 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return false
		}
	}
	return true
}

func appendString(b []byte, s string) []byte {
	if isHex(s) {
		b = binary.AppendUvarint(b, uint64(len(s)/2)<<1|1)
		b, _ = hex.AppendDecode(b, []byte(s)) // cannot fail: s is hex
		return b
	}
	b = binary.AppendUvarint(b, uint64(len(s))<<1)
	return append(b, s...)
}

// KeyID returns the id of the key that signed tok, without verifying
// anything else, so that a caller that does not know the key can refresh its
// key list before calling Parse.
func KeyID(tok string) (string, error) {
	raw, err := decodeBase64(tok)
	if err != nil {
		return "", err
	}
	d := decoder{b: raw}
	d.header()
	kid := d.str(maxIDLen)
	if d.err != "" {
		return "", fmt.Errorf("%w: %s", ErrMalformed, d.err)
	}
	return kid, nil
}

// Parse checks tok's format, its signature (in constant time, with the key
// that lookup returns for the token's key id) and its expiry against now, and
// returns its claims. A token is expired from its ExpiresAt on. Errors wrap
// ErrMalformed, ErrUnknownKey, ErrBadSignature or ErrExpired.
func Parse(tok string, lookup func(keyID string) (Key, bool), now time.Time) (Claims, error) {
	raw, err := decodeBase64(tok)
	if err != nil {
		return Claims{}, err
	}
	c, err := verify(raw, lookup)
	if err != nil {
		return Claims{}, err
	}
	if !now.Before(c.ExpiresAt) {
		return Claims{}, fmt.Errorf("%w: expired %s before the check", ErrExpired, now.Sub(c.ExpiresAt).Round(time.Millisecond))
	}
	return c, nil
}

func decodeBase64(tok string) ([]byte, error) {
	if tok == "" {
		return nil, fmt.Errorf("%w: empty", ErrMalformed)
	}
	if len(tok) > b64.EncodedLen(maxRawLen) {
		return nil, fmt.Errorf("%w: too long", ErrMalformed)
	}
	// The decoder skips '\r' and '\n'; allow exactly one spelling per token.
	for i := 0; i < len(tok); i++ {
		if c := tok[i]; !('A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-' || c == '_') {
			return nil, fmt.Errorf("%w: not URL-safe unpadded base64", ErrMalformed)
		}
	}
	raw, err := b64.DecodeString(tok)
	if err != nil {
		return nil, fmt.Errorf("%w: not URL-safe unpadded base64", ErrMalformed)
	}
	return raw, nil
}

// verify checks the signature of raw and decodes it; everything Parse does
// but the expiry check.
func verify(raw []byte, lookup func(string) (Key, bool)) (Claims, error) {
	d := decoder{b: raw}
	d.header()
	kid := d.str(maxIDLen)
	if d.err == "" && len(d.b) < tagLen {
		d.err = "truncated"
	}
	if d.err != "" {
		return Claims{}, fmt.Errorf("%w: %s", ErrMalformed, d.err)
	}
	if lookup == nil {
		return Claims{}, fmt.Errorf("%w: no key lookup", ErrUnknownKey)
	}
	k, ok := lookup(kid)
	if !ok {
		return Claims{}, fmt.Errorf("%w: key id not found", ErrUnknownKey)
	}
	if r := k.check(); r != "" {
		return Claims{}, fmt.Errorf("%w: looked-up key unusable: %s", ErrUnknownKey, r)
	}
	signed := raw[:len(raw)-tagLen]
	m := hmac.New(sha256.New, k.Secret)
	m.Write(signed)
	var sum [tagLen]byte
	if !hmac.Equal(m.Sum(sum[:0]), raw[len(signed):]) {
		return Claims{}, fmt.Errorf("%w: tag mismatch", ErrBadSignature)
	}
	d.b = d.b[:len(d.b)-tagLen]
	c := d.claims()
	if d.err == "" && len(d.b) != 0 {
		d.err = "trailing bytes"
	}
	if d.err == "" {
		d.err = c.check()
	}
	if d.err != "" {
		return Claims{}, fmt.Errorf("%w: %s", ErrMalformed, d.err)
	}
	return c, nil
}

// decoder reads the fields of a token. After the first error (a short reason
// in err) every read returns a zero value.
type decoder struct {
	b   []byte
	err string
}

func (d *decoder) fail(reason string) {
	if d.err == "" {
		d.err = reason
	}
	d.b = nil
}

func (d *decoder) byte() byte {
	if d.err != "" {
		return 0
	}
	if len(d.b) == 0 {
		d.fail("truncated")
		return 0
	}
	c := d.b[0]
	d.b = d.b[1:]
	return c
}

func (d *decoder) header() {
	if v := d.byte(); d.err == "" && v != version {
		d.fail("unknown version")
	}
}

// uvarint reads a minimally encoded uvarint.
func (d *decoder) uvarint() uint64 {
	if d.err != "" {
		return 0
	}
	x, n := binary.Uvarint(d.b)
	switch {
	case n == 0:
		d.fail("truncated")
		return 0
	case n < 0:
		d.fail("varint overflow")
		return 0
	case n > 1 && d.b[n-1] == 0:
		d.fail("non-minimal varint")
		return 0
	}
	d.b = d.b[n:]
	return x
}

func (d *decoder) bytes(n int) []byte {
	if d.err != "" {
		return nil
	}
	if len(d.b) < n {
		d.fail("truncated")
		return nil
	}
	p := d.b[:n]
	d.b = d.b[n:]
	return p
}

// str reads a non-empty string of at most max bytes.
func (d *decoder) str(max int) string {
	h := d.uvarint()
	if d.err != "" {
		return ""
	}
	n, isHexForm := h>>1, h&1 == 1
	size := n
	if isHexForm {
		size = 2 * n
	}
	if n == 0 || size > uint64(max) {
		d.fail("string empty or too long")
		return ""
	}
	p := d.bytes(int(n))
	if d.err != "" {
		return ""
	}
	if isHexForm {
		return hex.EncodeToString(p)
	}
	s := string(p)
	if isHex(s) {
		d.fail("hex string not in compact form")
		return ""
	}
	return s
}

func (d *decoder) auditID() string {
	p := d.bytes(auditRawLen)
	if d.err != "" {
		return ""
	}
	return b64.EncodeToString(p)
}

// claims decodes everything after the key id (the tag already removed).
func (d *decoder) claims() Claims {
	var c Claims
	flags := d.byte()
	if d.err == "" && (flags&^knownFlags != 0 || flags&flagSystem != 0 && flags&flagProject != 0) {
		d.fail("bad flags")
	}
	c.System = flags&flagSystem != 0
	c.UserID = d.str(maxIDLen)
	if flags&flagProject != 0 {
		c.ProjectID = d.str(maxIDLen)
	}
	n := d.uvarint()
	if d.err == "" && (n == 0 || n > maxMethods) {
		d.fail("bad number of auth methods")
	}
	if d.err == "" {
		c.Methods = make([]string, 0, n)
	}
	for i := uint64(0); i < n && d.err == ""; i++ {
		code := d.uvarint()
		switch {
		case d.err != "":
		case code == 0:
			m := d.str(maxStringLen)
			if _, known := methodCodes[m]; known {
				d.fail("known auth method not in coded form")
			}
			c.Methods = append(c.Methods, m)
		case code < uint64(len(methodNames)):
			c.Methods = append(c.Methods, methodNames[code])
		default:
			d.fail("unknown auth method code")
		}
	}
	c.AuditID = d.auditID()
	if flags&flagParent != 0 {
		c.ParentAuditID = d.auditID()
	}
	iat := d.uvarint()
	life := d.uvarint()
	if d.err != "" {
		return Claims{}
	}
	if iat == 0 || life == 0 || iat > math.MaxInt64/2 || life > math.MaxInt64/2 {
		d.fail("times out of range")
		return Claims{}
	}
	c.IssuedAt = time.UnixMicro(int64(iat)).UTC()
	c.ExpiresAt = time.UnixMicro(int64(iat + life)).UTC()
	return c
}
