package api

import (
	"encoding/json"
	"fmt"
	"math"
	"math/big"
	"slices"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Validation of the flavor APIs' bodies and queries with the messages Nova's
// JSON schema validation gives ("Invalid input for field/attribute ram.
// Value: 0. 0 is less than the minimum of 1"). Values in messages are
// rendered as Python renders them, since clients and tests compare them with
// Nova's. Bodies are decoded with json.Number (Call.Decode), so integers and
// floats can be told apart as Python's json module does.

// flvFieldErr is a schema error at a body field.
func flvFieldErr(field string, value any, msg string) *Error {
	return badRequest("Invalid input for field/attribute %s. Value: %s. %s", field, pyStr(value), msg)
}

// flvQueryErr is a schema error of a query parameter.
func flvQueryErr(param, value, msg string) *Error {
	return badRequest("Invalid input for query parameters %s. Value: %s. %s", param, value, msg)
}

// flvInvalidInput is Nova's InvalidInput (raised after the schema passed).
func flvInvalidInput(format string, args ...any) *Error {
	return badRequest("Invalid input received: %s", fmt.Sprintf(format, args...))
}

// flvTypeMsg is jsonschema's type error.
func flvTypeMsg(v any, types ...string) string {
	q := make([]string, len(types))
	for i, t := range types {
		q[i] = "'" + t + "'"
	}
	return fmt.Sprintf("%s is not of type %s", pyRepr(v), strings.Join(q, ", "))
}

// flvAdditional is jsonschema's additionalProperties error.
func flvAdditional(extras []string) string {
	slices.Sort(extras)
	q := make([]string, len(extras))
	for i, e := range extras {
		q[i] = pyRepr(e)
	}
	verb := "was"
	if len(extras) > 1 {
		verb = "were"
	}
	return fmt.Sprintf("Additional properties are not allowed (%s %s unexpected)", strings.Join(q, ", "), verb)
}

// flvExtras returns the keys of m not in allowed.
func flvExtras(m map[string]any, allowed ...string) []string {
	var out []string
	for k := range m {
		if !slices.Contains(allowed, k) {
			out = append(out, k)
		}
	}
	return out
}

// flvPyInt parses s as Python's int(str) does: surrounding whitespace, a
// sign, digits with single underscores between them.
func flvPyInt(s string) (*big.Int, bool) {
	s = strings.TrimFunc(s, unicode.IsSpace)
	digits := strings.TrimLeft(s, "+-")
	if len(s)-len(digits) > 1 || digits == "" || digits[0] == '_' || digits[len(digits)-1] == '_' || strings.Contains(digits, "__") {
		return nil, false
	}
	n, ok := new(big.Int).SetString(strings.ReplaceAll(s, "_", ""), 10)
	return n, ok
}

// flvPrintable is Nova's printable character: a BMP code point that is
// neither "other" (control, format, unassigned...) nor a separator other
// than a space separator (Zs).
func flvPrintable(r rune) bool {
	if r >= 0xffff || unicode.In(r, unicode.C, unicode.Zl, unicode.Zp) {
		return false
	}
	return unicode.In(r, unicode.L, unicode.M, unicode.N, unicode.P, unicode.S, unicode.Zs)
}

// flvNameOK is Nova's "name" format: printable characters, not starting or
// ending with whitespace.
func flvNameOK(s string) bool {
	if !utf8.ValidString(s) {
		return false
	}
	for _, r := range s {
		if !flvPrintable(r) {
			return false
		}
	}
	if s == "" {
		return true // minLength decides
	}
	first, _ := utf8.DecodeRuneInString(s)
	last, _ := utf8.DecodeLastRuneInString(s)
	return !unicode.Is(unicode.Zs, first) && !unicode.Is(unicode.Zs, last)
}

// flvTextOK is Nova's description pattern: printable characters only.
func flvTextOK(s string) bool {
	if !utf8.ValidString(s) {
		return false
	}
	for _, r := range s {
		if !flvPrintable(r) {
			return false
		}
	}
	return true
}

// flvNameErr is Nova's InvalidName message for the "name" format.
const flvNameErr = "An invalid 'name' value was provided. The name must be: printable characters. Can not start or end with whitespace."

// flvLen is a string's length in characters, as Python counts it.
func flvLen(s string) int { return utf8.RuneCountInString(s) }

// flvPyBool is oslo's bool_from_string(strict=True) for the values Nova's
// boolean parameter type admits; ok is false for anything else.
func flvPyBool(v any) (val, ok bool) {
	switch x := v.(type) {
	case bool:
		return x, true
	case string:
		switch strings.ToLower(strings.TrimSpace(x)) {
		case "1", "t", "true", "on", "y", "yes":
			return true, true
		case "0", "f", "false", "off", "n", "no":
			return false, true
		}
	}
	return false, false
}

// flvBooleanEnum is Nova's parameter_types.boolean enum, as its schema
// error lists it.
var flvBooleanEnum = []any{true, "True", "TRUE", "true", "1", "ON", "On", "on", "YES", "Yes", "yes",
	false, "False", "FALSE", "false", "0", "OFF", "Off", "off", "NO", "No", "no"}

// flvCheckBoolean validates a parameter_types.boolean property.
func flvCheckBoolean(field string, v any) *Error {
	switch x := v.(type) {
	case bool:
		return nil
	case string:
		if slices.Contains(flvBooleanEnum, any(x)) {
			return nil
		}
		return flvFieldErr(field, v, fmt.Sprintf("%s is not one of %s", pyRepr(v), pyRepr(flvBooleanEnum)))
	}
	return flvFieldErr(field, v, flvTypeMsg(v, "boolean", "string"))
}

// flvIntProp validates Nova's flavor_param_positive/_non_negative property
// (an integer, or a string of digits, from min to 2147483647). integral is
// set for a float with an integral value (1.0), which the schema admits but
// Nova's later int(str(value)) refuses.
func flvIntProp(field string, v any, min int64) (n int, integral bool, err *Error) {
	const max = math.MaxInt32
	check := func(val *big.Int, shown string) *Error {
		if val.Cmp(big.NewInt(min)) < 0 {
			return flvFieldErr(field, v, fmt.Sprintf("%s is less than the minimum of %d", shown, min))
		}
		if val.Cmp(big.NewInt(max)) > 0 {
			return flvFieldErr(field, v, fmt.Sprintf("%s is greater than the maximum of %d", shown, max))
		}
		return nil
	}
	switch x := v.(type) {
	case json.Number:
		if pyIntLiteral.MatchString(string(x)) {
			b, _ := new(big.Int).SetString(string(x), 10)
			if err := check(b, b.String()); err != nil {
				return 0, false, err
			}
			return int(b.Int64()), false, nil
		}
		f, perr := strconv.ParseFloat(string(x), 64)
		if perr != nil || f != math.Trunc(f) {
			return 0, false, flvFieldErr(field, v, flvTypeMsg(v, "integer", "string"))
		}
		switch {
		case f < float64(min):
			return 0, false, flvFieldErr(field, v, fmt.Sprintf("%s is less than the minimum of %d", pyFloatRepr(f), min))
		case f > max:
			return 0, false, flvFieldErr(field, v, fmt.Sprintf("%s is greater than the maximum of %d", pyFloatRepr(f), max))
		}
		return int(f), true, nil
	case string:
		if x == "" || strings.Trim(x, "0123456789") != "" {
			return 0, false, flvFieldErr(field, v, fmt.Sprintf("%s does not match '^[0-9]+$'", pyRepr(x)))
		}
		b, _ := new(big.Int).SetString(x, 10)
		if err := check(b, b.String()); err != nil {
			return 0, false, err
		}
		return int(b.Int64()), false, nil
	}
	return 0, false, flvFieldErr(field, v, flvTypeMsg(v, "integer", "string"))
}
