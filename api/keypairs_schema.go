package api

import (
	"fmt"
	"net/url"
	"slices"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/keel-cloud/keel/fsm"
)

// Nova validates os-keypairs requests with JSON schemas (jsonschema reports
// the first error it meets, in schema order); this file checks the same
// rules in the same order and words the faults as Nova does:
//
//	Invalid input for field/attribute name. Value: a!b. 'a!b' does not match '^[_\\- a-zA-Z0-9]+$'

// Name patterns of Nova's keypair_name_special_chars(_v292), as Nova's
// messages quote them (Python repr).
const (
	keypairNamePattern    = `'^[_\\- a-zA-Z0-9]+$'`
	keypairNamePattern292 = `'^[_\\-\\@\\. a-zA-Z0-9]+$'`
)

// keypairCreateRequest is a validated POST /os-keypairs body.
type keypairCreateRequest struct {
	name         string
	keyType      string
	publicKey    string
	hasPublicKey bool
	userID       string // "" unless given (2.10+)
}

// keypairSchemaError is Nova's schema fault for the property prop (""
// for the document itself) whose value is value.
func keypairSchemaError(prop string, value any, msg string) *Error {
	if prop == "" {
		return badRequest("%s", msg)
	}
	return badRequest("Invalid input for field/attribute %s. Value: %s. %s", prop, pyStr(value), msg)
}

// keypairCreateSchema checks body against Nova's create schema of the
// microversion v: create (2.1), create_v22 (2.2), create_v210 (2.10) or
// create_v292 (2.92).
func keypairCreateSchema(v Microversion, body any) (*keypairCreateRequest, error) {
	doc, ok := body.(map[string]any)
	if !ok {
		return nil, keypairSchemaError("", body, pyRepr(body)+" is not of type 'object'")
	}
	props := []string{"name"}
	if v.AtLeast(2, 2) {
		props = append(props, "type")
	}
	props = append(props, "public_key")
	if v.AtLeast(2, 10) {
		props = append(props, "user_id")
	}
	required := []string{"name"}
	if v.AtLeast(2, 92) {
		required = append(required, "public_key")
	}

	req := &keypairCreateRequest{keyType: fsm.KeypairTypeSSH}
	if raw, present := doc["keypair"]; present {
		kp, ok := raw.(map[string]any)
		if !ok {
			return nil, keypairSchemaError("keypair", raw, pyRepr(raw)+" is not of type 'object'")
		}
		for _, p := range props {
			val, present := kp[p]
			if !present {
				continue
			}
			if p == "name" {
				if err := keypairNameSchema(v, val); err != nil {
					return nil, err
				}
				req.name = val.(string)
				continue
			}
			str, ok := val.(string)
			if !ok {
				return nil, keypairSchemaError(p, val, pyRepr(val)+" is not of type 'string'")
			}
			switch p {
			case "type":
				if str != fsm.KeypairTypeSSH && str != fsm.KeypairTypeX509 {
					return nil, keypairSchemaError(p, val, pyRepr(val)+" is not one of ['ssh', 'x509']")
				}
				req.keyType = str
			case "public_key":
				req.publicKey, req.hasPublicKey = str, true
			case "user_id":
				req.userID = str
			}
		}
		for _, p := range required {
			if _, present := kp[p]; !present {
				return nil, keypairSchemaError("keypair", raw, fmt.Sprintf("'%s' is a required property", p))
			}
		}
		if err := keypairNoExtra(kp, props); err != nil {
			return nil, keypairSchemaError("keypair", raw, err.Error())
		}
	}
	if _, present := doc["keypair"]; !present {
		return nil, keypairSchemaError("", body, "'keypair' is a required property")
	}
	if err := keypairNoExtra(doc, []string{"keypair"}); err != nil {
		return nil, keypairSchemaError("", body, err.Error())
	}
	return req, nil
}

// keypairNameSchema is allOf[parameter_types.name, the keypair name
// pattern]: a string, printable without leading or trailing whitespace,
// 1 to 255 characters, then the pattern of the microversion.
func keypairNameSchema(v Microversion, val any) error {
	name, ok := val.(string)
	if !ok {
		return keypairSchemaError("name", val, pyRepr(val)+" is not of type 'string'")
	}
	if !keypairValidName(name) {
		return badRequest("An invalid 'name' value was provided. The name must be: printable characters. Can not start or end with whitespace.")
	}
	n := utf8.RuneCountInString(name)
	if n < 1 {
		return keypairSchemaError("name", val, pyRepr(val)+" should be non-empty")
	}
	if n > fsm.KeypairMaxNameLen {
		return keypairSchemaError("name", val, pyRepr(val)+" is too long")
	}
	pattern, extra := keypairNamePattern, ""
	if v.AtLeast(2, 92) {
		pattern, extra = keypairNamePattern292, "@."
	}
	for _, r := range name {
		if !(r < utf8.RuneSelf && fsm.KeypairNameChar(r) && (r != '@' && r != '.' || extra != "")) {
			return keypairSchemaError("name", val, pyRepr(val)+" does not match "+pattern)
		}
	}
	return nil
}

// keypairPrintable is Nova's _is_printable, limited like Nova's regex to the
// Basic Multilingual Plane: letters, marks, numbers, punctuation, symbols
// and space separators.
func keypairPrintable(r rune) bool {
	return r < 0xFFFF && unicode.In(r, unicode.L, unicode.M, unicode.N, unicode.P, unicode.S, unicode.Zs)
}

// keypairValidName is Nova's valid_name_regex: printable characters, the first
// and the last not a space separator ("" passes; minLength catches it).
func keypairValidName(s string) bool {
	for _, r := range s {
		if !keypairPrintable(r) {
			return false
		}
	}
	if s == "" {
		return true
	}
	first, _ := utf8.DecodeRuneInString(s)
	last, _ := utf8.DecodeLastRuneInString(s)
	return !unicode.Is(unicode.Zs, first) && !unicode.Is(unicode.Zs, last)
}

// keypairNoExtra is jsonschema's additionalProperties: false.
func keypairNoExtra(obj map[string]any, allowed []string) error {
	var extra []string
	for k := range obj {
		if !slices.Contains(allowed, k) {
			extra = append(extra, k)
		}
	}
	if len(extra) == 0 {
		return nil
	}
	slices.Sort(extra)
	quoted := make([]string, len(extra))
	for i, k := range extra {
		quoted[i] = pyRepr(k)
	}
	verb := "was"
	if len(extra) > 1 {
		verb = "were"
	}
	return fmt.Errorf("Additional properties are not allowed (%s %s unexpected)", strings.Join(quoted, ", "), verb)
}

// keypairQuerySchema checks the query of a keypair request: from 2.35 the
// limit values of a list are non-negative integers; from 2.75 parameters
// other than allowed are refused.
func keypairQuerySchema(v Microversion, q url.Values, allowed []string) error {
	if v.AtLeast(2, 35) && slices.Contains(allowed, "limit") {
		for _, val := range q["limit"] {
			msg := ""
			switch {
			case strings.Trim(val, "0123456789") != "":
				msg = pyRepr(val) + " does not match '^[0-9]*$'"
			case val == "":
				msg = "'' should be non-empty"
			}
			if msg != "" {
				return badRequest("Invalid input for query parameters limit. Value: %s. %s", val, msg)
			}
		}
	}
	if v.AtLeast(2, 75) {
		obj := make(map[string]any, len(q))
		for k := range q {
			obj[k] = true
		}
		if err := keypairNoExtra(obj, allowed); err != nil {
			return badRequest("%s", err.Error())
		}
	}
	return nil
}
