package cluster

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// A read-index call cut off mid-answer (the leader died) is retried against
// the leader there is then, not returned as an unexpected error (which the
// API would answer with a 500).
func TestReadIndexCutOffIsRetried(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		conn, _, err := w.(http.Hijacker).Hijack()
		if err == nil {
			conn.Close() // no answer at all
		}
	}))
	defer srv.Close()
	c := newPeerClient(make([]byte, 32))
	_, err := c.readIndex(context.Background(), strings.TrimPrefix(srv.URL, "http://"))
	var retry errRetryLeader
	if !errors.As(err, &retry) {
		t.Fatalf("a cut-off read index: %v (%T), want a retry", err, err)
	}
}
