package api

func init() {
	expectPolicy(map[string]Rule{
		"GET /compute/v2.1/flavors":                                     Authenticated,
		"GET /compute/v2.1/flavors/detail":                              Authenticated,
		"POST /compute/v2.1/flavors":                                    Admin,
		"GET /compute/v2.1/flavors/{flavor_id}":                         Authenticated,
		"PUT /compute/v2.1/flavors/{flavor_id}":                         Admin,
		"DELETE /compute/v2.1/flavors/{flavor_id}":                      Admin,
		"GET /compute/v2.1/flavors/{flavor_id}/os-extra_specs":          Authenticated, // Nova: reader of the caller's own project
		"POST /compute/v2.1/flavors/{flavor_id}/os-extra_specs":         Admin,
		"GET /compute/v2.1/flavors/{flavor_id}/os-extra_specs/{key}":    Authenticated,
		"PUT /compute/v2.1/flavors/{flavor_id}/os-extra_specs/{key}":    Admin,
		"DELETE /compute/v2.1/flavors/{flavor_id}/os-extra_specs/{key}": Admin,
		"GET /compute/v2.1/flavors/{flavor_id}/os-flavor-access":        Admin,
		"POST /compute/v2.1/flavors/{flavor_id}/action":                 Admin,
	})
}
