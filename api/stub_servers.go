package api

// TEMPORARY stub, replaced by the real servers routes.
func (s *Server) registerServers() {}
