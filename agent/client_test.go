package agent

import (
	"context"
	"log/slog"
	"net"
	"net/http"
	"sync/atomic"
	"testing"
	"time"
)

// statusServer answers every call with status and counts the calls.
func statusServer(t *testing.T, status int) (string, *atomic.Int32) {
	t.Helper()
	var n atomic.Int32
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n.Add(1)
		writeError(w, status, "test", http.StatusText(status))
	})}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { srv.Close() })
	return "http://" + ln.Addr().String(), &n
}

// TestClientFailoverRules: which answers move on to the next controller
// and which are final.
func TestClientFailoverRules(t *testing.T) {
	for _, tc := range []struct {
		first    int
		failover bool
	}{
		{http.StatusServiceUnavailable, true},
		{http.StatusInternalServerError, true},
		{http.StatusBadGateway, true},
		{http.StatusUnauthorized, true}, // a controller with another key must not stop the host
		{http.StatusMisdirectedRequest, true},
		{http.StatusTooManyRequests, true},
		{http.StatusBadRequest, false},
		{http.StatusNotFound, false},
		{http.StatusConflict, false},
	} {
		t.Run(http.StatusText(tc.first), func(t *testing.T) {
			first, n1 := statusServer(t, tc.first)
			second, n2 := statusServer(t, http.StatusOK)
			c := newClient(Config{Controllers: []string{first, second}, ClusterKey: testKey, Parallel: 1,
				RequestTimeout: time.Second, MinBackoff: time.Millisecond, MaxBackoff: time.Millisecond}, slog.New(slog.DiscardHandler))
			err := c.doJSON(context.Background(), call{method: http.MethodGet, path: "/x"}, nil)
			if tc.failover {
				if err != nil || n1.Load() != 1 || n2.Load() != 1 {
					t.Fatalf("err %v, calls %d/%d; want the second controller to answer", err, n1.Load(), n2.Load())
				}
				// The next call goes straight to the controller that answered.
				_ = c.doJSON(context.Background(), call{method: http.MethodGet, path: "/x"}, nil)
				if n1.Load() != 1 || n2.Load() != 2 {
					t.Fatalf("calls %d/%d after a second call", n1.Load(), n2.Load())
				}
				return
			}
			if statusOf(err) != tc.first || n2.Load() != 0 {
				t.Fatalf("err %v, second controller called %d times; want the first answer to be final", err, n2.Load())
			}
		})
	}
}

func TestClientGivesUpOnCancel(t *testing.T) {
	down, n := statusServer(t, http.StatusServiceUnavailable)
	c := newClient(Config{Controllers: []string{down}, ClusterKey: testKey, Parallel: 1,
		RequestTimeout: time.Second, MinBackoff: time.Millisecond, MaxBackoff: 5 * time.Millisecond}, slog.New(slog.DiscardHandler))
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	err := c.doJSON(ctx, call{method: http.MethodGet, path: "/x"}, nil)
	if err != context.DeadlineExceeded || n.Load() < 5 {
		t.Fatalf("err %v after %d calls; want retries until the context ends", err, n.Load())
	}
}

func TestJitter(t *testing.T) {
	for range 100 {
		if j := jitter(100 * time.Millisecond); j < 50*time.Millisecond || j >= 150*time.Millisecond {
			t.Fatalf("jitter(100ms) = %s", j)
		}
	}
	if jitter(0) != 0 {
		t.Fatal("jitter(0) != 0")
	}
}
