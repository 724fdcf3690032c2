package api

import (
	"encoding/json"
	"net/http"
	"time"

	"github.com/keel-cloud/keel/fsm"
)

type routeFunc func(method, path string, rule Rule, h HandlerFunc)

// Server metadata: /servers/{id}/metadata[/{key}].
func (s *Server) registerServerMetadata(route routeFunc) {
	route("GET", "/{server_id}/metadata", ProjectReader, s.listServerMetadata)
	route("POST", "/{server_id}/metadata", ProjectMember, s.setServerMetadata)
	route("PUT", "/{server_id}/metadata", ProjectMember, s.setServerMetadata)
	route("GET", "/{server_id}/metadata/{key}", ProjectReader, s.showServerMetadata)
	route("PUT", "/{server_id}/metadata/{key}", ProjectMember, s.putServerMetadataItem)
	route("DELETE", "/{server_id}/metadata/{key}", ProjectMember, s.deleteServerMetadataItem)
}

func (s *Server) listServerMetadata(c *Call) error {
	srv, err := s.serverFor(c, c.Param("server_id"))
	if err != nil {
		return err
	}
	md := srv.Metadata
	if md == nil {
		md = map[string]string{}
	}
	return c.JSON(http.StatusOK, map[string]any{"metadata": md})
}

// decodeMetadata reads {"metadata": {str: str}}.
func decodeMetadata(c *Call) (map[string]string, error) {
	var body struct {
		Metadata map[string]json.RawMessage `json:"metadata"`
	}
	if err := c.Decode(&body); err != nil {
		return nil, err
	}
	if body.Metadata == nil {
		return nil, badRequest("Invalid input for field/attribute metadata. 'metadata' is a required property and must be an object.")
	}
	md := make(map[string]string, len(body.Metadata))
	for k, v := range body.Metadata {
		var str string
		if err := json.Unmarshal(v, &str); err != nil {
			return nil, badRequest("Invalid input for field/attribute metadata. Value of %q: %s is not of type 'string'.", k, v)
		}
		md[k] = str
	}
	return md, fsm.ValidMetadata(md)
}

// setServerMetadata: POST merges, PUT replaces all.
func (s *Server) setServerMetadata(c *Call) error {
	md, err := decodeMetadata(c)
	if err != nil {
		return err
	}
	srv, err := s.serverFor(c, c.Param("server_id"))
	if err != nil {
		return err
	}
	resp, err := s.node.Apply(c.Context(), &fsm.SetServerMetadata{ID: srv.ID, Metadata: md, Replace: c.R.Method == http.MethodPut, Now: time.Now().UnixMicro()})
	if err != nil {
		return err
	}
	var out map[string]string
	if err := resp.Decode(&out); err != nil {
		return err
	}
	return c.JSON(http.StatusOK, map[string]any{"metadata": out})
}

func (s *Server) showServerMetadata(c *Call) error {
	srv, err := s.serverFor(c, c.Param("server_id"))
	if err != nil {
		return err
	}
	v, ok := srv.Metadata[c.Param("key")]
	if !ok {
		return notFound("Metadata item was not found")
	}
	return c.JSON(http.StatusOK, map[string]any{"meta": map[string]string{c.Param("key"): v}})
}

func (s *Server) putServerMetadataItem(c *Call) error {
	var body struct {
		Meta map[string]json.RawMessage `json:"meta"`
	}
	if err := c.Decode(&body); err != nil {
		return err
	}
	if len(body.Meta) != 1 {
		return badRequest("Request body contains too many items: 'meta' must hold exactly one key.")
	}
	key := c.Param("key")
	raw, ok := body.Meta[key]
	if !ok {
		return badRequest("Request body and URI mismatch")
	}
	var v string
	if err := json.Unmarshal(raw, &v); err != nil {
		return badRequest("Invalid input for field/attribute meta. Value: %s is not of type 'string'.", raw)
	}
	md := map[string]string{key: v}
	if err := fsm.ValidMetadata(md); err != nil {
		return err
	}
	srv, err := s.serverFor(c, c.Param("server_id"))
	if err != nil {
		return err
	}
	if _, err := s.node.Apply(c.Context(), &fsm.SetServerMetadata{ID: srv.ID, Metadata: md, Now: time.Now().UnixMicro()}); err != nil {
		return err
	}
	return c.JSON(http.StatusOK, map[string]any{"meta": md})
}

