package api

import (
	"fmt"
	"maps"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/keel-cloud/keel/fsm"
)

// Nova's deprecated image proxy, /compute/v2.1/images: a view of the Glance
// images for microversions up to 2.35; from 2.36 on every route is a 404,
// as in Nova.

func (is *imageService) registerNovaImages() {
	const p = "/compute/v2.1/images"
	for _, r := range []Route{
		{Method: "GET", Path: p, Policy: ProjectReader, Handle: is.novaList(false)},
		{Method: "GET", Path: p + "/detail", Policy: ProjectReader, Handle: is.novaList(true)},
		{Method: "GET", Path: p + "/{image_id}", Policy: ProjectReader, Handle: is.novaShow},
		{Method: "DELETE", Path: p + "/{image_id}", Policy: ProjectMember, Handle: is.novaDelete},
		{Method: "GET", Path: p + "/{image_id}/metadata", Policy: ProjectReader, Handle: is.novaMetadata},
		{Method: "POST", Path: p + "/{image_id}/metadata", Policy: ProjectMember, Handle: is.novaUpdateMetadata(false)},
		{Method: "PUT", Path: p + "/{image_id}/metadata", Policy: ProjectMember, Handle: is.novaUpdateMetadata(true)},
		{Method: "GET", Path: p + "/{image_id}/metadata/{key}", Policy: ProjectReader, Handle: is.novaMetadataItem},
		{Method: "PUT", Path: p + "/{image_id}/metadata/{key}", Policy: ProjectMember, Handle: is.novaSetMetadataItem},
		{Method: "DELETE", Path: p + "/{image_id}/metadata/{key}", Policy: ProjectMember, Handle: is.novaDeleteMetadataItem},
	} {
		r.Service = ServiceCompute
		h := r.Handle
		r.Handle = func(c *Call) error {
			if c.Version.AtLeast(2, 36) {
				return notFound("The resource could not be found.")
			}
			return h(c)
		}
		is.s.handle(r)
	}
}

var novaImageMessages = imageMessages{
	notFound:  func(string) *Error { return notFound("Image not found.") },
	forbidden: func(id string) *Error { return forbidden("Not authorized for image %s.", id) },
}

// novaImageStatus maps Glance's statuses to Nova's.
func novaImageStatus(s string) string {
	switch s {
	case fsm.ImageActive:
		return "ACTIVE"
	case fsm.ImageQueued, fsm.ImageSaving:
		return "SAVING"
	case fsm.ImageDeleted, fsm.ImagePendingDelete:
		return "DELETED"
	case fsm.ImageKilled:
		return "ERROR"
	}
	return "UNKNOWN"
}

func novaImageProgress(s string) int {
	switch s {
	case fsm.ImageQueued:
		return 25
	case fsm.ImageSaving:
		return 50
	case fsm.ImageActive:
		return 100
	}
	return 0
}

// novaLinks are Nova's self and bookmark links of a resource, plus the
// alternate link to the image service that image views carry.
func (is *imageService) novaLinks(c *Call, collection, id string, alternate bool) []map[string]string {
	base := is.s.publicURL(c.R)
	links := []map[string]string{
		{"rel": "self", "href": base + "/compute/v2.1/" + collection + "/" + id},
		{"rel": "bookmark", "href": base + "/compute/" + collection + "/" + id},
	}
	if alternate {
		links = append(links, map[string]string{"rel": "alternate", "type": "application/vnd.openstack.image", "href": base + "/image/images/" + id})
	}
	return links
}

