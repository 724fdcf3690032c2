package fsm

import (
	"fmt"
	"slices"
)

// Appliers of the identity commands. Each reads the state as it was before
// the command, validates everything, and only then writes (a Txn does not
// read its own writes).

// --- storage helpers --------------------------------------------------------

// identLookup returns the primary key of the first entry of a (unique)
// index whose leading values are values, or "" when there is none.
func identLookup(r Reader, table, index string, values ...string) (string, error) {
	for _, v := range values {
		if !validKeyPart(v) {
			return "", nil
		}
	}
	var pk string
	err := r.ScanIndex(table, index, values, func(k string) bool { pk = k; return false })
	return pk, err
}

// identIndexKeys returns the primary keys of all entries of an index whose
// leading values are values. Callers read the records after the scan, never
// inside it: a State read holds a read lock for the length of the scan.
func identIndexKeys(r Reader, table, index string, values ...string) ([]string, error) {
	for _, v := range values {
		if !validKeyPart(v) {
			return nil, nil
		}
	}
	var pks []string
	err := r.ScanIndex(table, index, values, func(k string) bool { pks = append(pks, k); return true })
	return pks, err
}

// identExists reports whether table/key exists.
func identExists(r Reader, table, key string) (bool, error) {
	if !validKeyPart(key) {
		return false, nil
	}
	_, ok, err := r.Get(table, key)
	return ok, err
}

// identGetMeta is Get[T] with the caller's not-found message.
func identGetMeta[T any](r Reader, table, key, what string) (*T, Meta, error) {
	if !validKeyPart(key) {
		return nil, Meta{}, Errorf(KindNotFound, "%s %s not found", what, identShow(key))
	}
	v, meta, err := Get[T](r, table, key)
	if err != nil {
		if e, ok := AsError(err); ok && e.Kind == KindNotFound {
			return nil, Meta{}, Errorf(KindNotFound, "%s %s not found", what, identShow(key))
		}
		return nil, Meta{}, err
	}
	return v, meta, nil
}

// identGet is identGetMeta without the Meta.
func identGet[T any](r Reader, table, key, what string) (*T, error) {
	v, _, err := identGetMeta[T](r, table, key, what)
	return v, err
}

func identRequire(r Reader, table, key, what string) error {
	ok, err := identExists(r, table, key)
	if err != nil {
		return err
	}
	if !ok {
		return Errorf(KindNotFound, "%s %s not found", what, identShow(key))
	}
	return nil
}

// identAssignmentKey is the primary key of an assignment:
// <user>/project/<project>/<role> or <user>/system/<role>.
func identAssignmentKey(a *RoleAssignment) string {
	if a.System {
		return a.UserID + "/system/" + a.RoleID
	}
	return a.UserID + "/project/" + a.ProjectID + "/" + a.RoleID
}

func identPutAssignment(tx *Txn, a *RoleAssignment) error {
	pk := identAssignmentKey(a)
	if err := tx.Put(TableRoleAssignment, pk, a); err != nil {
		return err
	}
	if err := tx.PutIndex(TableRoleAssignment, identIdxRole, pk, a.RoleID); err != nil {
		return err
	}
	if a.System {
		return tx.PutIndex(TableRoleAssignment, identIdxSystem, pk, a.RoleID)
	}
	return tx.PutIndex(TableRoleAssignment, identIdxProject, pk, a.ProjectID)
}

func identDeleteAssignment(tx *Txn, a *RoleAssignment) error {
	pk := identAssignmentKey(a)
	if err := tx.Delete(TableRoleAssignment, pk); err != nil {
		return err
	}
	if err := tx.DeleteIndex(TableRoleAssignment, identIdxRole, pk, a.RoleID); err != nil {
		return err
	}
	if a.System {
		return tx.DeleteIndex(TableRoleAssignment, identIdxSystem, pk, a.RoleID)
	}
	return tx.DeleteIndex(TableRoleAssignment, identIdxProject, pk, a.ProjectID)
}

func identDeleteAssignments(tx *Txn, as []RoleAssignment) error {
	for i := range as {
		if err := identDeleteAssignment(tx, &as[i]); err != nil {
			return err
		}
	}
	return nil
}

