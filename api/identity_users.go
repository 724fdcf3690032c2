package api

import (
	"cmp"
	"errors"
	"net/http"
	"slices"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/keel-cloud/keel/fsm"
	"github.com/keel-cloud/keel/internal/ids"
)

// Keystone users with local passwords. Passwords are stored only as their
// hash and never appear in a response.

// userView renders a user as Keystone does.
func (s *Server) userView(c *Call, u *fsm.User) map[string]any {
	m := map[string]any{
		"id":                  u.ID,
		"name":                u.Name,
		"domain_id":           u.DomainID,
		"enabled":             u.Enabled,
		"description":         u.Description,
		"password_expires_at": nil,
		"options":             map[string]any{},
		"links":               s.identityLinks(c, "/users/"+u.ID),
	}
	if u.DefaultProjectID != "" {
		m["default_project_id"] = u.DefaultProjectID
		// Echoed under its v2-era name too, which clients that send it
		// (Tempest) read back.
		m["project_id"] = u.DefaultProjectID
	}
	if u.Email != "" {
		m["email"] = u.Email
	}
	return m
}

// bcryptMaxPassword is the longest password bcrypt hashes without
// truncating it.
const bcryptMaxPassword = 72

// checkNewPassword validates a password about to be hashed.
func checkNewPassword(field, pw string) error {
	switch {
	case pw == "":
		return badRequest("Invalid input for field '%s': the password must not be empty.", field)
	case len(pw) > bcryptMaxPassword:
		return badRequest("Invalid input for field '%s': the password is %d bytes long; at most %d are allowed.", field, len(pw), bcryptMaxPassword)
	}
	return nil
}

// listUsers is GET /v3/users: filters name, domain_id, enabled.
func (s *Server) listUsers(c *Call) error {
	q := c.R.URL.Query()
	enabled, err := identityQueryBool(q, "enabled")
	if err != nil {
		return err
	}
	st, err := s.readState(c)
	if err != nil {
		return err
	}
	us, err := fsm.ListUsers(st, q.Get("domain_id"))
	if err != nil {
		return err
	}
	out := []any{}
	for i := range us {
		u := &us[i]
		switch {
		case q.Has("name") && u.Name != q.Get("name"),
			q.Has("domain_id") && u.DomainID != q.Get("domain_id"),
			enabled != nil && u.Enabled != *enabled:
			continue
		}
		out = append(out, s.userView(c, u))
	}
	return s.identityList(c, "users", out)
}

// createUser is POST /v3/users. A user created without a password (none,
// or null) cannot authenticate until one is set.
func (s *Server) createUser(c *Call) error {
	f, err := decodeIdentityBody(c, "user")
	if err != nil {
		return err
	}
	// project_id is the v2-era name of default_project_id that clients
	// (Tempest among them) still send.
	f.only("name", "password", "domain_id", "enabled", "default_project_id", "project_id", "description", "email", "options")
	f.required("name")
	name, _ := f.name("name")
	password, _ := f.str("password", true)
	passwordGiven := f.has("password") && !f.isNull("password")
	domainID, domainSet := f.str("domain_id", false)
	enabled, enabledSet := f.boolean("enabled")
	defaultProject, _ := f.str("default_project_id", true)
	if legacy, set := f.str("project_id", true); set && defaultProject == "" {
		defaultProject = legacy
	}
	description, _ := f.str("description", true)
	email, _ := f.str("email", true)
	f.noOptions()
	if err := f.done(); err != nil {
		return err
	}
	if passwordGiven {
		if err := checkNewPassword("password", password); err != nil {
			return err
		}
	}
	if !domainSet {
		domainID = "default"
	}
	if !enabledSet {
		enabled = true
	}
	st, err := s.readState(c)
	if err != nil {
		return err
	}
	if _, _, err := fsm.GetDomain(st, domainID); err != nil {
		return identityMissing(err, "domain", domainID)
	}
	if defaultProject != "" {
		if _, _, err := fsm.GetProject(st, defaultProject); err != nil {
			return identityMissing(err, "project", defaultProject)
		}
	}
	u := fsm.User{
		ID: ids.Hex(), Name: name, DomainID: domainID, DefaultProjectID: defaultProject,
		Description: description, Email: email, Enabled: enabled, CreatedAt: time.Now().Unix(),
	}
	if passwordGiven {
		if u.PasswordHash, err = HashPassword(password); err != nil {
			return err
		}
	}
	var rec fsm.User
	if err := s.apply(c.Context(), &fsm.CreateUser{User: u}, &rec); err != nil {
		return err
	}
	return c.JSON(http.StatusCreated, map[string]any{"user": s.userView(c, &rec)})
}

// getUser is GET /v3/users/{user_id}: the user itself or an admin.
func (s *Server) getUser(c *Call) error {
	id := c.Param("user_id")
	st, err := s.readState(c)
	if err != nil {
		return err
	}
	u, _, err := fsm.GetUser(st, id)
	if err != nil {
		return identityMissing(err, "user", id)
	}
	return c.JSON(http.StatusOK, map[string]any{"user": s.userView(c, u)})
}

