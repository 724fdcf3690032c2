package api

// TEMPORARY stub, replaced by the real keypairs routes.
func (s *Server) registerKeypairs() {}