// novaImageView is Nova's image view (the detailed one, or id, name and
// links).
func (is *imageService) novaImageView(c *Call, img *fsm.Image, detail bool) map[string]any {
	v := map[string]any{"id": img.ID, "name": nullable(img.Name), "links": is.novaLinks(c, "images", img.ID, true)}
	if !detail {
		return v
	}
	meta := maps.Clone(img.Properties)
	if meta == nil {
		meta = map[string]string{}
	}
	v["minRam"] = img.MinRAM
	v["minDisk"] = img.MinDisk
	v["metadata"] = meta
	v["created"] = imageTime(img.CreatedAt)
	v["updated"] = imageTime(img.UpdatedAt)
	v["status"] = novaImageStatus(img.Status)
	v["progress"] = novaImageProgress(img.Status)
	v["OS-EXT-IMG-SIZE:size"] = img.Size
	if server, ok := meta["instance_uuid"]; ok {
		v["server"] = map[string]any{"id": server, "links": is.novaLinks(c, "servers", server, false)}
	}
	if adc, ok := meta["auto_disk_config"]; ok {
		if b, err := strconv.ParseBool(adc); err == nil && b {
			v["OS-DCF:diskConfig"] = "AUTO"
		} else {
			v["OS-DCF:diskConfig"] = "MANUAL"
		}
	}
	return v
}

// novaMaxLimit is Nova's [api] max_limit.
const novaMaxLimit = 1000

// novaList is GET /images and /images/detail: filters name, status,
// changes-since, server, type, minRam, minDisk; paging with limit and
// marker ("images_links" has the next page when the page is full).
func (is *imageService) novaList(detail bool) HandlerFunc {
	return func(c *Call) error {
		q := c.R.URL.Query()
		query := fsm.ImageQuery{ProjectID: c.Auth.ProjectID, IsAdmin: c.Auth.IsAdmin(), Marker: q.Get("marker")}
		max := novaMaxLimit
		if q.Has("limit") {
			n, err := strconv.Atoi(q.Get("limit"))
			switch {
			case err != nil:
				return badRequest("limit param must be an integer")
			case n < 0:
				return badRequest("limit param must be positive")
			}
			if n == 0 {
				return c.JSON(http.StatusOK, map[string]any{"images": []any{}})
			}
			max = min(n, novaMaxLimit)
			query.Limit = max
		}
		var filters []func(*fsm.Image) bool
		if q.Has("name") {
			name := q.Get("name")
			filters = append(filters, func(i *fsm.Image) bool { return i.Name == name })
		}
		if q.Has("status") {
			st := strings.ToLower(q.Get("status"))
			filters = append(filters, func(i *fsm.Image) bool { return i.Status == st })
		}
		if q.Has("changes-since") {
			t, err := parseISOTime(q.Get("changes-since"))
			if err != nil {
				return badRequest("Invalid changes-since value: %q is not an ISO 8601 time.", q.Get("changes-since"))
			}
			since := t.Unix()
			filters = append(filters, func(i *fsm.Image) bool { return i.UpdatedAt/1e6 >= since })
		}
		for param, prop := range map[string]string{"server": "instance_uuid", "type": "image_type"} {
			if !q.Has(param) {
				continue
			}
			want := q.Get(param)
			if param == "server" {
				want = want[strings.LastIndex(want, "/")+1:]
			}
			filters = append(filters, func(i *fsm.Image) bool { v, ok := i.Properties[prop]; return ok && v == want })
		}
		for param, field := range map[string]func(*fsm.Image) int{"minRam": func(i *fsm.Image) int { return i.MinRAM }, "minDisk": func(i *fsm.Image) int { return i.MinDisk }} {
			if !q.Has(param) {
				continue
			}
			n, err := strconv.Atoi(q.Get(param))
			if err != nil {
				return badRequest("Invalid %s filter: %q is not an integer.", param, q.Get(param))
			}
			filters = append(filters, func(i *fsm.Image) bool { return field(i) >= n })
		}
		if len(filters) > 0 {
			query.Match = func(img *fsm.Image) bool {
				for _, f := range filters {
					if !f(img) {
						return false
					}
				}
				return true
			}
		}
		st, err := is.s.readState(c)
		if err != nil {
			return err
		}
		imgs, err := fsm.ListImages(st, query)
		if err != nil {
			if e, ok := fsm.AsError(err); ok && e.Kind == fsm.KindInvalid && query.Marker != "" {
				return badRequest("marker [%s] not found", query.Marker)
			}
			return err
		}
		out := make([]any, 0, len(imgs))
		for i := range imgs {
			out = append(out, is.novaImageView(c, &imgs[i], detail))
		}
		body := map[string]any{"images": out}
		if max > 0 && len(imgs) == max {
			params := url.Values{}
			for k, v := range q {
				params[k] = v
			}
			params.Set("marker", imgs[len(imgs)-1].ID)
			coll := "images"
			if detail {
				coll = "images/detail"
			}
			body["images_links"] = []map[string]string{{"rel": "next", "href": is.s.publicURL(c.R) + "/compute/v2.1/" + coll + "?" + params.Encode()}}
		}
		return c.JSON(http.StatusOK, body)
	}
}

