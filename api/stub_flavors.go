package api

// TEMPORARY stub, replaced by the real flavors routes.
func (s *Server) registerFlavors() {}