// updateUser is PATCH /v3/users/{user_id}: name, password (null removes
// it), enabled, default_project_id (null or "" clears it), description,
// email. A new password or disabling the user ends its existing tokens.
func (s *Server) updateUser(c *Call) error {
	id := c.Param("user_id")
	f, err := decodeIdentityBody(c, "user")
	if err != nil {
		return err
	}
	f.only("name", "password", "enabled", "default_project_id", "project_id", "description", "email",
		"id", "domain_id", "options", "password_expires_at", "links")
	cmd := &fsm.UpdateUser{ID: id, NowMicros: time.Now().UnixMicro()}
	if v, set := f.name("name"); set {
		cmd.Name = &v
	}
	password, passwordSet := f.str("password", true)
	passwordNull := f.isNull("password")
	if v, set := f.boolean("enabled"); set {
		cmd.Enabled = &v
	}
	if v, set := f.str("default_project_id", true); set {
		cmd.DefaultProjectID = &v
	} else if v, set := f.str("project_id", true); set {
		cmd.DefaultProjectID = &v // the v2-era name
	}
	if v, set := f.str("description", true); set {
		cmd.Description = &v
	}
	if v, set := f.str("email", true); set {
		cmd.Email = &v
	}
	if v, set := f.str("password_expires_at", true); set && v != "" {
		f.fail("password_expires_at", "Keel's passwords do not expire; send null or leave it out.")
	}
	f.noOptions()
	if err := f.done(); err != nil {
		return err
	}
	if passwordSet && !passwordNull {
		if err := checkNewPassword("password", password); err != nil {
			return err
		}
	}
	st, err := s.readState(c)
	if err != nil {
		return err
	}
	old, _, err := fsm.GetUser(st, id)
	if err != nil {
		return identityMissing(err, "user", id)
	}
	f.sameAs("id", old.ID)
	f.sameAs("domain_id", old.DomainID)
	if err := f.done(); err != nil {
		return err
	}
	if p := cmd.DefaultProjectID; p != nil && *p != "" && *p != old.DefaultProjectID {
		if _, _, err := fsm.GetProject(st, *p); err != nil {
			return identityMissing(err, "project", *p)
		}
	}
	if passwordSet {
		hash := "" // null: the user can no longer authenticate with a password
		if !passwordNull {
			if hash, err = HashPassword(password); err != nil {
				return err
			}
		}
		cmd.PasswordHash = &hash
	}
	var u fsm.User
	if err := s.apply(c.Context(), cmd, &u); err != nil {
		return err
	}
	return c.JSON(http.StatusOK, map[string]any{"user": s.userView(c, &u)})
}

// deleteUser is DELETE /v3/users/{user_id}; its role assignments go with it.
func (s *Server) deleteUser(c *Call) error {
	id := c.Param("user_id")
	st, err := s.readState(c)
	if err != nil {
		return err
	}
	if _, _, err := fsm.GetUser(st, id); err != nil {
		return identityMissing(err, "user", id)
	}
	if err := s.apply(c.Context(), &fsm.DeleteUser{ID: id}, nil); err != nil {
		return identityMissing(err, "user", id)
	}
	return c.NoContent(http.StatusNoContent)
}

// changePassword is POST /v3/users/{user_id}/password: {"user":
// {"password", "original_password"}}. The original password must be the
// current one (401 otherwise, as in Keystone), also when an admin calls.
// Every token issued to the user before the change stops working.
func (s *Server) changePassword(c *Call) error {
	id := c.Param("user_id")
	f, err := decodeIdentityBody(c, "user")
	if err != nil {
		return err
	}
	f.only("password", "original_password")
	f.required("original_password")
	f.required("password")
	original, _ := f.str("original_password", false)
	password, _ := f.str("password", false)
	if err := f.done(); err != nil {
		return err
	}
	if err := checkNewPassword("password", password); err != nil {
		return err
	}
	st, err := s.readState(c)
	if err != nil {
		return err
	}
	u, _, err := fsm.GetUser(st, id)
	if err != nil {
		return identityMissing(err, "user", id)
	}
	if u.PasswordHash == "" || bcrypt.CompareHashAndPassword([]byte(u.PasswordHash), []byte(original)) != nil {
		c.Log.Info("password change refused: wrong original password", "user_id", id)
		return unauthorized("")
	}
	hash, err := HashPassword(password)
	if err != nil {
		return err
	}
	cmd := &fsm.UpdateUser{ID: id, PasswordHash: &hash, NowMicros: time.Now().UnixMicro()}
	if err := s.apply(c.Context(), cmd, nil); err != nil {
		return identityMissing(err, "user", id)
	}
	return c.NoContent(http.StatusNoContent)
}

// listUserProjects is GET /v3/users/{user_id}/projects: the projects the
// user has a role on (disabled ones included), filters name and enabled.
func (s *Server) listUserProjects(c *Call) error {
	id := c.Param("user_id")
	q := c.R.URL.Query()
	enabled, err := identityQueryBool(q, "enabled")
	if err != nil {
		return err
	}
	st, err := s.readState(c)
	if err != nil {
		return err
	}
	if _, _, err := fsm.GetUser(st, id); err != nil {
		return identityMissing(err, "user", id)
	}
	system := false
	as, err := fsm.ListAssignments(st, fsm.AssignmentFilter{UserID: id, System: &system})
	if err != nil {
		return err
	}
	var ps []*fsm.Project
	seen := map[string]bool{}
	for _, a := range as {
		if seen[a.ProjectID] {
			continue
		}
		seen[a.ProjectID] = true
		p, _, err := fsm.GetProject(st, a.ProjectID)
		if errors.Is(err, fsm.ErrNotFound) {
			continue // deleted since the scan
		}
		if err != nil {
			return err
		}
		if q.Has("name") && p.Name != q.Get("name") || enabled != nil && p.Enabled != *enabled {
			continue
		}
		ps = append(ps, p)
	}
	slices.SortFunc(ps, func(a, b *fsm.Project) int { return cmp.Or(cmp.Compare(a.Name, b.Name), cmp.Compare(a.ID, b.ID)) })
	out := make([]any, 0, len(ps))
	for _, p := range ps {
		out = append(out, s.projectView(c, p))
	}
	return s.identityList(c, "projects", out)
}
