package api

import (
	"cmp"
	"context"
	"encoding/json"
	"math"
	"math/big"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/keel-cloud/keel/cluster"
	"github.com/keel-cloud/keel/fsm"
	"github.com/keel-cloud/keel/internal/ids"
)

// Nova's flavors API (os-flavors, flavor-manage, os-flavor-access,
// os-extra_specs). Flavors are global: any caller lists the public ones and
// the private ones its project was given; admins see and manage them all. A
// private flavor that the caller's project may not use is a 404, as if it
// did not exist.
//
// Microversions honoured: 2.7 (adding access to a public flavor is a 409),
// 2.55 (description; PUT /flavors/{id}), 2.61 (extra_specs in flavor
// documents), 2.75 (swap 0 instead of ""; unknown list query parameters are
// a 400), 2.86 (extra spec validation).

func (s *Server) registerFlavors() {
	const base = "/compute/v2.1/flavors"
	for _, r := range []Route{
		{Method: "GET", Path: base, Policy: Authenticated, Handle: s.listFlavorsBrief},
		{Method: "GET", Path: base + "/detail", Policy: Authenticated, Handle: s.listFlavorsDetail},
		{Method: "POST", Path: base, Policy: Admin, Handle: s.createFlavor},
		{Method: "GET", Path: base + "/{flavor_id}", Policy: Authenticated, Handle: s.showFlavor},
		{Method: "PUT", Path: base + "/{flavor_id}", Policy: Admin, Handle: s.updateFlavor},
		{Method: "DELETE", Path: base + "/{flavor_id}", Policy: Admin, Handle: s.deleteFlavor},
		// Nova's PROJECT_READER_OR_ADMIN, with the caller's own project as
		// the target: any project-scoped caller (compute refuses unscoped
		// tokens).
		{Method: "GET", Path: base + "/{flavor_id}/os-extra_specs", Policy: Authenticated, Handle: s.listFlavorExtraSpecs},
		{Method: "POST", Path: base + "/{flavor_id}/os-extra_specs", Policy: Admin, Handle: s.createFlavorExtraSpecs},
		{Method: "GET", Path: base + "/{flavor_id}/os-extra_specs/{key}", Policy: Authenticated, Handle: s.showFlavorExtraSpec},
		{Method: "PUT", Path: base + "/{flavor_id}/os-extra_specs/{key}", Policy: Admin, Handle: s.updateFlavorExtraSpec},
		{Method: "DELETE", Path: base + "/{flavor_id}/os-extra_specs/{key}", Policy: Admin, Handle: s.deleteFlavorExtraSpec},
		{Method: "GET", Path: base + "/{flavor_id}/os-flavor-access", Policy: Admin, Handle: s.listFlavorAccess},
		{Method: "POST", Path: base + "/{flavor_id}/action", Policy: Admin, Handle: s.flavorAction},
	} {
		r.Service = ServiceCompute
		s.handle(r)
	}
	if !s.cfg.NoDefaultFlavors {
		s.node.RegisterLeaderLoop(cluster.LeaderLoop{Name: "default-flavors", Run: s.createDefaultFlavors})
	}
}

// createDefaultFlavors proposes CreateDefaultFlavors when this controller
// leads. The command makes sure the defaults are created at most once in
// the cluster's life, and never over existing flavors, so every later
// leader's proposal is a no-op. On a new cluster the first leader proposes
// it at once, beside the identity bootstrap (which hashes the admin
// password first): the flavors are then in the log before identity is
// bootstrapped, so whoever waits for a bootstrapped cluster finds them too.
func (s *Server) createDefaultFlavors(ctx context.Context) {
	for wait := 50 * time.Millisecond; ctx.Err() == nil; wait = min(2*wait, 2*time.Second) {
		done, err := fsm.DefaultFlavorsHandled(s.node.State())
		if err == nil && done {
			return
		}
		if err == nil {
			var resp *fsm.Response
			if resp, err = s.node.Apply(ctx, &fsm.CreateDefaultFlavors{Now: time.Now().UnixMicro()}); err == nil {
				var n uint64
				_ = resp.Decode(&n)
				if n > 0 {
					s.log.Info("created the default flavors m1.tiny to m1.xlarge", "count", n)
				}
				return
			}
		}
		if ctx.Err() == nil {
			s.log.Warn("creating the default flavors failed; retrying", "error", err)
		}
		select {
		case <-ctx.Done():
		case <-time.After(wait):
		}
	}
}

