package fsm

import (
	"cmp"
	"fmt"
	"slices"
)

// Identity reads. They take a Reader, so they work on State (API reads) and
// on a Txn (inside Apply). Getters return a KindNotFound *Error when the
// record is missing; Get* also return the record's Meta (Raft create and
// modify indexes), like Get[T]. Lists are sorted deterministically: domains, projects,
// users and roles by name then id; assignments by key (user id, then that
// user's project assignments by project id and role id, then its system
// assignments by role id).
//
// On State, a list is several reads, not one snapshot: a record deleted
// between an index scan and its read is left out of the list.

// GetDomain returns the domain with id.
func GetDomain(r Reader, id string) (*Domain, Meta, error) {
	return identGetMeta[Domain](r, TableDomain, id, "domain")
}

// DomainByName returns the domain named name (case-sensitive).
func DomainByName(r Reader, name string) (*Domain, error) {
	id, err := identLookup(r, TableDomain, identIdxName, name)
	if err != nil {
		return nil, err
	}
	if id == "" {
		return nil, Errorf(KindNotFound, "domain named %s not found", identShow(name))
	}
	v, _, err := GetDomain(r, id)
	return v, err
}

// ListDomains returns every domain, by name.
func ListDomains(r Reader) ([]Domain, error) {
	out, err := identScanAll[Domain](r, TableDomain)
	slices.SortFunc(out, func(a, b Domain) int { return cmp.Or(cmp.Compare(a.Name, b.Name), cmp.Compare(a.ID, b.ID)) })
	return out, err
}

// GetProject returns the project with id.
func GetProject(r Reader, id string) (*Project, Meta, error) {
	return identGetMeta[Project](r, TableProject, id, "project")
}

// ProjectByName returns the project of domainID named name (case-sensitive).
func ProjectByName(r Reader, domainID, name string) (*Project, error) {
	id, err := identLookup(r, TableProject, identIdxName, domainID, name)
	if err != nil {
		return nil, err
	}
	if id == "" {
		return nil, Errorf(KindNotFound, "project named %s not found in domain %s", identShow(name), identShow(domainID))
	}
	v, _, err := GetProject(r, id)
	return v, err
}

// ListProjects returns the projects of domainID ("" for all domains), by
// name then id.
func ListProjects(r Reader, domainID string) ([]Project, error) {
	var out []Project
	var err error
	if domainID == "" {
		out, err = identScanAll[Project](r, TableProject)
	} else {
		out, err = identReadIndexed[Project](r, TableProject, identIdxName, domainID)
	}
	slices.SortFunc(out, func(a, b Project) int { return cmp.Or(cmp.Compare(a.Name, b.Name), cmp.Compare(a.ID, b.ID)) })
	return out, err
}

// GetUser returns the user with id.
func GetUser(r Reader, id string) (*User, Meta, error) {
	return identGetMeta[User](r, TableUser, id, "user")
}

// UserByName returns the user of domainID named name (case-sensitive).
func UserByName(r Reader, domainID, name string) (*User, error) {
	id, err := identLookup(r, TableUser, identIdxName, domainID, name)
	if err != nil {
		return nil, err
	}
	if id == "" {
		return nil, Errorf(KindNotFound, "user named %s not found in domain %s", identShow(name), identShow(domainID))
	}
	v, _, err := GetUser(r, id)
	return v, err
}

// ListUsers returns the users of domainID ("" for all domains), by name
// then id.
func ListUsers(r Reader, domainID string) ([]User, error) {
	var out []User
	var err error
	if domainID == "" {
		out, err = identScanAll[User](r, TableUser)
	} else {
		out, err = identReadIndexed[User](r, TableUser, identIdxName, domainID)
	}
	slices.SortFunc(out, func(a, b User) int { return cmp.Or(cmp.Compare(a.Name, b.Name), cmp.Compare(a.ID, b.ID)) })
	return out, err
}

// GetRole returns the role with id.
func GetRole(r Reader, id string) (*Role, Meta, error) {
	return identGetMeta[Role](r, TableRole, id, "role")
}

