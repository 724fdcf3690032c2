package api

// TEMPORARY stub, replaced by the real quotas routes.
func (s *Server) registerQuotas() {}