// flavorVisible returns the flavor id if the caller may see it: admins see
// every flavor, others the public ones and those their project was given.
func (s *Server) flavorVisible(c *Call, st fsm.Reader, id string) (*fsm.Flavor, error) {
	f, _, err := fsm.GetFlavor(st, id)
	if err != nil {
		return nil, err
	}
	if c.Auth.IsAdmin() {
		return f, nil
	}
	ok, err := fsm.FlavorAccessible(st, f, c.Auth.ProjectID)
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, notFound("Flavor %s could not be found.", id)
	}
	return f, nil
}

// flavorLinks are Nova's self and bookmark links of a flavor.
func (s *Server) flavorLinks(c *Call, id string) []map[string]string {
	base := s.publicURL(c.R) + "/compute"
	p := "/flavors/" + url.PathEscape(id)
	return []map[string]string{
		{"rel": "self", "href": base + "/v2.1" + p},
		{"rel": "bookmark", "href": base + p},
	}
}

// flavorView renders a flavor as Nova does at the call's microversion:
// brief (index: id, name, links) or detailed.
func (s *Server) flavorView(c *Call, f *fsm.Flavor, detail bool) map[string]any {
	v := map[string]any{"id": f.ID, "name": f.Name, "links": s.flavorLinks(c, f.ID)}
	if c.Version.AtLeast(2, 55) {
		// Nova stores no description as NULL; Keel keeps "" for it.
		if f.Description == "" {
			v["description"] = nil
		} else {
			v["description"] = f.Description
		}
	}
	if !detail {
		return v
	}
	v["ram"] = f.RAM
	v["vcpus"] = f.VCPUs
	v["disk"] = f.Disk
	v["OS-FLV-EXT-DATA:ephemeral"] = f.Ephemeral
	v["OS-FLV-DISABLED:disabled"] = f.Disabled
	v["os-flavor-access:is_public"] = f.IsPublic
	v["rxtx_factor"] = pyFloat(f.RxTxFactor)
	switch {
	case c.Version.AtLeast(2, 75):
		v["swap"] = f.Swap
	case f.Swap == 0:
		v["swap"] = ""
	default:
		v["swap"] = f.Swap
	}
	if c.Version.AtLeast(2, 61) {
		v["extra_specs"] = flvSpecsView(f)
	}
	return v
}

// flavorMaxLimit is Nova's [api] max_limit: the largest page.
const flavorMaxLimit = 1000

// flvSortKeys are the sort keys Nova accepts for flavors.
var flvSortKeys = []string{"created_at", "description", "disabled", "ephemeral_gb", "flavorid", "id",
	"is_public", "memory_mb", "name", "root_gb", "rxtx_factor", "swap", "updated_at", "vcpu_weight", "vcpus"}

func (s *Server) listFlavorsBrief(c *Call) error  { return s.listFlavors(c, false) }
func (s *Server) listFlavorsDetail(c *Call) error { return s.listFlavors(c, true) }

// flvCompare orders flavors by Nova's sort key, then by creation (Nova's
// internal id), then by flavor id.
func flvCompare(key string) func(a, b *fsm.Flavor) int {
	btoi := func(b bool) int {
		if b {
			return 1
		}
		return 0
	}
	var primary func(a, b *fsm.Flavor) int
	switch key {
	case "description":
		primary = func(a, b *fsm.Flavor) int { return cmp.Compare(a.Description, b.Description) }
	case "disabled":
		primary = func(a, b *fsm.Flavor) int { return cmp.Compare(btoi(a.Disabled), btoi(b.Disabled)) }
	case "ephemeral_gb":
		primary = func(a, b *fsm.Flavor) int { return cmp.Compare(a.Ephemeral, b.Ephemeral) }
	case "flavorid":
		primary = func(a, b *fsm.Flavor) int { return cmp.Compare(a.ID, b.ID) }
	case "is_public":
		primary = func(a, b *fsm.Flavor) int { return cmp.Compare(btoi(a.IsPublic), btoi(b.IsPublic)) }
	case "memory_mb":
		primary = func(a, b *fsm.Flavor) int { return cmp.Compare(a.RAM, b.RAM) }
	case "name":
		primary = func(a, b *fsm.Flavor) int { return cmp.Compare(a.Name, b.Name) }
	case "root_gb":
		primary = func(a, b *fsm.Flavor) int { return cmp.Compare(a.Disk, b.Disk) }
	case "rxtx_factor":
		primary = func(a, b *fsm.Flavor) int { return cmp.Compare(a.RxTxFactor, b.RxTxFactor) }
	case "swap":
		primary = func(a, b *fsm.Flavor) int { return cmp.Compare(a.Swap, b.Swap) }
	case "vcpus":
		primary = func(a, b *fsm.Flavor) int { return cmp.Compare(a.VCPUs, b.VCPUs) }
	default: // created_at, id, updated_at, vcpu_weight (not kept): creation order
		primary = func(a, b *fsm.Flavor) int { return 0 }
	}
	return func(a, b *fsm.Flavor) int {
		return cmp.Or(primary(a, b), cmp.Compare(a.CreatedAt, b.CreatedAt), cmp.Compare(a.ID, b.ID))
	}
}

