package api

import (
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/keel-cloud/keel/fsm"
	"github.com/keel-cloud/keel/internal/ids"
)

// Glance v2 image records: create, list, show, delete, tags and members.
// PATCH is in image_patch.go, data in image_data.go.

// imageSchemaError is Glance's 400 for a body that fails its JSON schema.
func imageSchemaError(schema, format string, args ...any) *Error {
	return badRequest("Provided object does not match schema '%s': %s", schema, fmt.Sprintf(format, args...))
}

// imageReadOnly lists the attributes a client may not set (Glance answers
// 403 "Attribute 'x' is read-only.").
var imageReadOnly = []string{
	"checksum", "created_at", "updated_at", "status", "size", "virtual_size", "os_hash_algo",
	"os_hash_value", "self", "file", "schema", "direct_url", "locations", "stores",
}

// imageAttrGuard refuses read-only and reserved attributes with Glance's 403.
func imageAttrGuard(name string) *Error {
	if slices.Contains(imageReadOnly, name) {
		return forbidden("Attribute '%s' is read-only.", name)
	}
	if slices.Contains(fsm.ImageReservedAttributes, name) || strings.HasPrefix(name, "os_glance") {
		return forbidden("Attribute '%s' is reserved.", name)
	}
	return nil
}

// jsonInt reads a JSON integer between lo and hi.
func jsonInt(v any, lo, hi int64) (int64, bool) {
	n, ok := v.(json.Number)
	if !ok {
		return 0, false
	}
	i, err := strconv.ParseInt(string(n), 10, 64)
	if err != nil || i < lo || i > hi {
		return 0, false
	}
	return i, true
}

// jsonShow renders a value for an error message.
func jsonShow(v any) string {
	b, _ := json.Marshal(v)
	s := string(b)
	if len(s) > 80 {
		s = s[:77] + "..."
	}
	return s
}

