package fsm

// The Keystone v3 identity subset Keel serves: domains, projects, users,
// global roles, role assignments on projects and on the system, and the
// token keys and token revocations the token service needs. Appliers are in
// identity_apply.go, reads in identity_read.go.

// Identity command types. Persisted in the Raft log: append only, never
// renumber. 20–39 are reserved for identity.
const (
	CmdIdentityBootstrap     CommandType = 20
	CmdCreateProject         CommandType = 21
	CmdUpdateProject         CommandType = 22
	CmdDeleteProject         CommandType = 23
	CmdCreateUser            CommandType = 24
	CmdUpdateUser            CommandType = 25
	CmdDeleteUser            CommandType = 26
	CmdCreateRole            CommandType = 27
	CmdDeleteRole            CommandType = 28
	CmdGrantRole             CommandType = 29
	CmdRevokeRole            CommandType = 30
	CmdRotateTokenKeys       CommandType = 31
	CmdRevokeToken           CommandType = 32
	CmdPurgeTokenRevocations CommandType = 33
)

// Identity tables.
//
// Keys and secondary indexes (values are NUL-separated in the index key;
// ids never contain NUL or '/', names never contain NUL):
//
//	domain            <id>                    index "name" [name]
//	project           <id>                    index "name" [domain id, name] (also the by-domain index)
//	user              <id>                    index "name" [domain id, name] (also the by-domain index)
//	                                          index "default_project" [default project id] (set ones only)
//	role              <id>                    index "name" [name]
//	role_assignment   <user>/project/<project>/<role>
//	                  <user>/system/<role>    index "project" [project id]  (project assignments)
//	                                          index "system"  [role id]     (system assignments)
//	                                          index "role"    [role id]     (all assignments)
//	token_key         <id>
//	token_revocation  <audit id>              index "expires" [expires at, 20 zero-padded digits]
//
// So "roles of user U on project P" is the key prefix "U/project/P/", "roles
// of U on the system" the prefix "U/system/", "all assignments of U" the
// prefix "U/", "all assignments on P" the project index and "all assignments
// of role R" the role index.
const (
	// TableDomain holds Domain records by id.
	TableDomain = "domain"
	// TableProject holds Project records by id.
	TableProject = "project"
	// TableUser holds User records by id.
	TableUser = "user"
	// TableRole holds Role records by id.
	TableRole = "role"
	// TableRoleAssignment holds RoleAssignment records (see the key layout above).
	TableRoleAssignment = "role_assignment"
	// TableTokenKey holds TokenKey records by id.
	TableTokenKey = "token_key"
	// TableTokenRevocation holds TokenRevocation records by audit id.
	TableTokenRevocation = "token_revocation"
)

// Index names of the identity tables.
const (
	identIdxName           = "name"
	identIdxDefaultProject = "default_project"
	identIdxProject        = "project"
	identIdxSystem         = "system"
	identIdxRole           = "role"
	identIdxExpires        = "expires"
)

// Built-in role names: IdentityBootstrap must create them and DeleteRole
// refuses to delete them.
const (
	RoleAdmin  = "admin"
	RoleMember = "member"
	RoleReader = "reader"
)

// Domain is a Keystone domain: a namespace for projects and users.
type Domain struct {
	ID          string `json:"id"`
	Name        string `json:"name"` // unique, case-sensitive
	Description string `json:"description"`
	Enabled     bool   `json:"enabled"`
}

// Project is a Keystone project (a tenant): what resources belong to and
// what project-scoped tokens are scoped to.
type Project struct {
	ID          string   `json:"id"`
	Name        string   `json:"name"` // unique within the domain, case-sensitive
	DomainID    string   `json:"domain_id"`
	Description string   `json:"description"`
	Enabled     bool     `json:"enabled"`
	Tags        []string `json:"tags"`
}

// User is a Keystone user with a local password.
type User struct {
	ID               string `json:"id"`
	Name             string `json:"name"` // unique within the domain, case-sensitive
	DomainID         string `json:"domain_id"`
	DefaultProjectID string `json:"default_project_id"` // "" or an existing project
	Description      string `json:"description"`
	Email            string `json:"email"`
	// PasswordHash is the encoded password hash (the API layer hashes and
	// verifies); "" means the user cannot authenticate with a password.
	PasswordHash string `json:"password_hash"`
	Enabled      bool   `json:"enabled"`
	// CreatedAt is the creation time in unix seconds.
	CreatedAt int64 `json:"created_at"`
	// TokensValidAfter is an instant in unix microseconds: tokens issued to
	// this user before it are invalid. UpdateUser sets it when the password
	// changes and when the user is disabled.
	TokensValidAfter int64 `json:"tokens_valid_after"`
}

