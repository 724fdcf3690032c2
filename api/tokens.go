package api

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/keel-cloud/keel/api/token"
	"github.com/keel-cloud/keel/cluster"
	"github.com/keel-cloud/keel/fsm"
)

// tokenValidator checks tokens on this controller alone: the signature with
// the replicated signing keys, then the caller's current state (user
// enabled, password not changed since, project enabled, roles, revocations)
// from the local FSM. No Raft round trip, except once when a token names a
// key this node has not applied yet.
type tokenValidator struct {
	node *cluster.Node

	mu       sync.Mutex
	keysAt   uint64 // table index the cache was loaded at
	keys     map[string]token.Key
	primary  token.Key
	hasPrime bool
}

func newTokenValidator(node *cluster.Node) *tokenValidator {
	return &tokenValidator{node: node}
}

// loadKeys refreshes the key cache when the key table changed.
func (v *tokenValidator) loadKeys() error {
	at := v.node.FSM().TableIndex(fsm.TableTokenKey)
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.keys != nil && at == v.keysAt {
		return nil
	}
	list, err := fsm.ListTokenKeys(v.node.State())
	if err != nil {
		return err
	}
	keys := make(map[string]token.Key, len(list))
	v.hasPrime = false
	for _, k := range list {
		keys[k.ID] = token.Key{ID: k.ID, Secret: k.Secret}
		if k.RetiredAt == 0 {
			v.primary, v.hasPrime = token.Key{ID: k.ID, Secret: k.Secret}, true
		}
	}
	v.keys, v.keysAt = keys, at
	return nil
}

func (v *tokenValidator) lookup(id string) (token.Key, bool) {
	v.mu.Lock()
	defer v.mu.Unlock()
	k, ok := v.keys[id]
	return k, ok
}

// signingKey is the primary key new tokens are signed with.
func (v *tokenValidator) signingKey() (token.Key, error) {
	if err := v.loadKeys(); err != nil {
		return token.Key{}, err
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	if !v.hasPrime {
		return token.Key{}, Errorf(503, "Identity is not bootstrapped yet: the cluster has no token signing key. Wait for the leader to finish bootstrapping.")
	}
	return v.primary, nil
}

// validate returns the caller behind tok, or why it is not valid.
func (v *tokenValidator) validate(ctx context.Context, tok string) (*Auth, error) {
	if err := v.loadKeys(); err != nil {
		return nil, err
	}
	claims, err := token.Parse(tok, v.lookup, time.Now())
	if errors.Is(err, token.ErrUnknownKey) {
		// Signed with a key this node may not have applied yet (a
		// rotation a moment ago): catch up once, then decide.
		cctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		defer cancel()
		if cerr := v.node.Consistent(cctx); cerr == nil {
			if err = v.loadKeys(); err == nil {
				claims, err = token.Parse(tok, v.lookup, time.Now())
			}
		}
	}
	if err != nil {
		return nil, err
	}
	a, err := v.authFor(tok, claims)
	if err != nil {
		// A validly signed token may name a user, project or role
		// assignment this node has not applied yet (made a moment ago
		// through another controller): catch up once before refusing.
		cctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		defer cancel()
		if cerr := v.node.Consistent(cctx); cerr == nil {
			a, err = v.authFor(tok, claims)
		}
	}
	return a, err
}

// authFor resolves claims against the current state.
func (v *tokenValidator) authFor(tok string, c token.Claims) (*Auth, error) {
	st := v.node.State()
	for _, id := range []string{c.AuditID, c.ParentAuditID} {
		if id == "" {
			continue
		}
		revoked, err := fsm.TokenRevoked(st, id)
		if err != nil {
			return nil, err
		}
		if revoked {
			return nil, fmt.Errorf("token revoked")
		}
	}
	user, _, err := fsm.GetUser(st, c.UserID)
	if err != nil {
		return nil, fmt.Errorf("user %s: %w", c.UserID, err)
	}
	if !user.Enabled {
		return nil, fmt.Errorf("user %s is disabled", user.ID)
	}
	if c.IssuedAt.UnixMicro() < user.TokensValidAfter {
		return nil, fmt.Errorf("token issued before the user's password change or disablement")
	}
	a := &Auth{Token: tok, Claims: c, UserID: user.ID, UserName: user.Name, DomainID: user.DomainID, System: c.System}
	switch {
	case c.ProjectID != "":
		p, _, err := fsm.GetProject(st, c.ProjectID)
		if err != nil {
			return nil, fmt.Errorf("project %s: %w", c.ProjectID, err)
		}
		if !p.Enabled {
			return nil, fmt.Errorf("project %s is disabled", p.ID)
		}
		a.ProjectID, a.ProjectName = p.ID, p.Name
		if a.Roles, err = fsm.RolesOnProject(st, user.ID, p.ID); err != nil {
			return nil, err
		}
		if len(a.Roles) == 0 {
			return nil, fmt.Errorf("user %s has no role on project %s any more", user.ID, p.ID)
		}
	case c.System:
		if a.Roles, err = fsm.SystemRoles(st, user.ID); err != nil {
			return nil, err
		}
		if len(a.Roles) == 0 {
			return nil, fmt.Errorf("user %s has no system role any more", user.ID)
		}
	}
	return a, nil
}