// setImageAttr sets attribute name of img to the JSON value v, as a create
// (creating) or a PATCH (old is the stored image) does. Read-only and
// reserved names are the caller's check.
func setImageAttr(a *Auth, img, old *fsm.Image, name string, v any) *Error {
	creating := old == nil
	str := func(max int, nullOK bool) (string, *Error) {
		if v == nil && nullOK {
			return "", nil
		}
		s, ok := v.(string)
		if !ok {
			return "", imageSchemaError("image", "%s is not of type 'string' (attribute '%s')", jsonShow(v), name)
		}
		if utf8.RuneCountInString(s) > max || !utf8.ValidString(s) || strings.ContainsRune(s, 0) {
			return "", imageSchemaError("image", "'%s' is too long or not valid text (at most %d characters)", name, max)
		}
		return s, nil
	}
	enum := func(vals []string) (string, *Error) {
		if v == nil {
			return "", nil
		}
		s, ok := v.(string)
		if !ok || !slices.Contains(vals, s) {
			return "", imageSchemaError("image", "%s is not one of ['%s'] (attribute '%s')", jsonShow(v), strings.Join(vals, "', '"), name)
		}
		return s, nil
	}
	switch name {
	case "id":
		if !creating {
			return forbidden("Attribute 'id' is read-only.")
		}
		s, ok := v.(string)
		if !ok || !ids.IsUUID(s) {
			return imageSchemaError("image", "%s is not a 'uuid' (attribute 'id')", jsonShow(v))
		}
		img.ID = strings.ToLower(s)
	case "name":
		s, err := str(fsm.ImageMaxNameLen, true)
		if err != nil {
			return err
		}
		img.Name = s
	case "visibility":
		s, ok := v.(string)
		if !ok || !slices.Contains([]string{fsm.VisibilityPublic, fsm.VisibilityPrivate, fsm.VisibilityShared, fsm.VisibilityCommunity}, s) {
			return imageSchemaError("image", "%s is not one of ['community', 'public', 'private', 'shared'] (attribute 'visibility')", jsonShow(v))
		}
		if s == fsm.VisibilityPublic && !a.IsAdmin() && (creating || old.Visibility != s) {
			return forbidden("You are not authorized to complete publicize_image action.")
		}
		img.Visibility = s
	case "owner":
		s, ok := v.(string)
		if !ok || s == "" || len(s) > 64 || strings.ContainsAny(s, "\x00/") {
			return imageSchemaError("image", "%s is not a valid project id (attribute 'owner')", jsonShow(v))
		}
		if !a.IsAdmin() && s != img.Owner {
			if creating {
				return forbidden("You are not permitted to create images owned by '%s'.", s)
			}
			return forbidden("You are not permitted to modify 'owner' on this image.")
		}
		img.Owner = s
	case "disk_format", "container_format":
		vals := fsm.ImageDiskFormats
		if name == "container_format" {
			vals = fsm.ImageContainerFormats
		}
		s, err := enum(vals)
		if err != nil {
			return err
		}
		if !creating && old.Status != fsm.ImageQueued {
			if cur := map[bool]string{true: old.DiskFormat, false: old.ContainerFormat}[name == "disk_format"]; cur != s {
				return forbidden("Attribute %s can be only replaced for a queued image.", name)
			}
		}
		if name == "disk_format" {
			img.DiskFormat = s
		} else {
			img.ContainerFormat = s
		}
	case "min_disk", "min_ram":
		n, ok := jsonInt(v, 0, fsm.ImageMaxInt)
		if !ok {
			return imageSchemaError("image", "%s is not an integer between 0 and %d (attribute '%s')", jsonShow(v), fsm.ImageMaxInt, name)
		}
		if name == "min_disk" {
			img.MinDisk = int(n)
		} else {
			img.MinRAM = int(n)
		}
	case "protected", "os_hidden":
		b, ok := v.(bool)
		if !ok {
			return imageSchemaError("image", "%s is not of type 'boolean' (attribute '%s')", jsonShow(v), name)
		}
		if name == "protected" {
			img.Protected = b
		} else {
			img.Hidden = b
		}
	case "tags":
		list, ok := v.([]any)
		if !ok {
			return imageSchemaError("image", "%s is not of type 'array' (attribute 'tags')", jsonShow(v))
		}
		var tags []string
		for _, t := range list {
			s, ok := t.(string)
			if !ok || s == "" || utf8.RuneCountInString(s) > fsm.ImageMaxTagLen || !utf8.ValidString(s) || strings.ContainsRune(s, 0) {
				return imageSchemaError("image", "%s is not a valid tag: want a string of 1 to %d characters (attribute 'tags')", jsonShow(t), fsm.ImageMaxTagLen)
			}
			if !slices.Contains(tags, s) {
				tags = append(tags, s)
			}
		}
		if len(tags) > fsm.ImageMaxTags {
			return Errorf(http.StatusRequestEntityTooLarge, "Maximum number of tags exceeded: attempted %d, maximum %d.", len(tags), fsm.ImageMaxTags)
		}
		img.Tags = tags
	default:
		if slices.Contains(fsm.ImageBaseAttributes, name) {
			return forbidden("Attribute '%s' is read-only.", name)
		}
		if name == "" || utf8.RuneCountInString(name) > fsm.ImageMaxPropertyKey || !utf8.ValidString(name) || strings.ContainsAny(name, "\x00/") {
			return imageSchemaError("image", "invalid property name %s: want 1 to %d characters without '/'", jsonShow(name), fsm.ImageMaxPropertyKey)
		}
		s, ok := v.(string)
		if !ok {
			return imageSchemaError("image", "%s is not of type 'string' (additional property '%s')", jsonShow(v), name)
		}
		if len(s) > fsm.ImageMaxPropertyValue || !utf8.ValidString(s) || strings.ContainsRune(s, 0) {
			return imageSchemaError("image", "the value of property '%s' is longer than %d bytes or not valid text", name, fsm.ImageMaxPropertyValue)
		}
		if img.Properties == nil {
			img.Properties = map[string]string{}
		}
		if _, exists := img.Properties[name]; !exists && len(img.Properties) >= fsm.ImageMaxProperties {
			return Errorf(http.StatusRequestEntityTooLarge, "Maximum number of image properties exceeded: at most %d additional properties are allowed.", fsm.ImageMaxProperties)
		}
		img.Properties[name] = s
	}
	return nil
}

// decodeObject reads a JSON object body.
func decodeObject(c *Call, schema string) (map[string]any, error) {
	var body any
	if err := c.Decode(&body); err != nil {
		return nil, err
	}
	m, ok := body.(map[string]any)
	if !ok {
		return nil, imageSchemaError(schema, "%s is not of type 'object'", jsonShow(body))
	}
	return m, nil
}

