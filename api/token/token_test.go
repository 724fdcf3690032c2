package token

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"
)

// testKey returns a key whose secret is derived from seed.
func testKey(id, seed string) Key {
	s := sha256.Sum256([]byte(seed))
	return Key{ID: id, Secret: s[:]}
}

func lookupOf(keys ...Key) func(string) (Key, bool) {
	return func(id string) (Key, bool) {
		for _, k := range keys {
			if k.ID == id {
				return k, true
			}
		}
		return Key{}, false
	}
}

var (
	t0     = time.Date(2026, 11, 27, 10, 11, 12, 345678000, time.UTC)
	hexID1 = strings.Repeat("0123456789abcdef", 4) // 64-character SHA-256-style id
	hexID2 = strings.Repeat("fedcba9876543210", 4)
	audit1 = "AAECAwQFBgcICQoLDA0ODw" // bytes 0..15
	audit2 = "_____________________w" // 0xff * 16
)

func projectClaims() Claims {
	return Claims{
		UserID:        hexID1,
		ProjectID:     hexID2,
		Methods:       []string{"password", "token"},
		AuditID:       audit1,
		ParentAuditID: audit2,
		IssuedAt:      t0,
		ExpiresAt:     t0.Add(time.Hour),
	}
}

func systemClaims() Claims {
	return Claims{
		UserID:    "admin",
		System:    true,
		Methods:   []string{"password"},
		AuditID:   audit2,
		IssuedAt:  t0,
		ExpiresAt: t0.Add(12 * time.Hour),
	}
}

func unscopedClaims() Claims {
	return Claims{
		UserID:    "c0ffee00c0ffee00c0ffee00c0ffee00", // 32-character UUID hex
		Methods:   []string{"token", "totp", "my-custom-plugin"},
		AuditID:   audit1,
		IssuedAt:  t0,
		ExpiresAt: t0.Add(time.Microsecond),
	}
}

// wantClaims is c as Parse returns it: times truncated to the microsecond, in UTC.
func wantClaims(c Claims) Claims {
	c.IssuedAt = c.IssuedAt.Truncate(time.Microsecond).UTC()
	c.ExpiresAt = c.ExpiresAt.Truncate(time.Microsecond).UTC()
	return c
}

func TestRoundTrip(t *testing.T) {
	k := testKey("k1", "secret one")
	nonHex := projectClaims()
	nonHex.UserID = strings.Repeat("U", 64)
	nonHex.ProjectID = "Project-With-Mixed-Case-" + strings.Repeat("x", 40)
	nanos := systemClaims()
	nanos.IssuedAt = time.Date(2030, 1, 2, 3, 4, 5, 999_999_999, time.FixedZone("CET", 3600))
	nanos.ExpiresAt = nanos.IssuedAt.Add(90*time.Minute + 1)
	oddHex := unscopedClaims()
	oddHex.UserID = "abc" // odd length: stored as is
	oddHex.ProjectID = "ABCDEF01"

	for name, c := range map[string]Claims{
		"project": projectClaims(), "system": systemClaims(), "unscoped": unscopedClaims(),
		"project non-hex ids": nonHex, "nanosecond times": nanos, "odd and upper-case hex": oddHex,
	} {
		t.Run(name, func(t *testing.T) {
			tok, err := Sign(k, c)
			if err != nil {
				t.Fatal(err)
			}
			got, err := Parse(tok, lookupOf(k), c.IssuedAt)
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			want := wantClaims(c)
			if !got.IssuedAt.Equal(want.IssuedAt) || !got.ExpiresAt.Equal(want.ExpiresAt) {
				t.Errorf("times: got %v..%v, want %v..%v", got.IssuedAt, got.ExpiresAt, want.IssuedAt, want.ExpiresAt)
			}
			if got.IssuedAt.Nanosecond()%1000 != 0 {
				t.Errorf("issued at not at microsecond precision: %v", got.IssuedAt)
			}
			got.IssuedAt, got.ExpiresAt, want.IssuedAt, want.ExpiresAt = time.Time{}, time.Time{}, time.Time{}, time.Time{}
			if !reflect.DeepEqual(got, want) {
				t.Errorf("got  %+v\nwant %+v", got, want)
			}
			again, err := Sign(k, c)
			if err != nil || again != tok {
				t.Errorf("Sign is not deterministic: %q then %q (%v)", tok, again, err)
			}
			if strings.ContainsAny(tok, "+/=") || !strings.HasPrefix(tok, "AQ") { // version byte 0x01
				t.Errorf("token %q is not unpadded URL-safe base64 starting with version 1", tok)
			}
			if kid, err := KeyID(tok); err != nil || kid != "k1" {
				t.Errorf("KeyID = %q, %v", kid, err)
			}
			t.Logf("%d characters", len(tok))
		})
	}
}

