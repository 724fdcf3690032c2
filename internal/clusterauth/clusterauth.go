// Package clusterauth signs and verifies internal calls between Keel
// processes (controllers, agents, keelctl) with the shared cluster key.
//
// A call carries
//
//	X-Keel-Auth: <unix seconds>.<hex HMAC-SHA256(key, "keel/v1\n" METHOD "\n" PATH?QUERY "\n" seconds)>
//
// so only holders of the cluster key can forward writes, read the state,
// drive a host or restore a snapshot. The signature binds method, path and
// time (±5 minutes), not the body: the channel is a trusted LAN, and signing
// streamed bodies (snapshots, images) would force buffering them.
package clusterauth

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Header is the request header that carries the signature.
const Header = "X-Keel-Auth"

// Skew is how far the signer's clock may be from the verifier's.
const Skew = 5 * time.Minute

// ErrUnauthorized: a call carried no valid cluster-key signature.
var ErrUnauthorized = errors.New("internal call not signed with this cluster's key (check --cluster-key)")

func signature(key []byte, method, uri string, ts int64) string {
	m := hmac.New(sha256.New, key)
	fmt.Fprintf(m, "keel/v1\n%s\n%s\n%d", method, uri, ts)
	return hex.EncodeToString(m.Sum(nil))
}

// Sign adds the cluster-key signature to an internal request.
func Sign(req *http.Request, key []byte) {
	ts := time.Now().Unix()
	req.Header.Set(Header, strconv.FormatInt(ts, 10)+"."+signature(key, req.Method, req.URL.RequestURI(), ts))
}

// Verify checks the signature of an incoming internal request; its errors
// wrap ErrUnauthorized.
func Verify(req *http.Request, key []byte) error {
	h := req.Header.Get(Header)
	tsStr, sig, ok := strings.Cut(h, ".")
	if !ok {
		return fmt.Errorf("%w: no %s header", ErrUnauthorized, Header)
	}
	ts, err := strconv.ParseInt(tsStr, 10, 64)
	if err != nil {
		return fmt.Errorf("%w: malformed %s header", ErrUnauthorized, Header)
	}
	if d := time.Since(time.Unix(ts, 0)); d > Skew || d < -Skew {
		return fmt.Errorf("%w: signature time is %s off this machine's clock (check NTP)", ErrUnauthorized, d.Round(time.Second))
	}
	if !hmac.Equal([]byte(sig), []byte(signature(key, req.Method, req.URL.RequestURI(), ts))) {
		return ErrUnauthorized
	}
	return nil
}

// ParseKey decodes a base64 cluster key (surrounding white space ignored)
// and checks that it is 32 bytes.
func ParseKey(s string) ([]byte, error) {
	const gen = " (every controller, agent and keelctl uses the same key; `keelctl keygen` makes one)"
	s = strings.TrimSpace(s)
	if s == "" {
		return nil, errors.New("no cluster key: set --cluster-key or KEEL_CLUSTER_KEY" + gen)
	}
	k, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		return nil, fmt.Errorf("cluster key is not valid base64: %w%s", err, gen)
	}
	if len(k) != 32 {
		return nil, fmt.Errorf("cluster key is %d bytes; it must be 32 bytes, base64-encoded%s", len(k), gen)
	}
	return k, nil
}
