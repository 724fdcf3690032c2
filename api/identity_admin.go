package api

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"

	"github.com/keel-cloud/keel/fsm"
)

// Keystone v3 administration: domains, projects, users, roles and role
// assignments. Handlers live in identity_domains.go, identity_projects.go,
// identity_users.go and identity_roles.go; this file registers the routes
// and holds what they share: linearizable reads, writes that the answering
// controller has applied, strict request-body fields, and links.
func (s *Server) registerIdentityAdmin() {
	const v3 = "/identity/v3"
	r := func(method, path string, policy Rule, h HandlerFunc) {
		s.handle(Route{Method: method, Path: v3 + path, Service: ServiceIdentity, Policy: policy, Handle: h})
	}

	r("GET", "/domains", Admin, s.listDomains)
	r("GET", "/domains/{domain_id}", Authenticated, s.getDomain) // handler: admin or a project of the domain

	r("GET", "/projects", Admin, s.listProjects)
	r("POST", "/projects", Admin, s.createProject)
	r("GET", "/projects/{project_id}", Authenticated, s.getProject) // admins, or a token scoped to it
	r("PATCH", "/projects/{project_id}", Admin, s.updateProject)
	r("DELETE", "/projects/{project_id}", Admin, s.deleteProject)

	r("GET", "/users", Admin, s.listUsers)
	r("POST", "/users", Admin, s.createUser)
	r("GET", "/users/{user_id}", SelfOrAdmin, s.getUser)
	r("PATCH", "/users/{user_id}", Admin, s.updateUser)
	r("DELETE", "/users/{user_id}", Admin, s.deleteUser)
	r("POST", "/users/{user_id}/password", SelfOrAdmin, s.changePassword)
	r("GET", "/users/{user_id}/projects", SelfOrAdmin, s.listUserProjects)

	r("GET", "/roles", Admin, s.listRoles)
	r("POST", "/roles", Admin, s.createRole)
	r("GET", "/roles/{role_id}", Admin, s.getRole)
	r("DELETE", "/roles/{role_id}", Admin, s.deleteRole)

	const onProject = "/projects/{project_id}/users/{user_id}/roles"
	r("GET", onProject, Admin, s.listProjectUserRoles)
	r("PUT", onProject+"/{role_id}", Admin, s.grantProjectRole)
	r("HEAD", onProject+"/{role_id}", Admin, s.checkProjectRole)
	r("GET", onProject+"/{role_id}", Admin, s.checkProjectRole)
	r("DELETE", onProject+"/{role_id}", Admin, s.revokeProjectRole)

	const onSystem = "/system/users/{user_id}/roles"
	r("GET", onSystem, Admin, s.listSystemUserRoles)
	r("PUT", onSystem+"/{role_id}", Admin, s.grantSystemRole)
	r("HEAD", onSystem+"/{role_id}", Admin, s.checkSystemRole)
	r("GET", onSystem+"/{role_id}", Admin, s.checkSystemRole)
	r("DELETE", onSystem+"/{role_id}", Admin, s.revokeSystemRole)

	r("GET", "/role_assignments", Admin, s.listRoleAssignments)
}

// identityNotFound is Keystone's 404: "Could not find project: <id>."
func identityNotFound(what, id string) *Error {
	return notFound("Could not find %s: %s.", what, id)
}

// identityMissing turns the state machine's not-found into Keystone's
// "Could not find <what>: <id>." and passes other errors on.
func identityMissing(err error, what, id string) error {
	if errors.Is(err, fsm.ErrNotFound) {
		return identityNotFound(what, id)
	}
	return err
}

// identityURL is the public URL of an identity v3 path ("/projects/x").
func (s *Server) identityURL(c *Call, path string) string {
	return s.publicURL(c.R) + "/identity/v3" + path
}

// identityLinks is the "links" member of one resource.
func (s *Server) identityLinks(c *Call, path string) map[string]any {
	return map[string]any{"self": s.identityURL(c, path)}
}

// identityList answers a collection: {"<key>": items, "links": {...}}. The
// self link is the request's URL, query included, as Keystone gives it.
func (s *Server) identityList(c *Call, key string, items []any) error {
	self := s.publicURL(c.R) + c.R.URL.EscapedPath()
	if q := c.R.URL.RawQuery; q != "" {
		self += "?" + q
	}
	if items == nil {
		items = []any{}
	}
	return c.JSON(http.StatusOK, map[string]any{
		key:     items,
		"links": map[string]any{"self": self, "previous": nil, "next": nil},
	})
}