// createImage is POST /v2/images: a queued image without data, owned by
// the caller's project (an admin may name another owner).
func (is *imageService) createImage(c *Call) error {
	body, err := decodeObject(c, "image")
	if err != nil {
		return err
	}
	img := fsm.Image{Visibility: fsm.VisibilityShared, Owner: c.Auth.ProjectID}
	for _, k := range slices.Sorted(maps.Keys(body)) {
		if e := imageAttrGuard(k); e != nil {
			return e
		}
		if e := setImageAttr(c.Auth, &img, nil, k, body[k]); e != nil {
			return e
		}
	}
	if img.Owner == "" {
		return badRequest("An image needs an owner project: use a project-scoped token or set 'owner'.")
	}
	if img.ID == "" {
		img.ID = ids.UUID()
	}
	now := time.Now().UnixMicro()
	img.CreatedAt, img.UpdatedAt = now, now
	var out fsm.Image
	if err := is.s.apply(c.Context(), &fsm.CreateImage{Image: img}, &out); err != nil {
		return err
	}
	c.W.Header().Set("Location", is.s.publicURL(c.R)+"/image/v2/images/"+out.ID)
	return c.JSON(http.StatusCreated, imageView(&out))
}

// showImage is GET /v2/images/{image_id}.
func (is *imageService) showImage(c *Call) error {
	_, img, _, err := is.visibleImage(c, c.Param("image_id"))
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, imageView(img))
}

// imageListParams are the query parameters that are not property filters.
var imageListParams = []string{
	"limit", "marker", "sort_key", "sort_dir", "sort", "name", "status", "visibility", "owner",
	"tag", "member_status", "protected", "os_hidden", "container_format", "disk_format", "size_min",
	"size_max", "size", "id", "created_at", "updated_at",
}

// listImages is GET /v2/images with Glance's filters (name, status,
// visibility, owner, tag, member_status, protected, os_hidden,
// container_format, disk_format, size_min, size_max, id, created_at and
// updated_at with their operators, additional properties by name), sorting
// (sort_key/sort_dir or sort) and paging (limit, marker, the "next" link).
func (is *imageService) listImages(c *Call) error {
	q := c.R.URL.Query()
	query := fsm.ImageQuery{ProjectID: c.Auth.ProjectID, IsAdmin: c.Auth.IsAdmin(), Limit: imageDefaultLimit, Marker: q.Get("marker")}
	if q.Has("limit") {
		n, err := strconv.Atoi(q.Get("limit"))
		switch {
		case err != nil:
			return badRequest("limit param must be an integer")
		case n < 0:
			return badRequest("limit param must be positive")
		}
		if n == 0 {
			return c.JSON(http.StatusOK, map[string]any{"images": []any{}, "first": "/v2/images?" + q.Encode(), "schema": "/v2/schemas/images"})
		}
		query.Limit = min(n, imageMaxLimit)
	}
	sorts, err := imageSortParams(q)
	if err != nil {
		return err
	}
	query.Sort = sorts
	if v := q.Get("visibility"); q.Has("visibility") {
		switch v {
		case "public", "private", "shared", "community", "all":
			query.Visibility = v
		default:
			return badRequest("Invalid visibility value: %s", v)
		}
	}
	if v := q.Get("member_status"); q.Has("member_status") {
		switch v {
		case "pending", "accepted", "rejected", "all":
			query.MemberStatus = v
		default:
			return badRequest("Invalid status value: %s", v)
		}
	}
	if q.Has("os_hidden") {
		b, err := strconv.ParseBool(q.Get("os_hidden"))
		if err != nil {
			return badRequest("Invalid value for os_hidden: %q; it must be true or false.", q.Get("os_hidden"))
		}
		query.Hidden = &b
	}
	var filters []func(*fsm.Image) bool
	inFilter := func(param string, field func(*fsm.Image) string) {
		if !q.Has(param) {
			return
		}
		raw := q.Get(param)
		want := []string{raw}
		if rest, ok := strings.CutPrefix(raw, "in:"); ok {
			want = strings.Split(rest, ",")
		}
		filters = append(filters, func(img *fsm.Image) bool { return slices.Contains(want, field(img)) })
	}
	inFilter("name", func(i *fsm.Image) string { return i.Name })
	inFilter("status", func(i *fsm.Image) string { return i.Status })
	inFilter("owner", func(i *fsm.Image) string { return i.Owner })
	inFilter("container_format", func(i *fsm.Image) string { return i.ContainerFormat })
	inFilter("disk_format", func(i *fsm.Image) string { return i.DiskFormat })
	inFilter("id", func(i *fsm.Image) string { return i.ID })
	if tags := q["tag"]; len(tags) > 0 {
		filters = append(filters, func(img *fsm.Image) bool {
			for _, t := range tags {
				if !slices.Contains(img.Tags, t) {
					return false
				}
			}
			return true
		})
	}
	if q.Has("protected") {
		b, err := strconv.ParseBool(q.Get("protected"))
		if err != nil {
			return badRequest("Invalid value for protected: %q; it must be true or false.", q.Get("protected"))
		}
		filters = append(filters, func(img *fsm.Image) bool { return img.Protected == b })
	}
	for _, p := range []string{"size_min", "size_max", "size"} {
		if !q.Has(p) {
			continue
		}
		n, err := strconv.ParseInt(q.Get(p), 10, 64)
		if err != nil || n < 0 {
			return badRequest("Invalid value for %s: %q; it must be a non-negative integer.", p, q.Get(p))
		}
		switch p {
		case "size_min":
			filters = append(filters, func(img *fsm.Image) bool { return img.SHA256 != "" && img.Size >= n })
		case "size_max":
			filters = append(filters, func(img *fsm.Image) bool { return img.SHA256 != "" && img.Size <= n })
		default: // an exact size, as Glance filters on any core attribute
			filters = append(filters, func(img *fsm.Image) bool { return img.SHA256 != "" && img.Size == n })
		}
	}
	for _, p := range []string{"created_at", "updated_at"} {
		if !q.Has(p) {
			continue
		}
		f, err := imageTimeFilter(p, q.Get(p))
		if err != nil {
			return err
		}
		field := func(img *fsm.Image) int64 { return img.CreatedAt }
		if p == "updated_at" {
			field = func(img *fsm.Image) int64 { return img.UpdatedAt }
		}
		filters = append(filters, func(img *fsm.Image) bool { return f(field(img)) })
	}
	for k, vs := range q {
		if slices.Contains(imageListParams, k) {
			continue
		}
		want := vs[len(vs)-1]
		filters = append(filters, func(img *fsm.Image) bool { v, ok := img.Properties[k]; return ok && v == want })
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
		return err
	}
	views := make([]any, 0, len(imgs))
	for i := range imgs {
		views = append(views, imageView(&imgs[i]))
	}
	params := url.Values{}
	for k, v := range q {
		if k != "marker" {
			params[k] = v
		}
	}
	body := map[string]any{"images": views, "first": "/v2/images", "schema": "/v2/schemas/images"}
	if len(params) > 0 {
		body["first"] = "/v2/images?" + params.Encode()
	}
	if len(imgs) > 0 && len(imgs) == query.Limit {
		params.Set("marker", imgs[len(imgs)-1].ID)
		body["next"] = "/v2/images?" + params.Encode()
	}
	return c.JSON(http.StatusOK, body)
}

