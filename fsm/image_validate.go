package fsm

import (
	"slices"
	"strings"
	"unicode/utf8"
)

// Limits and vocabularies of image fields: Glance's defaults
// (image_property_quota, image_tag_quota, image_member_quota, its column
// sizes and its disk_formats/container_formats options).
const (
	ImageMaxNameLen       = 255
	ImageMaxTags          = 128
	ImageMaxTagLen        = 255
	ImageMaxProperties    = 128
	ImageMaxPropertyKey   = 255
	ImageMaxPropertyValue = 65535
	ImageMaxMembers       = 128
	ImageMaxInt           = 1<<31 - 1 // min_disk, min_ram
	imageMaxLocationLen   = 255
)

// ImageDiskFormats and ImageContainerFormats are the accepted formats.
var (
	ImageDiskFormats      = []string{"ami", "ari", "aki", "vhd", "vhdx", "vmdk", "raw", "qcow2", "vdi", "iso", "ploop"}
	ImageContainerFormats = []string{"ami", "ari", "aki", "bare", "ovf", "ova", "docker", "compressed"}
)

// ImageBaseAttributes are the attributes of Glance's image schema: they are
// not additional properties, so no property may take their names.
var ImageBaseAttributes = []string{
	"id", "name", "status", "visibility", "owner", "disk_format", "container_format",
	"size", "virtual_size", "checksum", "os_hash_algo", "os_hash_value", "min_disk",
	"min_ram", "protected", "os_hidden", "tags", "created_at", "updated_at", "self",
	"file", "schema", "locations", "direct_url", "stores",
}

// ImageReservedAttributes may never be set (Glance's reserved names); nor
// may any name starting with "os_glance".
var ImageReservedAttributes = []string{"location", "deleted", "deleted_at"}

// ImagePropertyKeyReserved reports whether key may not be an additional
// property: a base attribute, a reserved one, or Glance's os_glance prefix.
func ImagePropertyKeyReserved(key string) bool {
	return slices.Contains(ImageBaseAttributes, key) || slices.Contains(ImageReservedAttributes, key) ||
		strings.HasPrefix(key, "os_glance")
}

// imageIDOK: image ids are lowercase canonical UUIDs.
func imageIDOK(id string) bool {
	if len(id) != 36 {
		return false
	}
	for i, c := range id {
		switch i {
		case 8, 13, 18, 23:
			if c != '-' {
				return false
			}
		default:
			if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
				return false
			}
		}
	}
	return true
}

func imageCheckID(id string) error {
	if !imageIDOK(id) {
		return Errorf(KindInvalid, "invalid image id %s: want a lowercase UUID", identShow(id))
	}
	return nil
}

func imageHexOK(s string, n int) bool {
	if len(s) != n {
		return false
	}
	for _, c := range s {
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return false
		}
	}
	return true
}

// ImageSHA256OK reports whether s is a SHA-256 in lowercase hex: a blob's
// address.
func ImageSHA256OK(s string) bool { return imageHexOK(s, 64) }

func imageTextOK(s string, maxRunes int) bool {
	return utf8.ValidString(s) && utf8.RuneCountInString(s) <= maxRunes && !strings.ContainsRune(s, 0)
}

// imageCheckTags: distinct tags of 1 to 255 characters, at most 128.
func imageCheckTags(tags []string) error {
	if len(tags) > ImageMaxTags {
		return Errorf(KindInvalid, "an image has at most %d tags, not %d", ImageMaxTags, len(tags))
	}
	seen := make(map[string]struct{}, len(tags))
	for _, t := range tags {
		if t == "" || !imageTextOK(t, ImageMaxTagLen) {
			return Errorf(KindInvalid, "invalid image tag %s: want 1 to %d characters of UTF-8 without NUL", identShow(t), ImageMaxTagLen)
		}
		if _, dup := seen[t]; dup {
			return Errorf(KindInvalid, "image tag %s is given twice", identShow(t))
		}
		seen[t] = struct{}{}
	}
	return nil
}

