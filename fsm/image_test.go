package fsm

import (
	"errors"
	"slices"
	"strings"
	"testing"
)

// imageFSM applies commands at increasing Raft indexes.
type imageFSM struct{ *harness }

func newImageFSM(t *testing.T) *imageFSM { return &imageFSM{newHarness(t)} }

func (h *imageFSM) get(id string) *Image {
	h.t.Helper()
	img, _, err := GetImage(h.f.State(), id)
	if err != nil {
		h.t.Fatalf("get image %s: %v", id, err)
	}
	return img
}

const (
	imgProjA = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
	imgProjB = "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"
	imgProjC = "cccccccccccccccccccccccccccccccc"
)

func imgID(n int) string {
	return strings.Replace("00000000-0000-4000-8000-000000000000", "000000000000", strings.Repeat("0", 11)+string(rune('0'+n)), 1)
}

func testImage(n int, owner, vis string) Image {
	return Image{
		ID: imgID(n), Name: "img" + string(rune('0'+n)), Visibility: vis, Owner: owner,
		DiskFormat: "raw", ContainerFormat: "bare", CreatedAt: int64(1000 + n), UpdatedAt: int64(1000 + n),
	}
}

var (
	imgMD5    = strings.Repeat("1", 32)
	imgSHA512 = strings.Repeat("5", 128)
	imgSHA256 = strings.Repeat("2", 64)
)

func finish(id, upload string) *FinishUpload {
	return &FinishUpload{ID: id, UploadID: upload, Size: 42, Checksum: imgMD5, OSHashValue: imgSHA512, SHA256: imgSHA256, Locations: []string{"n2", "n1"}, Now: 5000}
}

func TestImageCreateAndValidation(t *testing.T) {
	h := newImageFSM(t)
	img := testImage(1, imgProjA, VisibilityPrivate)
	img.Tags = []string{"b", "a"}
	img.Properties = map[string]string{"os_distro": "debian"}
	var got Image
	if err := h.ok(&CreateImage{Image: img}).Decode(&got); err != nil {
		t.Fatal(err)
	}
	if got.Status != ImageQueued || got.ID != img.ID || !slices.Equal(got.Tags, []string{"b", "a"}) || got.Properties["os_distro"] != "debian" {
		t.Fatalf("created %+v", got)
	}
	if ids, _ := ImagesOfOwner(h.f.State(), imgProjA); !slices.Equal(ids, []string{img.ID}) {
		t.Fatalf("owner index %v", ids)
	}
	h.refuse("duplicate id", &CreateImage{Image: img}, KindConflict, "already exists")

	bad := func(name string, mutate func(*Image), msg string) {
		t.Helper()
		b := testImage(2, imgProjA, VisibilityPrivate)
		mutate(&b)
		h.refuse(name, &CreateImage{Image: b}, KindInvalid, msg)
	}
	bad("uppercase id", func(i *Image) { i.ID = "ABCDEF00-0000-4000-8000-000000000002" }, "invalid image id")
	bad("not a uuid", func(i *Image) { i.ID = "img-1" }, "invalid image id")
	bad("visibility", func(i *Image) { i.Visibility = "secret" }, "visibility")
	bad("no owner", func(i *Image) { i.Owner = "" }, "owner")
	bad("disk format", func(i *Image) { i.DiskFormat = "exe" }, "disk_format")
	bad("container format", func(i *Image) { i.ContainerFormat = "zip" }, "container_format")
	bad("min_disk", func(i *Image) { i.MinDisk = -1 }, "min_disk")
	bad("min_ram", func(i *Image) { i.MinRAM = 1 << 31 }, "min_ram")
	bad("long name", func(i *Image) { i.Name = strings.Repeat("x", 256) }, "name")
	bad("empty tag", func(i *Image) { i.Tags = []string{""} }, "tag")
	bad("duplicate tag", func(i *Image) { i.Tags = []string{"a", "a"} }, "twice")
	bad("too many tags", func(i *Image) {
		for n := range ImageMaxTags + 1 {
			i.Tags = append(i.Tags, strings.Repeat("t", n+1))
		}
	}, "at most")
	bad("reserved property", func(i *Image) { i.Properties = map[string]string{"status": "active"} }, "reserved")
	bad("os_glance property", func(i *Image) { i.Properties = map[string]string{"os_glance_x": "1"} }, "reserved")
	bad("status", func(i *Image) { i.Status = ImageActive }, "queued")
	bad("data on a new image", func(i *Image) { i.Size = 5 }, "no data")
	bad("times", func(i *Image) { i.CreatedAt = 0 }, "created_at")
	bad("locations", func(i *Image) { i.Locations = []string{"n1"} }, "no data")
}