func TestDistinctClaimsDistinctTokens(t *testing.T) {
	k := testKey("k1", "s")
	base := projectClaims()
	variants := []func(*Claims){
		func(c *Claims) {},
		func(c *Claims) { c.UserID = hexID2 },
		func(c *Claims) { c.ProjectID = hexID1 },
		func(c *Claims) { c.ProjectID, c.System = "", true },
		func(c *Claims) { c.ProjectID = "" },
		func(c *Claims) { c.Methods = []string{"token", "password"} },
		func(c *Claims) { c.Methods = []string{"password"} },
		func(c *Claims) { c.AuditID = audit2 },
		func(c *Claims) { c.ParentAuditID = "" },
		func(c *Claims) { c.IssuedAt = c.IssuedAt.Add(time.Microsecond) },
		func(c *Claims) { c.ExpiresAt = c.ExpiresAt.Add(time.Microsecond) },
	}
	seen := map[string]int{}
	for i, v := range variants {
		c := base
		c.Methods = append([]string(nil), base.Methods...)
		v(&c)
		tok, err := Sign(k, c)
		if err != nil {
			t.Fatalf("variant %d: %v", i, err)
		}
		if j, dup := seen[tok]; dup {
			t.Errorf("variants %d and %d give the same token", j, i)
		}
		seen[tok] = i
	}
	tok1, _ := Sign(k, base)
	tok2, _ := Sign(testKey("k1", "other"), base)
	tok3, _ := Sign(testKey("k2", "s"), base)
	if tok1 == tok2 || tok1 == tok3 {
		t.Error("a different key gives the same token")
	}
}

func TestLength(t *testing.T) {
	k := testKey("k1", "s")
	tok, err := Sign(k, projectClaims()) // 64-char hex ids, parent audit id, two methods
	if err != nil {
		t.Fatal(err)
	}
	if len(tok) > 220 {
		t.Errorf("project token with 64-character hex ids is %d characters, want <= 220", len(tok))
	}
	c := projectClaims()
	c.UserID, c.ProjectID = strings.Repeat("u", 64), strings.Repeat("p", 64)
	tok2, err := Sign(k, c)
	if err != nil {
		t.Fatal(err)
	}
	if len(tok2) > 300 {
		t.Errorf("project token with 64-byte non-hex ids is %d characters, want <= 300", len(tok2))
	}
	t.Logf("64-char hex ids: %d characters; 64-byte non-hex ids: %d characters", len(tok), len(tok2))
}

func TestExpiry(t *testing.T) {
	k := testKey("k1", "s")
	c := projectClaims()
	tok, _ := Sign(k, c)
	if _, err := Parse(tok, lookupOf(k), c.ExpiresAt.Add(-time.Microsecond)); err != nil {
		t.Errorf("one microsecond before expiry: %v", err)
	}
	for _, now := range []time.Time{c.ExpiresAt, c.ExpiresAt.Add(time.Second), c.ExpiresAt.Add(1000 * time.Hour)} {
		if _, err := Parse(tok, lookupOf(k), now); !errors.Is(err, ErrExpired) {
			t.Errorf("at %v: err = %v, want ErrExpired", now, err)
		}
	}
}

