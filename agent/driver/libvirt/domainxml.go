package libvirt

import (
	"encoding/xml"
	"fmt"
	"strconv"
	"strings"

	"libvirt.org/go/libvirtxml"

	"github.com/keel-cloud/keel/internal/hostapi"
)

// MetadataNS is the XML namespace of Keel's element in a domain's
// <metadata>. Its presence is what makes a domain Keel's.
const MetadataNS = "https://keel.cloud/xmlns/server/1"

// metadataPrefix is the namespace prefix libvirt writes the element with.
const metadataPrefix = "keel"

// domainPrefix starts the libvirt name of every Keel domain.
const domainPrefix = "keel-"

// domainName is the libvirt name of a server's domain.
func domainName(serverID string) string { return domainPrefix + serverID }

// serverMeta is what Keel keeps in a domain's metadata: enough to know the
// domain is Keel's, which placement generation it runs, and to tell an
// operator reading `virsh dumpxml` whose server it is.
type serverMeta struct {
	// Owner is the agent the domain belongs to (Config.Owner).
	Owner      string `xml:"owner,attr,omitempty"`
	Generation uint64 `xml:"generation,attr"`
	Name       string `xml:"name,attr,omitempty"`
	Project    string `xml:"project,attr,omitempty"`
	User       string `xml:"user,attr,omitempty"`
	Image      string `xml:"image,attr,omitempty"`
}

// metaFor takes the metadata of an assignment for the given owner.
func metaFor(owner string, a hostapi.Assignment) serverMeta {
	return serverMeta{Owner: owner, Generation: a.Generation, Name: a.Name, Project: a.ProjectID, User: a.UserID, Image: a.ImageID}
}

// element renders the metadata as <keel:server xmlns:keel="..." .../>
// for a domain definition, with attribute values escaped.
func (m serverMeta) element() string {
	return m.render(fmt.Sprintf(`<%s:server xmlns:%s="%s"`, metadataPrefix, metadataPrefix, MetadataNS))
}

// bareElement renders the metadata as <server .../>, the form
// DomainSetMetadata takes: libvirt adds the namespace itself and refuses
// an element that declares it already.
func (m serverMeta) bareElement() string { return m.render("<server") }

func (m serverMeta) render(open string) string {
	var b strings.Builder
	fmt.Fprintf(&b, `%s generation="%d"`, open, m.Generation)
	for _, kv := range [][2]string{{"owner", m.Owner}, {"name", m.Name}, {"project", m.Project}, {"user", m.User}, {"image", m.Image}} {
		if kv[1] == "" {
			continue
		}
		b.WriteString(" " + kv[0] + `="`)
		_ = xml.EscapeText(&b, []byte(kv[1]))
		b.WriteString(`"`)
	}
	b.WriteString("/>")
	return b.String()
}

// parseMeta reads the element DomainGetMetadata returns for MetadataNS.
func parseMeta(doc string) (serverMeta, error) {
	var m struct {
		XMLName xml.Name
		serverMeta
		RawGeneration string `xml:"generation,attr"`
	}
	if err := xml.Unmarshal([]byte(doc), &m); err != nil {
		return serverMeta{}, fmt.Errorf("parse Keel metadata %q: %w", doc, err)
	}
	// libvirt returns the element it found by namespace without the
	// namespace declaration; the full form is accepted too.
	if m.XMLName.Space != MetadataNS && m.XMLName.Space != "" || m.XMLName.Local != "server" {
		return serverMeta{}, fmt.Errorf("Keel metadata is <%s> in %q, want <server> in %q", m.XMLName.Local, m.XMLName.Space, MetadataNS)
	}
	gen, err := strconv.ParseUint(m.RawGeneration, 10, 64)
	if err != nil {
		return serverMeta{}, fmt.Errorf("Keel metadata: generation %q: %w", m.RawGeneration, err)
	}
	m.serverMeta.Generation = gen
	return m.serverMeta, nil
}

// domainSpec is everything a domain definition is made of.
type domainSpec struct {
	ID         string
	VirtType   string // kvm, qemu, test
	Arch       string
	VCPUs      int
	MemoryMB   int
	Disk       string // path of the qcow2 root disk
	ConsoleLog string // path of the serial console log
	Meta       serverMeta
}

// domainXML renders the domain definition: a BIOS (SeaBIOS) machine of
// QEMU's default type, with the root disk on virtio and the first serial
// port on a pty whose output virtlogd appends to ConsoleLog, across boots
// and restarts. The guest's power-off ends the domain; its reboot restarts
// it; a crash ends it (the agent observes and reports the state).
func domainXML(s domainSpec) (string, error) {
	port := uint(0)
	dom := libvirtxml.Domain{
		Type:     s.VirtType,
		Name:     domainName(s.ID),
		UUID:     s.ID,
		Metadata: &libvirtxml.DomainMetadata{XML: s.Meta.element()},
		Memory:   &libvirtxml.DomainMemory{Value: uint(s.MemoryMB), Unit: "MiB"},
		VCPU:     &libvirtxml.DomainVCPU{Value: uint(s.VCPUs)},
		OS: &libvirtxml.DomainOS{
			Type:        &libvirtxml.DomainOSType{Arch: s.Arch, Type: "hvm"},
			BootDevices: []libvirtxml.DomainBootDevice{{Dev: "hd"}},
		},
		Features: &libvirtxml.DomainFeatureList{
			ACPI: &libvirtxml.DomainFeature{},
			APIC: &libvirtxml.DomainFeatureAPIC{},
		},
		Clock:      &libvirtxml.DomainClock{Offset: "utc"},
		OnPoweroff: "destroy",
		OnReboot:   "restart",
		OnCrash:    "destroy",
		Devices: &libvirtxml.DomainDeviceList{
			Disks: []libvirtxml.DomainDisk{{
				Device: "disk",
				Driver: &libvirtxml.DomainDiskDriver{Name: "qemu", Type: "qcow2"},
				Source: &libvirtxml.DomainDiskSource{File: &libvirtxml.DomainDiskSourceFile{File: s.Disk}},
				Target: &libvirtxml.DomainDiskTarget{Dev: "vda", Bus: "virtio"},
			}},
			Serials: []libvirtxml.DomainSerial{{
				Source: &libvirtxml.DomainChardevSource{Pty: &libvirtxml.DomainChardevSourcePty{}},
				Target: &libvirtxml.DomainSerialTarget{Port: &port},
				Log:    &libvirtxml.DomainChardevLog{File: s.ConsoleLog, Append: "on"},
			}},
			Consoles: []libvirtxml.DomainConsole{{
				Source: &libvirtxml.DomainChardevSource{Pty: &libvirtxml.DomainChardevSourcePty{}},
				Target: &libvirtxml.DomainConsoleTarget{Type: "serial", Port: &port},
			}},
		},
	}
	doc, err := dom.Marshal()
	if err != nil {
		return "", fmt.Errorf("libvirt driver: domain XML of %s: %w", s.ID, err)
	}
	return doc, nil
}
