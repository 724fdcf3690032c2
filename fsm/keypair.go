package fsm

import (
	"fmt"
	"strings"
	"unicode/utf8"
)

// Key pairs (Nova's os-keypairs): public keys owned by a user, injected into
// servers at boot. Names are unique per user; Nova counts them against the
// key_pairs quota of the user (fsm.ChargeQuota keeps that usage).

// Key pair command types. Persisted in the Raft log: append only, never
// renumber. 60–69 are reserved for key pairs.
const (
	CmdCreateKeypair CommandType = 60
	CmdDeleteKeypair CommandType = 61
)

// TableKeypair holds Keypair records under "<user id>/<name>". Neither part
// contains '/' (CreateKeypair refuses it), so the key prefix "<user id>/"
// lists exactly one user's key pairs, in name order.
const TableKeypair = "keypair"

// keypairSequence is the sequence (in TableSequence) that numbers key pairs:
// Nova's integer key pair id.
const keypairSequence = "keypair"

// Key pair types.
const (
	KeypairTypeSSH  = "ssh"
	KeypairTypeX509 = "x509"
)

// Limits of key pair fields.
const (
	// KeypairMaxNameLen is the longest name, in characters (Nova's column).
	KeypairMaxNameLen = 255
	// keypairMaxUserIDLen is the longest owner id, in bytes.
	keypairMaxUserIDLen = 255
	// keypairMaxPublicKeyLen bounds the stored public key (the API body is
	// smaller still).
	keypairMaxPublicKeyLen = 128 << 10
	keypairMaxFingerprint  = 255
)

// Keypair is one user's public key.
type Keypair struct {
	// Name is unique per user: 1 to 255 of [a-zA-Z0-9 _-@.], not starting
	// or ending with a space (the API narrows it per microversion).
	Name string `json:"name"`
	// UserID owns the key pair.
	UserID string `json:"user_id"`
	// Type is "ssh" (PublicKey is an OpenSSH public key) or "x509"
	// (PublicKey is a PEM certificate).
	Type        string `json:"type"`
	PublicKey   string `json:"public_key"`
	Fingerprint string `json:"fingerprint"`
	// CreatedAt is the creation time in unix microseconds.
	CreatedAt int64 `json:"created_at"`
	// ID is Nova's integer id, allocated by CreateKeypair (1, 2, ...).
	ID int64 `json:"id"`
}

// CreateKeypair stores a new key pair and charges one key_pairs to its
// owner, checked against the owner's limits within ProjectID (the project
// of the request). The key pair's ID is allocated here (any ID given is
// ignored). Refused with KindQuota when the owner is at the limit, then
// KindConflict when the owner already has a key pair of that name (Nova
// checks the quota first). Response: the stored Keypair.
type CreateKeypair struct {
	Keypair   Keypair `json:"keypair"`
	ProjectID string  `json:"project_id"`
}

func (*CreateKeypair) CommandType() CommandType { return CmdCreateKeypair }
func (*CreateKeypair) CommandVersion() uint8    { return 1 }

// DeleteKeypair deletes the key pair UserID/Name and releases its key_pairs
// usage. KindNotFound if it does not exist. Response: the deleted Keypair.
type DeleteKeypair struct {
	UserID    string `json:"user_id"`
	Name      string `json:"name"`
	ProjectID string `json:"project_id"`
}

func (*DeleteKeypair) CommandType() CommandType { return CmdDeleteKeypair }
func (*DeleteKeypair) CommandVersion() uint8    { return 1 }

func init() {
	register("CreateKeypair", applyCreateKeypair)
	register("DeleteKeypair", applyDeleteKeypair)
}

// --- validation ---------------------------------------------------------------

// KeypairNameChar reports whether r may appear in a key pair name (the
// widest set: Nova's 2.92 one).
func KeypairNameChar(r rune) bool {
	return r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' ||
		r == ' ' || r == '_' || r == '-' || r == '@' || r == '.'
}

