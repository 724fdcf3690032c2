package api

import (
	"errors"
	"net/http"
	"slices"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/keel-cloud/keel/api/token"
	"github.com/keel-cloud/keel/fsm"
)

func (s *Server) registerIdentityTokens() {
	const p = "/identity/v3/auth"
	s.handle(Route{Method: "POST", Path: p + "/tokens", Service: ServiceIdentity, Policy: Public, Handle: s.issueToken})
	s.handle(Route{Method: "GET", Path: p + "/tokens", Service: ServiceIdentity, Policy: Authenticated, Handle: s.validateToken})
	s.handle(Route{Method: "HEAD", Path: p + "/tokens", Service: ServiceIdentity, Policy: Authenticated, Handle: s.validateToken})
	s.handle(Route{Method: "DELETE", Path: p + "/tokens", Service: ServiceIdentity, Policy: Authenticated, Handle: s.revokeToken})
	s.handle(Route{Method: "GET", Path: p + "/catalog", Service: ServiceIdentity, Policy: Authenticated, Handle: s.authCatalog})
	s.handle(Route{Method: "GET", Path: p + "/projects", Service: ServiceIdentity, Policy: Authenticated, Handle: s.authProjects})
}

// authRequest is the body of POST /v3/auth/tokens.
type authRequest struct {
	Auth struct {
		Identity struct {
			Methods  []string `json:"methods"`
			Password *struct {
				User struct {
					ID       string     `json:"id"`
					Name     string     `json:"name"`
					Domain   *domainRef `json:"domain"`
					Password string     `json:"password"`
				} `json:"user"`
			} `json:"password"`
			Token *struct {
				ID string `json:"id"`
			} `json:"token"`
		} `json:"identity"`
		Scope *struct {
			Project *struct {
				ID     string     `json:"id"`
				Name   string     `json:"name"`
				Domain *domainRef `json:"domain"`
			} `json:"project"`
			System *struct {
				All bool `json:"all"`
			} `json:"system"`
			Domain *domainRef `json:"domain"`
		} `json:"scope"`
	} `json:"auth"`
}

type domainRef struct {
	ID   string `json:"id"`
	Name string `json:"name"`
}

// resolveDomain finds the domain a reference names.
func resolveDomain(r fsm.Reader, ref *domainRef) (*fsm.Domain, error) {
	if ref == nil {
		return nil, badRequest("A domain (id or name) is required to find a user or project by name.")
	}
	if ref.ID != "" {
		d, _, err := fsm.GetDomain(r, ref.ID)
		return d, err
	}
	return fsm.DomainByName(r, ref.Name)
}

// errAuthFailed is the one answer to every failed authentication, so that
// it says nothing about which part was wrong.
var errAuthFailed = unauthorized("The request you have made requires authentication.")

