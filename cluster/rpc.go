package cluster

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/keel-cloud/keel/internal/clusterauth"
	"io"
	"net"
	"net/http"
	"os"
	"time"

	"github.com/hashicorp/raft"

	"github.com/keel-cloud/keel/fsm"
)

// The internal API, served by every controller under /internal/v1/ and
// authenticated with the cluster key (auth.go):
//
//	POST /internal/v1/apply          encoded command → msgpack fsm.Response (leader only)
//	GET  /internal/v1/read-index     {"index"} (leader only)
//	GET  /internal/v1/self           this node's ServerStatus
//	GET  /internal/v1/has-state      {"has_state"}: used by bootstrap
//	GET  /internal/v1/status         ClusterStatus, as this node sees it
//	POST /internal/v1/remove-peer    {"name"}: forwarded to the leader
//	GET  /internal/v1/snapshot       a consistent FSM snapshot stream
//	POST /internal/v1/snapshot       restore the cluster from a snapshot stream
//	GET  /internal/v1/state-hash     StateHash: this node's FSM hash and applied index
//	                                 (no read-index: what this node holds now)
const (
	codeNotLeader   = "not_leader"
	codeNoLeader    = "no_leader"
	codeUnknown     = "outcome_unknown"
	codeUnauthorize = "unauthorized"
	codeInvalid     = "invalid"
	codeShutdown    = "shutdown"
	codeInternal    = "internal"
)

type rpcError struct {
	Code    string `json:"code"`
	Message string `json:"error"`
}

func (e *rpcError) Error() string { return e.Message }

// toError turns a remote error back into the local error it stands for.
func (e *rpcError) toError() error {
	switch e.Code {
	case codeNotLeader:
		return errRetryLeader{fmt.Errorf("%s", e.Message)}
	case codeNoLeader:
		return fmt.Errorf("%w (reported by the leader: %s)", ErrNoLeader, e.Message)
	case codeUnknown:
		return ErrOutcomeUnknown
	case codeUnauthorize:
		return fmt.Errorf("%w: %s", ErrUnauthorized, e.Message)
	case codeShutdown:
		return errRetryLeader{ErrShutdown}
	case codeInvalid:
		return fsm.Errorf(fsm.KindInvalid, "%s", e.Message)
	}
	return e
}