// imageSortParams reads sort_key/sort_dir (repeatable) or sort
// ("key:dir,key"), Glance's two ways of ordering a list.
func imageSortParams(q url.Values) ([]fsm.ImageSort, error) {
	checkKey := func(k string) error {
		if !slices.Contains(fsm.ImageSortKeys, k) {
			return badRequest("Invalid sort key: %s. It must be one of the following: %s.", k, strings.Join(fsm.ImageSortKeys, ", "))
		}
		return nil
	}
	checkDir := func(d string) (bool, error) {
		switch d {
		case "asc":
			return false, nil
		case "desc":
			return true, nil
		}
		return false, badRequest("Invalid sort direction: %s", d)
	}
	var out []fsm.ImageSort
	if q.Has("sort") {
		if q.Has("sort_key") || q.Has("sort_dir") {
			return nil, badRequest("The 'sort' param cannot be combined with 'sort_key' or 'sort_dir'.")
		}
		for _, part := range strings.Split(q.Get("sort"), ",") {
			k, d, hasDir := strings.Cut(strings.TrimSpace(part), ":")
			if err := checkKey(k); err != nil {
				return nil, err
			}
			desc := true
			if hasDir {
				var err error
				if desc, err = checkDir(d); err != nil {
					return nil, err
				}
			}
			out = append(out, fsm.ImageSort{Key: k, Desc: desc})
		}
		return out, nil
	}
	keys, dirs := q["sort_key"], q["sort_dir"]
	if len(dirs) > 1 && len(dirs) != len(keys) {
		return nil, badRequest("Number of sort dirs does not match the number of sort keys")
	}
	if len(keys) == 0 && len(dirs) > 0 {
		keys = []string{"created_at"}
	}
	for i, k := range keys {
		if err := checkKey(k); err != nil {
			return nil, err
		}
		d := "desc"
		switch {
		case len(dirs) == 1:
			d = dirs[0]
		case len(dirs) > 1:
			d = dirs[i]
		}
		desc, err := checkDir(d)
		if err != nil {
			return nil, err
		}
		out = append(out, fsm.ImageSort{Key: k, Desc: desc})
	}
	return out, nil
}

