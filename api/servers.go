package api

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/keel-cloud/keel/fsm"
	"github.com/keel-cloud/keel/internal/ids"
)

// Servers (Nova's /servers). Until the scheduler and agents exist, a
// server stays in BUILD/scheduling; deleting it removes it at once.
func (s *Server) registerServers() {
	const p = "/compute/v2.1/servers"
	route := func(method, path string, rule Rule, h HandlerFunc) {
		s.handle(Route{Method: method, Path: p + path, Service: ServiceCompute, Policy: rule, Handle: h})
	}
	route("POST", "", ProjectMember, s.createServer)
	route("GET", "", ProjectReader, s.listServers)
	route("GET", "/detail", ProjectReader, s.listServers)
	route("GET", "/{server_id}", ProjectReader, s.showServer)
	route("PUT", "/{server_id}", ProjectMember, s.updateServer)
	route("DELETE", "/{server_id}", ProjectMember, s.deleteServer)
	route("POST", "/{server_id}/action", ProjectMember, s.serverAction)
	s.registerServerMetadata(route)
	s.registerServerTags(route)
	s.registerInstanceActions(route)
	s.registerServerPassword(route)
}

// serverFor loads a server the caller may see: another project's is a 404.
func (s *Server) serverFor(c *Call, id string) (*fsm.Server, error) {
	if err := s.node.Consistent(c.Context()); err != nil {
		return nil, err
	}
	srv, _, err := fsm.GetServer(s.node.State(), id)
	if err != nil || srv.Deleted || !c.Auth.CanAccessProject(srv.ProjectID) {
		return nil, notFound("Instance %s could not be found.", id)
	}
	return srv, nil
}

// createServerKeys are the members of a create request Nova's schema knows
// (up to the served microversion). Anything else is refused, as Nova's
// additionalProperties: false does.
var createServerKeys = map[string]bool{
	"name": true, "imageRef": true, "flavorRef": true, "adminPass": true, "metadata": true, "personality": true,
	"user_data": true, "key_name": true, "availability_zone": true, "min_count": true, "max_count": true,
	"return_reservation_id": true, "networks": true, "security_groups": true, "config_drive": true,
	"OS-DCF:diskConfig": true, "accessIPv4": true, "accessIPv6": true, "block_device_mapping": true,
	"block_device_mapping_v2": true, "description": true, "tags": true, "trusted_image_certificates": true,
	"host": true, "hypervisor_hostname": true, "hostname": true,
}

// refID takes an id from an id-or-URL reference (flavorRef, imageRef).
func refID(ref string) string {
	ref = strings.TrimRight(ref, "/")
	if i := strings.LastIndexByte(ref, '/'); i >= 0 {
		return ref[i+1:]
	}
	return ref
}

