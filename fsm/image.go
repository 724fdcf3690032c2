package fsm

// Images: the Glance v2 subset Keel serves. An image's metadata lives here;
// its data never does. The data is a file on controllers' disks, addressed
// by its SHA-256 (the api package's blob store), and an active image lists
// the controllers holding a copy in Locations. Appliers are in
// image_apply.go, reads in image_read.go, field rules in image_validate.go.

// Image command types. Persisted in the Raft log: append only, never
// renumber. 70–89 are reserved for images.
const (
	CmdCreateImage       CommandType = 70
	CmdUpdateImage       CommandType = 71
	CmdDeleteImage       CommandType = 72
	CmdBeginUpload       CommandType = 73
	CmdFinishUpload      CommandType = 74
	CmdAbortUpload       CommandType = 75
	CmdAddImageLocation  CommandType = 76
	CmdAddImageMember    CommandType = 77
	CmdUpdateImageMember CommandType = 78
	CmdDeleteImageMember CommandType = 79
)

// Image tables.
//
//	image   <id>   index "owner"  [owner project id]
//	               index "sha256" [sha256 of the data] (images with data only)
//
// The sha256 index tells whether any image still refers to a blob, so a
// controller may remove its copy.
const (
	// TableImage holds Image records by id.
	TableImage = "image"
)

const (
	imageIdxOwner  = "owner"
	imageIdxSHA256 = "sha256"
)

// Image statuses (Glance's).
const (
	ImageQueued        = "queued"
	ImageSaving        = "saving"
	ImageActive        = "active"
	ImageKilled        = "killed"
	ImageDeleted       = "deleted"
	ImagePendingDelete = "pending_delete"
)

// Image visibilities (Glance's).
const (
	VisibilityPublic    = "public"
	VisibilityPrivate   = "private"
	VisibilityShared    = "shared"
	VisibilityCommunity = "community"
)

// Member statuses of a shared image.
const (
	MemberPending  = "pending"
	MemberAccepted = "accepted"
	MemberRejected = "rejected"
)

// ImageHashAlgo is the os_hash_algo of every image (Glance's default).
const ImageHashAlgo = "sha512"

// Image is a Glance v2 image record.
type Image struct {
	ID              string `json:"id"` // a lowercase canonical UUID
	Name            string `json:"name"`
	Status          string `json:"status"`
	Visibility      string `json:"visibility"`
	Owner           string `json:"owner"` // project id
	DiskFormat      string `json:"disk_format"`
	ContainerFormat string `json:"container_format"`
	// Size is the data's size in bytes (0 before an upload); VirtualSize
	// is unknown (0) unless set by an upload that knows it.
	Size        int64 `json:"size"`
	VirtualSize int64 `json:"virtual_size"`
	// Checksum is the MD5 of the data (hex), OSHashValue its SHA-512 (hex,
	// OSHashAlgo "sha512"), SHA256 its SHA-256 (hex): the blob's address.
	Checksum    string `json:"checksum"`
	OSHashAlgo  string `json:"os_hash_algo"`
	OSHashValue string `json:"os_hash_value"`
	SHA256      string `json:"sha256"`
	MinDisk     int    `json:"min_disk"` // GiB
	MinRAM      int    `json:"min_ram"`  // MiB
	Protected   bool   `json:"protected"`
	// Hidden is Glance's os_hidden: left out of default image lists.
	Hidden     bool              `json:"os_hidden"`
	Tags       []string          `json:"tags"`       // distinct, in insertion order; nil when none
	Properties map[string]string `json:"properties"` // additional properties; nil when none
	// CreatedAt and UpdatedAt are unix microseconds (so that images made
	// in one second still list in creation order).
	CreatedAt int64 `json:"created_at"`
	UpdatedAt int64 `json:"updated_at"`
	// Locations are the names of the controllers holding a verified copy
	// of the data, sorted.
	Locations []string `json:"locations"`
	// Members are the projects a shared image is shared with, by member id.
	Members []ImageMember `json:"members"`
	// UploadID identifies the upload in progress while Status is saving:
	// only the upload that began may finish or abort it.
	UploadID string `json:"upload_id"`
}

// ImageMember is a project an image is shared with.
type ImageMember struct {
	MemberID  string `json:"member_id"`  // project id
	Status    string `json:"status"`     // pending, accepted, rejected
	CreatedAt int64  `json:"created_at"` // unix microseconds
	UpdatedAt int64  `json:"updated_at"` // unix microseconds
}

// Member returns the member entry of project, or nil.
func (img *Image) Member(project string) *ImageMember {
	for i := range img.Members {
		if img.Members[i].MemberID == project {
			return &img.Members[i]
		}
	}
	return nil
}

// CreateImage creates a queued image without data. The proposer sets ID,
// Owner, CreatedAt and UpdatedAt (unix microseconds); Status must be queued (or empty, which
// means queued) and the data fields empty. Response: the stored Image.
type CreateImage struct {
	Image Image `json:"image"`
}

func (*CreateImage) CommandType() CommandType { return CmdCreateImage }
func (*CreateImage) CommandVersion() uint8    { return 1 }

