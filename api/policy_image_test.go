package api

func init() {
	const g = "/image/v2"
	const n = "/compute/v2.1/images"
	expectPolicy(map[string]Rule{
		"GET /image":                                             Public,
		"GET /image/{$}":                                         Public,
		"GET /image/versions":                                    Public,
		"GET " + g + "/schemas/image":                            Authenticated,
		"GET " + g + "/schemas/images":                           Authenticated,
		"GET " + g + "/schemas/member":                           Authenticated,
		"GET " + g + "/schemas/members":                          Authenticated,
		"POST " + g + "/images":                                  ProjectMember,
		"GET " + g + "/images":                                   ProjectReader,
		"GET " + g + "/images/{image_id}":                        ProjectReader,
		"PATCH " + g + "/images/{image_id}":                      ProjectMember,
		"DELETE " + g + "/images/{image_id}":                     ProjectMember,
		"PUT " + g + "/images/{image_id}/file":                   ProjectMember,
		"GET " + g + "/images/{image_id}/file":                   ProjectReader,
		"PUT " + g + "/images/{image_id}/tags/{tag}":             ProjectMember,
		"DELETE " + g + "/images/{image_id}/tags/{tag}":          ProjectMember,
		"GET " + g + "/images/{image_id}/members":                ProjectReader,
		"POST " + g + "/images/{image_id}/members":               ProjectMember,
		"GET " + g + "/images/{image_id}/members/{member_id}":    ProjectReader,
		"PUT " + g + "/images/{image_id}/members/{member_id}":    ProjectMember,
		"DELETE " + g + "/images/{image_id}/members/{member_id}": ProjectMember,

		"GET " + n:                                   ProjectReader,
		"GET " + n + "/detail":                       ProjectReader,
		"GET " + n + "/{image_id}":                   ProjectReader,
		"DELETE " + n + "/{image_id}":                ProjectMember,
		"GET " + n + "/{image_id}/metadata":          ProjectReader,
		"POST " + n + "/{image_id}/metadata":         ProjectMember,
		"PUT " + n + "/{image_id}/metadata":          ProjectMember,
		"GET " + n + "/{image_id}/metadata/{key}":    ProjectReader,
		"PUT " + n + "/{image_id}/metadata/{key}":    ProjectMember,
		"DELETE " + n + "/{image_id}/metadata/{key}": ProjectMember,
	})
}