// issueToken is POST /v3/auth/tokens: password or token method, project,
// system or no scope.
func (s *Server) issueToken(c *Call) error {
	var req authRequest
	if err := c.Decode(&req); err != nil {
		return err
	}
	id := req.Auth.Identity
	// Issue from up-to-date state: a user, project or role assignment made a
	// moment ago through another controller must be visible here.
	if err := s.node.Consistent(c.Context()); err != nil {
		return err
	}
	st := s.node.State()
	now := time.Now()
	claims := token.Claims{IssuedAt: now, ExpiresAt: now.Add(s.cfg.TokenTTL), AuditID: token.NewAuditID()}
	var user *fsm.User
	switch {
	case len(id.Methods) == 1 && id.Methods[0] == "password" && id.Password != nil:
		pu := id.Password.User
		var err error
		if pu.ID != "" {
			user, _, err = fsm.GetUser(st, pu.ID)
		} else if pu.Name != "" {
			var d *fsm.Domain
			if d, err = resolveDomain(st, pu.Domain); err == nil {
				user, err = fsm.UserByName(st, d.ID, pu.Name)
			}
		} else {
			return badRequest("Password authentication needs the user's id, or its name and domain.")
		}
		var apiErr *Error
		if errors.As(err, &apiErr) {
			return apiErr
		}
		if err != nil || !user.Enabled || bcrypt.CompareHashAndPassword([]byte(user.PasswordHash), []byte(pu.Password)) != nil {
			c.Log.Info("password authentication failed", "user_id", pu.ID, "user_name", pu.Name)
			return errAuthFailed
		}
		claims.Methods = []string{"password"}
	case len(id.Methods) == 1 && id.Methods[0] == "token" && id.Token != nil:
		prev, err := s.tokens.validate(c.Context(), id.Token.ID)
		if err != nil {
			c.Log.Info("token authentication failed", "reason", err.Error())
			return errAuthFailed
		}
		if user, _, err = fsm.GetUser(st, prev.UserID); err != nil {
			return errAuthFailed
		}
		// A token made from a token keeps the original's expiry and audit
		// chain (so revoking the original revokes it too).
		claims.Methods = prev.Claims.Methods
		if !slices.Contains(claims.Methods, "token") {
			claims.Methods = append(slices.Clip(claims.Methods), "token")
		}
		claims.ExpiresAt = prev.Claims.ExpiresAt
		claims.ParentAuditID = prev.Claims.AuditID
		if prev.Claims.ParentAuditID != "" {
			claims.ParentAuditID = prev.Claims.ParentAuditID
		}
	default:
		return badRequest("Supported authentication methods are \"password\" and \"token\", one at a time, with their section.")
	}
	claims.UserID = user.ID

	// Scope: as asked, else the user's default project, else unscoped.
	scope := req.Auth.Scope
	switch {
	case scope != nil && scope.Domain != nil:
		return errAuthFailed // domain-scoped tokens are not offered: no domain roles exist
	case scope != nil && scope.System != nil:
		if !scope.System.All {
			return badRequest("System scope must be {\"all\": true}.")
		}
		roles, err := fsm.SystemRoles(st, user.ID)
		if err != nil {
			return err
		}
		if len(roles) == 0 {
			return unauthorized("The user has no role on the system.")
		}
		claims.System = true
	case scope != nil && scope.Project != nil:
		sp := scope.Project
		var p *fsm.Project
		var err error
		if sp.ID != "" {
			p, _, err = fsm.GetProject(st, sp.ID)
		} else {
			var d *fsm.Domain
			if d, err = resolveDomain(st, sp.Domain); err == nil {
				p, err = fsm.ProjectByName(st, d.ID, sp.Name)
			}
		}
		if err != nil || !p.Enabled {
			return unauthorized("The project to scope to does not exist or is disabled.")
		}
		roles, err := fsm.RolesOnProject(st, user.ID, p.ID)
		if err != nil {
			return err
		}
		if len(roles) == 0 {
			return unauthorized("The user has no role on the project it asked to scope to.")
		}
		claims.ProjectID = p.ID
	case scope == nil && user.DefaultProjectID != "":
		if p, _, err := fsm.GetProject(st, user.DefaultProjectID); err == nil && p.Enabled {
			if roles, _ := fsm.RolesOnProject(st, user.ID, p.ID); len(roles) > 0 {
				claims.ProjectID = p.ID
			}
		}
	}

	key, err := s.tokens.signingKey()
	if err != nil {
		return err
	}
	tok, err := token.Sign(key, claims)
	if err != nil {
		return err
	}
	a, err := s.tokens.authFor(tok, claims)
	if err != nil {
		return errAuthFailed
	}
	c.W.Header().Set("X-Subject-Token", tok)
	return c.JSON(http.StatusCreated, map[string]any{"token": s.tokenBody(c, a, c.R.URL.Query().Has("nocatalog"))})
}