// RoleByName returns the role named name (case-sensitive).
func RoleByName(r Reader, name string) (*Role, error) {
	id, err := identLookup(r, TableRole, identIdxName, name)
	if err != nil {
		return nil, err
	}
	if id == "" {
		return nil, Errorf(KindNotFound, "role named %s not found", identShow(name))
	}
	v, _, err := GetRole(r, id)
	return v, err
}

// ListRoles returns every role, by name.
func ListRoles(r Reader) ([]Role, error) {
	out, err := identScanAll[Role](r, TableRole)
	identSortRoles(out)
	return out, err
}

func identSortRoles(rs []Role) {
	slices.SortFunc(rs, func(a, b Role) int { return cmp.Or(cmp.Compare(a.Name, b.Name), cmp.Compare(a.ID, b.ID)) })
}

// RolesOnProject returns the roles userID holds on projectID, by name.
func RolesOnProject(r Reader, userID, projectID string) ([]Role, error) {
	if !identIDOK(userID) || !identIDOK(projectID) {
		return nil, nil
	}
	return identRolesAt(r, userID+"/project/"+projectID+"/")
}

// SystemRoles returns the roles userID holds on the system, by name.
func SystemRoles(r Reader, userID string) ([]Role, error) {
	if !identIDOK(userID) {
		return nil, nil
	}
	return identRolesAt(r, userID+"/system/")
}

// identRolesAt returns the roles of the assignments under a key prefix.
func identRolesAt(r Reader, prefix string) ([]Role, error) {
	as, err := identScanAssignments(r, prefix)
	if err != nil {
		return nil, err
	}
	var out []Role
	for _, a := range as {
		rec, ok, err := r.Get(TableRole, a.RoleID)
		if err != nil {
			return nil, err
		}
		if !ok {
			continue // deleted since the scan (State reads only)
		}
		var role Role
		if err := rec.Decode(&role); err != nil {
			return nil, fmt.Errorf("fsm: decode %s/%s: %w", TableRole, a.RoleID, err)
		}
		out = append(out, role)
	}
	identSortRoles(out)
	return out, nil
}

// AssignmentFilter selects role assignments; the set fields combine with
// AND, and an empty filter selects every assignment.
type AssignmentFilter struct {
	UserID    string // "" = any user
	ProjectID string // "" = any project (or the system)
	RoleID    string // "" = any role
	System    *bool  // nil = any target; true = system only; false = projects only
}

func (f *AssignmentFilter) match(a *RoleAssignment) bool {
	return (f.UserID == "" || a.UserID == f.UserID) &&
		(f.ProjectID == "" || a.ProjectID == f.ProjectID) &&
		(f.RoleID == "" || a.RoleID == f.RoleID) &&
		(f.System == nil || a.System == *f.System)
}

// ListAssignments returns the role assignments that match f, sorted by key
// (user id, then project assignments by project id and role id, then system
// assignments by role id). It reads through the narrowest key prefix or
// index the filter allows.
func ListAssignments(r Reader, f AssignmentFilter) ([]RoleAssignment, error) {
	for _, id := range []string{f.UserID, f.ProjectID, f.RoleID} {
		if id != "" && !identIDOK(id) {
			return nil, nil // no assignment can have a malformed id
		}
	}
	system := f.System != nil && *f.System
	if system && f.ProjectID != "" {
		return nil, nil // a project assignment is never a system one
	}
	var candidates []RoleAssignment
	var err error
	switch {
	case f.UserID != "":
		prefix := f.UserID + "/"
		switch {
		case f.ProjectID != "":
			prefix += "project/" + f.ProjectID + "/"
		case system:
			prefix += "system/"
		case f.System != nil:
			prefix += "project/"
		}
		candidates, err = identScanAssignments(r, prefix)
	case f.ProjectID != "":
		candidates, err = identReadIndexed[RoleAssignment](r, TableRoleAssignment, identIdxProject, f.ProjectID)
	case system && f.RoleID != "":
		candidates, err = identReadIndexed[RoleAssignment](r, TableRoleAssignment, identIdxSystem, f.RoleID)
	case system:
		candidates, err = identReadIndexed[RoleAssignment](r, TableRoleAssignment, identIdxSystem)
	case f.RoleID != "":
		candidates, err = identReadIndexed[RoleAssignment](r, TableRoleAssignment, identIdxRole, f.RoleID)
	default:
		candidates, err = identScanAssignments(r, "")
	}
	if err != nil {
		return nil, err
	}
	out := slices.DeleteFunc(candidates, func(a RoleAssignment) bool { return !f.match(&a) })
	slices.SortFunc(out, func(a, b RoleAssignment) int {
		return cmp.Compare(identAssignmentKey(&a), identAssignmentKey(&b))
	})
	return out, nil
}