// UpdateImage replaces an image's mutable attributes (name, visibility,
// owner, formats, min_disk, min_ram, protected, os_hidden, tags,
// properties) with those of Image, the result of a JSON patch the proposer
// computed. The read-only attributes of Image (status, data fields,
// created_at, locations, members) must equal the stored ones; UpdatedAt
// becomes Now. With IfModifyIndex set, the image must not have changed since
// that Raft index (the patch was computed against it), else KindConflict.
// Response: the stored Image.
type UpdateImage struct {
	Image         Image  `json:"image"`
	IfModifyIndex uint64 `json:"if_modify_index,omitempty"`
	Now           int64  `json:"now"` // unix microseconds
}

func (*UpdateImage) CommandType() CommandType { return CmdUpdateImage }
func (*UpdateImage) CommandVersion() uint8    { return 1 }

// DeleteImage deletes an image in any status. A protected image is refused
// (KindConflict; the API answers 403). Response: the deleted Image, so the
// proposer can tell whether its data is still referenced.
type DeleteImage struct {
	ID string `json:"id"`
}

func (*DeleteImage) CommandType() CommandType { return CmdDeleteImage }
func (*DeleteImage) CommandVersion() uint8    { return 1 }

// BeginUpload moves a queued image to saving for the upload UploadID.
// The image's disk and container formats must be set. Response: the stored
// Image.
type BeginUpload struct {
	ID       string `json:"id"`
	UploadID string `json:"upload_id"`
	Now      int64  `json:"now"` // unix microseconds
}

func (*BeginUpload) CommandType() CommandType { return CmdBeginUpload }
func (*BeginUpload) CommandVersion() uint8    { return 1 }

// FinishUpload makes a saving image active with the data the upload
// UploadID stored: its size, hashes and the controllers holding a copy. It
// is refused if another upload owns the image, or if an image with the same
// SHA-256 records a different size or checksum (the same content cannot
// have two). Response: the stored Image.
type FinishUpload struct {
	ID          string   `json:"id"`
	UploadID    string   `json:"upload_id"`
	Size        int64    `json:"size"`
	VirtualSize int64    `json:"virtual_size"`
	Checksum    string   `json:"checksum"`
	OSHashValue string   `json:"os_hash_value"`
	SHA256      string   `json:"sha256"`
	Locations   []string `json:"locations"`
	Now         int64    `json:"now"` // unix microseconds
}

func (*FinishUpload) CommandType() CommandType { return CmdFinishUpload }
func (*FinishUpload) CommandVersion() uint8    { return 1 }

// AbortUpload returns a saving image to queued (Glance's behaviour
// when an upload fails), if UploadID still owns it. Response: the stored
// Image.
type AbortUpload struct {
	ID       string `json:"id"`
	UploadID string `json:"upload_id"`
	Now      int64  `json:"now"` // unix microseconds
}

func (*AbortUpload) CommandType() CommandType { return CmdAbortUpload }
func (*AbortUpload) CommandVersion() uint8    { return 1 }

// AddImageLocation records that controller Location holds a verified copy
// of the data of an active image whose SHA-256 is SHA256. Adding a known
// location changes nothing. No response value.
type AddImageLocation struct {
	ID       string `json:"id"`
	SHA256   string `json:"sha256"`
	Location string `json:"location"`
}

func (*AddImageLocation) CommandType() CommandType { return CmdAddImageLocation }
func (*AddImageLocation) CommandVersion() uint8    { return 1 }

// AddImageMember shares a shared image with a project; the member starts
// pending. Response: the stored ImageMember.
type AddImageMember struct {
	ImageID string `json:"image_id"`
	Member  string `json:"member"`
	Now     int64  `json:"now"` // unix microseconds
}

func (*AddImageMember) CommandType() CommandType { return CmdAddImageMember }
func (*AddImageMember) CommandVersion() uint8    { return 1 }

// UpdateImageMember sets a member's status (pending, accepted, rejected).
// Response: the stored ImageMember.
type UpdateImageMember struct {
	ImageID string `json:"image_id"`
	Member  string `json:"member"`
	Status  string `json:"status"`
	Now     int64  `json:"now"` // unix microseconds
}

func (*UpdateImageMember) CommandType() CommandType { return CmdUpdateImageMember }
func (*UpdateImageMember) CommandVersion() uint8    { return 1 }

// DeleteImageMember stops sharing an image with a project. No response
// value.
type DeleteImageMember struct {
	ImageID string `json:"image_id"`
	Member  string `json:"member"`
}

func (*DeleteImageMember) CommandType() CommandType { return CmdDeleteImageMember }
func (*DeleteImageMember) CommandVersion() uint8    { return 1 }

func init() {
	register("CreateImage", applyCreateImage)
	register("UpdateImage", applyUpdateImage)
	register("DeleteImage", applyDeleteImage)
	register("BeginUpload", applyBeginUpload)
	register("FinishUpload", applyFinishUpload)
	register("AbortUpload", applyAbortUpload)
	register("AddImageLocation", applyAddImageLocation)
	register("AddImageMember", applyAddImageMember)
	register("UpdateImageMember", applyUpdateImageMember)
	register("DeleteImageMember", applyDeleteImageMember)
}