func imageCheckProperties(props map[string]string) error {
	if len(props) > ImageMaxProperties {
		return Errorf(KindInvalid, "an image has at most %d additional properties, not %d", ImageMaxProperties, len(props))
	}
	for k, v := range props {
		if k == "" || !imageTextOK(k, ImageMaxPropertyKey) || strings.Contains(k, "/") {
			return Errorf(KindInvalid, "invalid image property name %s: want 1 to %d characters of UTF-8 without NUL or '/'", identShow(k), ImageMaxPropertyKey)
		}
		if ImagePropertyKeyReserved(k) {
			return Errorf(KindInvalid, "image property name %s is reserved", identShow(k))
		}
		if len(v) > ImageMaxPropertyValue || !utf8.ValidString(v) || strings.ContainsRune(v, 0) {
			return Errorf(KindInvalid, "value of image property %s: want at most %d bytes of UTF-8 without NUL", identShow(k), ImageMaxPropertyValue)
		}
	}
	return nil
}

// validateMutable checks the attributes a user may set.
func (img *Image) validateMutable() error {
	if !imageTextOK(img.Name, ImageMaxNameLen) {
		return Errorf(KindInvalid, "invalid image name %s: want at most %d characters of UTF-8 without NUL", identShow(img.Name), ImageMaxNameLen)
	}
	switch img.Visibility {
	case VisibilityPublic, VisibilityPrivate, VisibilityShared, VisibilityCommunity:
	default:
		return Errorf(KindInvalid, "invalid image visibility %s: want public, private, shared or community", identShow(img.Visibility))
	}
	if err := identCheckID("owner project", img.Owner); err != nil {
		return err
	}
	if img.DiskFormat != "" && !slices.Contains(ImageDiskFormats, img.DiskFormat) {
		return Errorf(KindInvalid, "invalid disk_format %s: want one of %s", identShow(img.DiskFormat), strings.Join(ImageDiskFormats, ", "))
	}
	if img.ContainerFormat != "" && !slices.Contains(ImageContainerFormats, img.ContainerFormat) {
		return Errorf(KindInvalid, "invalid container_format %s: want one of %s", identShow(img.ContainerFormat), strings.Join(ImageContainerFormats, ", "))
	}
	if img.MinDisk < 0 || img.MinDisk > ImageMaxInt || img.MinRAM < 0 || img.MinRAM > ImageMaxInt {
		return Errorf(KindInvalid, "min_disk and min_ram must be between 0 and %d", ImageMaxInt)
	}
	if err := imageCheckTags(img.Tags); err != nil {
		return err
	}
	return imageCheckProperties(img.Properties)
}

// validate checks a whole record.
func (img *Image) validate() error {
	if err := imageCheckID(img.ID); err != nil {
		return err
	}
	if err := img.validateMutable(); err != nil {
		return err
	}
	switch img.Status {
	case ImageQueued, ImageSaving, ImageActive, ImageKilled:
	default:
		return Errorf(KindInvalid, "image %s cannot be stored with status %s", img.ID, identShow(img.Status))
	}
	if img.CreatedAt <= 0 || img.UpdatedAt < img.CreatedAt {
		return Errorf(KindInvalid, "image %s: created_at must be a positive unix time and updated_at not before it", img.ID)
	}
	if (img.Status == ImageSaving) != (img.UploadID != "") {
		return Errorf(KindInvalid, "image %s: an upload id is set exactly while the image is saving", img.ID)
	}
	if img.UploadID != "" && !identIDOK(img.UploadID) {
		return Errorf(KindInvalid, "invalid upload id %s", identShow(img.UploadID))
	}
	if img.Status == ImageActive {
		if err := imageCheckData(img.Size, img.VirtualSize, img.Checksum, img.OSHashValue, img.SHA256); err != nil {
			return err
		}
		if img.OSHashAlgo != ImageHashAlgo {
			return Errorf(KindInvalid, "image %s: os_hash_algo must be %s", img.ID, ImageHashAlgo)
		}
		if err := imageCheckLocations(img.Locations); err != nil {
			return err
		}
	} else if img.Size != 0 || img.VirtualSize != 0 || img.Checksum != "" || img.OSHashAlgo != "" || img.OSHashValue != "" || img.SHA256 != "" || len(img.Locations) != 0 {
		return Errorf(KindInvalid, "image %s has no data: size, checksums and locations must be empty", img.ID)
	}
	if len(img.Members) > ImageMaxMembers {
		return Errorf(KindInvalid, "an image has at most %d members", ImageMaxMembers)
	}
	for i, m := range img.Members {
		if err := m.validate(); err != nil {
			return err
		}
		if i > 0 && img.Members[i-1].MemberID >= m.MemberID {
			return Errorf(KindInvalid, "image members must be distinct and sorted by member id")
		}
	}
	return nil
}