func writeError(w http.ResponseWriter, err error) {
	var status int
	e := &rpcError{Message: err.Error(), Code: codeInternal}
	var retry errRetryLeader
	switch {
	case errors.As(err, &retry), errors.Is(err, raft.ErrNotLeader):
		e.Code, status = codeNotLeader, http.StatusMisdirectedRequest
	case errors.Is(err, ErrNoLeader):
		e.Code, status = codeNoLeader, http.StatusServiceUnavailable
	case errors.Is(err, ErrOutcomeUnknown):
		e.Code, status = codeUnknown, http.StatusServiceUnavailable
	case errors.Is(err, ErrUnauthorized):
		e.Code, status = codeUnauthorize, http.StatusUnauthorized
	case errors.Is(err, ErrShutdown):
		e.Code, status = codeShutdown, http.StatusServiceUnavailable
	case errors.Is(err, fsm.ErrInvalid):
		e.Code, status = codeInvalid, http.StatusBadRequest
	default:
		status = http.StatusInternalServerError
	}
	writeJSON(w, status, e)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// maxForwardedCommand bounds a forwarded command's size.
const maxForwardedCommand = 8 << 20

func (n *Node) internalHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /internal/v1/apply", func(w http.ResponseWriter, r *http.Request) {
		data, err := io.ReadAll(io.LimitReader(r.Body, maxForwardedCommand+1))
		if err != nil || len(data) > maxForwardedCommand {
			writeError(w, fsm.Errorf(fsm.KindInvalid, "command body unreadable or over %d bytes", maxForwardedCommand))
			return
		}
		if !n.IsLeader() {
			writeError(w, errRetryLeader{raft.ErrNotLeader})
			return
		}
		resp, err := n.applyLocal(r.Context(), data)
		if err != nil {
			writeError(w, err)
			return
		}
		out, err := fsm.Marshal(resp)
		if err != nil {
			writeError(w, err)
			return
		}
		w.Header().Set("Content-Type", "application/msgpack")
		w.Write(out)
	})
	mux.HandleFunc("GET /internal/v1/read-index", func(w http.ResponseWriter, r *http.Request) {
		if !n.IsLeader() {
			writeError(w, errRetryLeader{raft.ErrNotLeader})
			return
		}
		idx, err := n.leaderReadIndex(r.Context())
		if err != nil {
			writeError(w, err)
			return
		}
		writeJSON(w, http.StatusOK, map[string]uint64{"index": idx})
	})
	mux.HandleFunc("GET /internal/v1/self", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, n.Self())
	})
	mux.HandleFunc("GET /internal/v1/state-hash", func(w http.ResponseWriter, r *http.Request) {
		st, err := n.StateHash()
		if err != nil {
			writeError(w, err)
			return
		}
		writeJSON(w, http.StatusOK, st)
	})
	mux.HandleFunc("GET /internal/v1/has-state", func(w http.ResponseWriter, r *http.Request) {
		has, err := raft.HasExistingState(n.logStore, n.logStore, n.snaps)
		if err != nil {
			writeError(w, err)
			return
		}
		writeJSON(w, http.StatusOK, map[string]bool{"has_state": has})
	})
	mux.HandleFunc("GET /internal/v1/status", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, n.Status(r.Context()))
	})
	mux.HandleFunc("POST /internal/v1/remove-peer", func(w http.ResponseWriter, r *http.Request) {
		var req struct {
			Name string `json:"name"`
		}
		if err := json.NewDecoder(io.LimitReader(r.Body, 1<<16)).Decode(&req); err != nil || req.Name == "" {
			writeError(w, fsm.Errorf(fsm.KindInvalid, "body must be {\"name\": \"<controller>\"}"))
			return
		}
		if err := n.RemovePeer(r.Context(), req.Name); err != nil {
			writeError(w, err)
			return
		}
		writeJSON(w, http.StatusOK, map[string]string{"removed": req.Name})
	})
	mux.HandleFunc("GET /internal/v1/snapshot", func(w http.ResponseWriter, r *http.Request) {
		if err := n.Consistent(r.Context()); err != nil {
			writeError(w, err)
			return
		}
		w.Header().Set("Content-Type", "application/octet-stream")
		if err := n.fsm.WriteSnapshot(w); err != nil {
			n.log.Error("streaming a snapshot failed", "error", err)
		}
	})
	mux.HandleFunc("POST /internal/v1/snapshot", func(w http.ResponseWriter, r *http.Request) {
		keys, err := n.RestoreSnapshot(r.Context(), r.Body)
		if err != nil {
			writeError(w, err)
			return
		}
		writeJSON(w, http.StatusOK, map[string]any{"restored_keys": keys, "applied_index": n.fsm.AppliedIndex()})
	})
	return n.authenticate(mux)
}

// Authenticate wraps an internal endpoint served outside this package so it
// requires the cluster-key signature too.
func (n *Node) Authenticate(next http.Handler) http.Handler { return n.authenticate(next) }

