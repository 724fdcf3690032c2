package clusterauth

import (
	"encoding/base64"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"
)

func TestSignAndVerify(t *testing.T) {
	key := []byte(strings.Repeat("k", 32))
	req, _ := http.NewRequest("GET", "http://127.0.0.1:1/internal/v1/hosts/h1/servers?index=3", nil)
	Sign(req, key)
	if err := Verify(req, key); err != nil {
		t.Fatalf("a signed request: %v", err)
	}
	if err := Verify(req, []byte(strings.Repeat("x", 32))); !errors.Is(err, ErrUnauthorized) {
		t.Fatalf("another key: %v", err)
	}
	other, _ := http.NewRequest("GET", "http://127.0.0.1:1/internal/v1/hosts/h2/servers?index=3", nil)
	other.Header.Set(Header, req.Header.Get(Header))
	if err := Verify(other, key); !errors.Is(err, ErrUnauthorized) {
		t.Fatalf("the signature of another path: %v", err)
	}
	post, _ := http.NewRequest("POST", req.URL.String(), nil)
	post.Header.Set(Header, req.Header.Get(Header))
	if err := Verify(post, key); !errors.Is(err, ErrUnauthorized) {
		t.Fatalf("the signature of another method: %v", err)
	}
	old := time.Now().Add(-2 * Skew).Unix()
	stale, _ := http.NewRequest("GET", req.URL.String(), nil)
	stale.Header.Set(Header, strconv.FormatInt(old, 10)+"."+signature(key, "GET", stale.URL.RequestURI(), old))
	if err := Verify(stale, key); !errors.Is(err, ErrUnauthorized) || !strings.Contains(err.Error(), "NTP") {
		t.Fatalf("a signature from 10 minutes ago: %v", err)
	}
	for _, h := range []string{"", "nodot", "x.y"} {
		bad, _ := http.NewRequest("GET", req.URL.String(), nil)
		bad.Header.Set(Header, h)
		if err := Verify(bad, key); !errors.Is(err, ErrUnauthorized) {
			t.Fatalf("header %q: %v", h, err)
		}
	}
}

func TestParseKey(t *testing.T) {
	good := base64.StdEncoding.EncodeToString([]byte(strings.Repeat("a", 32)))
	if k, err := ParseKey(" " + good + "\n"); err != nil || len(k) != 32 {
		t.Fatalf("a good key: %v", err)
	}
	for _, s := range []string{"", "not base64!", base64.StdEncoding.EncodeToString([]byte("short"))} {
		if _, err := ParseKey(s); err == nil || !strings.Contains(err.Error(), "keelctl keygen") {
			t.Fatalf("%q: %v", s, err)
		}
	}
}