// identPutProject stores p and its index entries, replacing those of old
// (nil for a new project).
func identPutProject(tx *Txn, old, p *Project) error {
	if old != nil && (old.DomainID != p.DomainID || old.Name != p.Name) {
		if err := tx.DeleteIndex(TableProject, identIdxName, old.ID, old.DomainID, old.Name); err != nil {
			return err
		}
	}
	if err := tx.PutIndex(TableProject, identIdxName, p.ID, p.DomainID, p.Name); err != nil {
		return err
	}
	return tx.Put(TableProject, p.ID, p)
}

// identPutUser stores u and its index entries, replacing those of old (nil
// for a new user).
func identPutUser(tx *Txn, old, u *User) error {
	if old != nil && (old.DomainID != u.DomainID || old.Name != u.Name) {
		if err := tx.DeleteIndex(TableUser, identIdxName, old.ID, old.DomainID, old.Name); err != nil {
			return err
		}
	}
	if old != nil && old.DefaultProjectID != "" && old.DefaultProjectID != u.DefaultProjectID {
		if err := tx.DeleteIndex(TableUser, identIdxDefaultProject, old.ID, old.DefaultProjectID); err != nil {
			return err
		}
	}
	if err := tx.PutIndex(TableUser, identIdxName, u.ID, u.DomainID, u.Name); err != nil {
		return err
	}
	if u.DefaultProjectID != "" {
		if err := tx.PutIndex(TableUser, identIdxDefaultProject, u.ID, u.DefaultProjectID); err != nil {
			return err
		}
	}
	return tx.Put(TableUser, u.ID, u)
}

func identPutRole(tx *Txn, r *Role) error {
	if err := tx.PutIndex(TableRole, identIdxName, r.ID, r.Name); err != nil {
		return err
	}
	return tx.Put(TableRole, r.ID, r)
}

// identExpiryKey encodes a positive unix time so that index order is time
// order (int64 has at most 19 digits).
func identExpiryKey(t int64) string { return fmt.Sprintf("%020d", t) }

// identNormalizeTags stores no tags as nil, so "no tags" has one encoding.
func identNormalizeTags(tags []string) []string {
	if len(tags) == 0 {
		return nil
	}
	return slices.Clone(tags)
}

// --- bootstrap ----------------------------------------------------------------

func applyIdentityBootstrap(tx *Txn, c *IdentityBootstrap) (any, error) {
	// Asked first: to an operator who runs bootstrap twice, "already
	// bootstrapped" is the answer, whatever the second payload holds.
	if done, err := IdentityBootstrapped(tx); err != nil {
		return nil, err
	} else if done {
		return nil, Errorf(KindConflict, "identity is already bootstrapped")
	}
	if err := identCheckNow("now", c.Now); err != nil {
		return nil, err
	}
	d, p, u, k := c.Domain, c.AdminProject, c.AdminUser, c.TokenKey
	p.Tags = identNormalizeTags(p.Tags)
	if u.CreatedAt == 0 {
		u.CreatedAt = c.Now
	}
	if k.CreatedAt == 0 {
		k.CreatedAt = c.Now
	}
	if err := d.validate(); err != nil {
		return nil, err
	}
	if err := p.validate(); err != nil {
		return nil, err
	}
	if err := u.validate(); err != nil {
		return nil, err
	}
	if err := k.validateNew(); err != nil {
		return nil, err
	}
	if !d.Enabled || !p.Enabled || !u.Enabled {
		return nil, Errorf(KindInvalid, "the bootstrap domain, admin project and admin user must be enabled")
	}
	if p.DomainID != d.ID {
		return nil, Errorf(KindInvalid, "the admin project must be in the bootstrap domain %s, not %s", identShow(d.ID), identShow(p.DomainID))
	}
	if u.DomainID != d.ID {
		return nil, Errorf(KindInvalid, "the admin user must be in the bootstrap domain %s, not %s", identShow(d.ID), identShow(u.DomainID))
	}
	if u.DefaultProjectID != "" && u.DefaultProjectID != p.ID {
		return nil, Errorf(KindInvalid, "the admin user's default project must be the admin project %s or none, not %s", identShow(p.ID), identShow(u.DefaultProjectID))
	}
	ids, names := map[string]bool{}, map[string]string{}
	for i := range c.Roles {
		r := &c.Roles[i]
		if err := r.validate(); err != nil {
			return nil, err
		}
		if ids[r.ID] {
			return nil, Errorf(KindInvalid, "role id %s is given twice", identShow(r.ID))
		}
		if _, dup := names[r.Name]; dup {
			return nil, Errorf(KindInvalid, "role name %s is given twice", identShow(r.Name))
		}
		ids[r.ID], names[r.Name] = true, r.ID
	}
	for _, n := range []string{RoleAdmin, RoleMember, RoleReader} {
		if _, ok := names[n]; !ok {
			return nil, Errorf(KindInvalid, "bootstrap must create the built-in role %q", n)
		}
	}

	// Nothing can reference a domain before there is one, but roles, keys
	// and stray records may exist; the bootstrap must not overwrite them.
	for _, r := range c.Roles {
		if err := identRoleFree(tx, &r); err != nil {
			return nil, err
		}
	}
	for _, chk := range []struct{ table, key, what string }{
		{TableProject, p.ID, "project"},
		{TableUser, u.ID, "user"},
		{TableTokenKey, k.ID, "token key"},
	} {
		if ok, err := identExists(tx, chk.table, chk.key); err != nil {
			return nil, err
		} else if ok {
			return nil, Errorf(KindConflict, "%s %s already exists", chk.what, identShow(chk.key))
		}
	}
	if primary, err := identPrimaryKeys(tx); err != nil {
		return nil, err
	} else if len(primary) > 0 {
		return nil, Errorf(KindConflict, "a primary token key already exists")
	}

	if err := tx.PutIndex(TableDomain, identIdxName, d.ID, d.Name); err != nil {
		return nil, err
	}
	if err := tx.Put(TableDomain, d.ID, &d); err != nil {
		return nil, err
	}
	if err := identPutProject(tx, nil, &p); err != nil {
		return nil, err
	}
	if err := identPutUser(tx, nil, &u); err != nil {
		return nil, err
	}
	for i := range c.Roles {
		if err := identPutRole(tx, &c.Roles[i]); err != nil {
			return nil, err
		}
	}
	adminID := names[RoleAdmin]
	if err := identPutAssignment(tx, &RoleAssignment{UserID: u.ID, RoleID: adminID, ProjectID: p.ID}); err != nil {
		return nil, err
	}
	if err := identPutAssignment(tx, &RoleAssignment{UserID: u.ID, RoleID: adminID, System: true}); err != nil {
		return nil, err
	}
	return nil, tx.Put(TableTokenKey, k.ID, &k)
}