// identityForbidden is Keystone's 403 for an action the caller's roles do
// not allow.
func identityForbidden(action string) *Error {
	return forbidden("You are not authorized to perform the requested action: identity:%s.", action)
}

// --- query parameters --------------------------------------------------------

// identityQueryBool reads a boolean filter (enabled=true). A missing
// parameter is nil; a value that is not a boolean is a 400.
func identityQueryBool(q url.Values, name string) (*bool, error) {
	if !q.Has(name) {
		return nil, nil
	}
	v, ok := parseIdentityBool(q.Get(name))
	if !ok {
		return nil, badRequest("Invalid value for query parameter '%s': %q is not a boolean (use true or false).", name, q.Get(name))
	}
	return &v, nil
}

// identityQueryFlag reads a flag such as include_names: present without a
// value, or with a true value, is true.
func identityQueryFlag(q url.Values, name string) (bool, error) {
	if !q.Has(name) || q.Get(name) == "" {
		return q.Has(name), nil
	}
	v, ok := parseIdentityBool(q.Get(name))
	if !ok {
		return false, badRequest("Invalid value for query parameter '%s': %q is not a boolean (use true or false).", name, q.Get(name))
	}
	return v, nil
}

func parseIdentityBool(s string) (bool, bool) {
	switch strings.ToLower(s) {
	case "1", "t", "true", "y", "yes", "on":
		return true, true
	case "0", "f", "false", "n", "no", "off":
		return false, true
	}
	return false, false
}

// --- request bodies ----------------------------------------------------------

// identityFields is the object of a Keystone request body, {"<entity>":
// {...}}, read field by field with strict types. The first problem found is
// kept in err (a 400 naming the field); the getters return zero values once
// there is one, so a handler reads every field and then checks err once.
type identityFields struct {
	entity string
	m      map[string]json.RawMessage
	err    *Error
}

// decodeIdentityBody reads the request body {"<entity>": {...}}.
func decodeIdentityBody(c *Call, entity string) (*identityFields, error) {
	var raw json.RawMessage
	if err := c.Decode(&raw); err != nil {
		return nil, err
	}
	var top map[string]json.RawMessage
	if identJSONKind(raw) != "object" || json.Unmarshal(raw, &top) != nil {
		return nil, badRequest("The request body must be a JSON object: {\"%s\": {...}}.", entity)
	}
	inner, ok := top[entity]
	if !ok || identJSONKind(inner) == "null" {
		return nil, badRequest("Expecting to find %s in request body.", entity)
	}
	if k := identJSONKind(inner); k != "object" {
		return nil, badRequest("Invalid input for field '%s': expected an object, got %s.", entity, identArticle(k))
	}
	f := &identityFields{entity: entity}
	if err := json.Unmarshal(inner, &f.m); err != nil {
		return nil, badRequest("Malformed request body: %v", err)
	}
	return f, nil
}

// identJSONKind names the JSON type of a raw value.
func identJSONKind(raw json.RawMessage) string {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 {
		return "nothing"
	}
	switch raw[0] {
	case '{':
		return "object"
	case '[':
		return "array"
	case '"':
		return "string"
	case 't', 'f':
		return "boolean"
	case 'n':
		return "null"
	}
	return "number"
}

func identArticle(kind string) string {
	switch kind {
	case "object", "array":
		return "an " + kind
	case "null", "nothing":
		return kind
	}
	return "a " + kind
}

func (f *identityFields) fail(field, format string, args ...any) {
	if f.err == nil {
		f.err = badRequest("Invalid input for field '%s': %s", field, fmt.Sprintf(format, args...))
	}
}

func (f *identityFields) typeError(field, want string, raw json.RawMessage) {
	f.fail(field, "expected %s, got %s.", want, identArticle(identJSONKind(raw)))
}

// has reports whether the field is present (null included).
func (f *identityFields) has(field string) bool {
	_, ok := f.m[field]
	return ok
}

// isNull reports whether the field is present and null.
func (f *identityFields) isNull(field string) bool {
	raw, ok := f.m[field]
	return ok && identJSONKind(raw) == "null"
}

