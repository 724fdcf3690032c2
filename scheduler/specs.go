package scheduler

import (
	"strconv"
	"strings"
)

// matchExtraSpec reports whether a host's value satisfies a flavor extra
// spec requirement, with Nova's extra-spec operators (the first word of
// req):
//
//	=        numeric, value >= operand ("= 4" asks for at least 4)
//	== != >= <=   numeric comparisons
//	s== s!= s< s<= s> s>=   string comparisons
//	<in>     the operand is a substring of the value
//	<all-in> every operand is a substring of the value
//	<or>     "<or> a <or> b": the value equals one of the alternatives
//
// A requirement whose first word is not an operator is compared with the
// value as a whole string. A numeric operator on a value or operand that is
// not a number fails (Nova raises there, which fails the request).
func matchExtraSpec(value, req string) bool {
	words := strings.Fields(req)
	if len(words) == 0 {
		return value == req
	}
	op, args := words[0], words[1:]
	switch op {
	case "<or>":
		// The alternatives sit at the even positions: "<or> a <or> b".
		for i := 0; i < len(args); i += 2 {
			if args[i] == value {
				return true
			}
		}
		return false
	case "<all-in>":
		if len(args) == 0 {
			return false
		}
		for _, a := range args {
			if !strings.Contains(value, a) {
				return false
			}
		}
		return true
	case "<in>":
		return len(args) > 0 && strings.Contains(value, args[0])
	case "s==", "s!=", "s<", "s<=", "s>", "s>=":
		return len(args) > 0 && compareStrings(op, value, args[0])
	case "=", "==", "!=", ">=", "<=":
		return len(args) > 0 && compareNumbers(op, value, args[0])
	}
	return value == req
}

func compareStrings(op, a, b string) bool {
	switch op {
	case "s==":
		return a == b
	case "s!=":
		return a != b
	case "s<":
		return a < b
	case "s<=":
		return a <= b
	case "s>":
		return a > b
	default: // "s>="
		return a >= b
	}
}

func compareNumbers(op, a, b string) bool {
	x, err := strconv.ParseFloat(strings.TrimSpace(a), 64)
	if err != nil {
		return false
	}
	y, err := strconv.ParseFloat(strings.TrimSpace(b), 64)
	if err != nil {
		return false
	}
	switch op {
	case "=", ">=": // Nova's "=" means "at least"
		return x >= y
	case "==":
		return x == y
	case "!=":
		return x != y
	default: // "<="
		return x <= y
	}
}

// versionCond is one comparison of a version predicate such as ">=6.0".
type versionCond struct {
	op  string
	ver []int
}

// parseVersionPredicate parses the img_hv_requested_version image property:
// comma separated comparisons of dotted versions, e.g. ">=6.0,<7.0",
// optionally in parentheses. The operators are <, <=, ==, !=, >, >=. ok is
// false for text that is not such a predicate.
func parseVersionPredicate(s string) (conds []versionCond, ok bool) {
	s = strings.TrimSpace(s)
	if strings.HasPrefix(s, "(") && strings.HasSuffix(s, ")") {
		s = s[1 : len(s)-1]
	}
	for part := range strings.SplitSeq(s, ",") {
		part = strings.TrimSpace(part)
		var op string
		for _, o := range []string{"<=", ">=", "==", "!=", "<", ">"} {
			if strings.HasPrefix(part, o) {
				op = o
				break
			}
		}
		if op == "" {
			return nil, false
		}
		ver, ok := parseDottedVersion(strings.TrimSpace(part[len(op):]))
		if !ok {
			return nil, false
		}
		conds = append(conds, versionCond{op: op, ver: ver})
	}
	return conds, len(conds) > 0
}

func parseDottedVersion(s string) ([]int, bool) {
	if s == "" {
		return nil, false
	}
	var out []int
	for f := range strings.SplitSeq(s, ".") {
		n, err := strconv.Atoi(f)
		if err != nil || n < 0 {
			return nil, false
		}
		out = append(out, n)
	}
	return out, true
}

// intVersion decodes libvirt's integer version encoding (major*1,000,000 +
// minor*1,000 + micro) into its dotted parts, as Nova's
// convert_version_to_str does: 6000000 is 6.0.0, 5000 is 5.0.
func intVersion(v int64) []int {
	var parts []int
	for v > 0 {
		parts = append([]int{int(v % 1000)}, parts...)
		v /= 1000
	}
	return parts
}

// compareVersions compares dotted versions, missing parts counting as 0
// (6.0 == 6.0.0).
func compareVersions(a, b []int) int {
	for i := 0; i < max(len(a), len(b)); i++ {
		var x, y int
		if i < len(a) {
			x = a[i]
		}
		if i < len(b) {
			y = b[i]
		}
		if x != y {
			if x < y {
				return -1
			}
			return 1
		}
	}
	return 0
}

// satisfies reports whether version v meets every condition.
func satisfies(v []int, conds []versionCond) bool {
	for _, c := range conds {
		r := compareVersions(v, c.ver)
		var ok bool
		switch c.op {
		case "<":
			ok = r < 0
		case "<=":
			ok = r <= 0
		case "==":
			ok = r == 0
		case "!=":
			ok = r != 0
		case ">":
			ok = r > 0
		default: // ">="
			ok = r >= 0
		}
		if !ok {
			return false
		}
	}
	return true
}