// --- projects -----------------------------------------------------------------

func applyCreateProject(tx *Txn, c *CreateProject) (any, error) {
	p := c.Project
	p.Tags = identNormalizeTags(p.Tags)
	if err := p.validate(); err != nil {
		return nil, err
	}
	if err := identRequire(tx, TableDomain, p.DomainID, "domain"); err != nil {
		return nil, err
	}
	if ok, err := identExists(tx, TableProject, p.ID); err != nil {
		return nil, err
	} else if ok {
		return nil, Errorf(KindConflict, "project %s already exists", identShow(p.ID))
	}
	if err := identProjectNameFree(tx, &p); err != nil {
		return nil, err
	}
	if err := identPutProject(tx, nil, &p); err != nil {
		return nil, err
	}
	return &p, nil
}

// identProjectNameFree refuses p's name if another project of its domain has it.
func identProjectNameFree(r Reader, p *Project) error {
	pk, err := identLookup(r, TableProject, identIdxName, p.DomainID, p.Name)
	if err != nil {
		return err
	}
	if pk != "" && pk != p.ID {
		return Errorf(KindConflict, "project name %s already exists in domain %s", identShow(p.Name), identShow(p.DomainID))
	}
	return nil
}

func applyUpdateProject(tx *Txn, c *UpdateProject) (any, error) {
	if err := identCheckID("project", c.ID); err != nil {
		return nil, err
	}
	old, err := identGet[Project](tx, TableProject, c.ID, "project")
	if err != nil {
		return nil, err
	}
	p := *old
	p.Tags = slices.Clone(old.Tags)
	if c.Name != nil {
		p.Name = *c.Name
	}
	if c.Description != nil {
		p.Description = *c.Description
	}
	if c.Enabled != nil {
		p.Enabled = *c.Enabled
	}
	if c.Tags != nil {
		p.Tags = identNormalizeTags(*c.Tags)
	}
	if err := p.validate(); err != nil {
		return nil, err
	}
	if p.Name != old.Name {
		if err := identProjectNameFree(tx, &p); err != nil {
			return nil, err
		}
	}
	if p.Name == old.Name && p.Description == old.Description && p.Enabled == old.Enabled && slices.Equal(p.Tags, old.Tags) {
		return old, nil // nothing to change: no write, no new modify index
	}
	if err := identPutProject(tx, old, &p); err != nil {
		return nil, err
	}
	return &p, nil
}