// imageTimeFilter parses Glance's time filters: "[op:]<ISO 8601>" with op
// gt, gte, lt, lte, eq or neq. The filter takes unix microseconds and
// compares whole seconds, the resolution clients see.
func imageTimeFilter(param, raw string) (func(int64) bool, error) {
	op, val, ok := strings.Cut(raw, ":")
	if !ok || !slices.Contains([]string{"gt", "gte", "lt", "lte", "eq", "neq"}, op) {
		op, val = "eq", raw
	}
	t, err := parseISOTime(val)
	if err != nil {
		return nil, badRequest("Invalid value for %s: %q is not an ISO 8601 time.", param, raw)
	}
	ts := t.Unix()
	return func(micros int64) bool {
		v := micros / 1e6
		switch op {
		case "gt":
			return v > ts
		case "gte":
			return v >= ts
		case "lt":
			return v < ts
		case "lte":
			return v <= ts
		case "neq":
			return v != ts
		}
		return v == ts
	}, nil
}

// parseISOTime accepts the ISO 8601 forms OpenStack clients send.
func parseISOTime(s string) (time.Time, error) {
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04:05", "2006-01-02T15:04:05.999999", "2006-01-02T15:04:05Z0700", "2006-01-02"} {
		if t, err := time.Parse(layout, s); err == nil {
			return t, nil
		}
	}
	return time.Time{}, fmt.Errorf("not an ISO 8601 time: %q", s)
}

// deleteImage is DELETE /v2/images/{image_id}: the owner or an admin
// deletes an image that is not protected; its data is removed from the
// controllers once no image uses it.
func (is *imageService) deleteImage(c *Call) error {
	id := c.Param("image_id")
	_, img, _, err := is.visibleImage(c, id)
	if err != nil {
		return err
	}
	if !canModify(c.Auth, img) {
		return forbidden("You are not authorized to complete delete_image action.")
	}
	if img.Protected {
		return forbidden("Image %s is protected and cannot be deleted.", id)
	}
	gone, err := is.removeImage(c, id)
	if err != nil {
		return err
	}
	is.releaseData(gone)
	return c.NoContent(http.StatusNoContent)
}

// removeImage proposes DeleteImage. A protected image is refused by the
// FSM as a conflict; Glance answers that with 403.
func (is *imageService) removeImage(c *Call, id string) (*fsm.Image, error) {
	var gone fsm.Image
	err := is.s.apply(c.Context(), &fsm.DeleteImage{ID: id}, &gone)
	if errors.Is(err, fsm.ErrConflict) {
		if st, rerr := is.s.readState(c); rerr == nil {
			if img, _, gerr := fsm.GetImage(st, id); gerr == nil && img.Protected {
				return nil, forbidden("Image %s is protected and cannot be deleted.", id)
			}
		}
	}
	if errors.Is(err, fsm.ErrNotFound) {
		return nil, imageNotFound(id)
	}
	if err != nil {
		return nil, err
	}
	return &gone, nil
}

// imageMessages are the not-found and forbidden answers of an API flavour
// (Glance's or Nova's proxy).
type imageMessages struct {
	notFound  func(id string) *Error
	forbidden func(id string) *Error
}

var glanceMessages = imageMessages{
	notFound:  imageNotFound,
	forbidden: func(string) *Error { return forbidden("You are not authorized to complete modify_image action.") },
}

// errRetry: the image changed between the read and the update.
var errRetry = errors.New("image changed; retry")