// novaImage reads a visible image (404 "Image not found." otherwise).
func (is *imageService) novaImage(c *Call) (*fsm.State, *fsm.Image, error) {
	st, img, _, err := is.visibleImage(c, c.Param("image_id"))
	if e, ok := err.(*Error); ok && e.Status == http.StatusNotFound {
		return nil, nil, notFound("Image not found.")
	}
	return st, img, err
}

// novaShow is GET /images/{image_id}.
func (is *imageService) novaShow(c *Call) error {
	_, img, err := is.novaImage(c)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, map[string]any{"image": is.novaImageView(c, img, true)})
}

// novaDelete is DELETE /images/{image_id}: Glance's refusals (not the
// owner, protected) are Nova's 403 "You are not allowed to delete the
// image."
func (is *imageService) novaDelete(c *Call) error {
	_, img, err := is.novaImage(c)
	if err != nil {
		return err
	}
	if !canModify(c.Auth, img) || img.Protected {
		return forbidden("You are not allowed to delete the image.")
	}
	gone, err := is.removeImage(c, img.ID)
	if e, ok := err.(*Error); ok {
		switch e.Status {
		case http.StatusNotFound:
			return notFound("Image not found.")
		case http.StatusForbidden:
			return forbidden("You are not allowed to delete the image.")
		}
	}
	if err != nil {
		return err
	}
	is.releaseData(gone)
	return c.NoContent(http.StatusNoContent)
}

// novaMetadata is GET /images/{image_id}/metadata.
func (is *imageService) novaMetadata(c *Call) error {
	_, img, err := is.novaImage(c)
	if err != nil {
		return err
	}
	meta := maps.Clone(img.Properties)
	if meta == nil {
		meta = map[string]string{}
	}
	return c.JSON(http.StatusOK, map[string]any{"metadata": meta})
}

// novaMetadataItem is GET /images/{image_id}/metadata/{key}.
func (is *imageService) novaMetadataItem(c *Call) error {
	_, img, err := is.novaImage(c)
	if err != nil {
		return err
	}
	key := c.Param("key")
	v, ok := img.Properties[key]
	if !ok {
		return notFound("Metadata item was not found")
	}
	return c.JSON(http.StatusOK, map[string]any{"meta": map[string]string{key: v}})
}

// novaMetaKeyRE is Nova's metadata key pattern.
var novaMetaKeyRE = regexp.MustCompile(`^[a-zA-Z0-9-_:. ]{1,255}$`)

// novaMetadataBody validates Nova's {"<field>": {key: value, ...}}.
func novaMetadataBody(c *Call, field string, minItems, maxItems int) (map[string]string, error) {
	var body map[string]any
	if err := c.Decode(&body); err != nil {
		return nil, err
	}
	invalid := func(format string, args ...any) error {
		return badRequest("Invalid input for field/attribute %s. %s", field, strings.TrimSpace(fmt.Sprintf(format, args...)))
	}
	raw, ok := body[field]
	if !ok {
		return nil, badRequest("Invalid input for field/attribute %s. '%s' is a required property", field, field)
	}
	for k := range body {
		if k != field {
			return nil, badRequest("Additional properties are not allowed ('%s' was unexpected)", k)
		}
	}
	m, ok := raw.(map[string]any)
	if !ok {
		return nil, invalid("Value: %s. %s is not of type 'object'", jsonShow(raw), jsonShow(raw))
	}
	if len(m) < minItems {
		return nil, invalid("Value: %s. %s does not have enough properties", jsonShow(raw), jsonShow(raw))
	}
	if maxItems > 0 && len(m) > maxItems {
		return nil, invalid("Value: %s. %s has too many properties", jsonShow(raw), jsonShow(raw))
	}
	out := make(map[string]string, len(m))
	for _, k := range slices.Sorted(maps.Keys(m)) {
		if !novaMetaKeyRE.MatchString(k) {
			return nil, invalid("Value: %s. Additional properties are not allowed ('%s' was unexpected)", jsonShow(raw), k)
		}
		s, ok := m[k].(string)
		if !ok {
			return nil, invalid("Value: %s. %s is not of type 'string'", jsonShow(m[k]), jsonShow(m[k]))
		}
		if len([]rune(s)) > 255 {
			return nil, invalid("Value: %s. %s is too long", jsonShow(s), jsonShow(s))
		}
		out[k] = s
	}
	return out, nil
}

