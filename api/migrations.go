package api

import (
	"cmp"
	"encoding/json"
	"math"
	"net/http"
	"slices"
	"strconv"

	"github.com/keel-cloud/keel/fsm"
)

// os-migrations and servers/{id}/migrations. Keel's migrations are
// evacuations (fsm/migration.go); Nova's per-server migrations API shows
// only live migrations in progress, which Keel does not make, so its list
// is empty and its show a 404 that says why.
//
// Microversions of os-migrations: 2.23 adds migration_type (and links for
// live migrations in progress); 2.59 adds uuid, pages newest first (limit,
// marker = a uuid, migrations_links), filters by changes-since and refuses
// unknown parameters; 2.66 adds changes-before; 2.80 adds user_id and
// project_id to the view and as filters.
//
// old_instance_type_id and new_instance_type_id are Nova's internal integer
// flavor ids. Keel's flavors have only their public id: it is shown when
// it is an integer (Nova's default flavors "1".."5" keep theirs), and null
// otherwise.

func (s *Server) registerMigrations() {
	s.handle(Route{Method: "GET", Path: "/compute/v2.1/os-migrations", Service: ServiceCompute, Policy: Admin, Handle: s.listMigrations})
	const p = "/compute/v2.1/servers/{server_id}/migrations"
	s.handle(Route{Method: "GET", Path: p, Service: ServiceCompute, Policy: Admin, Handle: s.listServerMigrations})
	s.handle(Route{Method: "GET", Path: p + "/{migration_id}", Service: ServiceCompute, Policy: Admin, Handle: s.showServerMigration})
	s.handle(Route{Method: "DELETE", Path: p + "/{migration_id}", Service: ServiceCompute, Policy: Admin, Handle: s.abortServerMigration})
	s.handle(Route{Method: "POST", Path: p + "/{migration_id}/action", Service: ServiceCompute, Policy: Admin, Handle: s.serverMigrationAction})
}

// Nova's in-progress statuses of a live migration.
var liveMigrationInProgress = []string{"queued", "preparing", "running", "post-migrating"}

const migrationLive = "live-migration"

// flavorIntID is the flavor's integer id when its public id is one.
func flavorIntID(id string) any {
	if n, err := strconv.ParseInt(id, 10, 64); err == nil && strconv.FormatInt(n, 10) == id {
		return n
	}
	return nil
}

// migrationView is an os-migrations entry at the request's microversion.
func migrationView(v Microversion, m *fsm.Migration) map[string]any {
	out := map[string]any{
		"id": m.Seq, "instance_uuid": m.ServerID, "status": m.Status,
		"source_compute": opsNullable(m.SourceCompute), "source_node": opsNullable(m.SourceNode),
		"dest_compute": opsNullable(m.DestCompute), "dest_node": opsNullable(m.DestNode), "dest_host": opsNullable(m.DestHost),
		"old_instance_type_id": flavorIntID(m.FlavorID), "new_instance_type_id": flavorIntID(m.FlavorID),
		"created_at": usageFormat(m.CreatedAt), "updated_at": usageTime(m.UpdatedAt),
	}
	if v.AtLeast(2, 23) {
		out["migration_type"] = m.Type
	}
	if v.AtLeast(2, 59) {
		out["uuid"] = m.ID
	}
	if v.AtLeast(2, 80) {
		out["user_id"] = m.UserID
		out["project_id"] = m.ProjectID
	}
	return out
}

// newestFirst is 2.59's order: created_at, then id, descending.
func migrationsNewestFirst(a, b *fsm.Migration) int {
	return cmp.Or(cmp.Compare(b.CreatedAt, a.CreatedAt), cmp.Compare(b.Seq, a.Seq))
}

