package api

import (
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/keel-cloud/keel/fsm"
)

// Key pairs (os-keypairs), as Nova serves them from 2.1 to 2.100:
//
//   - 2.1: create answers 200, delete 202; bodies have no "type".
//   - 2.2: "type" (ssh or x509) in requests and bodies; create 201, delete 204.
//   - 2.10: an admin may act for another user: "user_id" in the create body,
//     ?user_id= on list, show and delete.
//   - 2.35: ?limit= and ?marker= (a key pair name) on list, with
//     keypairs_links when a page is full.
//   - 2.75: unknown query parameters are a 400.
//   - 2.92: public_key is required (no server-side generation) and names may
//     also hold '@' and '.'.
//
// Key pairs belong to a user, not a project: any project-scoped user may
// manage their own (Nova's rule "admin or user_id:%(user_id)s"), so the
// routes are Authenticated and the handlers check the target user.
func (s *Server) registerKeypairs() {
	const base = "/compute/v2.1/os-keypairs"
	s.handle(Route{Method: "GET", Path: base, Service: ServiceCompute, Policy: Authenticated, Handle: s.listKeypairs})
	s.handle(Route{Method: "POST", Path: base, Service: ServiceCompute, Policy: Authenticated, Handle: s.createKeypair})
	s.handle(Route{Method: "GET", Path: base + "/{keypair_name}", Service: ServiceCompute, Policy: Authenticated, Handle: s.showKeypair})
	s.handle(Route{Method: "DELETE", Path: base + "/{keypair_name}", Service: ServiceCompute, Policy: Authenticated, Handle: s.deleteKeypair})
}

// keypairMaxLimit is Nova's [api]max_limit: the largest page.
const keypairMaxLimit = 1000

// keypairPolicy is Nova's keypair rule: admins may act for any user, others
// only for themselves.
func keypairPolicy(c *Call, action, userID string) error {
	if c.Auth.IsAdmin() || userID == c.Auth.UserID {
		return nil
	}
	return forbidden("Policy doesn't allow os_compute_api:os-keypairs:%s to be performed.", action)
}

// keypairQueryUser is the user a list, show or delete acts for: the first
// ?user_id= from 2.10 on (when not empty), else the caller.
func keypairQueryUser(c *Call) string {
	if c.Version.AtLeast(2, 10) {
		if vs := c.R.URL.Query()["user_id"]; len(vs) > 0 && vs[0] != "" {
			return vs[0]
		}
	}
	return c.Auth.UserID
}

// keypairTime renders unix microseconds as Nova renders its datetimes.
func keypairTime(micros int64) string {
	return time.UnixMicro(micros).UTC().Format("2006-01-02T15:04:05.000000")
}

// keypairView renders k in Nova's shape for a microversion: "index" (name,
// public_key, fingerprint), "create" (and user_id) or "show" (and the
// database columns). "type" is there from 2.2 on.
func keypairView(k *fsm.Keypair, v Microversion, shape string) map[string]any {
	out := map[string]any{"name": k.Name, "public_key": k.PublicKey, "fingerprint": k.Fingerprint}
	if v.AtLeast(2, 2) {
		out["type"] = k.Type
	}
	if shape == "index" {
		return out
	}
	out["user_id"] = k.UserID
	if shape == "show" {
		out["id"] = k.ID
		out["created_at"] = keypairTime(k.CreatedAt)
		out["updated_at"] = nil
		out["deleted"] = false
		out["deleted_at"] = nil
	}
	return out
}

// createKeypair is POST /os-keypairs: import public_key, or (before 2.92)
// generate a key pair and return its private key, once.
func (s *Server) createKeypair(c *Call) error {
	var body any
	if err := c.Decode(&body); err != nil {
		return err
	}
	req, err := keypairCreateSchema(c.Version, body)
	if err != nil {
		return err
	}
	userID := c.Auth.UserID
	if req.userID != "" {
		userID = req.userID
	}
	if err := keypairPolicy(c, "create", userID); err != nil {
		return err
	}
	k := fsm.Keypair{Name: req.name, UserID: userID, Type: req.keyType}
	var private string
	if req.hasPublicKey {
		fp, err := keypairFingerprint(req.publicKey, req.keyType)
		if err != nil {
			return err
		}
		k.PublicKey, k.Fingerprint = req.publicKey, fp
	} else {
		gen, err := keypairGenerate(req.keyType, userID, time.Now())
		if err != nil {
			return err
		}
		k.PublicKey, k.Fingerprint, private = gen.publicKey, gen.fingerprint, gen.privateKey
	}
	k.CreatedAt = time.Now().UnixMicro()
	var stored fsm.Keypair
	if err := s.apply(c.Context(), &fsm.CreateKeypair{Keypair: k, ProjectID: c.Auth.ProjectID}, &stored); err != nil {
		return err
	}
	view := keypairView(&stored, c.Version, "create")
	if !req.hasPublicKey {
		view["private_key"] = private
	}
	status := http.StatusCreated
	if !c.Version.AtLeast(2, 2) {
		status = http.StatusOK
	}
	return c.JSON(status, map[string]any{"keypair": view})
}

