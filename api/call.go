package api

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"mime"
	"net/http"

	"github.com/keel-cloud/keel/fsm"
)

// JSON writes v as the response body with status.
func (c *Call) JSON(status int, v any) error {
	writeJSON(c.W, status, v)
	return nil
}

// NoContent answers with status and no body.
func (c *Call) NoContent(status int) error {
	c.W.WriteHeader(status)
	return nil
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// Decode reads the JSON request body into v: at most maxBodyBytes (413),
// well-formed JSON (400), one value, and a JSON content type if one is given
// (415). Validation of the fields is the handler's.
func (c *Call) Decode(v any) error {
	return decodeJSONBody(c.W, c.R, v)
}

func decodeJSONBody(w http.ResponseWriter, r *http.Request, v any) error {
	if ct := r.Header.Get("Content-Type"); ct != "" {
		mt, _, err := mime.ParseMediaType(ct)
		if err != nil || (mt != "application/json" && mt != "application/openstack-images-v2.1-json-patch" && mt != "application/json-patch+json") {
			return Errorf(http.StatusUnsupportedMediaType, "Unsupported Content-Type %q: send application/json.", ct)
		}
	}
	body := http.MaxBytesReader(w, r.Body, maxBodyBytes)
	dec := json.NewDecoder(body)
	dec.UseNumber()
	if err := dec.Decode(v); err != nil {
		var tooBig *http.MaxBytesError
		switch {
		case errors.As(err, &tooBig):
			return Errorf(http.StatusRequestEntityTooLarge, "Request is too large: the body is limited to %d bytes.", maxBodyBytes)
		case errors.Is(err, io.EOF):
			return badRequest("The request body is empty; a JSON document is required.")
		default:
			return badRequest("Malformed request body: %v", err)
		}
	}
	if dec.More() {
		return badRequest("Malformed request body: more than one JSON value.")
	}
	if _, err := dec.Token(); err != io.EOF {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			return Errorf(http.StatusRequestEntityTooLarge, "Request is too large: the body is limited to %d bytes.", maxBodyBytes)
		}
		return badRequest("Malformed request body: trailing data after the JSON document.")
	}
	return nil
}

// apply proposes cmd and decodes the command's result into out when out is
// set. Node.Apply returns once this controller has applied the write, so
// the caller's next read here sees it.
// readState makes the next read linearizable (whatever any controller
// acknowledged is visible) and returns the state to read.
func (s *Server) readState(c *Call) (*fsm.State, error) {
	if err := s.node.Consistent(c.Context()); err != nil {
		return nil, err
	}
	return s.node.State(), nil
}

func (s *Server) apply(ctx context.Context, cmd fsm.Command, out any) error {
	resp, err := s.node.Apply(ctx, cmd)
	if err != nil {
		return err
	}
	if out != nil {
		return resp.Decode(out)
	}
	return nil
}