func TestImageUpdate(t *testing.T) {
	h := newImageFSM(t)
	img := testImage(1, imgProjA, VisibilityShared)
	h.ok(&CreateImage{Image: img})
	_, meta, _ := GetImage(h.f.State(), img.ID)

	upd := *h.get(img.ID)
	upd.Name, upd.MinRAM, upd.Protected, upd.Hidden = "renamed", 512, true, true
	upd.Properties = map[string]string{"k": "v"}
	upd.Tags = []string{"x"}
	var got Image
	if err := h.ok(&UpdateImage{Image: upd, IfModifyIndex: meta.ModifyIndex, Now: 2000}).Decode(&got); err != nil {
		t.Fatal(err)
	}
	if got.Name != "renamed" || got.MinRAM != 512 || !got.Protected || !got.Hidden || got.Properties["k"] != "v" || got.UpdatedAt != 2000 || got.CreatedAt != img.CreatedAt {
		t.Fatalf("updated %+v", got)
	}
	h.refuse("stale modify index", &UpdateImage{Image: upd, IfModifyIndex: meta.ModifyIndex, Now: 2001}, KindConflict, "changed")
	for _, tc := range []struct {
		attr   string
		mutate func(*Image)
	}{
		{"status", func(i *Image) { i.Status = ImageActive }},
		{"size", func(i *Image) { i.Size = 1 }},
		{"checksum", func(i *Image) { i.Checksum = imgMD5 }},
		{"created_at", func(i *Image) { i.CreatedAt = 1 }},
		{"locations", func(i *Image) { i.Locations = []string{"n1"} }},
		{"members", func(i *Image) {
			i.Members = []ImageMember{{MemberID: imgProjB, Status: MemberAccepted, CreatedAt: 1, UpdatedAt: 1}}
		}},
	} {
		u := *h.get(img.ID)
		tc.mutate(&u)
		h.refuse("read-only "+tc.attr, &UpdateImage{Image: u, Now: 3000}, KindInvalid, "'"+tc.attr+"' is read-only")
	}
	u := *h.get(img.ID)
	u.Visibility = "nope"
	h.refuse("invalid visibility", &UpdateImage{Image: u, Now: 3000}, KindInvalid, "visibility")
	h.refuse("no time", &UpdateImage{Image: *h.get(img.ID)}, KindInvalid, "now")
	missing := testImage(9, imgProjA, VisibilityPrivate)
	h.refuse("missing image", &UpdateImage{Image: missing, Now: 3000}, KindNotFound, "No image found")

	// An update that changes nothing writes nothing.
	before := stateHash(t, h.f)
	h.ok(&UpdateImage{Image: *h.get(img.ID), Now: 9000})
	if stateHash(t, h.f) != before || h.get(img.ID).UpdatedAt != 2000 {
		t.Fatal("a no-op update wrote")
	}
	// The owner may change (the API lets admins do it); the index follows.
	u = *h.get(img.ID)
	u.Owner = imgProjB
	h.ok(&UpdateImage{Image: u, Now: 3000})
	if ids, _ := ImagesOfOwner(h.f.State(), imgProjA); len(ids) != 0 {
		t.Fatalf("old owner still indexed: %v", ids)
	}
	if ids, _ := ImagesOfOwner(h.f.State(), imgProjB); !slices.Equal(ids, []string{img.ID}) {
		t.Fatalf("new owner not indexed: %v", ids)
	}
}