func applyDeleteProject(tx *Txn, c *DeleteProject) (any, error) {
	if err := identCheckID("project", c.ID); err != nil {
		return nil, err
	}
	p, err := identGet[Project](tx, TableProject, c.ID, "project")
	if err != nil {
		return nil, err
	}
	assignments, err := identReadIndexed[RoleAssignment](tx, TableRoleAssignment, identIdxProject, p.ID)
	if err != nil {
		return nil, err
	}
	userIDs, err := identIndexKeys(tx, TableUser, identIdxDefaultProject, p.ID)
	if err != nil {
		return nil, err
	}
	users := make([]*User, 0, len(userIDs))
	for _, id := range userIDs {
		u, err := identGet[User](tx, TableUser, id, "user")
		if err != nil {
			return nil, fmt.Errorf("fsm: the default project index of %s names user %s: %w", p.ID, id, err)
		}
		users = append(users, u)
	}

	if err := identDeleteAssignments(tx, assignments); err != nil {
		return nil, err
	}
	for _, old := range users {
		u := *old
		u.DefaultProjectID = ""
		if err := identPutUser(tx, old, &u); err != nil {
			return nil, err
		}
	}
	if err := tx.DeleteIndex(TableProject, identIdxName, p.ID, p.DomainID, p.Name); err != nil {
		return nil, err
	}
	return nil, tx.Delete(TableProject, p.ID)
}

// --- users ----------------------------------------------------------------------

// identUserNameFree refuses u's name if another user of its domain has it.
func identUserNameFree(r Reader, u *User) error {
	pk, err := identLookup(r, TableUser, identIdxName, u.DomainID, u.Name)
	if err != nil {
		return err
	}
	if pk != "" && pk != u.ID {
		return Errorf(KindConflict, "user name %s already exists in domain %s", identShow(u.Name), identShow(u.DomainID))
	}
	return nil
}

func applyCreateUser(tx *Txn, c *CreateUser) (any, error) {
	u := c.User
	if err := u.validate(); err != nil {
		return nil, err
	}
	if err := identRequire(tx, TableDomain, u.DomainID, "domain"); err != nil {
		return nil, err
	}
	if u.DefaultProjectID != "" {
		if err := identRequire(tx, TableProject, u.DefaultProjectID, "default project"); err != nil {
			return nil, err
		}
	}
	if ok, err := identExists(tx, TableUser, u.ID); err != nil {
		return nil, err
	} else if ok {
		return nil, Errorf(KindConflict, "user %s already exists", identShow(u.ID))
	}
	if err := identUserNameFree(tx, &u); err != nil {
		return nil, err
	}
	if err := identPutUser(tx, nil, &u); err != nil {
		return nil, err
	}
	return &u, nil
}

func applyUpdateUser(tx *Txn, c *UpdateUser) (any, error) {
	if err := identCheckID("user", c.ID); err != nil {
		return nil, err
	}
	old, err := identGet[User](tx, TableUser, c.ID, "user")
	if err != nil {
		return nil, err
	}
	u := *old
	if c.Name != nil {
		u.Name = *c.Name
	}
	if c.Description != nil {
		u.Description = *c.Description
	}
	if c.Email != nil {
		u.Email = *c.Email
	}
	if c.DefaultProjectID != nil {
		u.DefaultProjectID = *c.DefaultProjectID
	}
	if c.PasswordHash != nil {
		u.PasswordHash = *c.PasswordHash
	}
	if c.Enabled != nil {
		u.Enabled = *c.Enabled
	}
	if c.PasswordHash != nil || (old.Enabled && !u.Enabled) {
		// A password change or a disable ends every token issued so far.
		if err := identCheckNow("now_micros (needed to invalidate the user's tokens)", c.NowMicros); err != nil {
			return nil, err
		}
		u.TokensValidAfter = max(u.TokensValidAfter, c.NowMicros)
	}
	if err := u.validate(); err != nil {
		return nil, err
	}
	if u.DefaultProjectID != "" && u.DefaultProjectID != old.DefaultProjectID {
		if err := identRequire(tx, TableProject, u.DefaultProjectID, "default project"); err != nil {
			return nil, err
		}
	}
	if u.Name != old.Name {
		if err := identUserNameFree(tx, &u); err != nil {
			return nil, err
		}
	}
	if u == *old {
		return old, nil // nothing to change
	}
	if err := identPutUser(tx, old, &u); err != nil {
		return nil, err
	}
	return &u, nil
}