// tokenBody renders a validated token as Keystone does.
func (s *Server) tokenBody(c *Call, a *Auth, noCatalog bool) map[string]any {
	st := s.node.State()
	domain := func(id string) map[string]any {
		name := id
		if d, _, err := fsm.GetDomain(st, id); err == nil {
			name = d.Name
		}
		return map[string]any{"id": id, "name": name}
	}
	audit := []string{a.Claims.AuditID}
	if a.Claims.ParentAuditID != "" {
		audit = append(audit, a.Claims.ParentAuditID)
	}
	body := map[string]any{
		"methods":    a.Claims.Methods,
		"user":       map[string]any{"id": a.UserID, "name": a.UserName, "domain": domain(a.DomainID), "password_expires_at": nil},
		"audit_ids":  audit,
		"expires_at": keystoneTime(a.Claims.ExpiresAt),
		"issued_at":  keystoneTime(a.Claims.IssuedAt),
	}
	roles := make([]map[string]string, 0, len(a.Roles))
	for _, r := range a.Roles {
		roles = append(roles, map[string]string{"id": r.ID, "name": r.Name})
	}
	switch {
	case a.ProjectID != "":
		p, _, _ := fsm.GetProject(st, a.ProjectID)
		body["project"] = map[string]any{"id": p.ID, "name": p.Name, "domain": domain(p.DomainID)}
		body["is_domain"] = false
		body["roles"] = roles
	case a.System:
		body["system"] = map[string]any{"all": true}
		body["roles"] = roles
	}
	if !noCatalog && (a.ProjectID != "" || a.System) {
		body["catalog"] = s.catalog(c.R)
	}
	return body
}

// subject validates the X-Subject-Token of a token-management call. Callers
// may act on their own tokens; admins on any.
func (s *Server) subject(c *Call) (*Auth, error) {
	tok := c.R.Header.Get("X-Subject-Token")
	if tok == "" {
		return nil, badRequest("The X-Subject-Token header names the token to act on; it is missing.")
	}
	a, err := s.tokens.validate(c.Context(), tok)
	if err != nil {
		c.Log.Info("subject token rejected", "reason", err.Error())
		return nil, notFound("The token in X-Subject-Token is not valid: expired, revoked, or never issued.")
	}
	if a.UserID != c.Auth.UserID && !c.Auth.IsAdmin() {
		return nil, forbidden("Only an admin can act on another user's token.")
	}
	return a, nil
}

// validateToken is GET and HEAD /v3/auth/tokens.
func (s *Server) validateToken(c *Call) error {
	a, err := s.subject(c)
	if err != nil {
		return err
	}
	c.W.Header().Set("X-Subject-Token", a.Token)
	if c.R.Method == http.MethodHead {
		return c.NoContent(http.StatusOK)
	}
	return c.JSON(http.StatusOK, map[string]any{"token": s.tokenBody(c, a, c.R.URL.Query().Has("nocatalog"))})
}

// revokeToken is DELETE /v3/auth/tokens: the revocation is replicated, so
// the token fails on every controller.
func (s *Server) revokeToken(c *Call) error {
	a, err := s.subject(c)
	if err != nil {
		return err
	}
	_, err = s.node.Apply(c.Context(), &fsm.RevokeToken{Revocation: fsm.TokenRevocation{
		AuditID: a.Claims.AuditID, ExpiresAt: a.Claims.ExpiresAt.Unix(), RevokedAt: time.Now().Unix(),
	}})
	if err != nil {
		return err
	}
	return c.NoContent(http.StatusNoContent)
}

// authCatalog is GET /v3/auth/catalog.
func (s *Server) authCatalog(c *Call) error {
	if c.Auth.ProjectID == "" && !c.Auth.System {
		return forbidden("An unscoped token has no catalog; scope it to a project.")
	}
	return c.JSON(http.StatusOK, map[string]any{
		"catalog": s.catalog(c.R),
		"links":   map[string]any{"self": s.publicURL(c.R) + "/identity/v3/auth/catalog", "previous": nil, "next": nil},
	})
}

// authProjects is GET /v3/auth/projects: the projects the caller has a role on.
func (s *Server) authProjects(c *Call) error {
	st := s.node.State()
	as, err := fsm.ListAssignments(st, fsm.AssignmentFilter{UserID: c.Auth.UserID})
	if err != nil {
		return err
	}
	seen := map[string]bool{}
	projects := []any{}
	for _, asg := range as {
		if asg.ProjectID == "" || seen[asg.ProjectID] {
			continue
		}
		seen[asg.ProjectID] = true
		p, _, err := fsm.GetProject(st, asg.ProjectID)
		if err != nil || !p.Enabled {
			continue
		}
		projects = append(projects, s.projectView(c, p))
	}
	return c.JSON(http.StatusOK, map[string]any{
		"projects": projects,
		"links":    map[string]any{"self": s.publicURL(c.R) + "/identity/v3/auth/projects", "previous": nil, "next": nil},
	})
}