func TestImageUploadLifecycle(t *testing.T) {
	h := newImageFSM(t)
	img := testImage(1, imgProjA, VisibilityPrivate)
	img.DiskFormat = ""
	h.ok(&CreateImage{Image: img})
	h.refuse("begin without formats", &BeginUpload{ID: img.ID, UploadID: "u1", Now: 2000}, KindInvalid, "disk_format, container_format must be set")
	u := *h.get(img.ID)
	u.DiskFormat = "qcow2"
	h.ok(&UpdateImage{Image: u, Now: 1500})

	h.refuse("finish before begin", finish(img.ID, "u1"), KindConflict, "transition from queued to active")
	h.ok(&BeginUpload{ID: img.ID, UploadID: "u1", Now: 2000})
	if got := h.get(img.ID); got.Status != ImageSaving || got.UploadID != "u1" {
		t.Fatalf("after begin: %+v", got)
	}
	h.refuse("second upload", &BeginUpload{ID: img.ID, UploadID: "u2", Now: 2001}, KindConflict, "transition from saving to saving")
	h.refuse("finish by another upload", finish(img.ID, "u2"), KindConflict, "another upload")
	h.refuse("abort by another upload", &AbortUpload{ID: img.ID, UploadID: "u2", Now: 2002}, KindConflict, "another upload")
	u = *h.get(img.ID)
	u.DiskFormat = "raw"
	h.refuse("formats while saving", &UpdateImage{Image: u, Now: 2003}, KindConflict, "queued image")

	bad := finish(img.ID, "u1")
	bad.Checksum = "xyz"
	h.refuse("bad checksum", bad, KindInvalid, "checksum")
	bad = finish(img.ID, "u1")
	bad.SHA256 = strings.Repeat("A", 64)
	h.refuse("bad sha256", bad, KindInvalid, "sha256")
	bad = finish(img.ID, "u1")
	bad.Locations = nil
	h.refuse("no location", bad, KindInvalid, "location")
	bad = finish(img.ID, "u1")
	bad.Size = -1
	h.refuse("negative size", bad, KindInvalid, "negative")

	// Abort: back to queued, and a new upload may begin.
	h.ok(&AbortUpload{ID: img.ID, UploadID: "u1", Now: 2100})
	if got := h.get(img.ID); got.Status != ImageQueued || got.UploadID != "" {
		t.Fatalf("after abort: %+v", got)
	}
	h.ok(&BeginUpload{ID: img.ID, UploadID: "u3", Now: 2200})
	var got Image
	if err := h.ok(finish(img.ID, "u3")).Decode(&got); err != nil {
		t.Fatal(err)
	}
	if got.Status != ImageActive || got.Size != 42 || got.Checksum != imgMD5 || got.OSHashAlgo != "sha512" ||
		got.OSHashValue != imgSHA512 || got.SHA256 != imgSHA256 || !slices.Equal(got.Locations, []string{"n1", "n2"}) || got.UploadID != "" {
		t.Fatalf("after finish: %+v", got)
	}
	if ids, _ := ImagesWithData(h.f.State(), imgSHA256); !slices.Equal(ids, []string{img.ID}) {
		t.Fatalf("sha256 index: %v", ids)
	}
	h.refuse("upload to an active image", &BeginUpload{ID: img.ID, UploadID: "u4", Now: 3000}, KindConflict, "transition from active to saving")
	u = *h.get(img.ID)
	u.ContainerFormat = "ovf"
	h.refuse("formats of an active image", &UpdateImage{Image: u, Now: 3000}, KindConflict, "queued image")

	// Locations: a known one is a no-op; the sha256 must match.
	before := stateHash(t, h.f)
	h.ok(&AddImageLocation{ID: img.ID, SHA256: imgSHA256, Location: "n2"})
	if stateHash(t, h.f) != before {
		t.Fatal("re-adding a location wrote")
	}
	h.ok(&AddImageLocation{ID: img.ID, SHA256: imgSHA256, Location: "n0"})
	if got := h.get(img.ID); !slices.Equal(got.Locations, []string{"n0", "n1", "n2"}) {
		t.Fatalf("locations %v", got.Locations)
	}
	h.refuse("location of other data", &AddImageLocation{ID: img.ID, SHA256: strings.Repeat("3", 64), Location: "n3"}, KindConflict, "has data")
	h.refuse("bad location", &AddImageLocation{ID: img.ID, SHA256: imgSHA256, Location: "a/b"}, KindInvalid, "location")

	// A second image with the same content must agree on size and MD5.
	img2 := testImage(2, imgProjB, VisibilityPrivate)
	h.ok(&CreateImage{Image: img2})
	h.ok(&BeginUpload{ID: img2.ID, UploadID: "v1", Now: 4000})
	lie := finish(img2.ID, "v1")
	lie.Size = 43
	h.refuse("same sha256, other size", lie, KindConflict, "size or checksum")
	lie = finish(img2.ID, "v1")
	lie.Checksum = strings.Repeat("9", 32)
	h.refuse("same sha256, other md5", lie, KindConflict, "size or checksum")
	h.ok(finish(img2.ID, "v1"))
	if ids, _ := ImagesWithData(h.f.State(), imgSHA256); len(ids) != 2 {
		t.Fatalf("sha256 index: %v", ids)
	}
	h.refuse("location of a queued image", &AddImageLocation{ID: imgID(3), SHA256: imgSHA256, Location: "n1"}, KindNotFound, "No image found")
}

