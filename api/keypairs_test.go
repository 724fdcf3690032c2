package api

import (
	"crypto/md5"
	"crypto/rsa"
	"crypto/sha1"
	"encoding/base64"
	"encoding/pem"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"
	"golang.org/x/crypto/pkcs12"
	"golang.org/x/crypto/ssh"

	"github.com/keel-cloud/keel/fsm"
)

// Fixtures made with ssh-keygen and openssl; the fingerprints are what
// `ssh-keygen -l -E md5` and `openssl x509 -fingerprint -sha1` print.
const (
	kpEd25519   = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOirEdG57n1O+xBGd5Bc8BLlu5JppUgs8iW3FXv7RHtz test@example"
	kpEd25519FP = "ac:3c:5b:45:17:af:7f:96:3e:e1:c9:3f:85:9c:f7:56"
	kpRSA       = "ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAAAgQDo0hJMeuEpciD0OtoG4JTXtFQjZqI9mDrW9sJJcd0FjQbxV3EDwz3yrecBRTDL21kdvMEWZvlwsxxJjfZNUxbCzmu9MTsbX82jrWceCoIL0j0uAQuBm08oRIGhddo08ayi7oyA3Mzhxwsw11cBm0/ZuLJ08Sq3AvSyh9tMl5aIJw== rsa@example\n"
	kpRSAFP     = "79:9c:cd:6a:82:d6:cd:f4:9c:ea:b7:b1:9c:42:d7:84"
	kpECDSA     = "ecdsa-sha2-nistp256 AAAAE2VjZHNhLXNoYTItbmlzdHAyNTYAAAAIbmlzdHAyNTYAAABBBAHcMgNa+sIPBPE7jMXwSFf2UuDP5MNjidpwSN5B9bP/z00xJTlp+Y1kPIVoiuZbK/5kE2jd6OU1LQH0uDZNFpg="
	kpECDSAFP   = "dc:8a:ef:fe:2c:6a:15:9d:24:75:df:9e:3b:77:50:1b"
	kpCert      = `-----BEGIN CERTIFICATE-----
MIIBeDCCAR+gAwIBAgIUKcJtyisjCCyeU9fjPhq9w70XsBUwCgYIKoZIzj0EAwIw
EjEQMA4GA1UEAwwHa3AtdGVzdDAeFw0yNjExMjcwODE0NTRaFw0zNjExMjQwODE0
NTRaMBIxEDAOBgNVBAMMB2twLXRlc3QwWTATBgcqhkjOPQIBBggqhkjOPQMBBwNC
AARiWJSW4+cbZ4UUJDOXdReDq35GncYpjEXPRnQtyTwgPwDHGbipC1i6B03QTnOP
PRQEp3Ps3j3b6TA7shQFYif7o1MwUTAdBgNVHQ4EFgQU1oq3AwZMiOs4C5Qi/90F
0CHE6+gwHwYDVR0jBBgwFoAU1oq3AwZMiOs4C5Qi/90F0CHE6+gwDwYDVR0TAQH/
BAUwAwEB/zAKBggqhkjOPQQDAgNHADBEAiA7eh3M6b7CanA4BDkkio2w5ms0E8ag
QFaI/I5F3kTJoQIgW2e6tqAvbuM6Fnqpi/XdsjNgzitL5/47+c7CcrPs8zg=
-----END CERTIFICATE-----
`
	kpCertFP = "7d:b3:9e:3b:b2:fd:61:8b:dd:33:75:a2:33:d0:dc:ae:48:6a:55:a4"
)

// kpEnv is a 1-node cluster with users on the admin project: alice and
// bob (members), rita (reader) and admin (an admin).
type kpEnv struct {
	ac      *apiCluster
	base    string
	project string
	ids     map[string]string // user name → id
	toks    map[string]string // user name → project-scoped token
}