// only refuses fields other than allowed: Keel stores no extra attributes,
// and silently dropping them would lose the client's data.
func (f *identityFields) only(allowed ...string) {
	var unknown []string
	for k := range f.m {
		if !slices.Contains(allowed, k) {
			unknown = append(unknown, k)
		}
	}
	if len(unknown) > 0 && f.err == nil {
		slices.Sort(unknown)
		f.err = badRequest("Invalid input for field '%s': unsupported attribute(s) %s; a %s accepts %s.",
			unknown[0], identQuoteAll(unknown), f.entity, identQuoteAll(allowed))
	}
}

func identQuoteAll(names []string) string {
	q := make([]string, len(names))
	for i, n := range names {
		q[i] = "'" + n + "'"
	}
	return strings.Join(q, ", ")
}

// required records a missing required field.
func (f *identityFields) required(field string) {
	if !f.has(field) {
		f.fail(field, "'%s' is a required property.", field)
	}
}

// str reads a string field. set reports presence; null is "" when nullable
// and an error otherwise.
func (f *identityFields) str(field string, nullable bool) (v string, set bool) {
	raw, ok := f.m[field]
	if !ok || f.err != nil {
		return "", ok
	}
	switch identJSONKind(raw) {
	case "string":
		if err := json.Unmarshal(raw, &v); err != nil {
			f.fail(field, "not a valid string.")
		}
		return v, true
	case "null":
		if nullable {
			return "", true
		}
	}
	want := "a string"
	if nullable {
		want = "a string or null"
	}
	f.typeError(field, want, raw)
	return "", true
}

// boolean reads a boolean field (null is not a boolean).
func (f *identityFields) boolean(field string) (v bool, set bool) {
	raw, ok := f.m[field]
	if !ok || f.err != nil {
		return false, ok
	}
	if identJSONKind(raw) != "boolean" || json.Unmarshal(raw, &v) != nil {
		f.typeError(field, "a boolean", raw)
	}
	return v, true
}

// stringList reads an array of strings.
func (f *identityFields) stringList(field string) (v []string, set bool) {
	raw, ok := f.m[field]
	if !ok || f.err != nil {
		return nil, ok
	}
	var items []json.RawMessage
	if identJSONKind(raw) != "array" || json.Unmarshal(raw, &items) != nil {
		f.typeError(field, "an array of strings", raw)
		return nil, true
	}
	v = make([]string, 0, len(items))
	for i, it := range items {
		var s string
		if identJSONKind(it) != "string" || json.Unmarshal(it, &s) != nil {
			f.fail(field, "item %d: expected a string, got %s.", i, identArticle(identJSONKind(it)))
			return nil, true
		}
		v = append(v, s)
	}
	return v, true
}

// name reads a required-when-creating name: a string with a non-blank
// character (lengths are checked by the state machine).
func (f *identityFields) name(field string) (string, bool) {
	v, set := f.str(field, false)
	if set && f.err == nil && strings.TrimSpace(v) == "" {
		f.fail(field, "must contain a character other than white space.")
	}
	return v, set
}

// noOptions accepts "options" only when empty: Keel supports none of
// Keystone's resource options.
func (f *identityFields) noOptions() {
	raw, ok := f.m["options"]
	if !ok || f.err != nil {
		return
	}
	var m map[string]json.RawMessage
	switch {
	case identJSONKind(raw) != "object" || json.Unmarshal(raw, &m) != nil:
		f.typeError("options", "an object", raw)
	case len(m) > 0:
		f.fail("options", "Keel supports no %s options; send {} or leave it out.", f.entity)
	}
}

// sameAs accepts a read-only field when it repeats the current value (a
// client that sends back what it read), and refuses a change.
func (f *identityFields) sameAs(field, current string) {
	v, set := f.str(field, true)
	if set && f.err == nil && v != current {
		f.fail(field, "it cannot be changed (it is %q).", current)
	}
}

// notTrue accepts a boolean field only when false (is_domain).
func (f *identityFields) notTrue(field, why string) {
	if v, set := f.boolean(field); set && f.err == nil && v {
		f.fail(field, "%s", why)
	}
}

// done returns the first problem, or nil.
func (f *identityFields) done() error {
	if f.err != nil {
		return f.err
	}
	return nil
}
