package api

import (
	"bytes"
	"crypto/cipher"
	"crypto/des"
	"crypto/hmac"
	"crypto/md5"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha1"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/base64"
	"encoding/hex"
	"encoding/pem"
	"fmt"
	"math/big"
	"regexp"
	"strings"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/keel-cloud/keel/fsm"
)

// Key pair crypto, as Nova's nova/crypto.py does it: fingerprints of
// imported keys (MD5 of the OpenSSH key blob; SHA-1 of the DER certificate
// for x509), and server-side generation (an RSA 2048 OpenSSH key pair, or a
// self-signed client certificate with its key as a PKCS#12 bundle).

// keypairRSABits is the size of generated RSA keys (Nova's).
const keypairRSABits = 2048

// keypairGenerated is a key pair made on the server.
type keypairGenerated struct {
	publicKey, privateKey, fingerprint string
}

// keypairInvalid is Nova's InvalidKeypair (a 400).
func keypairInvalid(reason string) *Error {
	return badRequest("Keypair data is invalid: %s", reason)
}

// keypairFingerprint validates an imported public key of type keyType and
// returns its fingerprint.
func keypairFingerprint(publicKey, keyType string) (string, error) {
	if keyType == fsm.KeypairTypeX509 {
		return keypairX509Fingerprint(publicKey)
	}
	return keypairSSHFingerprint(publicKey)
}

// keypairSSHLine is how an OpenSSH public key starts (cryptography's
// load_ssh_public_key): a key type, blanks, the base64 blob; a comment and
// anything else may follow.
var keypairSSHLine = regexp.MustCompile(`\A(\S+)[ \t]+(\S+)`)

// keypairSSHFingerprint parses an OpenSSH public key (RSA, DSA, ECDSA,
// Ed25519, security keys, certificates) and returns the MD5 of its blob,
// colon-separated hex.
func keypairSSHFingerprint(publicKey string) (string, error) {
	invalid := keypairInvalid("failed to generate fingerprint")
	m := keypairSSHLine.FindStringSubmatch(publicKey)
	if m == nil {
		return "", invalid
	}
	blob, err := keypairBase64(m[2])
	if err != nil {
		return "", invalid
	}
	key, err := ssh.ParsePublicKey(blob)
	if err != nil || key.Type() != m[1] {
		return "", invalid
	}
	sum := md5.Sum(blob)
	return keypairColonHex(sum[:]), nil
}

// keypairBase64 decodes base64 as Python's b64decode does: characters
// outside the alphabet are skipped, the padding must be right.
func keypairBase64(s string) ([]byte, error) {
	clean := strings.Map(func(r rune) rune {
		if r >= 'A' && r <= 'Z' || r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '+' || r == '/' || r == '=' {
			return r
		}
		return -1
	}, s)
	return base64.StdEncoding.DecodeString(clean)
}

// keypairX509Fingerprint parses a PEM certificate and returns the SHA-1 of
// its DER encoding, colon-separated hex.
func keypairX509Fingerprint(certPEM string) (string, error) {
	fail := func(msg string) (string, error) {
		return "", keypairInvalid("failed to generate X509 fingerprint. Error message: " + msg)
	}
	rest, sawPEM := []byte(certPEM), false
	for {
		var block *pem.Block
		block, rest = pem.Decode(rest)
		if block == nil {
			break
		}
		sawPEM = true
		if block.Type != "CERTIFICATE" && block.Type != "X509 CERTIFICATE" {
			continue
		}
		cert, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			return fail(fmt.Sprintf("error parsing asn1 value: %v", err))
		}
		sum := sha1.Sum(cert.Raw)
		return keypairColonHex(sum[:]), nil
	}
	if sawPEM {
		return fail("Valid PEM but no BEGIN CERTIFICATE/END CERTIFICATE delimiters. Are you sure this is a certificate?")
	}
	return fail("Unable to load PEM file. See https://cryptography.io/en/latest/faq/#why-can-t-i-import-my-pem-file for more details. MalformedFraming")
}