// flvCheckListQuery is Nova's query schema of the flavor lists.
func flvCheckListQuery(c *Call, q url.Values) error {
	for _, v := range q["limit"] {
		switch {
		case strings.Trim(v, "0123456789") != "":
			return flvQueryErr("limit", v, pyRepr(v)+" does not match '^[0-9]*$'")
		case v == "":
			return flvQueryErr("limit", v, "'' is too short")
		}
	}
	for _, p := range []struct {
		name string
		enum []string
	}{{"sort_key", flvSortKeys}, {"sort_dir", []string{"asc", "desc"}}} {
		for _, v := range q[p.name] {
			if !slices.Contains(p.enum, v) {
				enum := make([]any, len(p.enum))
				for i, e := range p.enum {
					enum[i] = e
				}
				return flvQueryErr(p.name, v, pyRepr(v)+" is not one of "+pyRepr(enum))
			}
		}
	}
	if c.Version.AtLeast(2, 75) {
		var extras []string
		for k := range q {
			if !slices.Contains([]string{"limit", "marker", "is_public", "minRam", "minDisk", "sort_key", "sort_dir"}, k) {
				extras = append(extras, k)
			}
		}
		if len(extras) > 0 {
			return badRequest("%s", flvAdditional(extras))
		}
	}
	return nil
}