func TestKeyErrors(t *testing.T) {
	k := testKey("k1", "right")
	tok, _ := Sign(k, projectClaims())
	now := t0

	if _, err := Parse(tok, lookupOf(testKey("k2", "right")), now); !errors.Is(err, ErrUnknownKey) {
		t.Errorf("unknown key id: %v, want ErrUnknownKey", err)
	}
	if _, err := Parse(tok, nil, now); !errors.Is(err, ErrUnknownKey) {
		t.Errorf("nil lookup: %v, want ErrUnknownKey", err)
	}
	short := Key{ID: "k1", Secret: []byte("too short")}
	if _, err := Parse(tok, lookupOf(short), now); !errors.Is(err, ErrUnknownKey) {
		t.Errorf("looked-up key with a short secret: %v, want ErrUnknownKey", err)
	}
	wrong := testKey("k1", "wrong")
	_, err := Parse(tok, lookupOf(wrong), now)
	if !errors.Is(err, ErrBadSignature) {
		t.Errorf("wrong secret: %v, want ErrBadSignature", err)
	}
	// The signature is checked before the expiry: a forged expired token
	// reports the forgery.
	if _, err := Parse(tok, lookupOf(wrong), now.Add(48*time.Hour)); !errors.Is(err, ErrBadSignature) {
		t.Errorf("wrong secret, expired: %v, want ErrBadSignature", err)
	}
	checkErrorText(t, err, tok, k, wrong)
}

// checkErrorText fails if err's message contains the token or key material.
func checkErrorText(t *testing.T, err error, tok string, keys ...Key) {
	t.Helper()
	msg := err.Error()
	leaks := []string{tok}
	if len(tok) > 40 {
		leaks = append(leaks, tok[:20], tok[len(tok)-20:])
	}
	for _, k := range keys {
		leaks = append(leaks, string(k.Secret), hex.EncodeToString(k.Secret), base64.RawURLEncoding.EncodeToString(k.Secret),
			base64.StdEncoding.EncodeToString(k.Secret))
	}
	for _, l := range leaks {
		if l != "" && strings.Contains(msg, l) {
			t.Fatalf("error %q contains token or key material", msg)
		}
	}
	if len(msg) > 100 {
		t.Errorf("error message is %d bytes long: %q", len(msg), msg)
	}
}

func TestRotation(t *testing.T) {
	old, cur := testKey("2026-10", "old secret"), testKey("2026-11", "new secret")
	oldTok, _ := Sign(old, projectClaims())
	newTok, _ := Sign(cur, systemClaims())
	if kid, _ := KeyID(oldTok); kid != "2026-10" {
		t.Fatalf("KeyID(old token) = %q", kid)
	}

	// Both keys known: both tokens verify, each with its own key.
	both := lookupOf(cur, old)
	for _, tok := range []string{oldTok, newTok} {
		if _, err := Parse(tok, both, t0); err != nil {
			t.Errorf("with both keys: %v", err)
		}
	}
	// The old key retired: its tokens stop verifying, new ones still do.
	if _, err := Parse(oldTok, lookupOf(cur), t0); !errors.Is(err, ErrUnknownKey) {
		t.Errorf("old token after retiring its key: %v, want ErrUnknownKey", err)
	}
	if _, err := Parse(newTok, lookupOf(cur), t0); err != nil {
		t.Errorf("new token after retiring the old key: %v", err)
	}
	// A refreshed key list (the caller saw ErrUnknownKey, asked KeyID and
	// reloaded) makes the token verify again.
	kid, _ := KeyID(oldTok)
	refreshed := func(id string) (Key, bool) {
		if id == kid {
			return old, true
		}
		return lookupOf(cur)(id)
	}
	if _, err := Parse(oldTok, refreshed, t0); err != nil {
		t.Errorf("after refresh: %v", err)
	}
}

// mustFail parses s and fails the test if it succeeds, if the error wraps no
// sentinel, or if the message leaks the token.
func mustFail(t *testing.T, what, s string, k Key) {
	t.Helper()
	_, err := Parse(s, lookupOf(k), t0)
	if err == nil {
		t.Fatalf("%s: Parse accepted a modified token", what)
	}
	if !errors.Is(err, ErrMalformed) && !errors.Is(err, ErrBadSignature) && !errors.Is(err, ErrUnknownKey) {
		t.Fatalf("%s: error %v wraps none of the sentinels", what, err)
	}
	checkErrorText(t, err, s, k)
}

