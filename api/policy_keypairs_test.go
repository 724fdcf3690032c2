package api

func init() {
	expectPolicy(map[string]Rule{
		// Key pairs are the caller's own (Nova: admin or user_id:%(user_id)s);
		// naming another user is checked by the handlers.
		"GET /compute/v2.1/os-keypairs":                   Authenticated,
		"POST /compute/v2.1/os-keypairs":                  Authenticated,
		"GET /compute/v2.1/os-keypairs/{keypair_name}":    Authenticated,
		"DELETE /compute/v2.1/os-keypairs/{keypair_name}": Authenticated,
		"GET /compute/v2.1/os-availability-zone":          Authenticated,
		"GET /compute/v2.1/os-availability-zone/detail":   Admin,
	})
}
