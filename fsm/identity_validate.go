package fsm

import (
	"strconv"
	"strings"
	"unicode/utf8"
)

// Limits of identity fields. Ids are bytes; names and tags are characters
// (Keystone's column sizes); free text is bytes.
const (
	identMaxIDLen           = 64
	identMaxNameLen         = 255
	identMaxProjectNameLen  = 64
	identMaxDescriptionLen  = 65535
	identMaxEmailLen        = 255
	identMaxPasswordHashLen = 1024
	identMaxTags            = 80 // Keystone's limit per project
	identMaxTagLen          = 255
	identMinSecretLen       = 32
	identMaxSecretLen       = 4096
)

// identShow quotes s for an error message, cut short if it is long so that
// a 64 KiB value does not end up in an API error.
func identShow(s string) string {
	const limit = 80
	if len(s) <= limit {
		return strconv.Quote(s)
	}
	n := limit
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return strconv.Quote(s[:n]) + "..."
}

// identIDOK reports whether id is a well-formed identity id: 1 to 64 bytes
// without NUL or '/' (ids are key parts, and '/' separates them).
func identIDOK(id string) bool {
	return id != "" && len(id) <= identMaxIDLen && !strings.ContainsAny(id, "\x00/")
}

func identCheckID(what, id string) error {
	if !identIDOK(id) {
		return Errorf(KindInvalid, "invalid %s id %s: want 1 to %d bytes without NUL or '/'", what, identShow(id), identMaxIDLen)
	}
	return nil
}

func identNameOK(name string, max int) bool {
	return name != "" && utf8.ValidString(name) && utf8.RuneCountInString(name) <= max && !strings.ContainsRune(name, 0)
}

func identCheckName(what, name string, max int) error {
	if !identNameOK(name, max) {
		return Errorf(KindInvalid, "invalid %s name %s: want 1 to %d characters of UTF-8 without NUL", what, identShow(name), max)
	}
	return nil
}

// identCheckText checks a free-text field: valid UTF-8 of at most max bytes.
func identCheckText(field string, s string, max int) error {
	if len(s) > max {
		return Errorf(KindInvalid, "%s is %d bytes; at most %d are allowed", field, len(s), max)
	}
	if !utf8.ValidString(s) {
		return Errorf(KindInvalid, "%s is not valid UTF-8", field)
	}
	return nil
}

func (d *Domain) validate() error {
	if err := identCheckID("domain", d.ID); err != nil {
		return err
	}
	if err := identCheckName("domain", d.Name, identMaxNameLen); err != nil {
		return err
	}
	return identCheckText("description of domain "+identShow(d.ID), d.Description, identMaxDescriptionLen)
}

func (p *Project) validate() error {
	if err := identCheckID("project", p.ID); err != nil {
		return err
	}
	if err := identCheckName("project", p.Name, identMaxProjectNameLen); err != nil {
		return err
	}
	if err := identCheckID("domain", p.DomainID); err != nil {
		return err
	}
	if err := identCheckText("description of project "+identShow(p.ID), p.Description, identMaxDescriptionLen); err != nil {
		return err
	}
	return identCheckTags(p.Tags)
}

// identCheckTags applies Keystone's tag rules: at most 80 distinct tags of 1
// to 255 characters without '/', ',' or NUL.
func identCheckTags(tags []string) error {
	if len(tags) > identMaxTags {
		return Errorf(KindInvalid, "a project has at most %d tags, not %d", identMaxTags, len(tags))
	}
	seen := make(map[string]struct{}, len(tags))
	for _, t := range tags {
		if !identNameOK(t, identMaxTagLen) || strings.ContainsAny(t, "/,") {
			return Errorf(KindInvalid, "invalid project tag %s: want 1 to %d characters of UTF-8 without '/', ',' or NUL", identShow(t), identMaxTagLen)
		}
		if _, dup := seen[t]; dup {
			return Errorf(KindInvalid, "project tag %s is given twice", identShow(t))
		}
		seen[t] = struct{}{}
	}
	return nil
}

func (u *User) validate() error {
	if err := identCheckID("user", u.ID); err != nil {
		return err
	}
	if err := identCheckName("user", u.Name, identMaxNameLen); err != nil {
		return err
	}
	if err := identCheckID("domain", u.DomainID); err != nil {
		return err
	}
	if u.DefaultProjectID != "" {
		if err := identCheckID("default project", u.DefaultProjectID); err != nil {
			return err
		}
	}
	who := identShow(u.ID)
	if err := identCheckText("description of user "+who, u.Description, identMaxDescriptionLen); err != nil {
		return err
	}
	if err := identCheckText("email of user "+who, u.Email, identMaxEmailLen); err != nil {
		return err
	}
	if err := identCheckText("password hash of user "+who, u.PasswordHash, identMaxPasswordHashLen); err != nil {
		return err
	}
	if u.CreatedAt < 0 || u.TokensValidAfter < 0 {
		return Errorf(KindInvalid, "user %s has a negative time", who)
	}
	return nil
}

func (r *Role) validate() error {
	if err := identCheckID("role", r.ID); err != nil {
		return err
	}
	if err := identCheckName("role", r.Name, identMaxNameLen); err != nil {
		return err
	}
	return identCheckText("description of role "+identShow(r.ID), r.Description, identMaxDescriptionLen)
}

func (a *RoleAssignment) validate() error {
	if err := identCheckID("user", a.UserID); err != nil {
		return err
	}
	if err := identCheckID("role", a.RoleID); err != nil {
		return err
	}
	switch {
	case a.ProjectID != "" && a.System:
		return Errorf(KindInvalid, "a role assignment is on a project or on the system, not both")
	case a.ProjectID == "" && !a.System:
		return Errorf(KindInvalid, "a role assignment needs a target: a project id or system")
	case a.ProjectID != "":
		return identCheckID("project", a.ProjectID)
	}
	return nil
}

// target describes the assignment's target for messages.
func (a *RoleAssignment) target() string {
	if a.System {
		return "the system"
	}
	return "project " + identShow(a.ProjectID)
}

// validateNew checks a key that is about to become primary.
func (k *TokenKey) validateNew() error {
	if err := identCheckID("token key", k.ID); err != nil {
		return err
	}
	if len(k.Secret) < identMinSecretLen || len(k.Secret) > identMaxSecretLen {
		return Errorf(KindInvalid, "token key %s has a %d-byte secret; want %d to %d bytes", identShow(k.ID), len(k.Secret), identMinSecretLen, identMaxSecretLen)
	}
	if k.RetiredAt != 0 {
		return Errorf(KindInvalid, "new token key %s must not be retired (retired_at must be 0)", identShow(k.ID))
	}
	if k.CreatedAt < 0 {
		return Errorf(KindInvalid, "token key %s has a negative creation time", identShow(k.ID))
	}
	return nil
}

func (v *TokenRevocation) validate() error {
	if err := identCheckID("audit", v.AuditID); err != nil {
		return err
	}
	if v.ExpiresAt <= 0 || v.RevokedAt < 0 {
		return Errorf(KindInvalid, "revocation of %s: expires_at must be a positive unix time and revoked_at not negative", identShow(v.AuditID))
	}
	return nil
}

func identCheckNow(field string, now int64) error {
	if now <= 0 {
		return Errorf(KindInvalid, "%s must be a positive unix time, not %d", field, now)
	}
	return nil
}