// updateImage reads image id (404 unless visible, 403 unless the caller
// may modify it), lets mutate change a copy, and stores the result with
// UpdateImage, conditional on the image not having changed since the read
// (a concurrent change makes it read and mutate again).
func (is *imageService) updateImage(c *Call, id string, msgs imageMessages, mutate func(img, old *fsm.Image) error) (*fsm.Image, error) {
	for attempt := 0; ; attempt++ {
		st, err := is.s.readState(c)
		if err != nil {
			return nil, err
		}
		old, meta, err := fsm.GetImage(st, id)
		if errors.Is(err, fsm.ErrNotFound) || err == nil && !fsm.ImageVisible(old, c.Auth.ProjectID, c.Auth.IsAdmin()) {
			return nil, msgs.notFound(id)
		}
		if err != nil {
			return nil, err
		}
		if !canModify(c.Auth, old) {
			return nil, msgs.forbidden(id)
		}
		img := *old
		img.Tags = slices.Clone(old.Tags)
		img.Properties = maps.Clone(old.Properties)
		if err := mutate(&img, old); err != nil {
			return nil, err
		}
		if len(img.Properties) == 0 {
			img.Properties = nil
		}
		if len(img.Tags) == 0 {
			img.Tags = nil
		}
		var out fsm.Image
		err = is.s.apply(c.Context(), &fsm.UpdateImage{Image: img, IfModifyIndex: meta.ModifyIndex, Now: time.Now().UnixMicro()}, &out)
		if errors.Is(err, fsm.ErrConflict) && attempt < 5 {
			if st, rerr := is.s.readState(c); rerr == nil {
				if _, m2, gerr := fsm.GetImage(st, id); gerr == nil && m2.ModifyIndex != meta.ModifyIndex {
					continue // changed under us: compute the update again
				}
			}
		}
		if errors.Is(err, fsm.ErrNotFound) {
			return nil, msgs.notFound(id)
		}
		if err != nil {
			return nil, err
		}
		return &out, nil
	}
}

// addTag is PUT /v2/images/{image_id}/tags/{tag}.
func (is *imageService) addTag(c *Call) error {
	tag := c.Param("tag")
	if tag == "" || utf8.RuneCountInString(tag) > fsm.ImageMaxTagLen || !utf8.ValidString(tag) || strings.ContainsRune(tag, 0) {
		return imageSchemaError("image", "%s is not a valid tag: want a string of 1 to %d characters", jsonShow(tag), fsm.ImageMaxTagLen)
	}
	_, err := is.updateImage(c, c.Param("image_id"), glanceMessages, func(img, _ *fsm.Image) error {
		if slices.Contains(img.Tags, tag) {
			return nil
		}
		if len(img.Tags) >= fsm.ImageMaxTags {
			return Errorf(http.StatusRequestEntityTooLarge, "Maximum number of tags exceeded: attempted %d, maximum %d.", len(img.Tags)+1, fsm.ImageMaxTags)
		}
		img.Tags = append(img.Tags, tag)
		return nil
	})
	if err != nil {
		return err
	}
	return c.NoContent(http.StatusNoContent)
}

// deleteTag is DELETE /v2/images/{image_id}/tags/{tag}.
func (is *imageService) deleteTag(c *Call) error {
	tag := c.Param("tag")
	_, err := is.updateImage(c, c.Param("image_id"), glanceMessages, func(img, _ *fsm.Image) error {
		if !slices.Contains(img.Tags, tag) {
			return notFound("Tag %s not found on image %s.", tag, img.ID)
		}
		img.Tags = slices.DeleteFunc(img.Tags, func(t string) bool { return t == tag })
		return nil
	})
	if err != nil {
		return err
	}
	return c.NoContent(http.StatusNoContent)
}

// --- members ------------------------------------------------------------------

func memberView(imageID string, m *fsm.ImageMember) map[string]any {
	return map[string]any{
		"image_id": imageID, "member_id": m.MemberID, "status": m.Status,
		"created_at": imageTime(m.CreatedAt), "updated_at": imageTime(m.UpdatedAt),
		"schema": "/v2/schemas/member",
	}
}

// listMembers is GET /v2/images/{image_id}/members: the owner (and admins)
// see every member, a member sees itself.
func (is *imageService) listMembers(c *Call) error {
	_, img, _, err := is.visibleImage(c, c.Param("image_id"))
	if err != nil {
		return err
	}
	if img.Visibility != fsm.VisibilityShared {
		return forbidden("Only shared images have members.")
	}
	out := []any{}
	for i := range img.Members {
		m := &img.Members[i]
		if canModify(c.Auth, img) || m.MemberID == c.Auth.ProjectID {
			out = append(out, memberView(img.ID, m))
		}
	}
	return c.JSON(http.StatusOK, map[string]any{"members": out, "schema": "/v2/schemas/members"})
}

