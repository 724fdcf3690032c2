package ids

import (
	"strings"
	"testing"
)

func TestUUIDForm(t *testing.T) {
	seen := map[string]bool{}
	for i := 0; i < 1000; i++ {
		u := UUID()
		if !IsUUID(u) || u[14] != '4' || !strings.ContainsRune("89ab", rune(u[19])) {
			t.Fatalf("%q is not a version 4 UUID", u)
		}
		if seen[u] {
			t.Fatal("duplicate UUID")
		}
		seen[u] = true
	}
	if h := Hex(); len(h) != 32 || strings.Trim(h, "0123456789abcdef") != "" {
		t.Fatalf("Hex() = %q", h)
	}
	for _, bad := range []string{"", "req-x", "0b5d3c8e-6a35-4f0a-9d2c-1c2a8f0e7b1", "0b5d3c8e_6a35-4f0a-9d2c-1c2a8f0e7b11", "zb5d3c8e-6a35-4f0a-9d2c-1c2a8f0e7b11"} {
		if IsUUID(bad) {
			t.Errorf("IsUUID(%q) = true", bad)
		}
	}
	if r := RequestID(); !strings.HasPrefix(r, "req-") || !IsUUID(r[4:]) {
		t.Fatalf("RequestID() = %q", r)
	}
}