func keypairCheckName(name string) error {
	if name == "" || utf8.RuneCountInString(name) > KeypairMaxNameLen {
		return Errorf(KindInvalid, "invalid key pair name %s: want 1 to %d characters", identShow(name), KeypairMaxNameLen)
	}
	for _, r := range name {
		if !KeypairNameChar(r) {
			return Errorf(KindInvalid, "invalid key pair name %s: only letters, digits, spaces and _-@. are allowed", identShow(name))
		}
	}
	if name[0] == ' ' || name[len(name)-1] == ' ' {
		return Errorf(KindInvalid, "invalid key pair name %s: it cannot start or end with a space", identShow(name))
	}
	return nil
}

// keypairUserOK reports whether id can own key pairs: 1 to 255 bytes of
// UTF-8 without NUL or '/' (it is the first part of the key).
func keypairUserOK(id string) bool {
	return id != "" && len(id) <= keypairMaxUserIDLen && utf8.ValidString(id) && !strings.ContainsAny(id, "\x00/")
}

func keypairCheckUser(id string) error {
	if !keypairUserOK(id) {
		return Errorf(KindInvalid, "invalid key pair owner %s: want 1 to %d bytes without NUL or '/'", identShow(id), keypairMaxUserIDLen)
	}
	return nil
}

func (k *Keypair) validate() error {
	if err := keypairCheckName(k.Name); err != nil {
		return err
	}
	if err := keypairCheckUser(k.UserID); err != nil {
		return err
	}
	if k.Type != KeypairTypeSSH && k.Type != KeypairTypeX509 {
		return Errorf(KindInvalid, "invalid key pair type %s: want %q or %q", identShow(k.Type), KeypairTypeSSH, KeypairTypeX509)
	}
	if k.PublicKey == "" {
		return Errorf(KindInvalid, "key pair %s has no public key", identShow(k.Name))
	}
	if err := identCheckText("public key of key pair "+identShow(k.Name), k.PublicKey, keypairMaxPublicKeyLen); err != nil {
		return err
	}
	if k.Fingerprint == "" || len(k.Fingerprint) > keypairMaxFingerprint || !utf8.ValidString(k.Fingerprint) {
		return Errorf(KindInvalid, "key pair %s needs a fingerprint of 1 to %d bytes", identShow(k.Name), keypairMaxFingerprint)
	}
	if k.CreatedAt <= 0 {
		return Errorf(KindInvalid, "key pair %s needs a creation time (unix microseconds)", identShow(k.Name))
	}
	return nil
}

func keypairCheckProject(id string) error {
	if len(id) > identMaxIDLen || strings.ContainsAny(id, "\x00/") {
		return Errorf(KindInvalid, "invalid project id %s: want at most %d bytes without NUL or '/'", identShow(id), identMaxIDLen)
	}
	return nil
}

func keypairKey(userID, name string) string { return userID + "/" + name }

// --- appliers -------------------------------------------------------------------

func applyCreateKeypair(tx *Txn, c *CreateKeypair) (any, error) {
	k := c.Keypair
	if err := k.validate(); err != nil {
		return nil, err
	}
	if err := keypairCheckProject(c.ProjectID); err != nil {
		return nil, err
	}
	_, exists, err := tx.Get(TableKeypair, keypairKey(k.UserID, k.Name))
	if err != nil {
		return nil, err
	}
	// Nova checks the quota before it tries the insert: a user at the
	// limit hears about the quota even for a name already taken.
	over, err := keypairOverQuota(tx, c.ProjectID, k.UserID)
	if err != nil {
		return nil, err
	}
	if over {
		// ChargeQuota refuses with the quota message and writes nothing
		// (and a refused command writes nothing anyway).
		err := ChargeQuota(tx, c.ProjectID, k.UserID, map[string]int64{"key_pairs": 1})
		if err == nil {
			err = Errorf(KindQuota, "Quota exceeded for key_pairs")
		}
		return nil, err
	}
	if exists {
		return nil, Errorf(KindConflict, "Key pair '%s' already exists.", k.Name)
	}
	seq := &Sequence{}
	if rec, ok, err := tx.Get(TableSequence, keypairSequence); err != nil {
		return nil, err
	} else if ok {
		if err := rec.Decode(seq); err != nil {
			return nil, fmt.Errorf("fsm: decode sequence %s: %w", keypairSequence, err)
		}
	}
	seq.Value++
	k.ID = int64(seq.Value)

	// Everything is checked: write.
	if err := ChargeQuota(tx, c.ProjectID, k.UserID, map[string]int64{"key_pairs": 1}); err != nil {
		return nil, err
	}
	if err := tx.Put(TableSequence, keypairSequence, seq); err != nil {
		return nil, err
	}
	if err := tx.Put(TableKeypair, keypairKey(k.UserID, k.Name), &k); err != nil {
		return nil, err
	}
	return &k, nil
}

