package fsm

import (
	"cmp"
	"fmt"
	"maps"
	"slices"
)

// Appliers of the image commands. Each reads the state as it was before the
// command, validates everything, and only then writes.

// imageGet reads an image for an applier, with Glance's not-found message.
func imageGet(r Reader, id string) (*Image, Meta, error) {
	if !imageIDOK(id) {
		return nil, Meta{}, Errorf(KindNotFound, "No image found with ID %s", id)
	}
	img, meta, err := Get[Image](r, TableImage, id)
	if err != nil {
		if e, ok := AsError(err); ok && e.Kind == KindNotFound {
			return nil, Meta{}, Errorf(KindNotFound, "No image found with ID %s", id)
		}
		return nil, Meta{}, err
	}
	return img, meta, nil
}

// imagePut stores img and its index entries, replacing those of old (nil
// for a new image).
func imagePut(tx *Txn, old, img *Image) error {
	if old != nil && old.Owner != img.Owner {
		if err := tx.DeleteIndex(TableImage, imageIdxOwner, old.ID, old.Owner); err != nil {
			return err
		}
	}
	if old != nil && old.SHA256 != "" && old.SHA256 != img.SHA256 {
		if err := tx.DeleteIndex(TableImage, imageIdxSHA256, old.ID, old.SHA256); err != nil {
			return err
		}
	}
	if err := tx.PutIndex(TableImage, imageIdxOwner, img.ID, img.Owner); err != nil {
		return err
	}
	if img.SHA256 != "" {
		if err := tx.PutIndex(TableImage, imageIdxSHA256, img.ID, img.SHA256); err != nil {
			return err
		}
	}
	return tx.Put(TableImage, img.ID, img)
}

// imageTransition is Glance's message for a refused status change.
func imageTransition(from, to string) error {
	return Errorf(KindConflict, "Image status transition from %s to %s is not allowed", from, to)
}

func applyCreateImage(tx *Txn, c *CreateImage) (any, error) {
	img := c.Image
	imageNormalize(&img)
	if img.Status == "" {
		img.Status = ImageQueued
	}
	if img.Status != ImageQueued {
		return nil, Errorf(KindInvalid, "a new image is queued, not %s", identShow(img.Status))
	}
	if len(img.Members) != 0 || img.UploadID != "" {
		return nil, Errorf(KindInvalid, "a new image has no members and no upload")
	}
	if err := img.validate(); err != nil {
		return nil, err
	}
	if ok, err := identExists(tx, TableImage, img.ID); err != nil {
		return nil, err
	} else if ok {
		return nil, Errorf(KindConflict, "Image with identifier %s already exists!", img.ID)
	}
	if err := imagePut(tx, nil, &img); err != nil {
		return nil, err
	}
	return &img, nil
}

// imageReadOnlyDiff names the first read-only attribute of img that differs
// from old, or "".
func imageReadOnlyDiff(old, img *Image) string {
	switch {
	case img.ID != old.ID:
		return "id"
	case img.Status != old.Status:
		return "status"
	case img.Size != old.Size:
		return "size"
	case img.VirtualSize != old.VirtualSize:
		return "virtual_size"
	case img.Checksum != old.Checksum:
		return "checksum"
	case img.OSHashAlgo != old.OSHashAlgo:
		return "os_hash_algo"
	case img.OSHashValue != old.OSHashValue:
		return "os_hash_value"
	case img.SHA256 != old.SHA256:
		return "sha256"
	case img.CreatedAt != old.CreatedAt:
		return "created_at"
	case !slices.Equal(img.Locations, old.Locations):
		return "locations"
	case !slices.Equal(img.Members, old.Members):
		return "members"
	case img.UploadID != old.UploadID:
		return "upload_id"
	}
	return ""
}

// imageMutableEqual reports whether the user-settable attributes are equal.
func imageMutableEqual(a, b *Image) bool {
	return a.Name == b.Name && a.Visibility == b.Visibility && a.Owner == b.Owner &&
		a.DiskFormat == b.DiskFormat && a.ContainerFormat == b.ContainerFormat &&
		a.MinDisk == b.MinDisk && a.MinRAM == b.MinRAM && a.Protected == b.Protected &&
		a.Hidden == b.Hidden && slices.Equal(a.Tags, b.Tags) && maps.Equal(a.Properties, b.Properties)
}

