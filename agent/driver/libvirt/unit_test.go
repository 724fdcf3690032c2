package libvirt

import (
	"encoding/binary"
	"encoding/json"
	"strings"
	"sync"
	"testing"
	"time"

	golibvirt "github.com/digitalocean/go-libvirt"
	"libvirt.org/go/libvirtxml"

	"github.com/keel-cloud/keel/internal/hostapi"
)

func TestChooseGuest(t *testing.T) {
	guest := func(os, arch string, types ...string) libvirtxml.CapsGuest {
		g := libvirtxml.CapsGuest{OSType: os, Arch: libvirtxml.CapsGuestArch{Name: arch}}
		for _, ty := range types {
			g.Arch.Domains = append(g.Arch.Domains, libvirtxml.CapsGuestDomain{Type: ty})
		}
		return g
	}
	tests := []struct {
		name               string
		guests             []libvirtxml.CapsGuest
		want               string
		wantArch, wantType string
		wantErr            bool
	}{
		{"kvm preferred", []libvirtxml.CapsGuest{guest("hvm", "i686", "qemu", "kvm"), guest("hvm", "x86_64", "qemu", "kvm")}, "", "x86_64", "kvm", false},
		{"tcg only", []libvirtxml.CapsGuest{guest("hvm", "x86_64", "qemu")}, "", "x86_64", "qemu", false},
		{"forced qemu", []libvirtxml.CapsGuest{guest("hvm", "x86_64", "qemu", "kvm")}, "qemu", "x86_64", "qemu", false},
		{"forced kvm missing", []libvirtxml.CapsGuest{guest("hvm", "x86_64", "qemu")}, "kvm", "", "", true},
		{"test driver", []libvirtxml.CapsGuest{guest("hvm", "i686", "test"), guest("xen", "i686", "test")}, "", "i686", "test", false},
		{"no hvm", []libvirtxml.CapsGuest{guest("xen", "x86_64", "xen")}, "", "", "", true},
		{"no guests", nil, "", "", "", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			arch, typ, err := chooseGuest(libvirtxml.Caps{Guests: tt.guests}, tt.want)
			if (err != nil) != tt.wantErr {
				t.Fatalf("err = %v, want error %v", err, tt.wantErr)
			}
			if arch != tt.wantArch || typ != tt.wantType {
				t.Fatalf("got %s/%s, want %s/%s", arch, typ, tt.wantArch, tt.wantType)
			}
		})
	}
}

func TestMetadataRoundTrip(t *testing.T) {
	m := serverMeta{Generation: 42, Name: `web "1" <&> 'x'`, Project: "p1", User: "u1", Image: "img"}
	el := m.element()
	if !strings.HasPrefix(el, `<keel:server xmlns:keel="`+MetadataNS+`" generation="42"`) {
		t.Fatalf("element = %s", el)
	}
	got, err := parseMeta(el)
	if err != nil {
		t.Fatal(err)
	}
	if got != m {
		t.Fatalf("round trip: got %+v, want %+v", got, m)
	}
	// libvirt may hand the element back with another prefix.
	got, err = parseMeta(`<k:server xmlns:k="` + MetadataNS + `" generation="7"/>`)
	if err != nil || got.Generation != 7 {
		t.Fatalf("other prefix: %+v, %v", got, err)
	}
	// ... or, as DomainGetMetadata does, without the namespace at all.
	got, err = parseMeta(`<server generation="8" project="p"/>`)
	if err != nil || got.Generation != 8 || got.Project != "p" {
		t.Fatalf("no namespace: %+v, %v", got, err)
	}
	for _, bad := range []string{
		`<keel:server xmlns:keel="https://example.com/other" generation="1"/>`,
		`<keel:server xmlns:keel="` + MetadataNS + `"/>`,
		`<keel:server xmlns:keel="` + MetadataNS + `" generation="-1"/>`,
		`<keel:other xmlns:keel="` + MetadataNS + `" generation="1"/>`,
		`not xml`,
	} {
		if _, err := parseMeta(bad); err == nil {
			t.Errorf("parseMeta(%s) succeeded, want an error", bad)
		}
	}
}

