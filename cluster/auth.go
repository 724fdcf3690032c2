package cluster

import (
	"net/http"

	"github.com/keel-cloud/keel/internal/clusterauth"
)

// Sign adds the cluster-key signature to an internal request (see
// internal/clusterauth for the scheme).
func Sign(req *http.Request, key []byte) { clusterauth.Sign(req, key) }