func (n *Node) authenticate(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := clusterauth.Verify(r, n.cfg.ClusterKey); err != nil {
			n.log.Warn("rejected an internal call", "remote", r.RemoteAddr, "path", r.URL.Path, "error", err)
			writeError(w, err)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// peerClient calls other controllers' internal API.
type peerClient struct {
	key  []byte
	http *http.Client
}

func newPeerClient(key []byte) *peerClient {
	tr := &http.Transport{
		DialContext:         (&net.Dialer{Timeout: 2 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		MaxIdleConns:        512,
		MaxIdleConnsPerHost: 256,
		IdleConnTimeout:     90 * time.Second,
	}
	return &peerClient{key: key, http: &http.Client{Transport: tr}}
}

func (c *peerClient) close() { c.http.CloseIdleConnections() }

// NewInternalRequest builds a signed request to a controller's internal API.
func NewInternalRequest(ctx context.Context, key []byte, method, apiAddr, path string, body io.Reader) (*http.Request, error) {
	req, err := http.NewRequestWithContext(ctx, method, "http://"+apiAddr+path, body)
	if err != nil {
		return nil, err
	}
	Sign(req, key)
	return req, nil
}

// NewPeerRequest builds a request to another controller's internal API,
// signed with this node's cluster key (for internal endpoints served by
// other packages, such as image data transfer).
func (n *Node) NewPeerRequest(ctx context.Context, method, apiAddr, path string, body io.Reader) (*http.Request, error) {
	return NewInternalRequest(ctx, n.cfg.ClusterKey, method, apiAddr, path, body)
}

// do sends a request and returns the response if it is a 200; otherwise the
// remote error, translated. A failure to connect is retryable: the request
// never reached the peer.
func (c *peerClient) do(ctx context.Context, method, apiAddr, path string, body io.Reader) (*http.Response, error) {
	req, err := NewInternalRequest(ctx, c.key, method, apiAddr, path, body)
	if err != nil {
		return nil, err
	}
	resp, err := c.http.Do(req)
	if err != nil {
		var op *net.OpError
		if errors.As(err, &op) && op.Op == "dial" {
			return nil, errRetryLeader{fmt.Errorf("controller at %s unreachable: %w", apiAddr, err)}
		}
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, fmt.Errorf("call %s%s: %w", apiAddr, path, err)
	}
	if resp.StatusCode == http.StatusOK {
		return resp, nil
	}
	defer resp.Body.Close()
	var e rpcError
	if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&e); err != nil || e.Code == "" {
		return nil, fmt.Errorf("call %s%s: HTTP %d", apiAddr, path, resp.StatusCode)
	}
	return nil, e.toError()
}

func (c *peerClient) get(ctx context.Context, apiAddr, path string, out any) error {
	resp, err := c.do(ctx, http.MethodGet, apiAddr, path, nil)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	return json.NewDecoder(resp.Body).Decode(out)
}

func (c *peerClient) apply(ctx context.Context, apiAddr string, data []byte) (*fsm.Response, error) {
	resp, err := c.do(ctx, http.MethodPost, apiAddr, "/internal/v1/apply", bytes.NewReader(data))
	if err != nil {
		var retry errRetryLeader
		if !errors.As(err, &retry) && !errors.Is(err, ErrNoLeader) && ctx.Err() == nil {
			// The request may have reached the leader.
			var re *rpcError
			if !errors.As(err, &re) && !errors.Is(err, ErrUnauthorized) {
				return nil, fmt.Errorf("%w (%v)", ErrOutcomeUnknown, err)
			}
		}
		return nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, fmt.Errorf("%w (reading the leader's answer: %v)", ErrOutcomeUnknown, err)
	}
	var out fsm.Response
	if err := fsm.Unmarshal(body, &out); err != nil {
		return nil, fmt.Errorf("decode the leader's answer: %w", err)
	}
	return &out, nil
}

func (c *peerClient) readIndex(ctx context.Context, apiAddr string) (uint64, error) {
	var out struct {
		Index uint64 `json:"index"`
	}
	err := c.get(ctx, apiAddr, "/internal/v1/read-index", &out)
	var re *rpcError
	if err != nil && ctx.Err() == nil && !errors.As(err, &re) && !errors.Is(err, ErrUnauthorized) {
		// A read index changes nothing: a call cut off (the leader died
		// mid-answer, a connection reset) is asked again of the leader
		// there is then, until LeaderWait runs out (ErrNoLeader: a 503).
		return 0, errRetryLeader{err}
	}
	return out.Index, err
}

// RemovePeer removes a controller from the Raft configuration for good (and
// from gossip, if it is failed). Forwarded to the leader.
func (n *Node) RemovePeer(ctx context.Context, name string) error {
	return n.withLeader(ctx, func(leaderAPI string, self bool) error {
		if !self {
			body, _ := json.Marshal(map[string]string{"name": name})
			resp, err := n.client.do(ctx, http.MethodPost, leaderAPI, "/internal/v1/remove-peer", bytes.NewReader(body))
			if err != nil {
				return err
			}
			resp.Body.Close()
			return nil
		}
		f := n.raft.GetConfiguration()
		if err := f.Error(); err != nil {
			return err
		}
		found := false
		for _, s := range f.Configuration().Servers {
			found = found || s.ID == raft.ServerID(name)
		}
		if !found {
			return fsm.Errorf(fsm.KindInvalid, "%q is not a member of the raft configuration (see `keelctl cluster status`)", name)
		}
		if name == n.cfg.Name && n.otherVoters() == 0 {
			return fsm.Errorf(fsm.KindInvalid, "%q is the only voter; removing it would destroy the cluster", name)
		}
		if err := n.raft.RemoveServer(raft.ServerID(name), 0, 0).Error(); err != nil {
			return err
		}
		if err := n.serf.RemoveFailedNode(name); err != nil {
			n.log.Warn("removed peer from raft but not from gossip", "peer", name, "error", err)
		}
		n.log.Info("removed peer from the cluster", "peer", name)
		return nil
	})
}

// RestoreSnapshot replaces the whole cluster state with the snapshot read
// from r (made by `keelctl snapshot save`). The stream is spooled to disk and
// verified before Raft sees it, so a bad file changes nothing. Forwarded to
// the leader. Returns the number of keys restored.
func (n *Node) RestoreSnapshot(ctx context.Context, r io.Reader) (int, error) {
	tmp, err := os.CreateTemp(n.cfg.DataDir, "restore-*.snap")
	if err != nil {
		return 0, err
	}
	defer os.Remove(tmp.Name())
	defer tmp.Close()
	// Verified while spooled; the saved applied index is replaced by 0
	// (see fsm.CopySnapshot).
	keys, err := fsm.CopySnapshot(tmp, r, 0)
	if err != nil {
		return 0, fsm.Errorf(fsm.KindInvalid, "%v", err)
	}
	rewind := func() error { _, err := tmp.Seek(0, io.SeekStart); return err }
	err = n.withLeader(ctx, func(leaderAPI string, self bool) error {
		if err := rewind(); err != nil {
			return err
		}
		if !self {
			resp, err := n.client.do(ctx, http.MethodPost, leaderAPI, "/internal/v1/snapshot", tmp)
			if err != nil {
				return err
			}
			resp.Body.Close()
			return nil
		}
		st, err := tmp.Stat()
		if err != nil {
			return err
		}
		meta := &raft.SnapshotMeta{Version: raft.SnapshotVersionMax, Size: st.Size()}
		if err := n.raft.Restore(meta, tmp, time.Minute); err != nil {
			return fmt.Errorf("raft restore: %w", err)
		}
		// The restored state says applied index 0 (it is the user's file):
		// a command applied after it gives every FSM an applied index at
		// or past the commit index again, which consistent reads wait for
		// (read.go). Until it is applied, reads wait rather than return
		// the state from before the restore.
		data, err := fsm.EncodeCommand(&fsm.Barrier{Node: n.cfg.Name})
		if err != nil {
			return err
		}
		if _, err := n.applyLocal(ctx, data); err != nil {
			return fmt.Errorf("the state was restored, but the command that follows it was not applied (%w): reads wait until the next write; retry or make any write", err)
		}
		n.log.Warn("cluster state replaced from a snapshot", "keys", keys, "applied_index", n.fsm.AppliedIndex())
		return nil
	})
	return keys, err
}