// keypairOverQuota reports whether one more key pair would exceed the
// user's key_pairs limit (the check ChargeQuota makes), without writing.
func keypairOverQuota(r Reader, project, user string) (bool, error) {
	limits, err := UserQuotas(r, project, user)
	if err != nil {
		return false, err
	}
	used, err := UserUsage(r, project, user)
	if err != nil {
		return false, err
	}
	limit := limits["key_pairs"]
	return limit >= 0 && used["key_pairs"]+1 > limit, nil
}

func applyDeleteKeypair(tx *Txn, c *DeleteKeypair) (any, error) {
	if err := keypairCheckProject(c.ProjectID); err != nil {
		return nil, err
	}
	k, _, err := GetKeypair(tx, c.UserID, c.Name)
	if err != nil {
		return nil, err
	}
	if err := ChargeQuota(tx, c.ProjectID, k.UserID, map[string]int64{"key_pairs": -1}); err != nil {
		return nil, err
	}
	if err := tx.Delete(TableKeypair, keypairKey(k.UserID, k.Name)); err != nil {
		return nil, err
	}
	return k, nil
}

// --- reads ----------------------------------------------------------------------

// keypairNotFound is Nova's KeypairNotFound.
func keypairNotFound(userID, name string) *Error {
	return Errorf(KindNotFound, "Keypair %s not found for user %s", name, userID)
}

// GetKeypair returns userID's key pair named name (case-sensitive), or
// Nova's "Keypair <name> not found for user <user>" (KindNotFound).
func GetKeypair(r Reader, userID, name string) (*Keypair, Meta, error) {
	if !keypairUserOK(userID) || keypairCheckName(name) != nil {
		return nil, Meta{}, keypairNotFound(userID, name)
	}
	rec, ok, err := r.Get(TableKeypair, keypairKey(userID, name))
	if err != nil {
		return nil, Meta{}, err
	}
	if !ok {
		return nil, Meta{}, keypairNotFound(userID, name)
	}
	k := new(Keypair)
	if err := rec.Decode(k); err != nil {
		return nil, Meta{}, fmt.Errorf("fsm: decode %s/%s: %w", TableKeypair, rec.Key, err)
	}
	return k, rec.Meta, nil
}

// ListKeypairs returns userID's key pairs in name order: those after the
// one named marker when marker is not "" (it must exist, or the error is
// Nova's "Marker <m> could not be found.", KindInvalid), at most limit of
// them when limit >= 0.
func ListKeypairs(r Reader, userID, marker string, limit int) ([]Keypair, error) {
	if marker != "" {
		if _, _, err := GetKeypair(r, userID, marker); err != nil {
			if e, ok := AsError(err); ok && e.Kind == KindNotFound {
				return nil, Errorf(KindInvalid, "Marker %s could not be found.", marker)
			}
			return nil, err
		}
	}
	out := []Keypair{}
	if !keypairUserOK(userID) || limit == 0 {
		return out, nil
	}
	var derr error
	err := r.Scan(TableKeypair, userID+"/", func(rec Record) bool {
		var k Keypair
		if derr = rec.Decode(&k); derr != nil {
			derr = fmt.Errorf("fsm: decode %s/%s: %w", TableKeypair, rec.Key, derr)
			return false
		}
		if marker != "" && k.Name <= marker {
			return true
		}
		out = append(out, k)
		return limit < 0 || len(out) < limit
	})
	if err == nil {
		err = derr
	}
	if err != nil {
		return nil, err
	}
	return out, nil
}