func TestImageDelete(t *testing.T) {
	h := newImageFSM(t)
	img := testImage(1, imgProjA, VisibilityPrivate)
	img.Protected = true
	h.ok(&CreateImage{Image: img})
	h.ok(&BeginUpload{ID: img.ID, UploadID: "u1", Now: 2000})
	h.ok(finish(img.ID, "u1"))
	h.refuse("protected", &DeleteImage{ID: img.ID}, KindConflict, "protected")
	u := *h.get(img.ID)
	u.Protected = false
	h.ok(&UpdateImage{Image: u, Now: 3000})
	var gone Image
	if err := h.ok(&DeleteImage{ID: img.ID}).Decode(&gone); err != nil || gone.SHA256 != imgSHA256 {
		t.Fatalf("delete response %+v %v", gone, err)
	}
	if _, _, err := GetImage(h.f.State(), img.ID); !errors.Is(err, ErrNotFound) {
		t.Fatalf("get after delete: %v", err)
	}
	if ids, _ := ImagesWithData(h.f.State(), imgSHA256); len(ids) != 0 {
		t.Fatalf("sha256 index after delete: %v", ids)
	}
	if ids, _ := ImagesOfOwner(h.f.State(), imgProjA); len(ids) != 0 {
		t.Fatalf("owner index after delete: %v", ids)
	}
	h.refuse("twice", &DeleteImage{ID: img.ID}, KindNotFound, "No image found")
	h.refuse("bad id", &DeleteImage{ID: "x"}, KindNotFound, "No image found")
}