func (s *Server) deleteServerMetadataItem(c *Call) error {
	srv, err := s.serverFor(c, c.Param("server_id"))
	if err != nil {
		return err
	}
	if _, err := s.node.Apply(c.Context(), &fsm.DeleteServerMetadata{ID: srv.ID, Key: c.Param("key"), Now: time.Now().UnixMicro()}); err != nil {
		return err
	}
	return c.NoContent(http.StatusNoContent)
}

// Server tags (2.26+): /servers/{id}/tags[/{tag}].
func (s *Server) registerServerTags(route routeFunc) {
	route("GET", "/{server_id}/tags", ProjectReader, s.listServerTags)
	route("PUT", "/{server_id}/tags", ProjectMember, s.replaceServerTags)
	route("DELETE", "/{server_id}/tags", ProjectMember, s.replaceServerTags)
	route("GET", "/{server_id}/tags/{tag}", ProjectReader, s.checkServerTag)
	route("PUT", "/{server_id}/tags/{tag}", ProjectMember, s.addServerTag)
	route("DELETE", "/{server_id}/tags/{tag}", ProjectMember, s.deleteServerTag)
}

// tagsServer gates the tag API on 2.26 and loads the server.
func (s *Server) tagsServer(c *Call) (*fsm.Server, error) {
	if !c.Version.AtLeast(2, 26) {
		return nil, notFound("The resource could not be found.")
	}
	return s.serverFor(c, c.Param("server_id"))
}

func (s *Server) listServerTags(c *Call) error {
	srv, err := s.tagsServer(c)
	if err != nil {
		return err
	}
	tags := srv.Tags
	if tags == nil {
		tags = []string{}
	}
	return c.JSON(http.StatusOK, map[string]any{"tags": tags})
}

// replaceServerTags: PUT sets the whole list, DELETE removes them all.
func (s *Server) replaceServerTags(c *Call) error {
	var tags []string
	if c.R.Method == http.MethodPut {
		var body struct {
			Tags *[]string `json:"tags"`
		}
		if err := c.Decode(&body); err != nil {
			return err
		}
		if body.Tags == nil {
			return badRequest("Invalid input for field/attribute tags. 'tags' is a required property.")
		}
		tags = *body.Tags
		for _, t := range tags {
			if err := fsm.ValidTag(t); err != nil {
				return err
			}
		}
	}
	srv, err := s.tagsServer(c)
	if err != nil {
		return err
	}
	resp, err := s.node.Apply(c.Context(), &fsm.SetServerTags{ID: srv.ID, Tags: tags, Now: time.Now().UnixMicro()})
	if err != nil {
		return err
	}
	if c.R.Method == http.MethodDelete {
		return c.NoContent(http.StatusNoContent)
	}
	var out []string
	if err := resp.Decode(&out); err != nil {
		return err
	}
	if out == nil {
		out = []string{}
	}
	return c.JSON(http.StatusOK, map[string]any{"tags": out})
}

func (s *Server) checkServerTag(c *Call) error {
	srv, err := s.tagsServer(c)
	if err != nil {
		return err
	}
	for _, t := range srv.Tags {
		if t == c.Param("tag") {
			return c.NoContent(http.StatusNoContent)
		}
	}
	return notFound("Tag %s could not be found.", c.Param("tag"))
}

func (s *Server) addServerTag(c *Call) error {
	if err := fsm.ValidTag(c.Param("tag")); err != nil {
		return err
	}
	srv, err := s.tagsServer(c)
	if err != nil {
		return err
	}
	resp, err := s.node.Apply(c.Context(), &fsm.AddServerTag{ID: srv.ID, Tag: c.Param("tag"), Now: time.Now().UnixMicro()})
	if err != nil {
		return err
	}
	var added bool
	_ = resp.Decode(&added)
	c.W.Header().Set("Location", s.publicURL(c.R)+"/compute/v2.1/servers/"+srv.ID+"/tags/"+c.Param("tag"))
	if added {
		return c.NoContent(http.StatusCreated)
	}
	return c.NoContent(http.StatusNoContent)
}

func (s *Server) deleteServerTag(c *Call) error {
	srv, err := s.tagsServer(c)
	if err != nil {
		return err
	}
	if _, err := s.node.Apply(c.Context(), &fsm.DeleteServerTag{ID: srv.ID, Tag: c.Param("tag"), Now: time.Now().UnixMicro()}); err != nil {
		return err
	}
	return c.NoContent(http.StatusNoContent)
}
