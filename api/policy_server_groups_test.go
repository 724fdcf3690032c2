package api

func init() {
	const p = "/compute/v2.1/os-server-groups"
	expectPolicy(map[string]Rule{
		// Nova's PROJECT_READER_OR_ADMIN (index, show) and
		// PROJECT_MEMBER_OR_ADMIN (create, delete); another project's group
		// is the handler's 404, and all_projects needs an admin (handler).
		"GET " + p:                           ProjectReader,
		"POST " + p:                          ProjectMember,
		"GET " + p + "/{server_group_id}":    ProjectReader,
		"DELETE " + p + "/{server_group_id}": ProjectMember,
	})
}
