package api

// TEMPORARY stub, replaced by the real image routes.
func (s *Server) registerImage() {}
