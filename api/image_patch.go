package api

import (
	"mime"
	"net/http"
	"slices"
	"strings"

	"github.com/keel-cloud/keel/fsm"
)

// PATCH /v2/images/{image_id}: Glance's JSON patch. The body is an array
// of operations, in the v2.1 form {"op": "add"|"replace"|"remove", "path":
// "/attr", "value": ...} or the v2.0 form {"add"|"replace"|"remove":
// "/attr", "value": ...}. The handler applies them to the image it read and
// proposes the result (UpdateImage), which the FSM validates again.

const (
	patchMediaV20 = "application/openstack-images-v2.0-json-patch"
	patchMediaV21 = "application/openstack-images-v2.1-json-patch"
)

// imagePatchOp is one decoded operation.
type imagePatchOp struct {
	op       string
	attr     string // the one path segment, unescaped
	value    any
	hasValue bool
}

// parseImagePatch validates the operations of a patch document (400 for a
// malformed one, before anything is read or changed).
func parseImagePatch(body any, v20 bool) ([]imagePatchOp, error) {
	list, ok := body.([]any)
	if !ok {
		return nil, badRequest("Request body must be a JSON array of operation objects.")
	}
	var ops []imagePatchOp
	for _, raw := range list {
		m, ok := raw.(map[string]any)
		if !ok {
			return nil, badRequest("Operations must be JSON objects.")
		}
		var op imagePatchOp
		var path any
		if v20 {
			n := 0
			for _, k := range []string{"add", "remove", "replace"} {
				if p, ok := m[k]; ok {
					op.op, path = k, p
					n++
				}
			}
			if n != 1 {
				return nil, badRequest(`Operation objects must contain exactly one member named "add", "remove", or "replace".`)
			}
		} else {
			o, _ := m["op"].(string)
			if !slices.Contains([]string{"add", "remove", "replace"}, o) {
				return nil, badRequest("Unable to find `op` in JSON Schema change. It must be one of the following: add, remove, replace.")
			}
			op.op = o
			p, ok := m["path"]
			if !ok {
				return nil, badRequest("Unable to find '%s' in JSON Schema change", "path")
			}
			path = p
		}
		ps, ok := path.(string)
		if !ok {
			return nil, badRequest("Invalid JSON pointer for this resource: %s", jsonShow(path))
		}
		attr, err := parseImagePointer(ps)
		if err != nil {
			return nil, err
		}
		op.attr = attr
		op.value, op.hasValue = m["value"]
		if op.op != "remove" && !op.hasValue {
			return nil, badRequest(`Operation "%s" requires a member named "value".`, op.op)
		}
		ops = append(ops, op)
	}
	return ops, nil
}

// parseImagePointer decodes a JSON pointer of one segment ("/name"), with
// "~1" for '/' and "~0" for '~'. Glance's only deeper paths are under
// /locations, which Keel does not expose (read-only).
func parseImagePointer(p string) (string, error) {
	bad := badRequest("Invalid JSON pointer for this resource: '%s'", p)
	if !strings.HasPrefix(p, "/") || len(p) < 2 {
		return "", bad
	}
	segs := strings.Split(p[1:], "/")
	if segs[0] == "locations" {
		return "locations", nil
	}
	if len(segs) != 1 {
		return "", bad
	}
	s := segs[0]
	for i := 0; i < len(s); i++ {
		if s[i] == '~' && (i+1 == len(s) || s[i+1] != '0' && s[i+1] != '1') {
			return "", bad
		}
	}
	return strings.NewReplacer("~1", "/", "~0", "~").Replace(s), nil
}

// patchImage is PATCH /v2/images/{image_id}.
func (is *imageService) patchImage(c *Call) error {
	mt, _, _ := mime.ParseMediaType(c.R.Header.Get("Content-Type"))
	if mt != patchMediaV20 && mt != patchMediaV21 {
		e := Errorf(http.StatusUnsupportedMediaType, "Unsupported Content-Type %q: send %s.", c.R.Header.Get("Content-Type"), patchMediaV21)
		e.Header = http.Header{"Accept-Patch": {patchMediaV20 + ", " + patchMediaV21}}
		return e
	}
	// The body is JSON whichever patch media type names it (Decode knows
	// only some of them).
	r := c.R.Clone(c.Context())
	r.Header.Set("Content-Type", "application/json")
	var body any
	if err := decodeJSONBody(c.W, r, &body); err != nil {
		return err
	}
	ops, err := parseImagePatch(body, mt == patchMediaV20)
	if err != nil {
		return err
	}
	for _, op := range ops {
		if e := imageAttrGuard(op.attr); e != nil {
			return e
		}
		if op.attr == "id" {
			return forbidden("Attribute 'id' is read-only.")
		}
	}
	img, err := is.updateImage(c, c.Param("image_id"), glanceMessages, func(img, old *fsm.Image) error {
		for _, op := range ops {
			if err := applyImagePatchOp(c.Auth, img, old, op); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, imageView(img))
}

// applyImagePatchOp applies one operation with Glance's semantics: add sets
// (an attribute or a property, new or not); replace sets what exists (409
// for a missing property); remove deletes a property (409 if missing; the
// schema's attributes may not be removed, 403).
func applyImagePatchOp(a *Auth, img, old *fsm.Image, op imagePatchOp) error {
	base := slices.Contains(fsm.ImageBaseAttributes, op.attr)
	switch op.op {
	case "remove":
		if base {
			return forbidden("Property %s may not be removed.", op.attr)
		}
		if _, ok := img.Properties[op.attr]; !ok {
			return conflict("Property %s does not exist.", op.attr)
		}
		delete(img.Properties, op.attr)
		return nil
	case "replace":
		if !base {
			if _, ok := img.Properties[op.attr]; !ok {
				return conflict("Property %s does not exist.", op.attr)
			}
		}
	}
	if e := setImageAttr(a, img, old, op.attr, op.value); e != nil {
		return e
	}
	return nil
}