func applyUpdateImage(tx *Txn, c *UpdateImage) (any, error) {
	if err := imageCheckNow(c.Now); err != nil {
		return nil, err
	}
	img := c.Image
	imageNormalize(&img)
	old, meta, err := imageGet(tx, img.ID)
	if err != nil {
		return nil, err
	}
	if c.IfModifyIndex != 0 && c.IfModifyIndex != meta.ModifyIndex {
		return nil, Errorf(KindConflict, "image %s changed while the update was prepared (at index %d, not %d); retry", img.ID, meta.ModifyIndex, c.IfModifyIndex)
	}
	if attr := imageReadOnlyDiff(old, &img); attr != "" {
		return nil, Errorf(KindInvalid, "Attribute '%s' is read-only.", attr)
	}
	if img.Status != ImageQueued && img.DiskFormat != old.DiskFormat {
		return nil, Errorf(KindConflict, "Attribute disk_format can be only replaced for a queued image.")
	}
	if img.Status != ImageQueued && img.ContainerFormat != old.ContainerFormat {
		return nil, Errorf(KindConflict, "Attribute container_format can be only replaced for a queued image.")
	}
	img.UpdatedAt = max(c.Now, old.CreatedAt)
	if err := img.validate(); err != nil {
		return nil, err
	}
	if imageMutableEqual(old, &img) {
		return old, nil // nothing to change: no write, no new modify index
	}
	if err := imagePut(tx, old, &img); err != nil {
		return nil, err
	}
	return &img, nil
}

func applyDeleteImage(tx *Txn, c *DeleteImage) (any, error) {
	img, _, err := imageGet(tx, c.ID)
	if err != nil {
		return nil, err
	}
	if img.Protected {
		return nil, Errorf(KindConflict, "Image %s is protected and cannot be deleted.", img.ID)
	}
	if err := tx.DeleteIndex(TableImage, imageIdxOwner, img.ID, img.Owner); err != nil {
		return nil, err
	}
	if img.SHA256 != "" {
		if err := tx.DeleteIndex(TableImage, imageIdxSHA256, img.ID, img.SHA256); err != nil {
			return nil, err
		}
	}
	if err := tx.Delete(TableImage, img.ID); err != nil {
		return nil, err
	}
	return img, nil
}

func applyBeginUpload(tx *Txn, c *BeginUpload) (any, error) {
	if err := imageCheckNow(c.Now); err != nil {
		return nil, err
	}
	if !identIDOK(c.UploadID) {
		return nil, Errorf(KindInvalid, "invalid upload id %s", identShow(c.UploadID))
	}
	old, _, err := imageGet(tx, c.ID)
	if err != nil {
		return nil, err
	}
	if old.Status != ImageQueued {
		return nil, imageTransition(old.Status, ImageSaving)
	}
	if old.DiskFormat == "" || old.ContainerFormat == "" {
		return nil, Errorf(KindInvalid, "Properties disk_format, container_format must be set prior to saving data.")
	}
	img := *old
	img.Status, img.UploadID, img.UpdatedAt = ImageSaving, c.UploadID, max(c.Now, old.CreatedAt)
	if err := imagePut(tx, old, &img); err != nil {
		return nil, err
	}
	return &img, nil
}

// imageOwnUpload refuses an upload command unless upload owns the image.
func imageOwnUpload(img *Image, upload, to string) error {
	if img.Status != ImageSaving {
		return imageTransition(img.Status, to)
	}
	if img.UploadID != upload {
		return Errorf(KindConflict, "image %s is being saved by another upload", img.ID)
	}
	return nil
}

func applyFinishUpload(tx *Txn, c *FinishUpload) (any, error) {
	if err := imageCheckNow(c.Now); err != nil {
		return nil, err
	}
	if err := imageCheckData(c.Size, c.VirtualSize, c.Checksum, c.OSHashValue, c.SHA256); err != nil {
		return nil, err
	}
	locs := slices.Clone(c.Locations)
	slices.Sort(locs)
	locs = slices.Compact(locs)
	if err := imageCheckLocations(locs); err != nil {
		return nil, err
	}
	old, _, err := imageGet(tx, c.ID)
	if err != nil {
		return nil, err
	}
	if err := imageOwnUpload(old, c.UploadID, ImageActive); err != nil {
		return nil, err
	}
	// The same content has one size and one MD5: an image already holding
	// this SHA-256 with other figures means one of the two uploads lies.
	same, err := identIndexKeys(tx, TableImage, imageIdxSHA256, c.SHA256)
	if err != nil {
		return nil, err
	}
	for _, id := range same {
		other, _, err := imageGet(tx, id)
		if err != nil {
			return nil, fmt.Errorf("fsm: the sha256 index names image %s: %w", id, err)
		}
		if other.Size != c.Size || other.Checksum != c.Checksum || other.OSHashValue != c.OSHashValue {
			return nil, Errorf(KindConflict, "the uploaded data of image %s has sha256 %s but a size or checksum other than image %s with the same sha256", c.ID, c.SHA256, other.ID)
		}
	}
	img := *old
	img.Status, img.UploadID = ImageActive, ""
	img.Size, img.VirtualSize = c.Size, c.VirtualSize
	img.Checksum, img.OSHashAlgo, img.OSHashValue, img.SHA256 = c.Checksum, ImageHashAlgo, c.OSHashValue, c.SHA256
	img.Locations = locs
	img.UpdatedAt = max(c.Now, old.CreatedAt)
	if err := img.validate(); err != nil {
		return nil, err
	}
	if err := imagePut(tx, old, &img); err != nil {
		return nil, err
	}
	return &img, nil
}