func (s *Server) createServer(c *Call) error {
	var body struct {
		Server   map[string]json.RawMessage `json:"server"`
		Hints    map[string]any             `json:"os:scheduler_hints"`
		HintsOld map[string]any             `json:"OS-SCH-HNT:scheduler_hints"`
	}
	if err := c.Decode(&body); err != nil {
		return err
	}
	if body.Server == nil {
		return badRequest("Invalid input: 'server' is a required property.")
	}
	raw := body.Server
	hints := body.Hints
	if hints == nil {
		hints = body.HintsOld
	}
	groupID, err := parseSchedulerHints(hints)
	if err != nil {
		return err
	}
	for k := range raw {
		if !createServerKeys[k] {
			return badRequest("Invalid input for field/attribute server. Additional properties are not allowed ('%s' was unexpected)", k)
		}
	}
	field := func(name string, v any) error {
		b, ok := raw[name]
		if !ok {
			return nil
		}
		if err := json.Unmarshal(b, v); err != nil {
			return badRequest("Invalid input for field/attribute %s. Value: %s. %s", name, b, jsonTypeHint(err))
		}
		return nil
	}
	var (
		name, flavorRef, imageRef, keyName, userData, az, adminPass string
		host, hypervisorHostname                                    string
		accessIPv4, accessIPv6                                      string
		securityGroups                                              []map[string]any
		description                                                 *string
		metadata                                                    map[string]string
		tags                                                        []string
		minCount, maxCount                                          = 1, 1
		returnResv                                                  bool
		networks                                                    json.RawMessage
	)
	for _, f := range []struct {
		name string
		v    any
	}{
		{"name", &name}, {"flavorRef", &flavorRef}, {"imageRef", &imageRef}, {"key_name", &keyName},
		{"user_data", &userData}, {"availability_zone", &az}, {"adminPass", &adminPass}, {"metadata", &metadata},
		{"min_count", &minCount}, {"max_count", &maxCount}, {"return_reservation_id", &returnResv}, {"networks", &networks},
		{"host", &host}, {"hypervisor_hostname", &hypervisorHostname}, {"security_groups", &securityGroups},
	} {
		if err := field(f.name, f.v); err != nil {
			return err
		}
	}
	if _, ok := raw["description"]; ok {
		if !c.Version.AtLeast(2, 19) {
			return badRequest("Invalid input for field/attribute server. Additional properties are not allowed ('description' was unexpected)")
		}
		if err := field("description", &description); err != nil {
			return err
		}
	}
	if _, ok := raw["tags"]; ok {
		if !c.Version.AtLeast(2, 52) {
			return badRequest("Invalid input for field/attribute server. Additional properties are not allowed ('tags' was unexpected)")
		}
		if err := field("tags", &tags); err != nil {
			return err
		}
	}
	if _, ok := raw["personality"]; ok && c.Version.AtLeast(2, 57) {
		return badRequest("Invalid input for field/attribute server. Additional properties are not allowed ('personality' was unexpected)")
	}
	for _, vol := range []string{"block_device_mapping", "block_device_mapping_v2"} {
		if _, ok := raw[vol]; ok {
			return Errorf(http.StatusNotImplemented, "Block device mappings (volumes) are not offered by this cloud: boot from an image.")
		}
	}

	// Field rules, in Nova's words where it has them.
	if _, ok := raw["name"]; !ok {
		return badRequest("Invalid input for field/attribute server. 'name' is a required property.")
	}
	if err := fsm.ValidServerName(name); err != nil {
		return err
	}
	if flavorRef == "" {
		return badRequest("Invalid input for field/attribute server. 'flavorRef' is a required property.")
	}
	if imageRef == "" {
		return badRequest("Invalid input for field/attribute imageRef. An image is required: booting from a volume is not offered.")
	}
	if _, ok := raw["max_count"]; !ok {
		maxCount = max(maxCount, minCount) // Nova: max_count defaults to min_count
	}
	if minCount < 1 || maxCount < 1 {
		return badRequest("Invalid input for field/attribute min_count/max_count. They must be at least 1.")
	}
	if minCount > maxCount {
		return badRequest("min_count must be <= max_count")
	}
	if maxCount > 1000 {
		return badRequest("Invalid input for field/attribute max_count. At most 1000 servers per request.")
	}
	if description != nil && utf8.RuneCountInString(*description) > fsm.MaxServerDescLength {
		return badRequest("Invalid input for field/attribute description. At most %d characters.", fsm.MaxServerDescLength)
	}
	if err := fsm.ValidMetadata(metadata); err != nil {
		return err
	}
	if len(tags) > fsm.MaxServerTags {
		return badRequest("Invalid input for field/attribute tags. At most %d tags.", fsm.MaxServerTags)
	}
	for _, t := range tags {
		if err := fsm.ValidTag(t); err != nil {
			return err
		}
	}
	if userData != "" {
		if len(userData) > fsm.MaxUserDataEncoded {
			return badRequest("User data too large. User data must be no larger than %d bytes once base64 encoded.", fsm.MaxUserDataEncoded)
		}
		if _, err := base64.StdEncoding.DecodeString(userData); err != nil {
			return badRequest("Invalid input for field/attribute user_data. Value: %.40s. It is not valid base64.", userData)
		}
	}
	for _, f := range []struct {
		name string
		v    *string
	}{{"accessIPv4", &accessIPv4}, {"accessIPv6", &accessIPv6}} {
		if b, ok := raw[f.name]; ok {
			if *f.v, err = accessIP(f.name, b); err != nil {
				return err
			}
		}
	}
	// Without networking every project has only its implicit "default"
	// security group; naming another is Nova's 400.
	for _, g := range securityGroups {
		if name, _ := g["name"].(string); name != "default" {
			return badRequest("Security group %s not found.", pyRepr(g["name"]))
		}
	}
	nets, err := parseNetworks(c, networks)
	if err != nil {
		return err
	}
	for _, k := range []string{"host", "hypervisor_hostname"} {
		if _, ok := raw[k]; ok && !c.Version.AtLeast(2, 74) {
			return badRequest("Invalid input for field/attribute server. Additional properties are not allowed ('%s' was unexpected)", k)
		}
	}
	// "zone:host" (or "zone:host:node", "zone::node") forces a host, as
	// 2.74's host does: administrators only.
	forcedHost := first(host, hypervisorHostname)
	if zone, rest, ok := strings.Cut(az, ":"); ok {
		h, node, _ := strings.Cut(rest, ":")
		az, forcedHost = zone, first(h, node)
	}
	if forcedHost != "" && !c.Auth.IsAdmin() {
		return forbidden("Policy doesn't allow os_compute_api:servers:create:forced_host to be performed.")
	}
	if adminPass == "" {
		adminPass = generatePassword()
	}

	if err := s.node.Consistent(c.Context()); err != nil {
		return err
	}
	st := s.node.State()
	if az != "" {
		zones, err := s.zones(st)
		if err != nil {
			return err
		}
		if !zones[az] {
			return badRequest("The requested availability zone is not available")
		}
	}
	if forcedHost != "" {
		h, _, err := fsm.GetHost(st, forcedHost)
		if err != nil {
			return badRequest("Compute host %s could not be found.", forcedHost)
		}
		if az != "" && h.AvailabilityZone() != az {
			return badRequest("The requested availability zone is not available")
		}
	}
	if groupID != "" {
		g, _, err := fsm.GetServerGroup(st, groupID)
		if err != nil || !c.Auth.CanAccessProject(g.ProjectID) {
			return badRequest("Instance group %s could not be found.", groupID)
		}
	}
	flavor, _, err := fsm.GetFlavor(st, refID(flavorRef))
	if err != nil {
		return badRequest("Flavor %s could not be found.", refID(flavorRef))
	}
	if ok, err := fsm.FlavorAccessible(st, flavor, c.Auth.ProjectID); err != nil {
		return err
	} else if !ok && !c.Auth.IsAdmin() {
		return badRequest("Flavor %s could not be found.", flavor.ID)
	}
	if flavor.Disabled {
		return badRequest("Flavor %s is disabled.", flavor.ID)
	}
	image, _, err := fsm.GetImage(st, refID(imageRef))
	if err != nil || !fsm.ImageVisible(image, c.Auth.ProjectID, c.Auth.IsAdmin()) {
		return badRequest("Image %s could not be found.", refID(imageRef))
	}
	if image.Status != "active" {
		return badRequest("Image %s is not active.", image.ID)
	}
	if image.MinRAM > flavor.RAM {
		return badRequest("Flavor's memory is too small for requested image.")
	}
	if image.MinDisk > flavor.Disk && flavor.Disk > 0 {
		return badRequest("Flavor's disk is too small for requested image.")
	}
	var keyData string
	if keyName != "" {
		kp, _, err := fsm.GetKeypair(st, c.Auth.UserID, keyName)
		if err != nil {
			return badRequest("Invalid key_name provided.")
		}
		keyData = kp.PublicKey
	}

	now := time.Now().UnixMicro()
	resv := "r-" + ids.Hex()[:8]
	servers := make([]fsm.Server, maxCount)
	for i := range servers {
		n := name
		if maxCount > 1 {
			n = fmt.Sprintf("%s-%d", name, i+1)
		}
		servers[i] = fsm.Server{
			ID: ids.UUID(), Name: n, Description: description,
			ProjectID: c.Auth.ProjectID, UserID: c.Auth.UserID,
			Flavor: fsm.ServerFlavor{ID: flavor.ID, Name: flavor.Name, VCPUs: flavor.VCPUs, RAM: flavor.RAM,
				Disk: flavor.Disk, Ephemeral: flavor.Ephemeral, Swap: flavor.Swap, ExtraSpecs: flavor.ExtraSpecs},
			ImageID: image.ID, KeyName: keyName, KeyData: keyData, Metadata: metadata, Tags: tags,
			UserData: userData, AvailabilityZone: az, PinnedAZ: az, ForcedHost: forcedHost,
			ReservationID: resv, LaunchIndex: i, SchedulerHints: hints, AccessIPv4: accessIPv4, AccessIPv6: accessIPv6,
			Hostname: hostnameFor(n), Networks: nets, CreatedAt: now, UpdatedAt: now,
		}
	}
	if c.Auth.ProjectID == "" {
		return forbidden("Creating a server needs a project-scoped token.")
	}
	var res fsm.CreateServersResult
	cmd := &fsm.CreateServers{Servers: servers, MinCount: minCount, RequestID: c.RequestID, GroupID: groupID}
	if err := s.apply(c.Context(), cmd, &res); err != nil {
		return err
	}
	if returnResv {
		return c.JSON(http.StatusAccepted, map[string]any{"reservation_id": resv})
	}
	out := map[string]any{
		"id":                res.IDs[0],
		"links":             s.serverLinks(c, res.IDs[0]),
		"OS-DCF:diskConfig": "MANUAL",
		"adminPass":         adminPass,
	}
	return c.JSON(http.StatusAccepted, map[string]any{"server": out})
}

