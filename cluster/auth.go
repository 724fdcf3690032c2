package cluster

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Internal calls between controllers (and from keelctl) carry
//
//	X-Keel-Auth: <unix seconds>.<hex HMAC-SHA256(key, "keel/v1\n" METHOD "\n" PATH?QUERY "\n" seconds)>
//
// so only holders of the cluster key can forward writes, read the state or
// restore a snapshot. The signature binds method, path and time (±5 minutes),
// not the body: the channel between controllers is a trusted LAN, and
// signing streamed snapshot bodies would force buffering them.
const authHeader = "X-Keel-Auth"

const authSkew = 5 * time.Minute

func signature(key []byte, method, uri string, ts int64) string {
	m := hmac.New(sha256.New, key)
	fmt.Fprintf(m, "keel/v1\n%s\n%s\n%d", method, uri, ts)
	return hex.EncodeToString(m.Sum(nil))
}

// Sign adds the cluster-key signature to an internal request.
func Sign(req *http.Request, key []byte) {
	ts := time.Now().Unix()
	req.Header.Set(authHeader, strconv.FormatInt(ts, 10)+"."+signature(key, req.Method, req.URL.RequestURI(), ts))
}

// verifySignature checks the signature of an incoming internal request.
func verifySignature(req *http.Request, key []byte) error {
	h := req.Header.Get(authHeader)
	tsStr, sig, ok := strings.Cut(h, ".")
	if !ok {
		return fmt.Errorf("%w: no %s header", ErrUnauthorized, authHeader)
	}
	ts, err := strconv.ParseInt(tsStr, 10, 64)
	if err != nil {
		return fmt.Errorf("%w: malformed %s header", ErrUnauthorized, authHeader)
	}
	if d := time.Since(time.Unix(ts, 0)); d > authSkew || d < -authSkew {
		return fmt.Errorf("%w: signature time is %s off this controller's clock (check NTP)", ErrUnauthorized, d.Round(time.Second))
	}
	want := signature(key, req.Method, req.URL.RequestURI(), ts)
	if !hmac.Equal([]byte(sig), []byte(want)) {
		return ErrUnauthorized
	}
	return nil
}
