package api

func init() {
	const p = "/compute/v2.1/os-aggregates"
	// Nova's os_compute_api:os-aggregates:* and
	// compute:aggregates:images are all ADMIN.
	expectPolicy(map[string]Rule{
		"GET " + p:                             Admin,
		"POST " + p:                            Admin,
		"GET " + p + "/{aggregate_id}":         Admin,
		"PUT " + p + "/{aggregate_id}":         Admin,
		"DELETE " + p + "/{aggregate_id}":      Admin,
		"POST " + p + "/{aggregate_id}/action": Admin,
		"POST " + p + "/{aggregate_id}/images": Admin,
	})
}
