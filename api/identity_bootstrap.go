package api

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/keel-cloud/keel/cluster"
	"github.com/keel-cloud/keel/fsm"
	"github.com/keel-cloud/keel/internal/ids"
)

// passwordCost is bcrypt's work factor for user passwords.
const passwordCost = 10

// HashPassword hashes a user password for storage.
func HashPassword(pw string) (string, error) {
	h, err := bcrypt.GenerateFromPassword([]byte(pw), passwordCost)
	return string(h), err
}

// keyRetention is how long a retired token signing key still verifies:
// longer than any token it signed can live.
func (s *Server) keyRetention() time.Duration { return s.cfg.TokenTTL + time.Hour }

func (s *Server) registerLeaderLoops() {
	s.node.RegisterLeaderLoop(cluster.LeaderLoop{Name: "identity-bootstrap", Run: s.bootstrapIdentity})
	s.node.RegisterLeaderLoop(cluster.LeaderLoop{Name: "token-revocation-purge", Run: s.purgeRevocations})
	s.mux.Handle("POST /internal/v1/token/rotate-keys", s.node.Authenticate(http.HandlerFunc(s.rotateKeys)))
}

func newSecret() []byte {
	b := make([]byte, 32)
	rand.Read(b)
	return b
}

// bootstrapIdentity creates the Default domain, the admin project and user,
// the admin/member/reader roles and the first token signing key, once, on
// the first leader of a new cluster.
func (s *Server) bootstrapIdentity(ctx context.Context) {
	for wait := 100 * time.Millisecond; ctx.Err() == nil; wait = min(2*wait, 5*time.Second) {
		done, err := fsm.IdentityBootstrapped(s.node.State())
		if err == nil && done {
			return
		}
		if err == nil {
			err = s.proposeBootstrap(ctx)
		}
		if err == nil || errors.Is(err, fsm.ErrConflict) {
			return
		}
		s.log.Error("identity bootstrap failed; retrying", "error", err)
		select {
		case <-ctx.Done():
		case <-time.After(wait):
		}
	}
}

func (s *Server) proposeBootstrap(ctx context.Context) error {
	password, generated := s.cfg.AdminPassword, false
	if password == "" {
		b := make([]byte, 15)
		rand.Read(b)
		password, generated = base64.RawURLEncoding.EncodeToString(b), true
	}
	hash, err := HashPassword(password)
	if err != nil {
		return err
	}
	now := time.Now()
	cmd := &fsm.IdentityBootstrap{
		Domain:       fsm.Domain{ID: "default", Name: "Default", Description: "The default domain", Enabled: true},
		AdminProject: fsm.Project{ID: ids.Hex(), Name: "admin", DomainID: "default", Description: "Bootstrap project for the cloud's administrators", Enabled: true},
		AdminUser:    fsm.User{ID: ids.Hex(), Name: "admin", DomainID: "default", PasswordHash: hash, Enabled: true, CreatedAt: now.Unix()},
		Roles: []fsm.Role{
			{ID: ids.Hex(), Name: "admin"}, {ID: ids.Hex(), Name: "member"}, {ID: ids.Hex(), Name: "reader"},
		},
		TokenKey: fsm.TokenKey{ID: ids.Hex()[:16], Secret: newSecret(), CreatedAt: now.Unix()},
		Now:      now.Unix(),
	}
	cmd.AdminUser.DefaultProjectID = cmd.AdminProject.ID
	if _, err := s.node.Apply(ctx, cmd); err != nil {
		return err
	}
	s.log.Info("identity bootstrapped: Default domain, admin project and user, roles admin/member/reader, token signing key")
	if generated {
		path := filepath.Join(s.cfg.DataDir, "admin-password")
		if err := os.WriteFile(path, []byte(password+"\n"), 0o600); err != nil {
			s.log.Error("could not save the generated admin password", "file", path, "error", err)
		}
		s.log.Warn("generated the admin user's password (shown once; also saved for keelctl openrc)", "user", "admin", "password", password, "file", path)
	}
	return nil
}

// purgeRevocations drops revocations of tokens that have expired anyway.
func (s *Server) purgeRevocations(ctx context.Context) {
	t := time.NewTicker(10 * time.Minute)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if _, err := s.node.Apply(ctx, &fsm.PurgeTokenRevocations{Now: time.Now().Unix()}); err != nil && ctx.Err() == nil {
				s.log.Warn("purging expired token revocations failed; will retry", "error", err)
			}
		}
	}
}

// rotateKeys is POST /internal/v1/token/rotate-keys (`keelctl token
// rotate-keys`): a new primary signing key; the previous ones keep verifying
// the tokens they signed until those expire.
func (s *Server) rotateKeys(w http.ResponseWriter, r *http.Request) {
	now := time.Now()
	key := fsm.TokenKey{ID: ids.Hex()[:16], Secret: newSecret(), CreatedAt: now.Unix()}
	_, err := s.node.Apply(r.Context(), &fsm.RotateTokenKeys{NewKey: key, Now: now.Unix(), RetainSeconds: int64(s.keyRetention().Seconds())})
	if err != nil {
		e := faultFor(err, "")
		writeJSON(w, e.Status, map[string]string{"error": e.Message})
		return
	}
	s.log.Info("token signing keys rotated", "new_key", key.ID)
	writeJSON(w, http.StatusOK, map[string]any{"primary_key": key.ID, "retired_keys_verify_for_seconds": int64(s.keyRetention().Seconds())})
}