// createMember is POST /v2/images/{image_id}/members {"member": project}.
func (is *imageService) createMember(c *Call) error {
	id := c.Param("image_id")
	body, err := decodeObject(c, "member")
	if err != nil {
		return err
	}
	for k := range body {
		if k != "member" {
			return imageSchemaError("member", "Additional properties are not allowed ('%s' was unexpected)", k)
		}
	}
	member, ok := body["member"].(string)
	if !ok || member == "" || len(member) > 64 || strings.ContainsAny(member, "\x00/") {
		return imageSchemaError("member", "'member' is a required property: a project id")
	}
	_, img, _, err := is.visibleImage(c, id)
	if err != nil {
		return err
	}
	if !canModify(c.Auth, img) {
		return forbidden("You are not authorized to complete add_member action.")
	}
	if img.Visibility != fsm.VisibilityShared {
		return forbidden("Only shared images have members.")
	}
	if img.Member(member) != nil {
		return conflict("Member %s already associated with image %s.", member, id)
	}
	if len(img.Members) >= fsm.ImageMaxMembers {
		return Errorf(http.StatusRequestEntityTooLarge, "Maximum number of image members exceeded: at most %d are allowed.", fsm.ImageMaxMembers)
	}
	var m fsm.ImageMember
	if err := is.s.apply(c.Context(), &fsm.AddImageMember{ImageID: id, Member: member, Now: time.Now().UnixMicro()}, &m); err != nil {
		return err
	}
	return c.JSON(http.StatusOK, memberView(id, &m))
}

// memberOf reads image id and its member: visible to the owner, admins and
// the member itself.
func (is *imageService) memberOf(c *Call) (*fsm.Image, *fsm.ImageMember, error) {
	id, member := c.Param("image_id"), c.Param("member_id")
	_, img, _, err := is.visibleImage(c, id)
	if err != nil {
		return nil, nil, err
	}
	if img.Visibility != fsm.VisibilityShared {
		return nil, nil, forbidden("Only shared images have members.")
	}
	m := img.Member(member)
	if m == nil || !canModify(c.Auth, img) && member != c.Auth.ProjectID {
		return nil, nil, notFound("Member %s not found for image %s.", member, id)
	}
	return img, m, nil
}

// showMember is GET /v2/images/{image_id}/members/{member_id}.
func (is *imageService) showMember(c *Call) error {
	img, m, err := is.memberOf(c)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, memberView(img.ID, m))
}

// updateMember is PUT /v2/images/{image_id}/members/{member_id}
// {"status": ...}: the member project accepts or rejects a share (admins
// may too; the owner may not).
func (is *imageService) updateMember(c *Call) error {
	body, err := decodeObject(c, "member")
	if err != nil {
		return err
	}
	status, ok := body["status"].(string)
	if !ok || !slices.Contains([]string{fsm.MemberPending, fsm.MemberAccepted, fsm.MemberRejected}, status) {
		return imageSchemaError("member", "%s is not one of ['pending', 'accepted', 'rejected'] (attribute 'status')", jsonShow(body["status"]))
	}
	img, m, err := is.memberOf(c)
	if err != nil {
		return err
	}
	if m.MemberID != c.Auth.ProjectID && !c.Auth.IsAdmin() {
		return forbidden("You are not permitted to modify 'status' on this image member.")
	}
	var out fsm.ImageMember
	if err := is.s.apply(c.Context(), &fsm.UpdateImageMember{ImageID: img.ID, Member: m.MemberID, Status: status, Now: time.Now().UnixMicro()}, &out); err != nil {
		return err
	}
	return c.JSON(http.StatusOK, memberView(img.ID, &out))
}

// deleteMember is DELETE /v2/images/{image_id}/members/{member_id}: the
// owner (or an admin) stops sharing.
func (is *imageService) deleteMember(c *Call) error {
	img, m, err := is.memberOf(c)
	if err != nil {
		return err
	}
	if !canModify(c.Auth, img) {
		return forbidden("You are not authorized to complete delete_member action.")
	}
	if err := is.s.apply(c.Context(), &fsm.DeleteImageMember{ImageID: img.ID, Member: m.MemberID}, nil); err != nil {
		return err
	}
	return c.NoContent(http.StatusNoContent)
}

// --- schemas ------------------------------------------------------------------

// schema serves Glance's JSON schemas (what glanceclient and openstacksdk
// read): image, images, member and members.
func (is *imageService) schema(name string) HandlerFunc {
	return func(c *Call) error {
		return c.JSON(http.StatusOK, imageSchemas()[name])
	}
}