// listFlavors is GET /flavors and GET /flavors/detail, with Nova's query
// parameters: is_public (admins: true, the default, is the public flavors
// and those of the caller's project; false the private ones; none all of
// them; ignored for others, who always get the public and their project's
// enabled flavors), minRam, minDisk, sort_key, sort_dir, limit, marker (and
// name, a regular expression, before 2.75).
func (s *Server) listFlavors(c *Call, detail bool) error {
	q := c.R.URL.Query()
	last := func(k string) (string, bool) {
		vs := q[k]
		if len(vs) == 0 {
			return "", false
		}
		return vs[len(vs)-1], true
	}
	if err := flvCheckListQuery(c, q); err != nil {
		return err
	}
	sortKey, _ := last("sort_key")
	if sortKey == "" {
		sortKey = "flavorid"
	}
	sortDir, _ := last("sort_dir")
	limit := flavorMaxLimit
	if v, ok := last("limit"); ok {
		if n, err := strconv.Atoi(v); err == nil && n < limit {
			limit = n
		}
	}
	marker, hasMarker := last("marker")

	admin := c.Auth.IsAdmin()
	public := new(bool) // nil: every flavor
	*public = true
	if v, ok := last("is_public"); ok && admin {
		if strings.EqualFold(v, "none") {
			public = nil
		} else if b, ok := flvPyBool(v); ok {
			*public = b
		} else {
			return badRequest("Invalid is_public filter [%s]", v)
		}
	}
	minRAM, minDisk := int64(math.MinInt64), int64(math.MinInt64)
	for _, p := range []struct {
		name string
		dst  *int64
	}{{"minRam", &minRAM}, {"minDisk", &minDisk}} {
		if v, ok := last(p.name); ok {
			n, ok := flvPyInt(v)
			if !ok {
				return badRequest("Invalid %s filter [%s]", p.name, v)
			}
			*p.dst = flvClampInt64(n)
		}
	}
	var nameRE *regexp.Regexp
	if v, ok := last("name"); ok {
		re, err := regexp.Compile(v)
		if err != nil {
			return badRequest("Invalid name filter [%s]", v)
		}
		nameRE = re
	}

	st, err := s.readState(c)
	if err != nil {
		return err
	}
	all, err := fsm.ListFlavors(st)
	if err != nil {
		return err
	}
	project := c.Auth.ProjectID
	// visible is what the caller may see at all (the marker must be one).
	visible := func(f *fsm.Flavor) (bool, error) {
		if admin {
			return true, nil
		}
		return fsm.FlavorAccessible(st, f, project)
	}
	var out []*fsm.Flavor
	var markerFlavor *fsm.Flavor
	for i := range all {
		f := &all[i]
		ok, err := visible(f)
		if err != nil {
			return err
		}
		if !ok {
			continue
		}
		if hasMarker && f.ID == marker {
			markerFlavor = f
		}
		switch {
		case !admin && f.Disabled,
			int64(f.RAM) < minRAM,
			int64(f.Disk) < minDisk,
			nameRE != nil && !nameRE.MatchString(f.Name):
			continue
		case admin && public != nil && *public && !f.IsPublic:
			// Admins' default: the public flavors and their project's.
			if ok, err := fsm.FlavorAccessible(st, f, project); err != nil {
				return err
			} else if !ok {
				continue
			}
		case admin && public != nil && !*public && f.IsPublic:
			continue
		}
		out = append(out, f)
	}
	if hasMarker && markerFlavor == nil {
		return badRequest("marker [%s] not found", marker)
	}
	compare := flvCompare(sortKey)
	if sortDir == "desc" {
		asc := compare
		compare = func(a, b *fsm.Flavor) int { return -asc(a, b) }
	}
	slices.SortFunc(out, compare)
	if markerFlavor != nil {
		out = slices.DeleteFunc(out, func(f *fsm.Flavor) bool { return compare(f, markerFlavor) <= 0 })
	}
	if len(out) > limit {
		out = out[:limit]
	}

	views := make([]map[string]any, 0, len(out))
	for _, f := range out {
		views = append(views, s.flavorView(c, f, detail))
	}
	body := map[string]any{"flavors": views}
	if len(out) > 0 && len(out) == limit {
		params := url.Values{}
		for k := range q {
			v, _ := last(k)
			params.Set(k, v)
		}
		params.Set("marker", out[len(out)-1].ID)
		path := "/compute/v2.1/flavors"
		if detail {
			path += "/detail"
		}
		body["flavors_links"] = []map[string]string{{"rel": "next", "href": s.publicURL(c.R) + path + "?" + params.Encode()}}
	}
	return c.JSON(http.StatusOK, body)
}

func flvClampInt64(n *big.Int) int64 {
	switch {
	case n.IsInt64():
		return n.Int64()
	case n.Sign() < 0:
		return math.MinInt64
	}
	return math.MaxInt64
}

// showFlavor is GET /flavors/{flavor_id}.
func (s *Server) showFlavor(c *Call) error {
	st, err := s.readState(c)
	if err != nil {
		return err
	}
	f, err := s.flavorVisible(c, st, c.Param("flavor_id"))
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, map[string]any{"flavor": s.flavorView(c, f, true)})
}

// flvRxTxPattern is Nova's pattern of an rxtx_factor given as a string.
var flvRxTxPattern = regexp.MustCompile(`^[0-9]+(\.[0-9]+)?$`)

// flvCreateProps are the properties of a flavor in POST /flavors, in the
// order of Nova's schema (which decides which error is reported first).
var flvCreateProps = []string{"name", "id", "ram", "vcpus", "disk", "OS-FLV-EXT-DATA:ephemeral", "swap",
	"rxtx_factor", "os-flavor-access:is_public"}