func newKpEnv(t *testing.T) *kpEnv {
	t.Helper()
	ac := newAPICluster(t, 1)
	e := &kpEnv{ac: ac, base: ac.url(0), ids: map[string]string{}, toks: map[string]string{}}
	st := ac.Nodes[0].State()
	p, err := fsm.ProjectByName(st, "default", "admin")
	if err != nil {
		t.Fatal(err)
	}
	e.project = p.ID
	// bcrypt's lowest cost keeps the logins fast under -race.
	hash, err := bcrypt.GenerateFromPassword([]byte("kp-pw"), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	for _, u := range []struct{ name, role string }{{"alice", "member"}, {"bob", "member"}, {"rita", "reader"}, {"admin", "admin"}} {
		role, err := fsm.RoleByName(st, u.role)
		if err != nil {
			t.Fatal(err)
		}
		id := fmt.Sprintf("%x", md5.Sum([]byte(u.name)))
		name := "kp-" + u.name
		apply(t, ac, &fsm.CreateUser{User: fsm.User{ID: id, Name: name, DomainID: "default", PasswordHash: string(hash), Enabled: true}})
		apply(t, ac, &fsm.GrantRole{Assignment: fsm.RoleAssignment{UserID: id, RoleID: role.ID, ProjectID: p.ID}})
		e.ids[u.name] = id
		e.toks[u.name] = login(t, e.base, name, "kp-pw", projectScope("admin"))
	}
	return e
}

// call sends a compute request as user at microversion mv ("" for none).
func (e *kpEnv) call(t *testing.T, user, mv, method, path string, body any) resp {
	t.Helper()
	var hdr []string
	if mv != "" {
		hdr = []string{"OpenStack-API-Version", "compute " + mv}
	}
	return do(t, method, e.base+"/compute/v2.1"+path, e.toks[user], body, hdr...)
}

func (e *kpEnv) hash(t *testing.T) string {
	t.Helper()
	h, err := e.ac.Nodes[0].FSM().Hash()
	if err != nil {
		t.Fatal(err)
	}
	return h
}

func kpBody(fields ...any) map[string]any {
	kp := map[string]any{}
	for i := 0; i+1 < len(fields); i += 2 {
		kp[fields[i].(string)] = fields[i+1]
	}
	return map[string]any{"keypair": kp}
}

// kpWant checks the status of r and returns its JSON body.
func kpWant(t *testing.T, what string, r resp, status int) map[string]any {
	t.Helper()
	if r.Status != status {
		t.Fatalf("%s: HTTP %d %s, want %d", what, r.Status, r.Body, status)
	}
	if len(r.Body) == 0 {
		return nil
	}
	return r.json(t)
}

// kpFault checks that r is a Nova fault of status whose message contains
// msg.
func kpFault(t *testing.T, what string, r resp, status int, msg string) {
	t.Helper()
	body := kpWant(t, what, r, status)
	f, ok := body[NovaFaultName(status)].(map[string]any)
	if !ok || f["code"] != float64(status) {
		t.Fatalf("%s: not a Nova %d fault: %s", what, status, r.Body)
	}
	if m, _ := f["message"].(string); !strings.Contains(m, msg) {
		t.Fatalf("%s: message %q does not contain %q", what, m, msg)
	}
}

func kpKeys(m map[string]any) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

func kpObj(t *testing.T, body map[string]any) map[string]any {
	t.Helper()
	kp, ok := body["keypair"].(map[string]any)
	if !ok {
		t.Fatalf("no keypair object in %v", body)
	}
	return kp
}

func kpList(t *testing.T, body map[string]any) []map[string]any {
	t.Helper()
	items, ok := body["keypairs"].([]any)
	if !ok {
		t.Fatalf("no keypairs list in %v", body)
	}
	var out []map[string]any
	for _, it := range items {
		out = append(out, it.(map[string]any)["keypair"].(map[string]any))
	}
	return out
}

func kpListNames(t *testing.T, body map[string]any) []string {
	t.Helper()
	var out []string
	for _, k := range kpList(t, body) {
		out = append(out, k["name"].(string))
	}
	return out
}

// The body shapes, statuses and fields of each microversion.
func TestKeypairMicroversions(t *testing.T) {
	e := newKpEnv(t)
	alice := e.ids["alice"]

	// 2.1: 200 on create, no type anywhere, 202 on delete.
	r := e.call(t, "alice", "", "POST", "/os-keypairs", kpBody("name", "old", "public_key", kpEd25519))
	kp := kpObj(t, kpWant(t, "create 2.1", r, 200))
	if got := kpKeys(kp); !slices.Equal(got, []string{"fingerprint", "name", "public_key", "user_id"}) {
		t.Fatalf("create 2.1 fields %v", got)
	}
	if kp["fingerprint"] != kpEd25519FP || kp["user_id"] != alice || kp["public_key"] != kpEd25519 || kp["name"] != "old" {
		t.Fatalf("create 2.1: %v", kp)
	}
	kp = kpObj(t, kpWant(t, "show 2.1", e.call(t, "alice", "2.1", "GET", "/os-keypairs/old", nil), 200))
	if got := kpKeys(kp); !slices.Equal(got, []string{"created_at", "deleted", "deleted_at", "fingerprint", "id", "name", "public_key", "updated_at", "user_id"}) {
		t.Fatalf("show 2.1 fields %v", got)
	}
	if kp["deleted"] != false || kp["deleted_at"] != nil || kp["updated_at"] != nil || kp["id"] != float64(1) {
		t.Fatalf("show 2.1: %v", kp)
	}
	created, err := time.Parse("2006-01-02T15:04:05.000000", kp["created_at"].(string))
	if err != nil || time.Since(created) > time.Minute || time.Since(created) < 0 {
		t.Fatalf("created_at %v: %v", kp["created_at"], err)
	}
	items := kpList(t, kpWant(t, "list 2.1", e.call(t, "alice", "", "GET", "/os-keypairs", nil), 200))
	if len(items) != 1 || !slices.Equal(kpKeys(items[0]), []string{"fingerprint", "name", "public_key"}) {
		t.Fatalf("list 2.1: %v", items)
	}
	kpFault(t, "type in 2.1", e.call(t, "alice", "2.1", "POST", "/os-keypairs", kpBody("name", "t", "type", "ssh")), 400,
		"Additional properties are not allowed ('type' was unexpected)")
	r = e.call(t, "alice", "", "DELETE", "/os-keypairs/old", nil)
	if r.Status != 202 || len(r.Body) != 0 {
		t.Fatalf("delete 2.1: HTTP %d %s, want 202 without a body", r.Status, r.Body)
	}

	// 2.2: type everywhere, 201 on create, 204 on delete.
	for _, tc := range []struct{ name, key, typ, fp string }{
		{"rsa", kpRSA, "ssh", kpRSAFP},
		{"ecdsa", kpECDSA, "ssh", kpECDSAFP},
		{"cert", kpCert, "x509", kpCertFP},
	} {
		body := kpBody("name", tc.name, "public_key", tc.key)
		if tc.typ == "x509" {
			body["keypair"].(map[string]any)["type"] = "x509"
		}
		kp := kpObj(t, kpWant(t, "import "+tc.name, e.call(t, "alice", "2.2", "POST", "/os-keypairs", body), 201))
		if !slices.Equal(kpKeys(kp), []string{"fingerprint", "name", "public_key", "type", "user_id"}) || kp["type"] != tc.typ || kp["fingerprint"] != tc.fp || kp["public_key"] != tc.key {
			t.Fatalf("import %s at 2.2: %v", tc.name, kp)
		}
	}
	kp = kpObj(t, kpWant(t, "show 2.2", e.call(t, "alice", "2.2", "GET", "/os-keypairs/cert", nil), 200))
	if kp["type"] != "x509" || len(kpKeys(kp)) != 10 {
		t.Fatalf("show 2.2: %v", kp)
	}
	items = kpList(t, kpWant(t, "list 2.2", e.call(t, "alice", "2.2", "GET", "/os-keypairs", nil), 200))
	if len(items) != 3 || items[0]["name"] != "cert" || items[0]["type"] != "x509" || items[2]["name"] != "rsa" || items[2]["type"] != "ssh" {
		t.Fatalf("list 2.2: %v", items)
	}
	r = e.call(t, "alice", "2.2", "DELETE", "/os-keypairs/ecdsa", nil)
	if r.Status != 204 || len(r.Body) != 0 {
		t.Fatalf("delete 2.2: HTTP %d %s", r.Status, r.Body)
	}
	kpFault(t, "show deleted", e.call(t, "alice", "2.2", "GET", "/os-keypairs/ecdsa", nil), 404, "Keypair ecdsa not found for user "+alice)

	// Generated ssh key: the private key is returned once and matches.
	kp = kpObj(t, kpWant(t, "generate ssh", e.call(t, "alice", "2.2", "POST", "/os-keypairs", kpBody("name", "gen")), 201))
	priv, _ := kp["private_key"].(string)
	if !strings.HasPrefix(priv, "-----BEGIN OPENSSH PRIVATE KEY-----") || kp["type"] != "ssh" {
		t.Fatalf("generated ssh key pair: %v", kp)
	}
	signer, err := ssh.ParsePrivateKey([]byte(priv))
	if err != nil {
		t.Fatalf("generated private key: %v", err)
	}
	pub, _, _, _, err := ssh.ParseAuthorizedKey([]byte(kp["public_key"].(string)))
	if err != nil || pub.Type() != "ssh-rsa" || string(pub.Marshal()) != string(signer.PublicKey().Marshal()) {
		t.Fatalf("generated public key %q does not match the private key: %v", kp["public_key"], err)
	}
	if want := ssh.FingerprintLegacyMD5(pub); kp["fingerprint"] != want {
		t.Fatalf("generated fingerprint %v, want %s", kp["fingerprint"], want)
	}
	shown := kpObj(t, kpWant(t, "show generated", e.call(t, "alice", "2.2", "GET", "/os-keypairs/gen", nil), 200))
	if _, ok := shown["private_key"]; ok || shown["public_key"] != kp["public_key"] {
		t.Fatalf("show of a generated key pair: %v", shown)
	}

	// Generated x509: a PKCS#12 bundle (empty password) of the key and the
	// self-signed certificate for the user.
	kp = kpObj(t, kpWant(t, "generate x509", e.call(t, "alice", "2.2", "POST", "/os-keypairs", kpBody("name", "win", "type", "x509")), 201))
	pfx, err := base64.StdEncoding.DecodeString(kp["private_key"].(string))
	if err != nil {
		t.Fatalf("x509 private key is not base64: %v", err)
	}
	key, cert, err := pkcs12.Decode(pfx, "")
	if err != nil {
		t.Fatalf("x509 private key is not a PKCS#12 bundle: %v", err)
	}
	block, _ := pem.Decode([]byte(kp["public_key"].(string)))
	if block == nil || block.Type != "CERTIFICATE" || string(block.Bytes) != string(cert.Raw) {
		t.Fatalf("public key is not the bundled certificate: %v", kp["public_key"])
	}
	if cert.Subject.CommonName != alice || cert.NotAfter.Sub(cert.NotBefore) < 3649*24*time.Hour || cert.CheckSignature(cert.SignatureAlgorithm, cert.RawTBSCertificate, cert.Signature) != nil {
		t.Fatalf("certificate: CN %q valid %s to %s", cert.Subject.CommonName, cert.NotBefore, cert.NotAfter)
	}
	if k, ok := key.(*rsa.PrivateKey); !ok || !k.PublicKey.Equal(cert.PublicKey) {
		t.Fatal("the bundled key is not the certificate's")
	}
	sum := sha1.Sum(cert.Raw)
	if kp["fingerprint"] != keypairColonHex(sum[:]) || kp["type"] != "x509" {
		t.Fatalf("x509 fingerprint %v", kp["fingerprint"])
	}

	// 2.92: only imports, and names may hold '@' and '.'.
	kpFault(t, "generate at 2.92", e.call(t, "alice", "2.92", "POST", "/os-keypairs", kpBody("name", "g292")), 400, "'public_key' is a required property")
	kpFault(t, "@ before 2.92", e.call(t, "alice", "2.91", "POST", "/os-keypairs", kpBody("name", "me@host.example", "public_key", kpEd25519)), 400, "does not match")
	kp = kpObj(t, kpWant(t, "@ at 2.92", e.call(t, "alice", "2.92", "POST", "/os-keypairs", kpBody("name", "me@host.example", "public_key", kpEd25519)), 201))
	if !slices.Equal(kpKeys(kp), []string{"fingerprint", "name", "public_key", "type", "user_id"}) {
		t.Fatalf("import at 2.92: %v", kp)
	}
	kpWant(t, "show a 2.92 name", e.call(t, "alice", "2.100", "GET", "/os-keypairs/me@host.example", nil), 200)
	kpWant(t, "space in a name", e.call(t, "alice", "2.10", "POST", "/os-keypairs", kpBody("name", "my key", "public_key", kpEd25519)), 201)
	kpWant(t, "show a name with a space", e.call(t, "alice", "2.10", "GET", "/os-keypairs/my%20key", nil), 200)
	kpWant(t, "delete a name with a space", e.call(t, "alice", "2.10", "DELETE", "/os-keypairs/my%20key", nil), 204)
}

// Bad input gets Nova's 400 (or 409) with a message naming the problem,
// and changes nothing.
func TestKeypairBadInput(t *testing.T) {
	e := newKpEnv(t)
	kpWant(t, "create", e.call(t, "alice", "2.2", "POST", "/os-keypairs", kpBody("name", "taken", "public_key", kpEd25519)), 201)
	before := e.hash(t)
	long := strings.Repeat("k", 256)
	for _, tc := range []struct {
		name, mv string
		body     any
		status   int
		msg      string
	}{
		{"not an object", "2.2", `[]`, 400, "[] is not of type 'object'"},
		{"no keypair", "2.2", map[string]any{}, 400, "'keypair' is a required property"},
		{"keypair not an object", "2.2", map[string]any{"keypair": "x"}, 400, "Invalid input for field/attribute keypair. Value: x. 'x' is not of type 'object'"},
		{"no name", "2.2", kpBody("public_key", kpEd25519), 400, "'name' is a required property"},
		{"empty name", "2.2", kpBody("name", ""), 400, "Invalid input for field/attribute name. Value: . '' should be non-empty"},
		{"long name", "2.2", kpBody("name", long), 400, "'" + long + "' is too long"},
		{"name not a string", "2.2", kpBody("name", 12), 400, "Invalid input for field/attribute name. Value: 12. 12 is not of type 'string'"},
		{"unsafe name", "2.2", kpBody("name", "a!b"), 400, `Invalid input for field/attribute name. Value: a!b. 'a!b' does not match '^[_\\- a-zA-Z0-9]+$'`},
		{"unsafe name 2.92", "2.92", kpBody("name", "a/b", "public_key", kpEd25519), 400, `'a/b' does not match '^[_\\-\\@\\. a-zA-Z0-9]+$'`},
		{"leading space", "2.2", kpBody("name", " a"), 400, "An invalid 'name' value was provided. The name must be: printable characters. Can not start or end with whitespace."},
		{"control character", "2.2", kpBody("name", "a\tb"), 400, "An invalid 'name' value was provided"},
		{"bad type", "2.2", kpBody("name", "k", "type", "rsa"), 400, "Invalid input for field/attribute type. Value: rsa. 'rsa' is not one of ['ssh', 'x509']"},
		{"type before 2.2", "2.1", kpBody("name", "k", "type", "ssh"), 400, "('type' was unexpected)"},
		{"user_id before 2.10", "2.9", kpBody("name", "k", "user_id", e.ids["bob"]), 400, "('user_id' was unexpected)"},
		{"public_key not a string", "2.2", kpBody("name", "k", "public_key", true), 400, "Value: True. True is not of type 'string'"},
		{"user_id not a string", "2.10", kpBody("name", "k", "user_id", nil), 400, "Value: None. None is not of type 'string'"},
		{"unknown field", "2.2", kpBody("name", "k", "colour", "red"), 400, "Additional properties are not allowed ('colour' was unexpected)"},
		{"unknown top-level field", "2.2", map[string]any{"keypair": map[string]any{"name": "k"}, "x": 1}, 400, "Additional properties are not allowed ('x' was unexpected)"},
		{"garbage public key", "2.2", kpBody("name", "k", "public_key", "not a key"), 400, "Keypair data is invalid: failed to generate fingerprint"},
		{"empty public key", "2.2", kpBody("name", "k", "public_key", ""), 400, "Keypair data is invalid: failed to generate fingerprint"},
		{"truncated key", "2.2", kpBody("name", "k", "public_key", kpEd25519[:60]), 400, "Keypair data is invalid"},
		{"key type mismatch", "2.2", kpBody("name", "k", "public_key", "ssh-rsa"+strings.TrimPrefix(kpEd25519, "ssh-ed25519")), 400, "Keypair data is invalid"},
		{"ssh key as x509", "2.2", kpBody("name", "k", "type", "x509", "public_key", kpEd25519), 400, "Keypair data is invalid: failed to generate X509 fingerprint. Error message: "},
		{"certificate as ssh", "2.2", kpBody("name", "k", "public_key", kpCert), 400, "failed to generate fingerprint"},
		{"broken certificate", "2.2", kpBody("name", "k", "type", "x509", "public_key", strings.Replace(kpCert, "MIIB", "MIIC", 1)), 400, "failed to generate X509 fingerprint"},
		{"duplicate", "2.2", kpBody("name", "taken", "public_key", kpRSA), 409, "Key pair 'taken' already exists."},
		{"malformed JSON", "2.2", `{"keypair": `, 400, "Malformed request body"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			kpFault(t, tc.name, e.call(t, "alice", tc.mv, "POST", "/os-keypairs", tc.body), tc.status, tc.msg)
		})
	}
	for _, tc := range []struct {
		name, mv, method, path string
		status                 int
		msg                    string
	}{
		{"negative limit", "2.35", "GET", "/os-keypairs?limit=-1", 400, "Invalid input for query parameters limit. Value: -1. '-1' does not match '^[0-9]*$'"},
		{"empty limit", "2.35", "GET", "/os-keypairs?limit=", 400, "'' should be non-empty"},
		{"unknown marker", "2.35", "GET", "/os-keypairs?marker=nope", 400, "Marker nope could not be found."},
		{"unknown list parameter", "2.75", "GET", "/os-keypairs?sort=name", 400, "Additional properties are not allowed ('sort' was unexpected)"},
		{"unknown show parameter", "2.75", "GET", "/os-keypairs/taken?limit=1", 400, "('limit' was unexpected)"},
		{"unknown delete parameter", "2.75", "DELETE", "/os-keypairs/taken?force=1", 400, "('force' was unexpected)"},
		{"delete missing", "2.2", "DELETE", "/os-keypairs/missing", 404, "Keypair missing not found for user " + e.ids["alice"]},
		{"show missing", "2.2", "GET", "/os-keypairs/missing", 404, "Keypair missing not found"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			kpFault(t, tc.name, e.call(t, "alice", tc.mv, tc.method, tc.path, nil), tc.status, tc.msg)
		})
	}
	if e.hash(t) != before {
		t.Fatal("refused requests changed the state")
	}
	// Before 2.35 paging parameters are ignored, before 2.75 unknown ones.
	if names := kpListNames(t, kpWant(t, "2.34 limit", e.call(t, "alice", "2.34", "GET", "/os-keypairs?limit=-1&marker=nope", nil), 200)); !slices.Equal(names, []string{"taken"}) {
		t.Fatalf("2.34 list: %v", names)
	}
	kpWant(t, "2.74 unknown parameter", e.call(t, "alice", "2.74", "GET", "/os-keypairs?sort=name", nil), 200)
}