// novaSetProperties replaces the properties of an image through Glance's
// rules (reserved names are Glance's 403) and Nova's metadata_items quota.
func (is *imageService) novaSetProperties(c *Call, id string, change func(props map[string]string) error) (map[string]string, error) {
	img, err := is.updateImage(c, id, novaImageMessages, func(img, _ *fsm.Image) error {
		props := maps.Clone(img.Properties)
		if props == nil {
			props = map[string]string{}
		}
		if err := change(props); err != nil {
			return err
		}
		for k := range props {
			if fsm.ImagePropertyKeyReserved(k) {
				if _, had := img.Properties[k]; !had {
					return forbidden("Not authorized for image %s: '%s' is an image attribute, not metadata.", id, k)
				}
			}
		}
		if c.Auth.ProjectID != "" {
			st := is.s.node.State()
			limits, err := fsm.ProjectQuotas(st, c.Auth.ProjectID)
			if err != nil {
				return err
			}
			if l := limits["metadata_items"]; l >= 0 && int64(len(props)) > l {
				return forbidden("Image metadata limit exceeded")
			}
		}
		if len(props) > fsm.ImageMaxProperties {
			return forbidden("Image metadata limit exceeded")
		}
		img.Properties = props
		return nil
	})
	if err != nil {
		return nil, err
	}
	out := maps.Clone(img.Properties)
	if out == nil {
		out = map[string]string{}
	}
	return out, nil
}

// novaUpdateMetadata is POST /images/{image_id}/metadata (merge) and PUT
// (replace all).
func (is *imageService) novaUpdateMetadata(replace bool) HandlerFunc {
	return func(c *Call) error {
		meta, err := novaMetadataBody(c, "metadata", 0, 0)
		if err != nil {
			return err
		}
		out, err := is.novaSetProperties(c, c.Param("image_id"), func(props map[string]string) error {
			if replace {
				clear(props)
			}
			maps.Copy(props, meta)
			return nil
		})
		if err != nil {
			return err
		}
		if replace {
			out = meta
		}
		return c.JSON(http.StatusOK, map[string]any{"metadata": out})
	}
}

// novaSetMetadataItem is PUT /images/{image_id}/metadata/{key}
// {"meta": {key: value}}.
func (is *imageService) novaSetMetadataItem(c *Call) error {
	key := c.Param("key")
	meta, err := novaMetadataBody(c, "meta", 1, 1)
	if err != nil {
		return err
	}
	v, ok := meta[key]
	if !ok {
		return badRequest("Request body and URI mismatch")
	}
	if _, err := is.novaSetProperties(c, c.Param("image_id"), func(props map[string]string) error {
		props[key] = v
		return nil
	}); err != nil {
		return err
	}
	return c.JSON(http.StatusOK, map[string]any{"meta": meta})
}

// novaDeleteMetadataItem is DELETE /images/{image_id}/metadata/{key}.
func (is *imageService) novaDeleteMetadataItem(c *Call) error {
	key := c.Param("key")
	if _, err := is.novaSetProperties(c, c.Param("image_id"), func(props map[string]string) error {
		if _, ok := props[key]; !ok {
			return notFound("Invalid metadata key")
		}
		delete(props, key)
		return nil
	}); err != nil {
		return err
	}
	return c.NoContent(http.StatusNoContent)
}