// listMigrations is GET /os-migrations with Nova's filters.
func (s *Server) listMigrations(c *Call) error {
	q := c.R.URL.Query()
	v := c.Version
	paged := v.AtLeast(2, 59)
	if paged {
		allowed := []string{"hidden", "host", "instance_uuid", "source_compute", "status", "migration_type", "limit", "marker", "changes-since"}
		if v.AtLeast(2, 66) {
			allowed = append(allowed, "changes-before")
		}
		if v.AtLeast(2, 80) {
			allowed = append(allowed, "user_id", "project_id")
		}
		if err := opsExtraParams(q, allowed...); err != nil {
			return err
		}
	}
	limit, marker := math.MaxInt, "" // before 2.59: every migration
	var since, before int64
	if paged {
		var err error
		if limit, _, err = opsLimit(q); err != nil {
			return err
		}
		marker = q.Get("marker")
		if vs, ok := q["changes-since"]; ok {
			if since, err = migrationTimeParam("changes-since", vs); err != nil {
				return err
			}
		}
	}
	if vs, ok := q["changes-before"]; ok && v.AtLeast(2, 66) {
		var err error
		if before, err = migrationTimeParam("changes-before", vs); err != nil {
			return err
		}
		if since != 0 && before < since {
			return badRequest("The value of changes-since must be less than or equal to changes-before.")
		}
	}
	var match []func(*fsm.Migration) bool
	add := func(f func(*fsm.Migration) bool) { match = append(match, f) }
	if vs, ok := q["status"]; ok {
		add(func(m *fsm.Migration) bool { return slices.Contains(vs, m.Status) })
	}
	if host, ok := q["host"]; ok {
		add(func(m *fsm.Migration) bool { return m.SourceCompute == host[0] || m.DestCompute == host[0] })
	} else if src, ok := q["source_compute"]; ok {
		add(func(m *fsm.Migration) bool { return m.SourceCompute == src[0] })
	}
	if node, ok := q["node"]; ok && !paged {
		add(func(m *fsm.Migration) bool { return m.SourceNode == node[0] || m.DestNode == node[0] })
	}
	for param, field := range map[string]func(*fsm.Migration) string{
		"migration_type": func(m *fsm.Migration) string { return m.Type },
		"instance_uuid":  func(m *fsm.Migration) string { return m.ServerID },
		"user_id":        func(m *fsm.Migration) string { return m.UserID },
		"project_id":     func(m *fsm.Migration) string { return m.ProjectID },
	} {
		if vs, ok := q[param]; ok {
			add(func(m *fsm.Migration) bool { return field(m) == vs[0] })
		}
	}
	if vs, ok := q["hidden"]; ok {
		if hidden, _ := flvPyBool(vs[0]); hidden {
			add(func(*fsm.Migration) bool { return false }) // Keel hides none
		}
	}
	if since != 0 {
		add(func(m *fsm.Migration) bool { return m.UpdatedAt >= since })
	}
	if before != 0 {
		add(func(m *fsm.Migration) bool { return m.UpdatedAt <= before })
	}

	st, err := s.readState(c)
	if err != nil {
		return err
	}
	var all []*fsm.Migration
	if err := fsm.Migrations(st, func(m *fsm.Migration) bool { all = append(all, m); return true }); err != nil {
		return err
	}
	if paged {
		slices.SortFunc(all, migrationsNewestFirst)
	} else {
		slices.SortFunc(all, func(a, b *fsm.Migration) int { return cmp.Compare(a.Seq, b.Seq) })
	}
	if marker != "" {
		m, err := fsm.GetMigration(st, marker)
		if err != nil {
			return badRequest("Marker %s could not be found.", marker)
		}
		all = slices.DeleteFunc(all, func(x *fsm.Migration) bool { return migrationsNewestFirst(x, m) <= 0 })
	}
	views := []any{}
	var last *fsm.Migration
	for _, m := range all {
		if len(views) >= limit {
			break
		}
		if !slices.ContainsFunc(match, func(f func(*fsm.Migration) bool) bool { return !f(m) }) {
			views = append(views, migrationView(v, m))
			last = m
		}
	}
	out := map[string]any{"migrations": views}
	if paged && opsWantNextLink(limit, len(views)) {
		out["migrations_links"] = s.opsNextLink(c, "os-migrations", last.ID)
	}
	return c.JSON(http.StatusOK, out)
}

// migrationTimeParam parses changes-since / changes-before (ISO 8601).
func migrationTimeParam(name string, vs []string) (int64, error) {
	if len(vs) > 1 {
		return 0, flvQueryErr(name, pyRepr(anyList(vs)), pyRepr(anyList(vs))+" is too long")
	}
	t, err := parseChangesSince(vs[0])
	if err != nil {
		return 0, flvQueryErr(name, vs[0], pyRepr(vs[0])+" is not a 'date-time'")
	}
	return t, nil
}

// serverMigrationView is a migration as servers/{id}/migrations shows it.
func serverMigrationView(v Microversion, m *fsm.Migration) map[string]any {
	out := map[string]any{
		"id": m.Seq, "server_uuid": m.ServerID, "status": m.Status,
		"created_at": usageFormat(m.CreatedAt), "updated_at": usageTime(m.UpdatedAt),
		"source_compute": opsNullable(m.SourceCompute), "source_node": opsNullable(m.SourceNode),
		"dest_compute": opsNullable(m.DestCompute), "dest_node": opsNullable(m.DestNode), "dest_host": opsNullable(m.DestHost),
		// Keel records no transfer progress.
		"memory_total_bytes": nil, "memory_processed_bytes": nil, "memory_remaining_bytes": nil,
		"disk_total_bytes": nil, "disk_processed_bytes": nil, "disk_remaining_bytes": nil,
	}
	if v.AtLeast(2, 59) {
		out["uuid"] = m.ID
	}
	if v.AtLeast(2, 80) {
		out["user_id"] = m.UserID
		out["project_id"] = m.ProjectID
	}
	return out
}