// Key pairs belong to users: another user's key is a 404; only admins may
// name another user (2.10+), others get Nova's policy 403.
func TestKeypairOwnership(t *testing.T) {
	e := newKpEnv(t)
	alice, bob := e.ids["alice"], e.ids["bob"]
	kpWant(t, "alice imports", e.call(t, "alice", "2.10", "POST", "/os-keypairs", kpBody("name", "alice-key", "public_key", kpEd25519)), 201)
	kpWant(t, "bob, same name", e.call(t, "bob", "2.10", "POST", "/os-keypairs", kpBody("name", "shared", "public_key", kpRSA)), 201)
	kpWant(t, "alice, same name", e.call(t, "alice", "2.10", "POST", "/os-keypairs", kpBody("name", "shared", "public_key", kpECDSA)), 201)
	// A reader manages their own key pairs too (Nova's rule is the owner).
	kpWant(t, "reader imports", e.call(t, "rita", "2.10", "POST", "/os-keypairs", kpBody("name", "rita-key", "public_key", kpEd25519)), 201)

	kpFault(t, "bob reads alice's key", e.call(t, "bob", "2.10", "GET", "/os-keypairs/alice-key", nil), 404, "Keypair alice-key not found for user "+bob)
	kpFault(t, "bob deletes alice's key", e.call(t, "bob", "2.10", "DELETE", "/os-keypairs/alice-key", nil), 404, "not found")
	if fp := kpObj(t, kpWant(t, "bob's shared", e.call(t, "bob", "2.10", "GET", "/os-keypairs/shared", nil), 200))["fingerprint"]; fp != kpRSAFP {
		t.Fatalf("bob's key pair named shared has fingerprint %v", fp)
	}
	if names := kpListNames(t, kpWant(t, "bob lists", e.call(t, "bob", "2.10", "GET", "/os-keypairs", nil), 200)); !slices.Equal(names, []string{"shared"}) {
		t.Fatalf("bob's list: %v", names)
	}
	for _, tc := range []struct{ method, path, action string }{
		{"GET", "/os-keypairs?user_id=" + alice, "index"},
		{"GET", "/os-keypairs/alice-key?user_id=" + alice, "show"},
		{"DELETE", "/os-keypairs/alice-key?user_id=" + alice, "delete"},
	} {
		kpFault(t, "bob names alice: "+tc.action, e.call(t, "bob", "2.10", tc.method, tc.path, nil), 403,
			"Policy doesn't allow os_compute_api:os-keypairs:"+tc.action+" to be performed.")
	}
	kpFault(t, "bob creates for alice", e.call(t, "bob", "2.10", "POST", "/os-keypairs", kpBody("name", "x", "user_id", alice, "public_key", kpRSA)), 403,
		"Policy doesn't allow os_compute_api:os-keypairs:create to be performed.")
	// Naming oneself is fine; before 2.10 ?user_id is ignored.
	kpWant(t, "bob names bob", e.call(t, "bob", "2.10", "GET", "/os-keypairs/shared?user_id="+bob, nil), 200)
	kpFault(t, "user_id ignored at 2.9", e.call(t, "bob", "2.9", "GET", "/os-keypairs/alice-key?user_id="+alice, nil), 404, "not found for user "+bob)

	// Admins act for anyone from 2.10 on.
	kp := kpObj(t, kpWant(t, "admin shows alice's", e.call(t, "admin", "2.10", "GET", "/os-keypairs/alice-key?user_id="+alice, nil), 200))
	if kp["user_id"] != alice || kp["fingerprint"] != kpEd25519FP {
		t.Fatalf("admin's view of alice's key: %v", kp)
	}
	kpFault(t, "admin without user_id", e.call(t, "admin", "2.10", "GET", "/os-keypairs/alice-key", nil), 404, "not found")
	kpFault(t, "admin at 2.9", e.call(t, "admin", "2.9", "GET", "/os-keypairs/alice-key?user_id="+alice, nil), 404, "not found")
	if names := kpListNames(t, kpWant(t, "admin lists alice's", e.call(t, "admin", "2.10", "GET", "/os-keypairs?user_id="+alice, nil), 200)); !slices.Equal(names, []string{"alice-key", "shared"}) {
		t.Fatalf("admin's list of alice's: %v", names)
	}
	kp = kpObj(t, kpWant(t, "admin creates for bob", e.call(t, "admin", "2.10", "POST", "/os-keypairs", kpBody("name", "from-admin", "user_id", bob, "public_key", kpECDSA)), 201))
	if kp["user_id"] != bob {
		t.Fatalf("created for bob: %v", kp)
	}
	kpWant(t, "bob sees it", e.call(t, "bob", "2.10", "GET", "/os-keypairs/from-admin", nil), 200)
	kpWant(t, "admin deletes bob's", e.call(t, "admin", "2.10", "DELETE", "/os-keypairs/from-admin?user_id="+bob, nil), 204)
	kpFault(t, "bob's is gone", e.call(t, "bob", "2.10", "GET", "/os-keypairs/from-admin", nil), 404, "not found")
	// The private key of a key pair generated for another user goes to the
	// admin who asked, and the certificate names the owner.
	kp = kpObj(t, kpWant(t, "admin generates for bob", e.call(t, "admin", "2.10", "POST", "/os-keypairs", kpBody("name", "cert", "type", "x509", "user_id", bob)), 201))
	block, _ := pem.Decode([]byte(kp["public_key"].(string)))
	if kp["user_id"] != bob || kp["private_key"] == nil || block == nil || !strings.Contains(string(block.Bytes), bob) {
		t.Fatalf("x509 generated for bob: %v", kp)
	}
	kpFault(t, "no token", do(t, "GET", e.base+"/compute/v2.1/os-keypairs", "", nil), 401, "requires authentication")
}