func keypairColonHex(b []byte) string {
	h := hex.EncodeToString(b)
	parts := make([]string, 0, len(b))
	for i := 0; i+1 < len(h); i += 2 {
		parts = append(parts, h[i:i+2])
	}
	return strings.Join(parts, ":")
}

// keypairGenerate makes a key pair of keyType for userID.
func keypairGenerate(keyType, userID string, now time.Time) (*keypairGenerated, error) {
	if keyType == fsm.KeypairTypeX509 {
		return keypairGenerateX509(userID, now)
	}
	return keypairGenerateSSH()
}

// keypairGenerateSSH makes an RSA key: the public key as one OpenSSH line
// (with Nova's comment), the private key in OpenSSH's PEM format.
func keypairGenerateSSH() (*keypairGenerated, error) {
	key, err := rsa.GenerateKey(rand.Reader, keypairRSABits)
	if err != nil {
		return nil, fmt.Errorf("generate an RSA key: %w", err)
	}
	pub, err := ssh.NewPublicKey(&key.PublicKey)
	if err != nil {
		return nil, err
	}
	block, err := ssh.MarshalPrivateKey(key, "Generated-by-Nova")
	if err != nil {
		return nil, err
	}
	blob := pub.Marshal()
	sum := md5.Sum(blob)
	return &keypairGenerated{
		publicKey:   pub.Type() + " " + base64.StdEncoding.EncodeToString(blob) + " Generated-by-Nova",
		privateKey:  string(pem.EncodeToMemory(block)),
		fingerprint: keypairColonHex(sum[:]),
	}, nil
}

// OIDs of the client certificate and of PKCS#12.
var (
	kpOIDSubjectAltName       = asn1.ObjectIdentifier{2, 5, 29, 17}
	kpOIDUserPrincipalName    = asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 311, 20, 2, 3}
	kpOIDP12Data              = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 7, 1}
	kpOIDP12CertBag           = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 12, 10, 1, 3}
	kpOIDP12ShroudedKeyBag    = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 12, 10, 1, 2}
	kpOIDP12X509Certificate   = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 9, 22, 1}
	kpOIDP12LocalKeyID        = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 9, 21}
	kpOIDP12PBEWithSHA3KeyDES = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 12, 1, 3}
	kpOIDSHA1                 = asn1.ObjectIdentifier{1, 3, 14, 3, 2, 26}
)

// keypairGenerateX509 makes what Nova's generate_winrm_x509_cert makes: a
// self-signed RSA certificate for CN=<user> valid ten years, for client
// authentication, with the UPN <user>@localhost (WinRM certificate
// authentication); the private key is the certificate and key as a PKCS#12
// bundle with an empty password, base64-encoded.
func keypairGenerateX509(userID string, now time.Time) (*keypairGenerated, error) {
	key, err := rsa.GenerateKey(rand.Reader, keypairRSABits)
	if err != nil {
		return nil, fmt.Errorf("generate an RSA key: %w", err)
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return nil, err
	}
	san, err := keypairUPNExtension(userID + "@localhost")
	if err != nil {
		return nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber:    serial,
		Subject:         pkix.Name{CommonName: userID},
		NotBefore:       now.Add(-time.Minute).UTC(),
		NotAfter:        now.AddDate(0, 0, 3650).UTC(),
		KeyUsage:        x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment,
		ExtKeyUsage:     []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
		ExtraExtensions: []pkix.Extension{san},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, fmt.Errorf("self-sign the certificate: %w", err)
	}
	pfx, err := keypairPKCS12(der, key)
	if err != nil {
		return nil, err
	}
	sum := sha1.Sum(der)
	return &keypairGenerated{
		publicKey:   string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})),
		privateKey:  base64.StdEncoding.EncodeToString(pfx),
		fingerprint: keypairColonHex(sum[:]),
	}, nil
}

// keypairExplicit0 wraps DER in a [0] EXPLICIT tag.
func keypairExplicit0(inner []byte) asn1.RawValue {
	return asn1.RawValue{Class: asn1.ClassContextSpecific, Tag: 0, IsCompound: true, Bytes: inner}
}

