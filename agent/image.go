package agent

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"

	"github.com/keel-cloud/keel/agent/driver"
)

// ImageHeaderSHA256 is the header with which the controllers send an
// image's sha256 along with its bytes.
const ImageHeaderSHA256 = "X-Image-Sha256"

// images is the driver.Image of an agent: it streams an image's bytes from
// whichever controller answers. The driver checks the sha256.
type images struct{ c *client }

var _ driver.Image = images{}

// Open is GET /internal/v1/images/{id}/file. Failover happens before the
// first byte; a download cut short fails, and the driver's next Spawn (the
// task stays until it is reported) starts it again.
func (im images) Open(ctx context.Context, imageID string) (io.ReadCloser, error) {
	resp, err := im.c.do(ctx, call{method: http.MethodGet, path: "/internal/v1/images/" + url.PathEscape(imageID) + "/file", timeout: -1})
	if err != nil {
		return nil, fmt.Errorf("download image %s from the controllers: %w", imageID, err)
	}
	return resp.Body, nil
}