// Role is a global Keystone role (domain-specific roles are not supported).
type Role struct {
	ID          string `json:"id"`
	Name        string `json:"name"` // unique, case-sensitive
	Description string `json:"description"`
}

// RoleAssignment grants a role to a user on exactly one target: a project
// (ProjectID set) or the system (System true).
type RoleAssignment struct {
	UserID    string `json:"user_id"`
	RoleID    string `json:"role_id"`
	ProjectID string `json:"project_id"`
	System    bool   `json:"system"`
}

// TokenKey is a token signing/encryption key. Exactly one key is primary
// (RetiredAt 0) once identity is bootstrapped: new tokens use it; retired
// keys still validate tokens issued before their retirement.
type TokenKey struct {
	ID     string `json:"id"`
	Secret []byte `json:"secret"` // at least 32 bytes
	// CreatedAt is the creation time in unix seconds.
	CreatedAt int64 `json:"created_at"`
	// RetiredAt is the unix time (seconds) at which the key stopped being
	// primary, 0 while it is primary.
	RetiredAt int64 `json:"retired_at"`
}

// TokenRevocation revokes the tokens carrying AuditID. It is kept until the
// revoked token would have expired anyway.
type TokenRevocation struct {
	AuditID string `json:"audit_id"`
	// ExpiresAt is the revoked token's expiry, unix seconds.
	ExpiresAt int64 `json:"expires_at"`
	// RevokedAt is the revocation time, unix seconds.
	RevokedAt int64 `json:"revoked_at"`
}

// IdentityBootstrap creates the first domain, the admin project and user,
// the roles (which must include admin, member and reader), assigns admin to
// the admin user on the admin project and on the system, and stores the first
// (primary) token key. It is refused once any domain exists. Now (unix
// seconds) fills AdminUser.CreatedAt and TokenKey.CreatedAt when they are 0.
// No response value.
type IdentityBootstrap struct {
	Domain       Domain   `json:"domain"`
	AdminProject Project  `json:"admin_project"`
	AdminUser    User     `json:"admin_user"`
	Roles        []Role   `json:"roles"`
	TokenKey     TokenKey `json:"token_key"`
	Now          int64    `json:"now"`
}

func (*IdentityBootstrap) CommandType() CommandType { return CmdIdentityBootstrap }
func (*IdentityBootstrap) CommandVersion() uint8    { return 1 }

// CreateProject creates a project in an existing domain. Response: the
// stored Project.
type CreateProject struct {
	Project Project `json:"project"`
}

func (*CreateProject) CommandType() CommandType { return CmdCreateProject }
func (*CreateProject) CommandVersion() uint8    { return 1 }

// UpdateProject changes the fields that are set (non-nil). To clear the
// tags, set Tags to a pointer to an empty non-nil slice (&[]string{}): a
// pointer to a nil slice encodes as no pointer at all. Response: the stored
// Project.
type UpdateProject struct {
	ID          string    `json:"id"`
	Name        *string   `json:"name,omitempty"`
	Description *string   `json:"description,omitempty"`
	Enabled     *bool     `json:"enabled,omitempty"`
	Tags        *[]string `json:"tags,omitempty"`
}

func (*UpdateProject) CommandType() CommandType { return CmdUpdateProject }
func (*UpdateProject) CommandVersion() uint8    { return 1 }

// DeleteProject deletes a project, every role assignment on it, and clears
// it as the default project of the users that had it. No response value.
type DeleteProject struct {
	ID string `json:"id"`
}

func (*DeleteProject) CommandType() CommandType { return CmdDeleteProject }
func (*DeleteProject) CommandVersion() uint8    { return 1 }

// CreateUser creates a user in an existing domain. Response: the stored User.
type CreateUser struct {
	User User `json:"user"`
}

func (*CreateUser) CommandType() CommandType { return CmdCreateUser }
func (*CreateUser) CommandVersion() uint8    { return 1 }

