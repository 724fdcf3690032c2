package api

func init() {
	expectPolicy(map[string]Rule{
		// Nova's PROJECT_READER_OR_ADMIN on {tenant_id}: the handler
		// decides (an admin, or a reader of that very project).
		"GET /compute/v2.1/os-quota-sets/{tenant_id}":          Authenticated,
		"GET /compute/v2.1/os-quota-sets/{tenant_id}/detail":   Authenticated,
		"GET /compute/v2.1/os-quota-sets/{tenant_id}/defaults": Authenticated,
		"PUT /compute/v2.1/os-quota-sets/{tenant_id}":          Admin,
		"DELETE /compute/v2.1/os-quota-sets/{tenant_id}":       Admin,
		"GET /compute/v2.1/os-quota-class-sets/{class_name}":   Admin,
		"PUT /compute/v2.1/os-quota-class-sets/{class_name}":   Admin,
		// The own project's; ?tenant_id= needs an admin (handler).
		"GET /compute/v2.1/limits": Authenticated,
	})
}