// ListTokenKeys returns the token keys: the primary first, then the retired
// ones, most recently retired first (ties by id).
func ListTokenKeys(r Reader) ([]TokenKey, error) {
	keys, err := identAllTokenKeys(r)
	if err != nil {
		return nil, err
	}
	slices.SortFunc(keys, func(a, b TokenKey) int {
		if (a.RetiredAt == 0) != (b.RetiredAt == 0) {
			if a.RetiredAt == 0 {
				return -1
			}
			return 1
		}
		return cmp.Or(cmp.Compare(b.RetiredAt, a.RetiredAt), cmp.Compare(a.ID, b.ID))
	})
	return keys, nil
}

// PrimaryTokenKey returns the key new tokens are issued with; KindNotFound
// before bootstrap.
func PrimaryTokenKey(r Reader) (*TokenKey, error) {
	keys, err := identPrimaryKeys(r)
	if err != nil {
		return nil, err
	}
	if len(keys) == 0 {
		return nil, Errorf(KindNotFound, "there is no primary token key: identity is not bootstrapped")
	}
	return &keys[0], nil
}

// TokenRevoked reports whether tokens with auditID are revoked.
func TokenRevoked(r Reader, auditID string) (bool, error) {
	return identExists(r, TableTokenRevocation, auditID)
}

// IdentityBootstrapped reports whether IdentityBootstrap has been applied
// (whether any domain exists).
func IdentityBootstrapped(r Reader) (bool, error) {
	found := false
	err := r.Scan(TableDomain, "", func(Record) bool { found = true; return false })
	return found, err
}

// identScanAll decodes every record of table, in key order.
func identScanAll[T any](r Reader, table string) ([]T, error) {
	var out []T
	var derr error
	err := r.Scan(table, "", func(rec Record) bool {
		var v T
		if derr = rec.Decode(&v); derr != nil {
			derr = fmt.Errorf("fsm: decode %s/%s: %w", table, rec.Key, derr)
			return false
		}
		out = append(out, v)
		return true
	})
	if err == nil {
		err = derr
	}
	if err != nil {
		return nil, err
	}
	return out, nil
}

// identReadIndexed reads the records an index lists under values, in index
// order, skipping any deleted between the scan and the read.
func identReadIndexed[T any](r Reader, table, index string, values ...string) ([]T, error) {
	pks, err := identIndexKeys(r, table, index, values...)
	if err != nil {
		return nil, err
	}
	out := make([]T, 0, len(pks))
	for _, pk := range pks {
		rec, ok, err := r.Get(table, pk)
		if err != nil {
			return nil, err
		}
		if !ok {
			continue
		}
		var v T
		if err := rec.Decode(&v); err != nil {
			return nil, fmt.Errorf("fsm: decode %s/%s: %w", table, pk, err)
		}
		out = append(out, v)
	}
	return out, nil
}

// identScanAssignments decodes the assignments whose key starts with prefix.
func identScanAssignments(r Reader, prefix string) ([]RoleAssignment, error) {
	var out []RoleAssignment
	var derr error
	err := r.Scan(TableRoleAssignment, prefix, func(rec Record) bool {
		var a RoleAssignment
		if derr = rec.Decode(&a); derr != nil {
			derr = fmt.Errorf("fsm: decode %s/%s: %w", TableRoleAssignment, rec.Key, derr)
			return false
		}
		out = append(out, a)
		return true
	})
	if err == nil {
		err = derr
	}
	if err != nil {
		return nil, err
	}
	return out, nil
}

// identAllTokenKeys returns every token key in id order.
func identAllTokenKeys(r Reader) ([]TokenKey, error) {
	return identScanAll[TokenKey](r, TableTokenKey)
}
