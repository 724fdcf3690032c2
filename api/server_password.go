package api

import "net/http"

// os-server-password: the encrypted admin password a guest posts to the
// metadata service. Keel has no metadata service yet, so no guest ever posts
// one: the password reads as empty, as Nova's does for such a server, and
// clearing it is a no-op.
func (s *Server) registerServerPassword(route func(method, path string, rule Rule, h HandlerFunc)) {
	route("GET", "/{server_id}/os-server-password", ProjectReader, s.showServerPassword)
	route("DELETE", "/{server_id}/os-server-password", ProjectMember, s.clearServerPassword)
}

func (s *Server) showServerPassword(c *Call) error {
	if _, err := s.serverFor(c, c.Param("server_id")); err != nil {
		return err
	}
	return c.JSON(http.StatusOK, map[string]string{"password": ""})
}

func (s *Server) clearServerPassword(c *Call) error {
	if _, err := s.serverFor(c, c.Param("server_id")); err != nil {
		return err
	}
	return c.NoContent(http.StatusNoContent)
}