func TestTampering(t *testing.T) {
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
	k := testKey("k1", "s")
	for _, c := range []Claims{projectClaims(), systemClaims(), unscopedClaims()} {
		tok, _ := Sign(k, c)
		if _, err := Parse(tok, lookupOf(k), t0); err != nil {
			t.Fatal(err)
		}
		b := []byte(tok)
		for i := range b {
			orig := b[i]
			for _, r := range []byte(alphabet + "+/=.~ \x00\xff") {
				if r == orig {
					continue
				}
				b[i] = r
				mustFail(t, "character change", string(b), k)
			}
			b[i] = orig
			mustFail(t, "character removed", tok[:i]+tok[i+1:], k)
			for _, ins := range []string{"\n", "\r", "\r\n", " ", "=", "A"} {
				mustFail(t, "inserted "+ins, tok[:i]+ins+tok[i:], k)
			}
		}
		for n := 0; n < len(tok); n++ {
			mustFail(t, "truncation", tok[:n], k)
		}
		for _, r := range alphabet + "=" {
			mustFail(t, "appended character", tok+string(r), k)
			mustFail(t, "prepended character", string(r)+tok, k)
		}
		mustFail(t, "padded", tok+strings.Repeat("=", (4-len(tok)%4)%4+4), k)
		mustFail(t, "standard base64", base64.StdEncoding.EncodeToString(mustDecode(t, tok)), k)
		mustFail(t, "trailing newline", tok+"\n", k)
	}
}