func TestImageMembersAndVisibility(t *testing.T) {
	h := newImageFSM(t)
	shared := testImage(1, imgProjA, VisibilityShared)
	private := testImage(2, imgProjA, VisibilityPrivate)
	public := testImage(3, imgProjB, VisibilityPublic)
	community := testImage(4, imgProjB, VisibilityCommunity)
	hidden := testImage(5, imgProjA, VisibilityPrivate)
	hidden.Hidden = true
	for _, img := range []Image{shared, private, public, community, hidden} {
		h.ok(&CreateImage{Image: img})
	}
	h.refuse("member of a private image", &AddImageMember{ImageID: private.ID, Member: imgProjB, Now: 2000}, KindConflict, "Only shared images")
	var m ImageMember
	if err := h.ok(&AddImageMember{ImageID: shared.ID, Member: imgProjB, Now: 2000}).Decode(&m); err != nil || m.Status != MemberPending {
		t.Fatalf("member %+v %v", m, err)
	}
	h.refuse("member twice", &AddImageMember{ImageID: shared.ID, Member: imgProjB, Now: 2001}, KindConflict, "already associated")
	h.refuse("bad member status", &UpdateImageMember{ImageID: shared.ID, Member: imgProjB, Status: "maybe", Now: 2002}, KindInvalid, "member status")
	h.refuse("not a member", &UpdateImageMember{ImageID: shared.ID, Member: imgProjC, Status: MemberAccepted, Now: 2002}, KindNotFound, "not a member")

	st := h.f.State()
	sh := h.get(shared.ID)
	if !ImageVisible(sh, imgProjB, false) || ImageVisible(sh, imgProjC, false) || !ImageVisible(sh, imgProjA, false) || !ImageVisible(sh, imgProjC, true) {
		t.Fatal("shared image visibility")
	}
	if ImageVisible(h.get(private.ID), imgProjB, false) || !ImageVisible(h.get(public.ID), imgProjC, false) || !ImageVisible(h.get(community.ID), imgProjC, false) {
		t.Fatal("private/public/community visibility")
	}
	if ImageVisible(h.get(private.ID), "", false) {
		t.Fatal("an unscoped caller sees a private image")
	}

	names := func(q ImageQuery) []string {
		t.Helper()
		imgs, err := ListImages(st, q)
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, i := range imgs {
			out = append(out, i.Name)
		}
		return out
	}
	sortByName := []ImageSort{{Key: "name"}}
	check := func(what string, q ImageQuery, want ...string) {
		t.Helper()
		q.Sort = sortByName
		if got := names(q); !slices.Equal(got, want) {
			t.Errorf("%s: %v, want %v", what, got, want)
		}
	}
	check("A's default list", ImageQuery{ProjectID: imgProjA}, "img1", "img2", "img3")
	check("B's default list (pending share left out)", ImageQuery{ProjectID: imgProjB}, "img3", "img4")
	check("B's pending shares", ImageQuery{ProjectID: imgProjB, MemberStatus: MemberPending}, "img1", "img3", "img4")
	h.ok(&UpdateImageMember{ImageID: shared.ID, Member: imgProjB, Status: MemberAccepted, Now: 2003})
	check("B after accepting", ImageQuery{ProjectID: imgProjB}, "img1", "img3", "img4")
	check("C's default list", ImageQuery{ProjectID: imgProjC}, "img3")
	check("C's community list", ImageQuery{ProjectID: imgProjC, Visibility: VisibilityCommunity}, "img4")
	check("C's all list", ImageQuery{ProjectID: imgProjC, Visibility: "all"}, "img3", "img4")
	check("A's private list", ImageQuery{ProjectID: imgProjA, Visibility: VisibilityPrivate}, "img2")
	check("A's hidden list", ImageQuery{ProjectID: imgProjA, Hidden: new(true)}, "img5")
	check("admin's default list", ImageQuery{ProjectID: imgProjC, IsAdmin: true}, "img1", "img2", "img3", "img4")
	check("match", ImageQuery{ProjectID: imgProjA, Match: func(i *Image) bool { return i.Owner == imgProjB }}, "img3")

	// Order: created_at descending by default; marker and limit page.
	if got := names(ImageQuery{IsAdmin: true}); !slices.Equal(got, []string{"img4", "img3", "img2", "img1"}) {
		t.Fatalf("default order %v", got)
	}
	if got := names(ImageQuery{IsAdmin: true, Limit: 2}); !slices.Equal(got, []string{"img4", "img3"}) {
		t.Fatalf("first page %v", got)
	}
	if got := names(ImageQuery{IsAdmin: true, Limit: 2, Marker: imgID(3)}); !slices.Equal(got, []string{"img2", "img1"}) {
		t.Fatalf("second page %v", got)
	}
	if got := names(ImageQuery{IsAdmin: true, Sort: []ImageSort{{Key: "name", Desc: true}}, Marker: imgID(2)}); !slices.Equal(got, []string{"img1"}) {
		t.Fatalf("name desc after img2: %v", got)
	}
	if _, err := ListImages(st, ImageQuery{ProjectID: imgProjC, Marker: private.ID}); !errors.Is(err, ErrInvalid) {
		t.Fatalf("marker the caller cannot see: %v", err)
	}

	h.ok(&DeleteImageMember{ImageID: shared.ID, Member: imgProjB})
	if ImageVisible(h.get(shared.ID), imgProjB, false) {
		t.Fatal("a removed member still sees the image")
	}
	h.refuse("remove a non-member", &DeleteImageMember{ImageID: shared.ID, Member: imgProjB}, KindNotFound, "not a member")
}
