package fsm

import (
	"cmp"
	"slices"
)

// Image reads. They take a Reader, so they work on State (API reads) and on
// a Txn (inside Apply).

// GetImage returns the image with id (KindNotFound, with Glance's message,
// when there is none).
func GetImage(r Reader, id string) (*Image, Meta, error) {
	return imageGet(r, id)
}

// ImageVisible reports whether a caller scoped to projectID (an admin when
// isAdmin) may see img: admins see every image; everyone sees public and
// community images; a project sees its own images and the shared images it
// is a member of (whatever its member status, as in Glance).
func ImageVisible(img *Image, projectID string, isAdmin bool) bool {
	switch {
	case isAdmin, img.Visibility == VisibilityPublic, img.Visibility == VisibilityCommunity:
		return true
	case projectID == "":
		return false
	case img.Owner == projectID:
		return true
	}
	return img.Visibility == VisibilityShared && img.Member(projectID) != nil
}

// ImageSortKeys are the attributes a list may be sorted by (Glance's).
var ImageSortKeys = []string{"name", "status", "container_format", "disk_format", "size", "id", "created_at", "updated_at"}

// ImageSort is one sort key of a list.
type ImageSort struct {
	Key  string // one of ImageSortKeys
	Desc bool
}

// ImageQuery selects and orders the images of a list, as Glance's
// GET /v2/images does.
type ImageQuery struct {
	// The caller: its project scope and whether it is an admin.
	ProjectID string
	IsAdmin   bool
	// Visibility: "" is Glance's default list (public images, the
	// caller's own and the shared images it accepted; every image for an
	// admin), "all" every image the caller may see, or one visibility.
	Visibility string
	// MemberStatus selects the images shared with the caller by their
	// member status: "" means accepted; "all" any.
	MemberStatus string
	// Hidden: nil lists the images that are not hidden (os_hidden false,
	// Glance's default); otherwise those whose os_hidden equals *Hidden.
	Hidden *bool
	// Match, if set, must accept an image for it to be listed.
	Match func(*Image) bool
	// Sort orders the list; none means created_at descending. Ties are
	// broken by id, in the direction of the last key.
	Sort []ImageSort
	// Marker: the list starts after this image, which the caller must be
	// able to see (KindInvalid otherwise).
	Marker string
	// Limit bounds the list; 0 means no limit.
	Limit int
}

// ListImages returns the images q selects, in q's order.
func ListImages(r Reader, q ImageQuery) ([]Image, error) {
	var all []Image
	var derr error
	err := r.Scan(TableImage, "", func(rec Record) bool {
		var img Image
		if derr = rec.Decode(&img); derr != nil {
			return false
		}
		all = append(all, img)
		return true
	})
	if err == nil {
		err = derr
	}
	if err != nil {
		return nil, err
	}
	sortKeys := q.Sort
	if len(sortKeys) == 0 {
		sortKeys = []ImageSort{{Key: "created_at", Desc: true}}
	}
	compare := func(a, b *Image) int {
		for _, k := range sortKeys {
			c := imageCompareKey(a, b, k.Key)
			if k.Desc {
				c = -c
			}
			if c != 0 {
				return c
			}
		}
		c := cmp.Compare(a.ID, b.ID)
		if sortKeys[len(sortKeys)-1].Desc {
			c = -c
		}
		return c
	}
	var marker *Image
	if q.Marker != "" {
		i := slices.IndexFunc(all, func(img Image) bool { return img.ID == q.Marker })
		if i < 0 || !ImageVisible(&all[i], q.ProjectID, q.IsAdmin) {
			return nil, Errorf(KindInvalid, "Marker %s could not be found.", q.Marker)
		}
		m := all[i]
		marker = &m
	}
	out := all[:0]
	for i := range all {
		img := &all[i]
		if !imageListed(img, &q) || marker != nil && compare(img, marker) <= 0 {
			continue
		}
		out = append(out, *img)
	}
	slices.SortFunc(out, func(a, b Image) int { return compare(&a, &b) })
	if q.Limit > 0 && len(out) > q.Limit {
		out = out[:q.Limit]
	}
	return slices.Clip(out), nil
}

// imageListed applies q's visibility, member status, hidden and Match.
func imageListed(img *Image, q *ImageQuery) bool {
	if !ImageVisible(img, q.ProjectID, q.IsAdmin) {
		return false
	}
	hidden := false
	if q.Hidden != nil {
		hidden = *q.Hidden
	}
	if img.Hidden != hidden {
		return false
	}
	own := q.ProjectID != "" && img.Owner == q.ProjectID
	// Images shared with the caller (not its own) pass the member status
	// filter; an admin's lists do not look at memberships.
	memberOK := func() bool {
		if q.IsAdmin || own || img.Visibility != VisibilityShared {
			return true
		}
		m := img.Member(q.ProjectID)
		want := q.MemberStatus
		if want == "" {
			want = MemberAccepted
		}
		return m != nil && (want == "all" || m.Status == want)
	}
	switch q.Visibility {
	case "":
		if !q.IsAdmin && img.Visibility == VisibilityCommunity && !own {
			return false
		}
		if !memberOK() {
			return false
		}
	case "all":
		if !memberOK() {
			return false
		}
	default:
		if img.Visibility != q.Visibility || !memberOK() {
			return false
		}
	}
	return q.Match == nil || q.Match(img)
}

func imageCompareKey(a, b *Image, key string) int {
	switch key {
	case "name":
		return cmp.Compare(a.Name, b.Name)
	case "status":
		return cmp.Compare(a.Status, b.Status)
	case "container_format":
		return cmp.Compare(a.ContainerFormat, b.ContainerFormat)
	case "disk_format":
		return cmp.Compare(a.DiskFormat, b.DiskFormat)
	case "size":
		return cmp.Compare(a.Size, b.Size)
	case "id":
		return cmp.Compare(a.ID, b.ID)
	case "created_at":
		return cmp.Compare(a.CreatedAt, b.CreatedAt)
	case "updated_at":
		return cmp.Compare(a.UpdatedAt, b.UpdatedAt)
	}
	return 0
}

// ImagesWithData returns the ids of the images whose data has SHA-256 sha:
// while there is one, the blob must be kept.
func ImagesWithData(r Reader, sha string) ([]string, error) {
	return identIndexKeys(r, TableImage, imageIdxSHA256, sha)
}

// ImagesOfOwner returns the ids of the images owned by project.
func ImagesOfOwner(r Reader, project string) ([]string, error) {
	return identIndexKeys(r, TableImage, imageIdxOwner, project)
}