func mustDecode(t *testing.T, tok string) []byte {
	t.Helper()
	raw, err := base64.RawURLEncoding.DecodeString(tok)
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

// headerOnly is version 1 and key id "k1", nothing else.
var headerOnly = base64.RawURLEncoding.EncodeToString([]byte{1, 2 << 1, 'k', '1'})

func TestGarbage(t *testing.T) {
	k := testKey("k1", "s")
	for _, s := range []string{
		"", "A", "AQ", "AQE", "====", "gAAAAABk", "not a token", "Bearer abc",
		strings.Repeat("A", 300), strings.Repeat("_", 200), strings.Repeat("A", 100000),
		"\x00\x01\x02", "ünïcödé", headerOnly,
		base64.RawURLEncoding.EncodeToString(make([]byte, 200)),
		base64.RawURLEncoding.EncodeToString(bytes.Repeat([]byte{0xff}, 200)),
	} {
		_, err := Parse(s, lookupOf(k), t0)
		if err == nil {
			t.Fatalf("Parse(%.20q) succeeded", s)
		}
		if !errors.Is(err, ErrMalformed) && !errors.Is(err, ErrBadSignature) {
			t.Errorf("Parse(%.20q): %v, want ErrMalformed or ErrBadSignature", s, err)
		}
	}
	if _, err := Parse("", lookupOf(k), t0); !errors.Is(err, ErrMalformed) {
		t.Errorf("empty token: %v, want ErrMalformed", err)
	}
	if _, err := KeyID(""); !errors.Is(err, ErrMalformed) {
		t.Errorf("KeyID(empty): %v, want ErrMalformed", err)
	}
	if kid, err := KeyID(headerOnly); err != nil || kid != "k1" {
		t.Errorf("KeyID(header only) = %q, %v; want k1", kid, err)
	}
	for _, s := range []string{"A", "AQ", "Ag" + headerOnly[2:], headerOnly[:len(headerOnly)-1], "AQRr", "!!!!"} {
		if _, err := KeyID(s); !errors.Is(err, ErrMalformed) {
			t.Errorf("KeyID(%q): %v, want ErrMalformed", s, err)
		}
	}
}

func TestNewAuditID(t *testing.T) {
	seen := map[string]bool{}
	for range 1000 {
		id := NewAuditID()
		if len(id) != 22 {
			t.Fatalf("audit id %q has length %d, want 22", id, len(id))
		}
		if strings.Trim(id, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_") != "" {
			t.Fatalf("audit id %q is not URL-safe base64", id)
		}
		if raw, err := base64.RawURLEncoding.Strict().DecodeString(id); err != nil || len(raw) != 16 {
			t.Fatalf("audit id %q does not decode to 16 bytes: %v", id, err)
		}
		if seen[id] {
			t.Fatalf("audit id %q repeated", id)
		}
		seen[id] = true
	}
	c := projectClaims()
	c.AuditID, c.ParentAuditID = NewAuditID(), NewAuditID()
	if err := c.Validate(); err != nil {
		t.Errorf("claims with fresh audit ids: %v", err)
	}
}

func TestValidate(t *testing.T) {
	for _, c := range []Claims{projectClaims(), systemClaims(), unscopedClaims()} {
		if err := c.Validate(); err != nil {
			t.Fatalf("valid claims: %v", err)
		}
	}
	k := testKey("k1", "s")
	for name, mod := range map[string]func(*Claims){
		"empty user id":         func(c *Claims) { c.UserID = "" },
		"long user id":          func(c *Claims) { c.UserID = strings.Repeat("a", 65) },
		"long project id":       func(c *Claims) { c.ProjectID = strings.Repeat("a", 65) },
		"project and system":    func(c *Claims) { c.System = true },
		"no methods":            func(c *Claims) { c.Methods = nil },
		"nine methods":          func(c *Claims) { c.Methods = strings.Split("a b c d e f g h i", " ") },
		"empty method":          func(c *Claims) { c.Methods = []string{"password", ""} },
		"long method":           func(c *Claims) { c.Methods = []string{strings.Repeat("m", 256)} },
		"duplicate method":      func(c *Claims) { c.Methods = []string{"token", "token"} },
		"no audit id":           func(c *Claims) { c.AuditID = "" },
		"short audit id":        func(c *Claims) { c.AuditID = audit1[:21] },
		"padded audit id":       func(c *Claims) { c.AuditID = audit1 + "==" },
		"std base64 audit id":   func(c *Claims) { c.AuditID = "+" + audit1[1:] },
		"audit id pad bits":     func(c *Claims) { c.AuditID = audit1[:21] + "x" },
		"bad parent audit id":   func(c *Claims) { c.ParentAuditID = "parent" },
		"zero issued at":        func(c *Claims) { c.IssuedAt = time.Time{} },
		"zero expires at":       func(c *Claims) { c.ExpiresAt = time.Time{} },
		"expiry before issue":   func(c *Claims) { c.ExpiresAt = c.IssuedAt.Add(-time.Hour) },
		"expiry equals issue":   func(c *Claims) { c.ExpiresAt = c.IssuedAt },
		"expiry same µs":        func(c *Claims) { c.ExpiresAt = c.IssuedAt.Add(100 * time.Nanosecond) },
		"before the Unix epoch": func(c *Claims) { c.IssuedAt = time.Date(1969, 1, 1, 0, 0, 0, 0, time.UTC) },
		"year 10000":            func(c *Claims) { c.ExpiresAt = time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC) },
	} {
		c := projectClaims()
		mod(&c)
		if err := c.Validate(); err == nil {
			t.Errorf("%s: Validate accepted", name)
		}
		if tok, err := Sign(k, c); err == nil {
			t.Errorf("%s: Sign returned %q", name, tok)
		}
	}
	for name, k := range map[string]Key{
		"empty id": {Secret: make([]byte, 32)}, "long id": {ID: strings.Repeat("k", 65), Secret: make([]byte, 32)},
		"short secret": {ID: "k", Secret: make([]byte, 31)},
	} {
		if _, err := Sign(k, projectClaims()); err == nil {
			t.Errorf("Sign accepted key with %s", name)
		}
	}
	if _, err := Sign(Key{ID: strings.Repeat("k", 64), Secret: make([]byte, 32)}, projectClaims()); err != nil {
		t.Errorf("64-byte key id, 32-byte secret: %v", err)
	}
}

// parts are the fields of a token body, encoded, for building tokens that
// Sign would never make but that carry a valid signature.
type parts struct {
	ver, kid, flags, user, project, methods, audit, parent, iat, life, extra []byte
}

func uv(x uint64) []byte { return binary.AppendUvarint(nil, x) }

func rawStr(s string) []byte { return append(uv(uint64(len(s))<<1), s...) }