func TestKeypairPagination(t *testing.T) {
	e := newKpEnv(t)
	for _, n := range []string{"k5", "k1", "k4", "k3", "k2"} {
		kpWant(t, "create "+n, e.call(t, "bob", "2.35", "POST", "/os-keypairs", kpBody("name", n, "public_key", kpEd25519)), 201)
	}
	page := func(url string) ([]string, string) {
		t.Helper()
		r := do(t, "GET", url, e.toks["bob"], nil, "OpenStack-API-Version", "compute 2.35")
		body := kpWant(t, "GET "+url, r, 200)
		next := ""
		if links, ok := body["keypairs_links"].([]any); ok {
			l := links[0].(map[string]any)
			if len(links) != 1 || l["rel"] != "next" {
				t.Fatalf("links %v", links)
			}
			next = l["href"].(string)
		}
		return kpListNames(t, body), next
	}
	names, next := page(e.base + "/compute/v2.1/os-keypairs?limit=2")
	if !slices.Equal(names, []string{"k1", "k2"}) || next != e.base+"/compute/v2.1/os-keypairs?limit=2&marker=k2" {
		t.Fatalf("first page %v, next %q", names, next)
	}
	names, next = page(next)
	if !slices.Equal(names, []string{"k3", "k4"}) || !strings.HasSuffix(next, "marker=k4") {
		t.Fatalf("second page %v, next %q", names, next)
	}
	names, next = page(next)
	if !slices.Equal(names, []string{"k5"}) || next != "" {
		t.Fatalf("last page %v, next %q", names, next)
	}
	if names, next = page(e.base + "/compute/v2.1/os-keypairs?marker=k3"); !slices.Equal(names, []string{"k4", "k5"}) || next != "" {
		t.Fatalf("after k3: %v %q", names, next)
	}
	if names, next = page(e.base + "/compute/v2.1/os-keypairs?limit=0"); len(names) != 0 || next != "" {
		t.Fatalf("limit 0: %v %q", names, next)
	}
	if names, next = page(e.base + "/compute/v2.1/os-keypairs?limit=5"); len(names) != 5 || next == "" {
		t.Fatalf("a full page of 5 has a next link: %v %q", names, next)
	}
	if names, _ = page(e.base + "/compute/v2.1/os-keypairs?limit=99999999999999999999"); len(names) != 5 {
		t.Fatalf("huge limit: %v", names)
	}
	// A marker names one of the listed user's key pairs.
	kpFault(t, "alice's marker", e.call(t, "alice", "2.35", "GET", "/os-keypairs?marker=k1", nil), 400, "Marker k1 could not be found.")
	// Before 2.35 there is no paging: everything, no links.
	body := kpWant(t, "2.34", e.call(t, "bob", "2.34", "GET", "/os-keypairs?limit=1", nil), 200)
	if names := kpListNames(t, body); len(names) != 5 || body["keypairs_links"] != nil {
		t.Fatalf("2.34 list: %v", body)
	}
}