func imageSchemas() map[string]any {
	str := func(desc string, extra ...any) map[string]any {
		m := map[string]any{"type": "string", "description": desc}
		for i := 0; i+1 < len(extra); i += 2 {
			m[extra[i].(string)] = extra[i+1]
		}
		return m
	}
	nullEnum := func(desc string, vals []string) map[string]any {
		e := []any{nil}
		for _, v := range vals {
			e = append(e, v)
		}
		return map[string]any{"type": []any{"null", "string"}, "description": desc, "enum": e}
	}
	ro := func(m map[string]any) map[string]any { m["readOnly"] = true; return m }
	image := map[string]any{
		"name": "image",
		"properties": map[string]any{
			"id":               str("An identifier for the image", "pattern", "^([0-9a-fA-F]){8}-([0-9a-fA-F]){4}-([0-9a-fA-F]){4}-([0-9a-fA-F]){4}-([0-9a-fA-F]){12}$"),
			"name":             map[string]any{"type": []any{"null", "string"}, "description": "Descriptive name for the image", "maxLength": 255},
			"status":           ro(str("Status of the image", "enum", []string{"queued", "saving", "active", "killed", "deleted", "pending_delete"})),
			"visibility":       str("Scope of image accessibility", "enum", []string{"community", "public", "private", "shared"}),
			"protected":        map[string]any{"type": "boolean", "description": "If true, image will not be deletable."},
			"os_hidden":        map[string]any{"type": "boolean", "description": "If true, image will not appear in default image list response."},
			"owner":            map[string]any{"type": []any{"null", "string"}, "description": "Owner of the image", "maxLength": 255},
			"checksum":         ro(map[string]any{"type": []any{"null", "string"}, "description": "md5 hash of image contents.", "maxLength": 32}),
			"os_hash_algo":     ro(map[string]any{"type": []any{"null", "string"}, "description": "Algorithm to calculate the os_hash_value", "maxLength": 64}),
			"os_hash_value":    ro(map[string]any{"type": []any{"null", "string"}, "description": "Hexdigest of the image contents using the algorithm specified by the os_hash_algo", "maxLength": 128}),
			"size":             ro(map[string]any{"type": []any{"null", "integer"}, "description": "Size of image file in bytes"}),
			"virtual_size":     ro(map[string]any{"type": []any{"null", "integer"}, "description": "Virtual size of image in bytes"}),
			"container_format": nullEnum("Format of the container", fsm.ImageContainerFormats),
			"disk_format":      nullEnum("Format of the disk", fsm.ImageDiskFormats),
			"created_at":       ro(str("Date and time of image registration")),
			"updated_at":       ro(str("Date and time of the last image modification")),
			"tags":             map[string]any{"type": "array", "description": "List of strings related to the image", "items": map[string]any{"type": "string", "maxLength": 255}},
			"min_ram":          map[string]any{"type": "integer", "description": "Amount of ram (in MB) required to boot image.", "minimum": 0, "maximum": fsm.ImageMaxInt},
			"min_disk":         map[string]any{"type": "integer", "description": "Amount of disk space (in GB) required to boot image.", "minimum": 0, "maximum": fsm.ImageMaxInt},
			"self":             ro(str("An image self url")),
			"file":             ro(str("An image file url")),
			"schema":           ro(str("An image schema url")),
			"locations":        ro(map[string]any{"type": "array", "description": "A set of URLs to access the image file kept in external store", "items": map[string]any{"type": "object"}}),
			"direct_url":       ro(str("URL to access the image file kept in external store")),
		},
		"additionalProperties": map[string]any{"type": "string"},
		"links": []map[string]string{
			{"rel": "self", "href": "{self}"},
			{"rel": "enclosure", "href": "{file}"},
			{"rel": "describedby", "href": "{schema}"},
		},
	}
	member := map[string]any{
		"name": "member",
		"properties": map[string]any{
			"created_at": str("Date and time of image member creation"),
			"image_id":   str("An identifier for the image"),
			"member_id":  str("An identifier for the image member (tenantId)"),
			"status":     str("The status of this image member", "enum", []string{"pending", "accepted", "rejected"}),
			"updated_at": str("Date and time of last modification of image member"),
			"schema":     ro(str("The member schema url")),
		},
	}
	return map[string]any{
		"image": image,
		"images": map[string]any{
			"name": "images",
			"properties": map[string]any{
				"images": map[string]any{"type": "array", "items": image},
				"schema": map[string]any{"type": "string"},
				"first":  map[string]any{"type": "string"},
				"next":   map[string]any{"type": "string"},
			},
			"links": []map[string]string{
				{"rel": "first", "href": "{first}"},
				{"rel": "next", "href": "{next}"},
				{"rel": "describedby", "href": "{schema}"},
			},
		},
		"member": member,
		"members": map[string]any{
			"name": "members",
			"properties": map[string]any{
				"members": map[string]any{"type": "array", "items": member},
				"schema":  map[string]any{"type": "string"},
			},
			"links": []map[string]string{{"rel": "describedby", "href": "{schema}"}},
		},
	}
}