// validParts encodes projectClaims() with key id "k1" by hand, following the
// package documentation.
func validParts() parts {
	c := projectClaims()
	user, _ := hex.DecodeString(c.UserID)
	proj, _ := hex.DecodeString(c.ProjectID)
	a1, _ := base64.RawURLEncoding.DecodeString(c.AuditID)
	a2, _ := base64.RawURLEncoding.DecodeString(c.ParentAuditID)
	return parts{
		ver:     []byte{1},
		kid:     rawStr("k1"),
		flags:   []byte{flagProject | flagParent},
		user:    append(uv(32<<1|1), user...),
		project: append(uv(32<<1|1), proj...),
		methods: []byte{2, 1, 2},
		audit:   a1,
		parent:  a2,
		iat:     uv(uint64(c.IssuedAt.UnixMicro())),
		life:    uv(uint64(time.Hour / time.Microsecond)),
	}
}

func (p parts) body() []byte {
	return bytes.Join([][]byte{p.ver, p.kid, p.flags, p.user, p.project, p.methods, p.audit, p.parent, p.iat, p.life, p.extra}, nil)
}

func seal(body []byte, k Key) string {
	return base64.RawURLEncoding.EncodeToString(appendTag(append([]byte(nil), body...), k.Secret))
}

func TestDecodeRejects(t *testing.T) {
	k := testKey("k1", "s")
	want, _ := Sign(k, projectClaims())
	if got := seal(validParts().body(), k); got != want {
		t.Fatalf("hand-built token differs from Sign's:\n%s\n%s", got, want)
	}
	long := strings.Repeat("m", 256)
	for name, mod := range map[string]func(*parts){
		"version 0":             func(p *parts) { p.ver = []byte{0} },
		"version 2":             func(p *parts) { p.ver = []byte{2} },
		"trailing byte":         func(p *parts) { p.extra = []byte{0} },
		"truncated in life":     func(p *parts) { p.life = p.life[:len(p.life)-1] },
		"truncated in audit id": func(p *parts) { p.audit, p.parent, p.iat, p.life = p.audit[:5], nil, nil, nil },
		"no issued at":          func(p *parts) { p.iat, p.life = nil, nil },
		"nothing after key id": func(p *parts) {
			p.flags, p.user, p.project, p.methods, p.audit, p.parent, p.iat, p.life = nil, nil, nil, nil, nil, nil, nil, nil
		},
		"empty key id":            func(p *parts) { p.kid = uv(0) },
		"key id 65 bytes":         func(p *parts) { p.kid = rawStr(strings.Repeat("k", 65)) },
		"user id 65 bytes":        func(p *parts) { p.user = rawStr(strings.Repeat("u", 65)) },
		"user id 66 hex":          func(p *parts) { p.user = append(uv(33<<1|1), make([]byte, 33)...) },
		"empty user id":           func(p *parts) { p.user = uv(0) },
		"empty hex user id":       func(p *parts) { p.user = uv(1) },
		"hex user id stored raw":  func(p *parts) { p.user = rawStr(hexID1) },
		"string length overflow":  func(p *parts) { p.user = uv(1 << 62) },
		"method 256 bytes":        func(p *parts) { p.methods = append([]byte{1, 0}, rawStr(long)...) },
		"nine methods":            func(p *parts) { p.methods = []byte{9, 1, 2, 3, 4, 5, 6, 7, 8, 0, 2, 'x', 'y'} },
		"zero methods":            func(p *parts) { p.methods = []byte{0} },
		"unknown method code":     func(p *parts) { p.methods = []byte{1, 9} },
		"known method as string":  func(p *parts) { p.methods = append([]byte{1, 0}, rawStr("password")...) },
		"duplicate method":        func(p *parts) { p.methods = []byte{2, 1, 1} },
		"system and project":      func(p *parts) { p.flags[0] |= flagSystem },
		"unknown flag":            func(p *parts) { p.flags[0] |= 1 << 3 },
		"parent id without flag":  func(p *parts) { p.flags[0] &^= flagParent },
		"zero lifetime":           func(p *parts) { p.life = uv(0) },
		"zero issued at":          func(p *parts) { p.iat = uv(0) },
		"issued after year 10000": func(p *parts) { p.iat = uv(uint64(time.Date(10001, 1, 1, 0, 0, 0, 0, time.UTC).UnixMicro())) },
		"huge lifetime":           func(p *parts) { p.life = uv(1 << 63) },
		"non-minimal varint":      func(p *parts) { p.life = append(p.life[:len(p.life)-1], p.life[len(p.life)-1]|0x80, 0) },
		"varint overflow":         func(p *parts) { p.life = bytes.Repeat([]byte{0xff}, 11) },
	} {
		p := validParts()
		p.flags = append([]byte(nil), p.flags...)
		mod(&p)
		tok := seal(p.body(), k)
		_, err := Parse(tok, lookupOf(k), t0)
		if !errors.Is(err, ErrMalformed) {
			t.Errorf("%s: err = %v, want ErrMalformed", name, err)
		}
	}
}