// parseNetworks accepts what Keel can honour without networking: "none" and
// "auto" (which, until networking exists, behaves like "none"). Required
// from 2.37 on, as in Nova.
func parseNetworks(c *Call, raw json.RawMessage) (string, error) {
	if len(raw) == 0 {
		if c.Version.AtLeast(2, 37) {
			return "", badRequest("Invalid input for field/attribute server. 'networks' is a required property.")
		}
		return "auto", nil
	}
	var s string
	if err := json.Unmarshal(raw, &s); err == nil {
		if !c.Version.AtLeast(2, 37) {
			return "", badRequest("Invalid input for field/attribute networks. Value: %s. It must be a list before microversion 2.37.", raw)
		}
		if s != "none" && s != "auto" {
			return "", badRequest("Invalid input for field/attribute networks. Value: %q is not one of ['none', 'auto'].", s)
		}
		return s, nil
	}
	var list []map[string]any
	if err := json.Unmarshal(raw, &list); err != nil {
		return "", badRequest("Invalid input for field/attribute networks. Value: %s. It must be 'none', 'auto' or a list.", raw)
	}
	if len(list) == 0 {
		return "none", nil
	}
	// Malformed entries are Nova's 400 before anything else; well-formed
	// ones ask for networking, which Keel does not offer yet.
	for _, n := range list {
		for _, k := range []string{"uuid", "port"} {
			if v, ok := n[k]; ok {
				if id, _ := v.(string); !ids.IsUUID(id) && !isDashlessUUID(id) {
					return "", badRequest("Invalid input for field/attribute %s. Value: %v. %s is not a 'uuid'", k, v, pyRepr(v))
				}
			}
		}
		if v, ok := n["fixed_ip"]; ok {
			if ip, _ := v.(string); net.ParseIP(ip) == nil {
				return "", badRequest("Invalid input for field/attribute fixed_ip. Value: %v. %s is not a 'ip-address'", v, pyRepr(v))
			}
		}
	}
	return "", Errorf(http.StatusNotImplemented, "Attaching servers to networks is not offered yet: use \"networks\": \"none\" or \"auto\".")
}