func applyDeleteUser(tx *Txn, c *DeleteUser) (any, error) {
	if err := identCheckID("user", c.ID); err != nil {
		return nil, err
	}
	u, err := identGet[User](tx, TableUser, c.ID, "user")
	if err != nil {
		return nil, err
	}
	assignments, err := identScanAssignments(tx, u.ID+"/")
	if err != nil {
		return nil, err
	}

	if err := identDeleteAssignments(tx, assignments); err != nil {
		return nil, err
	}
	if err := tx.DeleteIndex(TableUser, identIdxName, u.ID, u.DomainID, u.Name); err != nil {
		return nil, err
	}
	if u.DefaultProjectID != "" {
		if err := tx.DeleteIndex(TableUser, identIdxDefaultProject, u.ID, u.DefaultProjectID); err != nil {
			return nil, err
		}
	}
	return nil, tx.Delete(TableUser, u.ID)
}

// --- roles and assignments ----------------------------------------------------

// identRoleFree refuses r if its id or name is taken.
func identRoleFree(r Reader, role *Role) error {
	if ok, err := identExists(r, TableRole, role.ID); err != nil {
		return err
	} else if ok {
		return Errorf(KindConflict, "role %s already exists", identShow(role.ID))
	}
	if pk, err := identLookup(r, TableRole, identIdxName, role.Name); err != nil {
		return err
	} else if pk != "" {
		return Errorf(KindConflict, "role name %s already exists", identShow(role.Name))
	}
	return nil
}

func applyCreateRole(tx *Txn, c *CreateRole) (any, error) {
	r := c.Role
	if err := r.validate(); err != nil {
		return nil, err
	}
	if err := identRoleFree(tx, &r); err != nil {
		return nil, err
	}
	if err := identPutRole(tx, &r); err != nil {
		return nil, err
	}
	return &r, nil
}

func applyDeleteRole(tx *Txn, c *DeleteRole) (any, error) {
	if err := identCheckID("role", c.ID); err != nil {
		return nil, err
	}
	r, err := identGet[Role](tx, TableRole, c.ID, "role")
	if err != nil {
		return nil, err
	}
	switch r.Name {
	case RoleAdmin, RoleMember, RoleReader:
		return nil, Errorf(KindConflict, "role %s is built in and cannot be deleted", identShow(r.Name))
	}
	assignments, err := identReadIndexed[RoleAssignment](tx, TableRoleAssignment, identIdxRole, r.ID)
	if err != nil {
		return nil, err
	}

	if err := identDeleteAssignments(tx, assignments); err != nil {
		return nil, err
	}
	if err := tx.DeleteIndex(TableRole, identIdxName, r.ID, r.Name); err != nil {
		return nil, err
	}
	return nil, tx.Delete(TableRole, r.ID)
}

func applyGrantRole(tx *Txn, c *GrantRole) (any, error) {
	a := c.Assignment
	if err := a.validate(); err != nil {
		return nil, err
	}
	if err := identRequire(tx, TableUser, a.UserID, "user"); err != nil {
		return nil, err
	}
	if err := identRequire(tx, TableRole, a.RoleID, "role"); err != nil {
		return nil, err
	}
	if !a.System {
		if err := identRequire(tx, TableProject, a.ProjectID, "project"); err != nil {
			return nil, err
		}
	}
	if ok, err := identExists(tx, TableRoleAssignment, identAssignmentKey(&a)); err != nil {
		return nil, err
	} else if ok {
		return nil, nil // already granted: like Keystone's PUT, success without change
	}
	return nil, identPutAssignment(tx, &a)
}

func applyRevokeRole(tx *Txn, c *RevokeRole) (any, error) {
	a := c.Assignment
	if err := a.validate(); err != nil {
		return nil, err
	}
	if ok, err := identExists(tx, TableRoleAssignment, identAssignmentKey(&a)); err != nil {
		return nil, err
	} else if !ok {
		return nil, Errorf(KindNotFound, "user %s has no role %s on %s", identShow(a.UserID), identShow(a.RoleID), a.target())
	}
	return nil, identDeleteAssignment(tx, &a)
}

// --- token keys and revocations ---------------------------------------------

