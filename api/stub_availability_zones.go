package api

// TEMPORARY stub, replaced by the real availability_zones routes.
func (s *Server) registerAvailabilityZones() {}