func applyAbortUpload(tx *Txn, c *AbortUpload) (any, error) {
	if err := imageCheckNow(c.Now); err != nil {
		return nil, err
	}
	old, _, err := imageGet(tx, c.ID)
	if err != nil {
		return nil, err
	}
	if err := imageOwnUpload(old, c.UploadID, ImageQueued); err != nil {
		return nil, err
	}
	img := *old
	img.Status, img.UploadID, img.UpdatedAt = ImageQueued, "", max(c.Now, old.CreatedAt)
	if err := imagePut(tx, old, &img); err != nil {
		return nil, err
	}
	return &img, nil
}

func applyAddImageLocation(tx *Txn, c *AddImageLocation) (any, error) {
	if err := imageCheckLocation(c.Location); err != nil {
		return nil, err
	}
	old, _, err := imageGet(tx, c.ID)
	if err != nil {
		return nil, err
	}
	if old.Status != ImageActive {
		return nil, Errorf(KindConflict, "image %s is %s: it has no data to hold", old.ID, old.Status)
	}
	if old.SHA256 != c.SHA256 {
		return nil, Errorf(KindConflict, "image %s has data %s, not %s", old.ID, old.SHA256, identShow(c.SHA256))
	}
	if slices.Contains(old.Locations, c.Location) {
		return nil, nil
	}
	img := *old
	img.Locations = append(slices.Clone(old.Locations), c.Location)
	slices.Sort(img.Locations)
	return nil, imagePut(tx, old, &img)
}

func applyAddImageMember(tx *Txn, c *AddImageMember) (any, error) {
	if err := imageCheckNow(c.Now); err != nil {
		return nil, err
	}
	if err := identCheckID("member project", c.Member); err != nil {
		return nil, err
	}
	old, _, err := imageGet(tx, c.ImageID)
	if err != nil {
		return nil, err
	}
	if old.Visibility != VisibilityShared {
		return nil, Errorf(KindConflict, "Only shared images have members.")
	}
	if old.Member(c.Member) != nil {
		return nil, Errorf(KindConflict, "Member %s already associated with image %s.", c.Member, old.ID)
	}
	if len(old.Members) >= ImageMaxMembers {
		return nil, Errorf(KindQuota, "Maximum number of image members exceeded: image %s has %d.", old.ID, len(old.Members))
	}
	m := ImageMember{MemberID: c.Member, Status: MemberPending, CreatedAt: c.Now, UpdatedAt: c.Now}
	img := *old
	img.Members = append(slices.Clone(old.Members), m)
	slices.SortFunc(img.Members, func(a, b ImageMember) int { return cmp.Compare(a.MemberID, b.MemberID) })
	if err := imagePut(tx, old, &img); err != nil {
		return nil, err
	}
	return &m, nil
}

func applyUpdateImageMember(tx *Txn, c *UpdateImageMember) (any, error) {
	if err := imageCheckNow(c.Now); err != nil {
		return nil, err
	}
	if err := imageCheckMemberStatus(c.Status); err != nil {
		return nil, err
	}
	old, _, err := imageGet(tx, c.ImageID)
	if err != nil {
		return nil, err
	}
	if old.Member(c.Member) == nil {
		return nil, Errorf(KindNotFound, "%s is not a member of image %s", identShow(c.Member), old.ID)
	}
	img := *old
	img.Members = slices.Clone(old.Members)
	m := img.Member(c.Member)
	if m.Status == c.Status {
		return m, nil
	}
	m.Status, m.UpdatedAt = c.Status, max(c.Now, m.CreatedAt)
	out := *m
	if err := imagePut(tx, old, &img); err != nil {
		return nil, err
	}
	return &out, nil
}

func applyDeleteImageMember(tx *Txn, c *DeleteImageMember) (any, error) {
	old, _, err := imageGet(tx, c.ImageID)
	if err != nil {
		return nil, err
	}
	if old.Member(c.Member) == nil {
		return nil, Errorf(KindNotFound, "%s is not a member of image %s", identShow(c.Member), old.ID)
	}
	img := *old
	img.Members = slices.DeleteFunc(slices.Clone(old.Members), func(m ImageMember) bool { return m.MemberID == c.Member })
	imageNormalize(&img)
	return nil, imagePut(tx, old, &img)
}
