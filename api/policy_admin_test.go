package api

func init() {
	const p = "/compute/v2.1"
	expectPolicy(map[string]Rule{
		"GET " + p + "/os-services":                 Admin,
		"PUT " + p + "/os-services/{service_id}":    Admin,
		"DELETE " + p + "/os-services/{service_id}": Admin,

		"GET " + p + "/os-hypervisors":                                       Admin,
		"GET " + p + "/os-hypervisors/detail":                                Admin,
		"GET " + p + "/os-hypervisors/statistics":                            Admin,
		"GET " + p + "/os-hypervisors/{hypervisor_id}":                       Admin,
		"GET " + p + "/os-hypervisors/{hypervisor_id}/uptime":                Admin,
		"GET " + p + "/os-hypervisors/{hypervisor_hostname_pattern}/search":  Admin,
		"GET " + p + "/os-hypervisors/{hypervisor_hostname_pattern}/servers": Admin,

		"GET " + p + "/os-hosts":                      Admin,
		"GET " + p + "/os-hosts/{host_name}":          Admin,
		"PUT " + p + "/os-hosts/{host_name}":          Admin,
		"GET " + p + "/os-hosts/{host_name}/startup":  Admin,
		"GET " + p + "/os-hosts/{host_name}/shutdown": Admin,
		"GET " + p + "/os-hosts/{host_name}/reboot":   Admin,

		"GET " + p + "/os-simple-tenant-usage": Admin,
		// Nova's PROJECT_READER_OR_ADMIN on {tenant_id}: the handler
		// decides (an admin, or a reader of that very project).
		"GET " + p + "/os-simple-tenant-usage/{tenant_id}": Authenticated,

		"GET " + p + "/os-migrations": Admin,
		// Nova lets a project manager act on its servers' live
		// migrations; Keel has no manager role.
		"GET " + p + "/servers/{server_id}/migrations":                        Admin,
		"GET " + p + "/servers/{server_id}/migrations/{migration_id}":         Admin,
		"DELETE " + p + "/servers/{server_id}/migrations/{migration_id}":      Admin,
		"POST " + p + "/servers/{server_id}/migrations/{migration_id}/action": Admin,
	})
}