func (m *ImageMember) validate() error {
	if err := identCheckID("member project", m.MemberID); err != nil {
		return err
	}
	if err := imageCheckMemberStatus(m.Status); err != nil {
		return err
	}
	if m.CreatedAt <= 0 || m.UpdatedAt < m.CreatedAt {
		return Errorf(KindInvalid, "image member %s: created_at must be a positive unix time and updated_at not before it", identShow(m.MemberID))
	}
	return nil
}

func imageCheckMemberStatus(s string) error {
	switch s {
	case MemberPending, MemberAccepted, MemberRejected:
		return nil
	}
	return Errorf(KindInvalid, "invalid member status %s: want pending, accepted or rejected", identShow(s))
}

func imageCheckData(size, virtualSize int64, checksum, osHash, sha string) error {
	switch {
	case size < 0 || virtualSize < 0:
		return Errorf(KindInvalid, "image size and virtual size must not be negative")
	case !imageHexOK(checksum, 32):
		return Errorf(KindInvalid, "invalid image checksum %s: want an MD5 in lowercase hex", identShow(checksum))
	case !imageHexOK(osHash, 128):
		return Errorf(KindInvalid, "invalid os_hash_value %s: want a SHA-512 in lowercase hex", identShow(osHash))
	case !ImageSHA256OK(sha):
		return Errorf(KindInvalid, "invalid image sha256 %s: want a SHA-256 in lowercase hex", identShow(sha))
	}
	return nil
}

// imageCheckLocations: 1 or more distinct controller names, sorted.
func imageCheckLocations(locs []string) error {
	if len(locs) == 0 {
		return Errorf(KindInvalid, "an image with data needs at least one location")
	}
	for i, l := range locs {
		if err := imageCheckLocation(l); err != nil {
			return err
		}
		if i > 0 && locs[i-1] >= l {
			return Errorf(KindInvalid, "image locations must be distinct and sorted")
		}
	}
	return nil
}

func imageCheckLocation(l string) error {
	if l == "" || len(l) > imageMaxLocationLen || !utf8.ValidString(l) || strings.ContainsAny(l, "\x00/") {
		return Errorf(KindInvalid, "invalid image location %s: want a controller name", identShow(l))
	}
	return nil
}

func imageCheckNow(now int64) error { return identCheckNow("now", now) }

// imageNormalize gives "none" one encoding: nil tags, properties,
// locations and members.
func imageNormalize(img *Image) {
	if len(img.Tags) == 0 {
		img.Tags = nil
	} else {
		img.Tags = slices.Clone(img.Tags)
	}
	if len(img.Properties) == 0 {
		img.Properties = nil
	} else {
		p := make(map[string]string, len(img.Properties))
		for k, v := range img.Properties {
			p[k] = v
		}
		img.Properties = p
	}
	if len(img.Locations) == 0 {
		img.Locations = nil
	} else {
		img.Locations = slices.Clone(img.Locations)
	}
	if len(img.Members) == 0 {
		img.Members = nil
	} else {
		img.Members = slices.Clone(img.Members)
	}
}
