package fsm

import (
	"math"
	"strings"
	"unicode/utf8"
)

// Limits of flavor fields (Nova's API schemas and database columns).
const (
	FlavorMaxIDLen          = 255
	FlavorMaxNameLen        = 255
	FlavorMaxInt            = math.MaxInt32 // Nova's MAX_INT
	FlavorMaxRxTxFactor     = 3.40282e+38   // Nova's SQL_SP_FLOAT_MAX
	FlavorMaxDescriptionLen = 65535
	FlavorMaxSpecKeyLen     = 255
	FlavorMaxSpecValueLen   = 255
	FlavorMaxProjectIDLen   = 255
)

// FlavorIDOK reports whether id is a well-formed flavor id: 1 to 255
// characters of [a-zA-Z0-9. _-], not starting or ending with a space
// (Nova's pattern).
func FlavorIDOK(id string) bool {
	if id == "" || len(id) > FlavorMaxIDLen || id[0] == ' ' || id[len(id)-1] == ' ' {
		return false
	}
	for i := 0; i < len(id); i++ {
		if !flavorIDChar(id[i]) {
			return false
		}
	}
	return true
}

func flavorIDChar(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == ' ' || c == '_' || c == '-'
}

// FlavorSpecKeyOK reports whether k is a well-formed extra spec key: 1 to
// 255 characters of [a-zA-Z0-9-_:. ] (Nova's metadata key pattern).
func FlavorSpecKeyOK(k string) bool {
	if k == "" || len(k) > FlavorMaxSpecKeyLen {
		return false
	}
	for i := 0; i < len(k); i++ {
		c := k[i]
		if !(flavorIDChar(c) || c == ':') {
			return false
		}
	}
	return true
}

func flavorCheckID(id string) error {
	if !FlavorIDOK(id) {
		return Errorf(KindInvalid, "invalid flavor id %s: want 1 to %d characters of [a-zA-Z0-9. _-], not starting or ending with a space", identShow(id), FlavorMaxIDLen)
	}
	return nil
}

// flavorCheckText checks free text: valid UTF-8 without NUL, at most max
// characters.
func flavorCheckText(field, s string, max int) error {
	if !utf8.ValidString(s) || strings.ContainsRune(s, 0) {
		return Errorf(KindInvalid, "%s must be valid UTF-8 without NUL", field)
	}
	if n := utf8.RuneCountInString(s); n > max {
		return Errorf(KindInvalid, "%s is %d characters; at most %d are allowed", field, n, max)
	}
	return nil
}

func (f *Flavor) validate() error {
	if err := flavorCheckID(f.ID); err != nil {
		return err
	}
	if f.Name == "" || strings.TrimSpace(f.Name) != f.Name {
		return Errorf(KindInvalid, "invalid flavor name %s: want 1 to %d characters, not starting or ending with whitespace", identShow(f.Name), FlavorMaxNameLen)
	}
	if err := flavorCheckText("flavor name", f.Name, FlavorMaxNameLen); err != nil {
		return err
	}
	for _, n := range []struct {
		field string
		v     int
		min   int
	}{{"ram", f.RAM, 1}, {"vcpus", f.VCPUs, 1}, {"disk", f.Disk, 0}, {"ephemeral", f.Ephemeral, 0}, {"swap", f.Swap, 0}} {
		if n.v < n.min || n.v > FlavorMaxInt {
			return Errorf(KindInvalid, "flavor %s must be an integer from %d to %d, not %d", n.field, n.min, FlavorMaxInt, n.v)
		}
	}
	if math.IsNaN(f.RxTxFactor) || f.RxTxFactor <= 0 || f.RxTxFactor > FlavorMaxRxTxFactor {
		return Errorf(KindInvalid, "'rxtx_factor' argument must be a float between 0 and %g", FlavorMaxRxTxFactor)
	}
	if err := flavorCheckText("flavor description", f.Description, FlavorMaxDescriptionLen); err != nil {
		return err
	}
	if err := flavorCheckSpecs(f.ExtraSpecs); err != nil {
		return err
	}
	if f.CreatedAt < 0 {
		return Errorf(KindInvalid, "flavor %s has a negative creation time", identShow(f.ID))
	}
	return nil
}

func flavorCheckSpecs(specs map[string]string) error {
	for k, v := range specs {
		if !FlavorSpecKeyOK(k) {
			return Errorf(KindInvalid, "invalid extra spec key %s: want 1 to %d characters of [a-zA-Z0-9-_:. ]", identShow(k), FlavorMaxSpecKeyLen)
		}
		if err := flavorCheckText("the value of extra spec "+identShow(k), v, FlavorMaxSpecValueLen); err != nil {
			return err
		}
	}
	return nil
}

// flavorProjectOK reports whether p can be a project id of an access entry
// (and a key part after the flavor id).
func flavorProjectOK(p string) bool {
	return p != "" && len(p) <= FlavorMaxProjectIDLen && !strings.ContainsAny(p, "\x00/")
}