// keypairUPNExtension is a subjectAltName holding one otherName: a
// Microsoft user principal name.
func keypairUPNExtension(upn string) (pkix.Extension, error) {
	value, err := asn1.MarshalWithParams(upn, "utf8")
	if err != nil {
		return pkix.Extension{}, err
	}
	oid, err := asn1.Marshal(kpOIDUserPrincipalName)
	if err != nil {
		return pkix.Extension{}, err
	}
	explicit, err := asn1.Marshal(keypairExplicit0(value))
	if err != nil {
		return pkix.Extension{}, err
	}
	// GeneralName otherName is [0] IMPLICIT OtherName.
	otherName := asn1.RawValue{Class: asn1.ClassContextSpecific, Tag: 0, IsCompound: true, Bytes: append(oid, explicit...)}
	ext, err := asn1.Marshal([]asn1.RawValue{otherName})
	if err != nil {
		return pkix.Extension{}, err
	}
	return pkix.Extension{Id: kpOIDSubjectAltName, Value: ext}, nil
}

// PKCS#12 (RFC 7292) structures, for encoding.
type (
	kpP12PFX struct {
		Version  int
		AuthSafe kpP12ContentInfo
		MacData  kpP12MacData
	}
	kpP12ContentInfo struct {
		ContentType asn1.ObjectIdentifier
		Content     asn1.RawValue // [0] EXPLICIT
	}
	kpP12MacData struct {
		Mac        kpP12DigestInfo
		MacSalt    []byte
		Iterations int
	}
	kpP12DigestInfo struct {
		Algorithm pkix.AlgorithmIdentifier
		Digest    []byte
	}
	kpP12SafeBag struct {
		ID         asn1.ObjectIdentifier
		Value      asn1.RawValue    // [0] EXPLICIT
		Attributes []kpP12Attribute `asn1:"set"`
	}
	kpP12Attribute struct {
		ID     asn1.ObjectIdentifier
		Values asn1.RawValue // SET
	}
	kpP12CertBag struct {
		ID   asn1.ObjectIdentifier
		Cert asn1.RawValue // [0] EXPLICIT OCTET STRING
	}
	kpP12EncryptedKey struct {
		Algorithm     pkix.AlgorithmIdentifier
		EncryptedData []byte
	}
	kpP12PBEParams struct {
		Salt       []byte
		Iterations int
	}
)

// keypairP12Iterations is OpenSSL's default iteration count.
const keypairP12Iterations = 2048