func TestDomainXML(t *testing.T) {
	id := "0b7f3a52-7d4e-4f44-9d7c-3c1f2a6e5b10"
	doc, err := domainXML(domainSpec{
		ID: id, VirtType: "kvm", Arch: "x86_64", VCPUs: 2, MemoryMB: 512,
		Disk: "/pool/" + id + ".qcow2", ConsoleLog: "/state/console/" + id + ".log",
		Meta: serverMeta{Generation: 3, Project: "p"},
	})
	if err != nil {
		t.Fatal(err)
	}
	var dom libvirtxml.Domain
	if err := dom.Unmarshal(doc); err != nil {
		t.Fatalf("unmarshal: %v\n%s", err, doc)
	}
	if dom.Type != "kvm" || dom.Name != "keel-"+id || dom.UUID != id {
		t.Fatalf("type/name/uuid = %s/%s/%s", dom.Type, dom.Name, dom.UUID)
	}
	if dom.VCPU.Value != 2 || dom.Memory.Value != 512 || dom.Memory.Unit != "MiB" {
		t.Fatalf("vcpu %d memory %d %s", dom.VCPU.Value, dom.Memory.Value, dom.Memory.Unit)
	}
	disk := dom.Devices.Disks[0]
	if disk.Source.File.File != "/pool/"+id+".qcow2" || disk.Driver.Type != "qcow2" || disk.Target.Bus != "virtio" {
		t.Fatalf("disk = %+v", disk)
	}
	ser := dom.Devices.Serials[0]
	if ser.Source.Pty == nil || ser.Log == nil || ser.Log.File != "/state/console/"+id+".log" || ser.Log.Append != "on" {
		t.Fatalf("serial = %+v", ser)
	}
	meta, err := parseMeta(dom.Metadata.XML)
	if err != nil || meta.Generation != 3 || meta.Project != "p" {
		t.Fatalf("metadata %q: %+v, %v", dom.Metadata.XML, meta, err)
	}
	if dom.OnReboot != "restart" || dom.OnPoweroff != "destroy" {
		t.Fatalf("on_reboot %s on_poweroff %s", dom.OnReboot, dom.OnPoweroff)
	}
}

func qcow2Header(version uint32, size, backing, incompatible uint64) []byte {
	h := make([]byte, 104)
	copy(h, qcow2Magic)
	be := binary.BigEndian
	be.PutUint32(h[4:], version)
	be.PutUint64(h[8:], backing)
	be.PutUint32(h[20:], 16)
	be.PutUint64(h[24:], size)
	be.PutUint64(h[72:], incompatible)
	if version == 2 {
		return h[:72]
	}
	return h
}

func TestQcow2VirtualSize(t *testing.T) {
	tests := []struct {
		name    string
		header  []byte
		want    uint64
		wantErr string
	}{
		{"v3", qcow2Header(3, 10<<30, 0, 0), 10 << 30, ""},
		{"v2", qcow2Header(2, 1<<20, 0, 0), 1 << 20, ""},
		{"dirty bit is fine", qcow2Header(3, 1<<20, 0, 1), 1 << 20, ""},
		{"backing file", qcow2Header(3, 1<<20, 0x200, 0), 0, "backing file"},
		{"external data file", qcow2Header(3, 1<<20, 0, qcow2ExternalData), 0, "external data"},
		{"corrupt", qcow2Header(3, 1<<20, 0, qcow2Corrupt), 0, "corrupt"},
		{"version 1", qcow2Header(1, 1<<20, 0, 0)[:72], 0, "version"},
		{"truncated v3", qcow2Header(3, 1<<20, 0, 0)[:80], 0, "truncated"},
		{"raw", make([]byte, 512), 0, "not a qcow2"},
		{"short", []byte("QFI"), 0, "not a qcow2"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := qcow2VirtualSize(tt.header)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("got %d, %v; want %d", got, err, tt.want)
			}
		})
	}
}

func TestTailLines(t *testing.T) {
	tests := []struct {
		in   string
		n    int
		want string
	}{
		{"a\nb\nc\n", 0, "a\nb\nc\n"},
		{"a\nb\nc\n", -1, "a\nb\nc\n"},
		{"a\nb\nc\n", 1, "c\n"},
		{"a\nb\nc\n", 2, "b\nc\n"},
		{"a\nb\nc\n", 3, "a\nb\nc\n"},
		{"a\nb\nc\n", 10, "a\nb\nc\n"},
		{"a\nb\nc", 1, "c"},
		{"a\nb\nc", 2, "b\nc"},
		{"", 5, ""},
		{"\n\n", 1, "\n"},
		{"x\r\ny\r\n", 1, "y\r\n"},
	}
	for _, tt := range tests {
		if got := tailLines(tt.in, tt.n); got != tt.want {
			t.Errorf("tailLines(%q, %d) = %q, want %q", tt.in, tt.n, got, tt.want)
		}
	}
}