// flvParseCreate validates a POST /flavors body as Nova does (its JSON
// schema, then flavors.create's checks) and returns the flavor to create;
// an empty ID means "generate one".
func flvParseCreate(v Microversion, body any) (*fsm.Flavor, *Error) {
	top, ok := body.(map[string]any)
	if !ok {
		return nil, badRequest("%s", flvTypeMsg(body, "object"))
	}
	raw, has := top["flavor"]
	if !has {
		return nil, badRequest("'flavor' is a required property")
	}
	m, ok := raw.(map[string]any)
	if !ok {
		return nil, flvFieldErr("flavor", raw, flvTypeMsg(raw, "object"))
	}
	props := flvCreateProps
	if v.AtLeast(2, 55) {
		props = append(slices.Clip(props), "description")
	}
	f := &fsm.Flavor{RxTxFactor: 1, IsPublic: true}
	var integral []string // fields given as floats with integral values
	var rxtx any
	for _, p := range props {
		val, set := m[p]
		if !set {
			continue
		}
		switch p {
		case "name":
			s, ok := val.(string)
			switch {
			case !ok:
				return nil, flvFieldErr(p, val, flvTypeMsg(val, "string"))
			case !flvNameOK(s):
				return nil, badRequest(flvNameErr)
			case s == "":
				return nil, flvFieldErr(p, val, "'' is too short")
			case flvLen(s) > fsm.FlavorMaxNameLen:
				return nil, flvFieldErr(p, val, pyRepr(s)+" is too long")
			}
			f.Name = s
		case "id":
			switch x := val.(type) {
			case nil:
			case json.Number:
				// Nova takes str(id); a falsy 0 means "generate one".
				if id := pyNumStr(x); id != "0" && id != "0.0" && id != "-0.0" {
					f.ID = id
				}
			case string:
				switch {
				case x == "":
					return nil, flvFieldErr(p, val, "'' is too short")
				case flvLen(x) > fsm.FlavorMaxIDLen:
					return nil, flvFieldErr(p, val, pyRepr(x)+" is too long")
				case !fsm.FlavorIDOK(x):
					return nil, flvFieldErr(p, val, pyRepr(x)+" does not match '^(?! )[a-zA-Z0-9. _-]+(?<! )$'")
				}
				if x != "auto" {
					f.ID = x
				}
			default:
				return nil, flvFieldErr(p, val, flvTypeMsg(val, "string", "number", "null"))
			}
		case "ram", "vcpus", "disk", "OS-FLV-EXT-DATA:ephemeral", "swap":
			min := int64(0)
			if p == "ram" || p == "vcpus" {
				min = 1
			}
			n, isFloat, err := flvIntProp(p, val, min)
			if err != nil {
				return nil, err
			}
			if isFloat {
				integral = append(integral, p)
			}
			switch p {
			case "ram":
				f.RAM = n
			case "vcpus":
				f.VCPUs = n
			case "disk":
				f.Disk = n
			case "OS-FLV-EXT-DATA:ephemeral":
				f.Ephemeral = n
			case "swap":
				f.Swap = n
			}
		case "rxtx_factor":
			switch x := val.(type) {
			case json.Number:
				n, _ := strconv.ParseFloat(string(x), 64)
				if n <= 0 {
					return nil, flvFieldErr(p, val, pyRepr(val)+" is less than or equal to the minimum of 0")
				}
				if n > fsm.FlavorMaxRxTxFactor {
					return nil, flvFieldErr(p, val, pyRepr(val)+" is greater than the maximum of 3.40282e+38")
				}
			case string:
				if !flvRxTxPattern.MatchString(x) {
					return nil, flvFieldErr(p, val, pyRepr(x)+` does not match '^[0-9]+(\\.[0-9]+)?$'`)
				}
				if n, _ := strconv.ParseFloat(x, 64); n > fsm.FlavorMaxRxTxFactor {
					return nil, flvFieldErr(p, val, pyFloatRepr(n)+" is greater than the maximum of 3.40282e+38")
				}
			default:
				return nil, flvFieldErr(p, val, flvTypeMsg(val, "number", "string"))
			}
			rxtx = val
		case "os-flavor-access:is_public":
			if err := flvCheckBoolean(p, val); err != nil {
				return nil, err
			}
			f.IsPublic, _ = flvPyBool(val)
		case "description":
			switch x := val.(type) {
			case nil:
			case string:
				switch {
				case flvLen(x) > fsm.FlavorMaxDescriptionLen:
					return nil, flvFieldErr(p, val, pyRepr(x)+" is too long")
				case !flvTextOK(x):
					return nil, flvFieldErr(p, val, pyRepr(x)+" does not match the pattern of printable characters")
				}
				f.Description = x
			default:
				return nil, flvFieldErr(p, val, flvTypeMsg(val, "string", "null"))
			}
		}
	}
	for _, r := range []string{"name", "ram", "vcpus", "disk"} {
		if _, set := m[r]; !set {
			return nil, flvFieldErr("flavor", raw, pyRepr(r)+" is a required property")
		}
	}
	if extras := flvExtras(m, props...); len(extras) > 0 {
		return nil, flvFieldErr("flavor", raw, flvAdditional(extras))
	}
	if extras := flvExtras(top, "flavor"); len(extras) > 0 {
		return nil, badRequest("%s", flvAdditional(extras))
	}
	// flavors.create: integers (in the order it checks them), then the
	// rxtx factor.
	for _, p := range []string{"ram", "vcpus", "disk", "OS-FLV-EXT-DATA:ephemeral", "swap"} {
		if slices.Contains(integral, p) {
			name := strings.TrimPrefix(p, "OS-FLV-EXT-DATA:")
			return nil, flvInvalidInput("%s must be an integer", name)
		}
	}
	if rxtx != nil {
		n, _ := strconv.ParseFloat(pyStr(rxtx), 64)
		if n <= 0 || n > fsm.FlavorMaxRxTxFactor {
			return nil, flvInvalidInput("'rxtx_factor' argument must be a float between 0 and 3.40282e+38")
		}
		f.RxTxFactor = n
	}
	return f, nil
}