// keypairPKCS12 bundles a certificate and its key as `openssl pkcs12
// -export -password pass:` did: the key shrouded with
// pbeWithSHAAnd3-KeyTripleDES-CBC, the whole protected by an HMAC-SHA1 MAC,
// both keyed by the empty password.
func keypairPKCS12(certDER []byte, key *rsa.PrivateKey) ([]byte, error) {
	password := []byte{0, 0} // "" as a NUL-terminated BMPString
	keyID := sha1.Sum(certDER)
	idOctets, err := asn1.Marshal(keyID[:])
	if err != nil {
		return nil, err
	}
	attrs := []kpP12Attribute{{ID: kpOIDP12LocalKeyID, Values: asn1.RawValue{Class: asn1.ClassUniversal, Tag: asn1.TagSet, IsCompound: true, Bytes: idOctets}}}

	certOctets, err := asn1.Marshal(certDER)
	if err != nil {
		return nil, err
	}
	certBag, err := asn1.Marshal(kpP12CertBag{ID: kpOIDP12X509Certificate, Cert: keypairExplicit0(certOctets)})
	if err != nil {
		return nil, err
	}

	pkcs8, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, err
	}
	salt := make([]byte, 8)
	if _, err := rand.Read(salt); err != nil {
		return nil, err
	}
	block, err := des.NewTripleDESCipher(keypairP12KDF(1, password, salt, keypairP12Iterations, 24))
	if err != nil {
		return nil, err
	}
	pad := des.BlockSize - len(pkcs8)%des.BlockSize
	enc := append(bytes.Clone(pkcs8), bytes.Repeat([]byte{byte(pad)}, pad)...)
	cipher.NewCBCEncrypter(block, keypairP12KDF(2, password, salt, keypairP12Iterations, 8)).CryptBlocks(enc, enc)
	params, err := asn1.Marshal(kpP12PBEParams{Salt: salt, Iterations: keypairP12Iterations})
	if err != nil {
		return nil, err
	}
	keyBag, err := asn1.Marshal(kpP12EncryptedKey{
		Algorithm:     pkix.AlgorithmIdentifier{Algorithm: kpOIDP12PBEWithSHA3KeyDES, Parameters: asn1.RawValue{FullBytes: params}},
		EncryptedData: enc,
	})
	if err != nil {
		return nil, err
	}

	// Two SafeContents in plain data ContentInfos: the certificate's and
	// the (shrouded) key's.
	var authSafe []kpP12ContentInfo
	for _, bag := range []kpP12SafeBag{
		{ID: kpOIDP12CertBag, Value: keypairExplicit0(certBag), Attributes: attrs},
		{ID: kpOIDP12ShroudedKeyBag, Value: keypairExplicit0(keyBag), Attributes: attrs},
	} {
		contents, err := asn1.Marshal([]kpP12SafeBag{bag})
		if err != nil {
			return nil, err
		}
		octets, err := asn1.Marshal(contents)
		if err != nil {
			return nil, err
		}
		authSafe = append(authSafe, kpP12ContentInfo{ContentType: kpOIDP12Data, Content: keypairExplicit0(octets)})
	}
	authSafeDER, err := asn1.Marshal(authSafe)
	if err != nil {
		return nil, err
	}
	authSafeOctets, err := asn1.Marshal(authSafeDER)
	if err != nil {
		return nil, err
	}

	macSalt := make([]byte, 8)
	if _, err := rand.Read(macSalt); err != nil {
		return nil, err
	}
	mac := hmac.New(sha1.New, keypairP12KDF(3, password, macSalt, keypairP12Iterations, 20))
	mac.Write(authSafeDER)
	return asn1.Marshal(kpP12PFX{
		Version:  3,
		AuthSafe: kpP12ContentInfo{ContentType: kpOIDP12Data, Content: keypairExplicit0(authSafeOctets)},
		MacData: kpP12MacData{
			Mac:        kpP12DigestInfo{Algorithm: pkix.AlgorithmIdentifier{Algorithm: kpOIDSHA1, Parameters: asn1.NullRawValue}, Digest: mac.Sum(nil)},
			MacSalt:    macSalt,
			Iterations: keypairP12Iterations,
		},
	})
}

// keypairP12KDF is PKCS#12's key derivation (RFC 7292, appendix B.2) with
// SHA-1: id 1 derives keys, 2 IVs, 3 MAC keys.
func keypairP12KDF(id byte, password, salt []byte, iterations, size int) []byte {
	const v = 64                    // SHA-1's block size
	fill := func(b []byte) []byte { // b repeated to a multiple of v bytes
		if len(b) == 0 {
			return nil
		}
		out := make([]byte, v*((len(b)+v-1)/v))
		for i := range out {
			out[i] = b[i%len(b)]
		}
		return out
	}
	d := bytes.Repeat([]byte{id}, v)
	in := append(fill(salt), fill(password)...)
	var out []byte
	for len(out) < size {
		h := sha1.New()
		h.Write(d)
		h.Write(in)
		a := h.Sum(nil)
		for range iterations - 1 {
			s := sha1.Sum(a)
			a = s[:]
		}
		out = append(out, a...)
		if len(out) >= size {
			break
		}
		b := fill(a)
		for j := 0; j < len(in); j += v { // in_j = (in_j + b + 1) mod 2^(8v)
			carry := 1
			for k := v - 1; k >= 0; k-- {
				sum := int(in[j+k]) + int(b[k]) + carry
				in[j+k], carry = byte(sum), sum>>8
			}
		}
	}
	return out[:size]
}