// Nova counts key pairs per user: over the limit a create is a 403 with
// the quota message; a delete frees one.
func TestKeypairQuotaExceeded(t *testing.T) {
	e := newKpEnv(t)
	alice := e.ids["alice"]
	limit := fsm.DefaultQuotas["key_pairs"]
	for i := range limit - 1 {
		k := fsm.Keypair{Name: fmt.Sprintf("q%03d", i), UserID: alice, Type: "ssh", PublicKey: kpEd25519, Fingerprint: kpEd25519FP, CreatedAt: 1}
		apply(t, e.ac, &fsm.CreateKeypair{Keypair: k, ProjectID: e.project})
	}
	kpWant(t, "the last one", e.call(t, "alice", "2.2", "POST", "/os-keypairs", kpBody("name", "last", "public_key", kpRSA)), 201)
	before := e.hash(t)
	want := fmt.Sprintf("Quota exceeded for key_pairs: Requested 1, but already used %d of %d key_pairs", limit, limit)
	kpFault(t, "one too many", e.call(t, "alice", "2.2", "POST", "/os-keypairs", kpBody("name", "extra", "public_key", kpRSA)), 403, want)
	kpFault(t, "generated, one too many", e.call(t, "alice", "2.2", "POST", "/os-keypairs", kpBody("name", "extra")), 403, want)
	kpFault(t, "a taken name at the limit", e.call(t, "alice", "2.2", "POST", "/os-keypairs", kpBody("name", "last", "public_key", kpRSA)), 403, "Quota exceeded for key_pairs")
	if e.hash(t) != before {
		t.Fatal("refused creates changed the state")
	}
	kpWant(t, "bob is not alice", e.call(t, "bob", "2.2", "POST", "/os-keypairs", kpBody("name", "extra", "public_key", kpRSA)), 201)
	kpWant(t, "delete one", e.call(t, "alice", "2.2", "DELETE", "/os-keypairs/q007", nil), 204)
	kpWant(t, "room again", e.call(t, "alice", "2.2", "POST", "/os-keypairs", kpBody("name", "extra", "public_key", kpRSA)), 201)
}