// createFlavor is POST /flavors (200, as Nova answers).
func (s *Server) createFlavor(c *Call) error {
	var body any
	if err := c.Decode(&body); err != nil {
		return err
	}
	f, verr := flvParseCreate(c.Version, body)
	if verr != nil {
		return verr
	}
	if f.ID == "" {
		f.ID = ids.UUID()
	}
	f.CreatedAt = time.Now().UnixMicro()
	var out fsm.Flavor
	if err := s.apply(c.Context(), &fsm.CreateFlavor{Flavor: *f}, &out); err != nil {
		return err
	}
	return c.JSON(http.StatusOK, map[string]any{"flavor": s.flavorView(c, &out, true)})
}

// updateFlavor is PUT /flavors/{flavor_id} (2.55+): the description only.
func (s *Server) updateFlavor(c *Call) error {
	if !c.Version.AtLeast(2, 55) {
		return notFound("The resource could not be found.")
	}
	var body any
	if err := c.Decode(&body); err != nil {
		return err
	}
	top, ok := body.(map[string]any)
	if !ok {
		return badRequest("%s", flvTypeMsg(body, "object"))
	}
	raw, has := top["flavor"]
	if !has {
		return badRequest("'flavor' is a required property")
	}
	m, ok := raw.(map[string]any)
	if !ok {
		return flvFieldErr("flavor", raw, flvTypeMsg(raw, "object"))
	}
	var desc string
	val, set := m["description"]
	if set {
		switch x := val.(type) {
		case nil:
		case string:
			switch {
			case flvLen(x) > fsm.FlavorMaxDescriptionLen:
				return flvFieldErr("description", val, pyRepr(x)+" is too long")
			case !flvTextOK(x):
				return flvFieldErr("description", val, pyRepr(x)+" does not match the pattern of printable characters")
			}
			desc = x
		default:
			return flvFieldErr("description", val, flvTypeMsg(val, "string", "null"))
		}
	} else {
		return flvFieldErr("flavor", raw, "'description' is a required property")
	}
	if extras := flvExtras(m, "description"); len(extras) > 0 {
		return flvFieldErr("flavor", raw, flvAdditional(extras))
	}
	if extras := flvExtras(top, "flavor"); len(extras) > 0 {
		return badRequest("%s", flvAdditional(extras))
	}
	var out fsm.Flavor
	if err := s.apply(c.Context(), &fsm.UpdateFlavorDescription{ID: c.Param("flavor_id"), Description: desc}, &out); err != nil {
		return err
	}
	return c.JSON(http.StatusOK, map[string]any{"flavor": s.flavorView(c, &out, true)})
}

// deleteFlavor is DELETE /flavors/{flavor_id} (202, as Nova answers).
func (s *Server) deleteFlavor(c *Call) error {
	if err := s.apply(c.Context(), &fsm.DeleteFlavor{ID: c.Param("flavor_id")}, nil); err != nil {
		return err
	}
	return c.NoContent(http.StatusAccepted)
}
