package scheduler

import (
	"slices"
	"testing"
)

func TestMatchExtraSpec(t *testing.T) {
	tests := []struct {
		value, req string
		want       bool
	}{
		// No operator: the whole requirement, as a string.
		{"kvm", "kvm", true},
		{"kvm", "qemu", false},
		{"a b", "a b", true},
		{"true", "True", false},
		{"", "", true},
		// "=" is "at least", numerically.
		{"4", "= 4", true},
		{"8", "= 4", true},
		{"2", "= 4", false},
		{"4.5", "= 4", true},
		{"many", "= 4", false},
		{"4", "= four", false},
		{"4", "=", false}, // an operator without operand never matches
		// Numeric comparisons.
		{"2.0", "== 2", true},
		{"3", "== 2", false},
		{"3", "!= 2", true},
		{"2", "!= 2", false},
		{"3", ">= 3", true},
		{"2", ">= 3", false},
		{"3", "<= 3", true},
		{"4", "<= 3", false},
		{"10", ">= 9", true}, // numbers, not strings
		// String comparisons.
		{"abc", "s== abc", true},
		{"abd", "s== abc", false},
		{"abd", "s!= abc", true},
		{"abc", "s!= abc", false},
		{"a", "s< b", true},
		{"c", "s< b", false},
		{"b", "s<= b", true},
		{"c", "s<= b", false},
		{"c", "s> b", true},
		{"b", "s> b", false},
		{"b", "s>= b", true},
		{"a", "s>= b", false},
		{"10", "s>= 9", false}, // strings, not numbers
		// Substrings.
		{"sse avx2", "<in> avx", true},
		{"sse", "<in> avx", false},
		{"avx sse2", "<all-in> avx sse", true},
		{"avx", "<all-in> avx sse", false},
		{"avx", "<all-in>", false},
		// Alternatives.
		{"b", "<or> a <or> b", true},
		{"a", "<or> a <or> b", true},
		{"c", "<or> a <or> b", false},
		{"<or>", "<or> a <or> b", false}, // the keyword is not an alternative
		{"a", "<or>", false},
		{"a", "<or> a", true},
	}
	for _, tt := range tests {
		if got := matchExtraSpec(tt.value, tt.req); got != tt.want {
			t.Errorf("matchExtraSpec(%q, %q) = %v, want %v", tt.value, tt.req, got, tt.want)
		}
	}
}

func TestVersionPredicates(t *testing.T) {
	tests := []struct {
		pred    string
		version int64 // libvirt encoding
		ok      bool  // the predicate parses
		want    bool
	}{
		{">=6.0", 6000000, true, true},
		{">=6.0", 5000, true, false},
		{">=6.0,<6.2", 6001000, true, true},
		{">=6.0, <6.2", 6002000, true, false},
		{"(>= 6.0)", 8002000, true, true},
		{"==6.0", 6000000, true, true}, // 6.0 == 6.0.0
		{"!=6.0.0", 6000001, true, true},
		{">6.0", 6000000, true, false},
		{"<=8.2", 8002000, true, true},
		{"<7", 6999999, true, true},
		{"6.0", 6000000, false, false}, // no operator
		{">=six", 6000000, false, false},
		{">=", 6000000, false, false},
		{"", 6000000, false, false},
	}
	for _, tt := range tests {
		conds, ok := parseVersionPredicate(tt.pred)
		if ok != tt.ok {
			t.Errorf("parseVersionPredicate(%q) ok = %v, want %v", tt.pred, ok, tt.ok)
			continue
		}
		if ok && satisfies(intVersion(tt.version), conds) != tt.want {
			t.Errorf("%q satisfied by %d = %v, want %v", tt.pred, tt.version, !tt.want, tt.want)
		}
	}
}

func TestIntVersion(t *testing.T) {
	for v, want := range map[int64][]int{6000000: {6, 0, 0}, 8002001: {8, 2, 1}, 5000: {5, 0}, 0: nil} {
		if got := intVersion(v); !slices.Equal(got, want) {
			t.Errorf("intVersion(%d) = %v, want %v", v, got, want)
		}
	}
}