var fuzzKeySecret = sha256.Sum256([]byte("fuzz"))

// fuzzLookup knows every key id, all with the same secret.
func fuzzLookup(id string) (Key, bool) { return Key{ID: id, Secret: fuzzKeySecret[:]}, true }

// checkReparse parses tok (at the Unix epoch, so nothing valid is expired)
// and, if it parses, checks that signing its claims gives tok back.
func checkReparse(t *testing.T, tok string) {
	c, err := Parse(tok, fuzzLookup, time.Unix(0, 0))
	if err != nil {
		if !errors.Is(err, ErrMalformed) && !errors.Is(err, ErrBadSignature) && !errors.Is(err, ErrUnknownKey) {
			t.Fatalf("error %v wraps none of the sentinels", err)
		}
		if len(tok) >= 16 && strings.Contains(err.Error(), tok) {
			t.Fatalf("error %q contains the token", err)
		}
		return
	}
	kid, err := KeyID(tok)
	if err != nil {
		t.Fatalf("Parse accepted what KeyID rejects: %v", err)
	}
	if err := c.Validate(); err != nil {
		t.Fatalf("parsed claims do not validate: %v", err)
	}
	again, err := Sign(Key{ID: kid, Secret: fuzzKeySecret[:]}, c)
	if err != nil {
		t.Fatalf("re-signing parsed claims: %v", err)
	}
	if again != tok {
		t.Fatalf("re-signed token differs:\n%s\n%s", tok, again)
	}
}

// FuzzParse feeds arbitrary strings to Parse. Since random strings almost
// never carry a valid HMAC, it also signs the input's bytes (and, if the
// input is base64, its decoded body without the last 32 bytes) with the fuzz
// key, to reach the field decoder.
func FuzzParse(f *testing.F) {
	fk := Key{ID: "fz", Secret: fuzzKeySecret[:]}
	for _, c := range []Claims{projectClaims(), systemClaims(), unscopedClaims()} {
		tok, _ := Sign(fk, c)
		f.Add(tok)
		raw, _ := base64.RawURLEncoding.DecodeString(tok)
		f.Add(string(raw[:len(raw)-tagLen]))
		f.Add(tok[:len(tok)-1])
		f.Add(tok + "A")
	}
	for _, s := range []string{"", "A", "AQ", "====", headerOnly, "not a token", "\x01\x04k1\x00", strings.Repeat("\xff", 40)} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		checkReparse(t, s)
		if _, err := KeyID(s); err != nil && !errors.Is(err, ErrMalformed) {
			t.Fatalf("KeyID error %v does not wrap ErrMalformed", err)
		}
		checkReparse(t, seal([]byte(s), fk))
		if raw, err := base64.RawURLEncoding.DecodeString(s); err == nil && len(raw) > tagLen {
			checkReparse(t, seal(raw[:len(raw)-tagLen], fk))
		}
	})
}

func BenchmarkSign(b *testing.B) {
	k := testKey("k1", "s")
	c := projectClaims()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Sign(k, c); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkParse(b *testing.B) {
	k := testKey("k1", "s")
	tok, _ := Sign(k, projectClaims())
	lookup := lookupOf(k)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Parse(tok, lookup, t0); err != nil {
			b.Fatal(err)
		}
	}
}