// UpdateUser changes the fields that are set (non-nil); DefaultProjectID ""
// clears the default project. Setting PasswordHash, or disabling an enabled
// user, invalidates the user's existing tokens: TokensValidAfter becomes
// NowMicros (unix microseconds, required then; it never moves backwards).
// Response: the stored User.
type UpdateUser struct {
	ID               string  `json:"id"`
	Name             *string `json:"name,omitempty"`
	Description      *string `json:"description,omitempty"`
	Email            *string `json:"email,omitempty"`
	DefaultProjectID *string `json:"default_project_id,omitempty"`
	PasswordHash     *string `json:"password_hash,omitempty"`
	Enabled          *bool   `json:"enabled,omitempty"`
	NowMicros        int64   `json:"now_micros"`
}

func (*UpdateUser) CommandType() CommandType { return CmdUpdateUser }
func (*UpdateUser) CommandVersion() uint8    { return 1 }

// DeleteUser deletes a user and all its role assignments. No response value.
type DeleteUser struct {
	ID string `json:"id"`
}

func (*DeleteUser) CommandType() CommandType { return CmdDeleteUser }
func (*DeleteUser) CommandVersion() uint8    { return 1 }

// CreateRole creates a global role. Response: the stored Role.
type CreateRole struct {
	Role Role `json:"role"`
}

func (*CreateRole) CommandType() CommandType { return CmdCreateRole }
func (*CreateRole) CommandVersion() uint8    { return 1 }

// DeleteRole deletes a role and all its assignments. The built-in roles
// (admin, member, reader) cannot be deleted. No response value.
type DeleteRole struct {
	ID string `json:"id"`
}

func (*DeleteRole) CommandType() CommandType { return CmdDeleteRole }
func (*DeleteRole) CommandVersion() uint8    { return 1 }

// GrantRole assigns a role to a user on a project or on the system. Granting
// an existing assignment succeeds and changes nothing. No response value.
type GrantRole struct {
	Assignment RoleAssignment `json:"assignment"`
}

func (*GrantRole) CommandType() CommandType { return CmdGrantRole }
func (*GrantRole) CommandVersion() uint8    { return 1 }

// RevokeRole removes an existing role assignment. No response value.
type RevokeRole struct {
	Assignment RoleAssignment `json:"assignment"`
}

func (*RevokeRole) CommandType() CommandType { return CmdRevokeRole }
func (*RevokeRole) CommandVersion() uint8    { return 1 }

// RotateTokenKeys makes NewKey the primary token key, retires the previous
// primary at Now (unix seconds), and deletes the retired keys with
// RetiredAt+RetainSeconds < Now: no unexpired token can have been issued
// with them. RetainSeconds should be at least the longest token lifetime.
// NewKey.CreatedAt defaults to Now. No response value.
type RotateTokenKeys struct {
	NewKey        TokenKey `json:"new_key"`
	Now           int64    `json:"now"`
	RetainSeconds int64    `json:"retain_seconds"`
}

func (*RotateTokenKeys) CommandType() CommandType { return CmdRotateTokenKeys }
func (*RotateTokenKeys) CommandVersion() uint8    { return 1 }

// RevokeToken records a token revocation. Revoking an audit id again
// succeeds: a later ExpiresAt extends the stored one (keeping the first
// RevokedAt), anything else changes nothing. No response value.
type RevokeToken struct {
	Revocation TokenRevocation `json:"revocation"`
}

func (*RevokeToken) CommandType() CommandType { return CmdRevokeToken }
func (*RevokeToken) CommandVersion() uint8    { return 1 }

// PurgeTokenRevocations deletes the revocations with ExpiresAt < Now (unix
// seconds). Response: the number deleted (uint64).
type PurgeTokenRevocations struct {
	Now int64 `json:"now"`
}

func (*PurgeTokenRevocations) CommandType() CommandType { return CmdPurgeTokenRevocations }
func (*PurgeTokenRevocations) CommandVersion() uint8    { return 1 }

func init() {
	register("IdentityBootstrap", applyIdentityBootstrap)
	register("CreateProject", applyCreateProject)
	register("UpdateProject", applyUpdateProject)
	register("DeleteProject", applyDeleteProject)
	register("CreateUser", applyCreateUser)
	register("UpdateUser", applyUpdateUser)
	register("DeleteUser", applyDeleteUser)
	register("CreateRole", applyCreateRole)
	register("DeleteRole", applyDeleteRole)
	register("GrantRole", applyGrantRole)
	register("RevokeRole", applyRevokeRole)
	register("RotateTokenKeys", applyRotateTokenKeys)
	register("RevokeToken", applyRevokeToken)
	register("PurgeTokenRevocations", applyPurgeTokenRevocations)
}