// listServerMigrations is GET /servers/{server_id}/migrations (2.23+): the
// server's live migrations in progress.
func (s *Server) listServerMigrations(c *Call) error {
	if !c.Version.AtLeast(2, 23) {
		return opsVersionNotFound()
	}
	srv, err := s.serverFor(c, c.Param("server_id"))
	if err != nil {
		return err
	}
	list, err := fsm.ServerMigrations(s.node.State(), srv.ID)
	if err != nil {
		return err
	}
	slices.SortFunc(list, func(a, b *fsm.Migration) int { return cmp.Compare(a.Seq, b.Seq) })
	views := []any{}
	for _, m := range list {
		if m.Type == migrationLive && slices.Contains(liveMigrationInProgress, m.Status) {
			views = append(views, serverMigrationView(c.Version, m))
		}
	}
	return c.JSON(http.StatusOK, map[string]any{"migrations": views})
}

// showServerMigration is GET /servers/{server_id}/migrations/{migration_id}
// (2.23+): a live migration in progress, by integer id.
func (s *Server) showServerMigration(c *Call) error {
	if !c.Version.AtLeast(2, 23) {
		return opsVersionNotFound()
	}
	srv, err := s.serverFor(c, c.Param("server_id"))
	if err != nil {
		return err
	}
	id := c.Param("migration_id")
	list, err := fsm.ServerMigrations(s.node.State(), srv.ID)
	if err != nil {
		return err
	}
	i := slices.IndexFunc(list, func(m *fsm.Migration) bool { return strconv.FormatInt(m.Seq, 10) == id })
	switch {
	case i < 0:
		return notFound("In-progress live migration %s is not found for server %s.", id, srv.ID)
	case list[i].Type != migrationLive:
		return notFound("Migration %s for server %s is not live-migration.", id, srv.ID)
	case !slices.Contains(liveMigrationInProgress, list[i].Status):
		return notFound("Live migration %s for server %s is not in progress.", id, srv.ID)
	}
	return c.JSON(http.StatusOK, map[string]any{"migration": serverMigrationView(c.Version, list[i])})
}

// taskStateText renders a task state as Nova's messages do.
func taskStateText(t string) string {
	if t == "" {
		return "None"
	}
	return t
}

// abortServerMigration is DELETE /servers/{server_id}/migrations/{id}
// (2.24+): aborting needs a server that is live migrating, which Keel's
// never are.
func (s *Server) abortServerMigration(c *Call) error {
	if !c.Version.AtLeast(2, 24) {
		return opsVersionNotFound()
	}
	srv, err := s.serverFor(c, c.Param("server_id"))
	if err != nil {
		return err
	}
	return conflict("Cannot 'abort live migration' instance %s while it is in task_state %s", srv.ID, taskStateText(srv.TaskState))
}

// serverMigrationAction is POST /servers/{server_id}/migrations/{id}/action
// {"force_complete": null} (2.22+): forcing needs a server that is live
// migrating, which Keel's never are.
func (s *Server) serverMigrationAction(c *Call) error {
	if !c.Version.AtLeast(2, 22) {
		return opsVersionNotFound()
	}
	var body map[string]json.RawMessage
	if err := c.Decode(&body); err != nil {
		return err
	}
	if len(body) != 1 {
		return badRequest("Malformed request body: one action is expected, got %d members.", len(body))
	}
	arg, ok := body["force_complete"]
	if !ok {
		for k := range body {
			return badRequest("There is no such action: %s", k)
		}
	}
	if string(arg) != "null" {
		var v any
		_ = json.Unmarshal(arg, &v)
		return flvFieldErr("force_complete", v, pyRepr(v)+" is not of type 'null'")
	}
	srv, err := s.serverFor(c, c.Param("server_id"))
	if err != nil {
		return err
	}
	if srv.VMState != "active" {
		return conflict("Cannot 'force_complete' instance %s while it is in vm_state %s", srv.ID, srv.VMState)
	}
	return conflict("Cannot 'force_complete' instance %s while it is in task_state %s", srv.ID, taskStateText(srv.TaskState))
}