func TestPowerState(t *testing.T) {
	tests := []struct {
		st   domState
		want int
	}{
		{domState{state: golibvirt.DomainRunning}, hostapi.PowerRunning},
		{domState{state: golibvirt.DomainBlocked}, hostapi.PowerRunning},
		{domState{state: golibvirt.DomainPaused}, hostapi.PowerPaused},
		{domState{state: golibvirt.DomainShutdown}, hostapi.PowerShutdown},
		{domState{state: golibvirt.DomainShutoff}, hostapi.PowerShutdown},
		{domState{state: golibvirt.DomainShutoff, managedSave: true}, hostapi.PowerShutdown},
		{domState{state: golibvirt.DomainCrashed}, hostapi.PowerCrashed},
		{domState{state: golibvirt.DomainPmsuspended}, hostapi.PowerSuspended},
		{domState{state: golibvirt.DomainNostate}, hostapi.PowerNoState},
		{domState{state: 99}, hostapi.PowerNoState},
	}
	for _, tt := range tests {
		if got := tt.st.power(); got != tt.want {
			t.Errorf("%v: power = %d, want %d", tt.st, got, tt.want)
		}
	}
	if (domState{state: golibvirt.DomainShutoff}).active() || !(domState{state: golibvirt.DomainPaused}).active() {
		t.Error("active() is wrong")
	}
}

func TestUUID(t *testing.T) {
	id := "0b7f3a52-7d4e-4f44-9d7c-3c1f2a6e5b10"
	u, err := parseUUID(id)
	if err != nil || formatUUID(u) != id {
		t.Fatalf("round trip: %s, %v", formatUUID(u), err)
	}
	if u, err := parseUUID(strings.ToUpper(id)); err != nil || formatUUID(u) != id {
		t.Fatalf("upper case: %s, %v", formatUUID(u), err)
	}
	for _, bad := range []string{"", "keel", id + "0", strings.ReplaceAll(id, "-", "")} {
		if _, err := parseUUID(bad); err == nil {
			t.Errorf("parseUUID(%q) succeeded", bad)
		}
	}
}

func TestHypervisorTypeAndCPUInfo(t *testing.T) {
	for _, tt := range [][3]string{{"kvm", "QEMU", "KVM"}, {"qemu", "QEMU", "QEMU"}, {"test", "Test", "TEST"}} {
		if got := hypervisorType(tt[0], tt[1]); got != tt[2] {
			t.Errorf("hypervisorType(%s, %s) = %s, want %s", tt[0], tt[1], got, tt[2])
		}
	}
	caps := libvirtxml.Caps{Host: libvirtxml.CapsHost{CPU: &libvirtxml.CapsHostCPU{
		Arch: "x86_64", Model: "Skylake", Vendor: "Intel",
		Topology:     &libvirtxml.CapsHostCPUTopology{Sockets: 1, Cores: 2, Threads: 2},
		FeatureFlags: []libvirtxml.CapsHostCPUFeatureFlag{{Name: "vmx"}, {Name: "aes"}},
	}}}
	var info struct {
		Arch     string
		Model    string
		Vendor   string
		Topology map[string]int
		Features []string
	}
	if err := json.Unmarshal([]byte(cpuInfo(caps, topology{Cells: 1})), &info); err != nil {
		t.Fatal(err)
	}
	if info.Arch != "x86_64" || info.Model != "Skylake" || info.Topology["cores"] != 2 || info.Topology["cells"] != 1 ||
		strings.Join(info.Features, ",") != "aes,vmx" {
		t.Fatalf("cpu info = %+v", info)
	}
}

func TestKeyedMutex(t *testing.T) {
	var k keyedMutex
	var mu sync.Mutex
	inside := map[string]int{}
	var wg sync.WaitGroup
	for i := 0; i < 40; i++ {
		key := []string{"a", "b"}[i%2]
		wg.Add(1)
		go func() {
			defer wg.Done()
			unlock := k.lock(key)
			mu.Lock()
			inside[key]++
			if inside[key] > 1 {
				t.Errorf("two holders of %s", key)
			}
			mu.Unlock()
			time.Sleep(time.Millisecond)
			mu.Lock()
			inside[key]--
			mu.Unlock()
			unlock()
		}()
	}
	wg.Wait()
	if len(k.locks) != 0 {
		t.Fatalf("%d lock entries left", len(k.locks))
	}
}