func jsonTypeHint(err error) string {
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) {
		return fmt.Sprintf("%s is not of type '%s'", te.Value, jsonTypeName(te.Type.Kind().String()))
	}
	return err.Error()
}

func jsonTypeName(kind string) string {
	switch kind {
	case "string":
		return "string"
	case "int", "int64":
		return "integer"
	case "bool":
		return "boolean"
	case "map":
		return "object"
	case "slice":
		return "array"
	}
	return kind
}

func generatePassword() string {
	b := make([]byte, 9)
	rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

// hostnameFor makes the guest hostname Nova derives from the display name.
func hostnameFor(name string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(name) {
		switch {
		case r >= 'a' && r <= 'z', r >= '0' && r <= '9', r == '-':
			b.WriteRune(r)
		case r == ' ' || r == '_' || r == '.':
			b.WriteRune('-')
		}
	}
	h := strings.Trim(b.String(), "-")
	if len(h) > 63 {
		h = h[:63]
	}
	if h == "" {
		h = "server"
	}
	return h
}

func (s *Server) serverLinks(c *Call, id string) []map[string]string {
	base := s.publicURL(c.R) + "/compute"
	return []map[string]string{
		{"rel": "self", "href": base + "/v2.1/servers/" + id},
		{"rel": "bookmark", "href": base + "/servers/" + id},
	}
}

func (s *Server) showServer(c *Call) error {
	srv, err := s.serverFor(c, c.Param("server_id"))
	if err != nil {
		return err
	}
	v := s.serverView(c, srv, true)
	if c.Version.AtLeast(2, 71) {
		v["server_groups"] = []string{} // server groups come with the scheduler
	}
	return c.JSON(http.StatusOK, map[string]any{"server": v})
}

// updateViewOmits are the fields Nova leaves out of the PUT /servers/{id}
// answer before 2.75 (from 2.75 on it is the same document as a show).
var updateViewOmits = []string{
	"OS-EXT-AZ:availability_zone", "config_drive", "key_name", "security_groups", "host_status",
	"OS-SRV-USG:launched_at", "OS-SRV-USG:terminated_at", "OS-EXT-STS:task_state", "OS-EXT-STS:vm_state",
	"OS-EXT-STS:power_state", "os-extended-volumes:volumes_attached", "OS-EXT-SRV-ATTR:host",
	"OS-EXT-SRV-ATTR:hypervisor_hostname", "OS-EXT-SRV-ATTR:instance_name", "OS-EXT-SRV-ATTR:reservation_id",
	"OS-EXT-SRV-ATTR:launch_index", "OS-EXT-SRV-ATTR:hostname", "OS-EXT-SRV-ATTR:kernel_id",
	"OS-EXT-SRV-ATTR:ramdisk_id", "OS-EXT-SRV-ATTR:root_device_name", "OS-EXT-SRV-ATTR:user_data",
}

func (s *Server) updateServer(c *Call) error {
	var body struct {
		Server map[string]json.RawMessage `json:"server"`
	}
	if err := c.Decode(&body); err != nil {
		return err
	}
	if body.Server == nil {
		return badRequest("Invalid input: 'server' is a required property.")
	}
	cmd := &fsm.UpdateServer{ID: c.Param("server_id"), Now: time.Now().UnixMicro()}
	for k, v := range body.Server {
		switch k {
		case "name":
			var n string
			if err := json.Unmarshal(v, &n); err != nil {
				return badRequest("Invalid input for field/attribute name. Value: %s. It is not a string.", v)
			}
			cmd.Name = &n
		case "description":
			if !c.Version.AtLeast(2, 19) {
				return badRequest("Invalid input for field/attribute server. Additional properties are not allowed ('description' was unexpected)")
			}
			if string(v) == "null" {
				cmd.ClearDesc = true
				continue
			}
			var d string
			if err := json.Unmarshal(v, &d); err != nil {
				return badRequest("Invalid input for field/attribute description. Value: %s. It is not a string or null.", v)
			}
			cmd.Description = &d
		case "accessIPv4", "accessIPv6":
			a, err := accessIP(k, v)
			if err != nil {
				return err
			}
			if k == "accessIPv4" {
				cmd.AccessIPv4 = &a
			} else {
				cmd.AccessIPv6 = &a
			}
		case "OS-DCF:diskConfig":
		default:
			return badRequest("Invalid input for field/attribute server. Additional properties are not allowed ('%s' was unexpected)", k)
		}
	}
	if _, err := s.serverFor(c, cmd.ID); err != nil {
		return err
	}
	resp, err := s.node.Apply(c.Context(), cmd)
	if err != nil {
		return err
	}
	var srv fsm.Server
	if err := resp.Decode(&srv); err != nil {
		return err
	}
	v := s.serverView(c, &srv, true)
	if !c.Version.AtLeast(2, 75) {
		for _, k := range updateViewOmits {
			delete(v, k)
		}
	}
	if c.Version.AtLeast(2, 71) {
		groups := []string{}
		if g, err := fsm.ServerGroupOf(s.node.State(), srv.ID); err == nil && g != nil {
			groups = append(groups, g.ID)
		}
		v["server_groups"] = groups
	}
	return c.JSON(http.StatusOK, map[string]any{"server": v})
}

func (s *Server) deleteServer(c *Call) error {
	srv, err := s.serverFor(c, c.Param("server_id"))
	if err != nil {
		return err
	}
	cmd := &fsm.DeleteServer{ID: srv.ID, Admin: c.Auth.IsAdmin(), RequestID: c.RequestID, UserID: c.Auth.UserID,
		ProjectID: c.Auth.ProjectID, Now: time.Now().UnixMicro()}
	if err := s.apply(c.Context(), cmd, nil); err != nil {
		return err
	}
	return c.NoContent(http.StatusNoContent)
}

// parseSchedulerHints checks the hints Keel's filters read (Nova's schema
// leaves others free) and returns the server group named by "group".
func parseSchedulerHints(h map[string]any) (string, error) {
	var group string
	if v, ok := h["group"]; ok {
		g, ok := v.(string)
		if !ok || !ids.IsUUID(g) {
			return "", badRequest("Invalid input for field/attribute group. Value: %s. %s is not a 'uuid'", pyRepr(v), pyRepr(v))
		}
		group = g
	}
	for _, k := range []string{"same_host", "different_host"} {
		v, ok := h[k]
		if !ok {
			continue
		}
		list, isList := v.([]any)
		if !isList {
			list = []any{v}
		}
		for _, x := range list {
			if id, ok := x.(string); !ok || !ids.IsUUID(id) {
				return "", badRequest("Invalid input for field/attribute %s. Value: %s. %s is not a 'uuid'", k, pyRepr(v), pyRepr(x))
			}
		}
	}
	return group, nil
}

// accessIP validates accessIPv4 / accessIPv6 as Nova's schema does
// (formats ipv4 and ipv6).
func accessIP(field string, raw json.RawMessage) (string, error) {
	var a string
	if err := json.Unmarshal(raw, &a); err != nil {
		return "", badRequest("Invalid input for field/attribute %s. Value: %s. %s", field, raw, jsonTypeHint(err))
	}
	ip, err := netip.ParseAddr(a)
	if err != nil || field == "accessIPv4" && !ip.Is4() || field == "accessIPv6" && !ip.Is6() {
		format := "ipv4"
		if field == "accessIPv6" {
			format = "ipv6"
		}
		return "", badRequest("Invalid input for field/attribute %s. Value: %s. %s is not a '%s'", field, a, pyRepr(a), format)
	}
	// Stored canonical, as Nova returns it (RFC 5952 for IPv6).
	return ip.String(), nil
}

// isDashlessUUID accepts the 32-hex-digit form Nova's uuid format allows.
func isDashlessUUID(s string) bool {
	if len(s) != 32 {
		return false
	}
	for _, r := range s {
		if !strings.ContainsRune("0123456789abcdefABCDEF", r) {
			return false
		}
	}
	return true
}