// identPrimaryKeys returns the keys with RetiredAt 0 (one once bootstrapped).
func identPrimaryKeys(r Reader) ([]TokenKey, error) {
	keys, err := identAllTokenKeys(r)
	if err != nil {
		return nil, err
	}
	return slices.DeleteFunc(keys, func(k TokenKey) bool { return k.RetiredAt != 0 }), nil
}

func applyRotateTokenKeys(tx *Txn, c *RotateTokenKeys) (any, error) {
	if err := identCheckNow("now", c.Now); err != nil {
		return nil, err
	}
	if c.RetainSeconds < 0 {
		return nil, Errorf(KindInvalid, "retain_seconds must not be negative, not %d", c.RetainSeconds)
	}
	k := c.NewKey
	if k.CreatedAt == 0 {
		k.CreatedAt = c.Now
	}
	if err := k.validateNew(); err != nil {
		return nil, err
	}
	keys, err := identAllTokenKeys(tx)
	if err != nil {
		return nil, err
	}
	hasPrimary := false
	for _, old := range keys {
		if old.ID == k.ID {
			return nil, Errorf(KindInvalid, "token key %s already exists; a new key needs a new id", identShow(k.ID))
		}
		hasPrimary = hasPrimary || old.RetiredAt == 0
	}
	if !hasPrimary {
		return nil, Errorf(KindConflict, "there is no primary token key to rotate: identity is not bootstrapped")
	}

	// Now-RetainSeconds cannot overflow: Now > 0 and RetainSeconds >= 0.
	expired := c.Now - c.RetainSeconds
	for _, old := range keys {
		switch {
		case old.RetiredAt == 0:
			old.RetiredAt = c.Now
			if err := tx.Put(TableTokenKey, old.ID, &old); err != nil {
				return nil, err
			}
		case old.RetiredAt < expired:
			if err := tx.Delete(TableTokenKey, old.ID); err != nil {
				return nil, err
			}
		}
	}
	return nil, tx.Put(TableTokenKey, k.ID, &k)
}

func applyRevokeToken(tx *Txn, c *RevokeToken) (any, error) {
	v := c.Revocation
	if err := v.validate(); err != nil {
		return nil, err
	}
	rec, ok, err := tx.Get(TableTokenRevocation, v.AuditID)
	if err != nil {
		return nil, err
	}
	if ok {
		var old TokenRevocation
		if err := rec.Decode(&old); err != nil {
			return nil, fmt.Errorf("fsm: decode %s/%s: %w", TableTokenRevocation, v.AuditID, err)
		}
		if old.ExpiresAt >= v.ExpiresAt {
			return nil, nil // already revoked for at least as long
		}
		// Keep the first revocation time; extend the expiry.
		if err := tx.DeleteIndex(TableTokenRevocation, identIdxExpires, old.AuditID, identExpiryKey(old.ExpiresAt)); err != nil {
			return nil, err
		}
		v.RevokedAt = old.RevokedAt
	}
	if err := tx.PutIndex(TableTokenRevocation, identIdxExpires, v.AuditID, identExpiryKey(v.ExpiresAt)); err != nil {
		return nil, err
	}
	return nil, tx.Put(TableTokenRevocation, v.AuditID, &v)
}

func applyPurgeTokenRevocations(tx *Txn, c *PurgeTokenRevocations) (any, error) {
	if err := identCheckNow("now", c.Now); err != nil {
		return nil, err
	}
	// The expiry index is in time order: read records until the first one
	// that has not expired. (Reading inside the scan is safe in a Txn.)
	var expired []TokenRevocation
	var rerr error
	err := tx.ScanIndex(TableTokenRevocation, identIdxExpires, nil, func(pk string) bool {
		var v *TokenRevocation
		if v, rerr = identGet[TokenRevocation](tx, TableTokenRevocation, pk, "token revocation"); rerr != nil {
			rerr = fmt.Errorf("fsm: the expiry index names revocation %s: %w", pk, rerr)
			return false
		}
		if v.ExpiresAt >= c.Now {
			return false
		}
		expired = append(expired, *v)
		return true
	})
	if err == nil {
		err = rerr
	}
	if err != nil {
		return nil, err
	}
	for _, v := range expired {
		if err := tx.DeleteIndex(TableTokenRevocation, identIdxExpires, v.AuditID, identExpiryKey(v.ExpiresAt)); err != nil {
			return nil, err
		}
		if err := tx.Delete(TableTokenRevocation, v.AuditID); err != nil {
			return nil, err
		}
	}
	return uint64(len(expired)), nil
}