// Concurrent creates of one name: the FSM lets exactly one through.
func TestKeypairConcurrentCreate(t *testing.T) {
	e := newKpEnv(t)
	const n = 8
	codes := make([]int, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			codes[i] = e.call(t, "alice", "2.2", "POST", "/os-keypairs", kpBody("name", "race", "public_key", kpEd25519)).Status
		}()
	}
	wg.Wait()
	slices.Sort(codes)
	if codes[0] != http.StatusCreated || codes[1] != http.StatusConflict || codes[n-1] != http.StatusConflict {
		t.Fatalf("statuses %v, want one 201 and the rest 409", codes)
	}
	used, err := fsm.UserUsage(e.ac.Nodes[0].State(), e.project, e.ids["alice"])
	if err != nil || used["key_pairs"] != 1 {
		t.Fatalf("key_pairs usage %v (%v), want 1", used["key_pairs"], err)
	}
}

// The name rules of Nova's schema, character by character.
func TestKeypairNameRules(t *testing.T) {
	for _, tc := range []struct {
		name      string
		ok, ok292 bool
	}{
		{"simple", true, true},
		{"with space_and-dash 09", true, true},
		{"a@b.c", false, true},
		{" lead", false, false},
		{"trail ", false, false},
		{"\u00a0nbsp", false, false},
		{"tab\tin", false, false},
		{"é", false, false},
		{"a/b", false, false},
		{"", false, false},
		{strings.Repeat("x", 255), true, true},
		{strings.Repeat("x", 256), false, false},
	} {
		for _, v := range []struct {
			mv   Microversion
			want bool
		}{{Microversion{2, 1}, tc.ok}, {Microversion{2, 91}, tc.ok}, {Microversion{2, 92}, tc.ok292}} {
			if err := keypairNameSchema(v.mv, tc.name); (err == nil) != v.want {
				t.Errorf("name %q at %s: %v, want ok=%v", tc.name, v.mv, err, v.want)
			}
		}
	}
	for _, tc := range []struct {
		v    any
		want string
	}{
		{"it's", `"it's"`}, {`a"b`, `'a"b'`}, {"a'b\"c", `'a\'b"c'`}, {"t\t\x00é\u200b", `'t\t\x00é\u200b'`},
		{map[string]any{"b": true, "a": nil}, "{'a': None, 'b': True}"}, {[]any{"x", false}, "['x', False]"},
	} {
		if got := pyRepr(tc.v); got != tc.want {
			t.Errorf("pyRepr(%#v) = %s, want %s", tc.v, got, tc.want)
		}
	}
}
