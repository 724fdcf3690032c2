package api

func init() {
	const p = "/compute/v2.1/servers"
	expectPolicy(map[string]Rule{
		"POST " + p:                                   ProjectMember,
		"GET " + p:                                    ProjectReader,
		"GET " + p + "/detail":                        ProjectReader,
		"GET " + p + "/{server_id}":                   ProjectReader,
		"PUT " + p + "/{server_id}":                   ProjectMember,
		"DELETE " + p + "/{server_id}":                ProjectMember,
		"GET " + p + "/{server_id}/metadata":          ProjectReader,
		"POST " + p + "/{server_id}/metadata":         ProjectMember,
		"PUT " + p + "/{server_id}/metadata":          ProjectMember,
		"GET " + p + "/{server_id}/metadata/{key}":    ProjectReader,
		"PUT " + p + "/{server_id}/metadata/{key}":    ProjectMember,
		"DELETE " + p + "/{server_id}/metadata/{key}": ProjectMember,
		"GET " + p + "/{server_id}/tags":              ProjectReader,
		"PUT " + p + "/{server_id}/tags":              ProjectMember,
		"DELETE " + p + "/{server_id}/tags":           ProjectMember,
		"GET " + p + "/{server_id}/tags/{tag}":        ProjectReader,
		"PUT " + p + "/{server_id}/tags/{tag}":        ProjectMember,
		"DELETE " + p + "/{server_id}/tags/{tag}":     ProjectMember,
		// Actions: members of the server's project (the FSM decides what
		// an administrator may do beyond, such as lifting an admin's lock).
		"POST " + p + "/{server_id}/action":                          ProjectMember,
		"GET " + p + "/{server_id}/os-instance-actions":              ProjectReader,
		"GET " + p + "/{server_id}/os-instance-actions/{request_id}": ProjectReader,
		"GET " + p + "/{server_id}/os-server-password":               ProjectReader,
		"DELETE " + p + "/{server_id}/os-server-password":            ProjectMember,
	})
}