// listKeypairs is GET /os-keypairs: the user's key pairs by name.
func (s *Server) listKeypairs(c *Call) error {
	q := c.R.URL.Query()
	allowed := []string{"user_id", "limit", "marker"}
	if err := keypairQuerySchema(c.Version, q, allowed); err != nil {
		return err
	}
	paged := c.Version.AtLeast(2, 35)
	limit, marker, hasMarker := -1, "", false
	if paged {
		limit = keypairMaxLimit
		if vs := q["limit"]; len(vs) > 0 {
			n, err := strconv.Atoi(vs[len(vs)-1])
			if err == nil && n < limit {
				limit = n
			}
		}
		if vs := q["marker"]; len(vs) > 0 {
			marker, hasMarker = vs[len(vs)-1], true
		}
	}
	userID := keypairQueryUser(c)
	if err := keypairPolicy(c, "index", userID); err != nil {
		return err
	}
	if hasMarker && marker == "" {
		return badRequest("Marker  could not be found.")
	}
	st, err := s.readState(c)
	if err != nil {
		return err
	}
	ks, err := fsm.ListKeypairs(st, userID, marker, limit)
	if err != nil {
		return err
	}
	items := make([]any, 0, len(ks))
	for i := range ks {
		items = append(items, map[string]any{"keypair": keypairView(&ks[i], c.Version, "index")})
	}
	out := map[string]any{"keypairs": items}
	if paged && limit > 0 && len(ks) == limit {
		next := url.Values{}
		for k, vs := range q {
			next.Set(k, vs[len(vs)-1])
		}
		next.Set("marker", ks[len(ks)-1].Name)
		out["keypairs_links"] = []map[string]string{{
			"rel": "next", "href": s.publicURL(c.R) + "/compute/v2.1/os-keypairs?" + next.Encode(),
		}}
	}
	return c.JSON(http.StatusOK, out)
}

// showKeypair is GET /os-keypairs/{keypair_name}.
func (s *Server) showKeypair(c *Call) error {
	if err := keypairQuerySchema(c.Version, c.R.URL.Query(), []string{"user_id"}); err != nil {
		return err
	}
	userID := keypairQueryUser(c)
	if err := keypairPolicy(c, "show", userID); err != nil {
		return err
	}
	st, err := s.readState(c)
	if err != nil {
		return err
	}
	k, _, err := fsm.GetKeypair(st, userID, c.Param("keypair_name"))
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, map[string]any{"keypair": keypairView(k, c.Version, "show")})
}

// deleteKeypair is DELETE /os-keypairs/{keypair_name}: 202 in 2.1, 204
// from 2.2 on.
func (s *Server) deleteKeypair(c *Call) error {
	if err := keypairQuerySchema(c.Version, c.R.URL.Query(), []string{"user_id"}); err != nil {
		return err
	}
	userID := keypairQueryUser(c)
	if err := keypairPolicy(c, "delete", userID); err != nil {
		return err
	}
	name := c.Param("keypair_name")
	// A missing key pair is answered from the state, without a Raft entry;
	// the command checks again.
	st, err := s.readState(c)
	if err != nil {
		return err
	}
	if _, _, err := fsm.GetKeypair(st, userID, name); err != nil {
		return err
	}
	cmd := &fsm.DeleteKeypair{UserID: userID, Name: name, ProjectID: c.Auth.ProjectID}
	if err := s.apply(c.Context(), cmd, nil); err != nil {
		return err
	}
	if !c.Version.AtLeast(2, 2) {
		return c.NoContent(http.StatusAccepted)
	}
	return c.NoContent(http.StatusNoContent)
}
