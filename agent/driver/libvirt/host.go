package libvirt

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"

	"libvirt.org/go/libvirtxml"

	"github.com/keel-cloud/keel/agent/driver"
)

// Capacity reports the host as libvirt sees it: logical CPUs and memory
// from the node info, disk from the storage pool (the filesystem it lives
// on), each replaced by Config's override when one is set.
func (d *Driver) Capacity(ctx context.Context) (driver.Capacity, error) {
	conn, err := d.client()
	if err != nil {
		return driver.Capacity{}, err
	}
	_, memKiB, cpus, _, nodes, sockets, cores, threads, err := conn.NodeGetInfo()
	if err != nil {
		return driver.Capacity{}, fmt.Errorf("libvirt driver: node info: %w", err)
	}
	version, err := conn.ConnectGetVersion()
	if err != nil {
		return driver.Capacity{}, fmt.Errorf("libvirt driver: hypervisor version: %w", err)
	}
	hvType, err := conn.ConnectGetType()
	if err != nil {
		return driver.Capacity{}, fmt.Errorf("libvirt driver: hypervisor type: %w", err)
	}
	pool, err := d.pool(conn)
	if err != nil {
		return driver.Capacity{}, err
	}
	// Refresh so that capacity reflects the filesystem now; harmless if it
	// fails (the numbers are then those of the last refresh).
	_ = conn.StoragePoolRefresh(pool, 0)
	_, poolBytes, _, _, err := conn.StoragePoolGetInfo(pool)
	if err != nil {
		return driver.Capacity{}, fmt.Errorf("libvirt driver: storage pool %q info: %w", d.cfg.PoolName, err)
	}
	capsXML, err := conn.ConnectGetCapabilities()
	if err != nil {
		return driver.Capacity{}, fmt.Errorf("libvirt driver: capabilities: %w", err)
	}
	var caps libvirtxml.Caps
	if err := caps.Unmarshal(capsXML); err != nil {
		return driver.Capacity{}, fmt.Errorf("libvirt driver: parse capabilities: %w", err)
	}
	c := driver.Capacity{
		VCPUs:             int(cpus),
		MemoryMB:          int(memKiB / 1024),
		DiskGB:            int(poolBytes >> 30),
		HypervisorType:    hypervisorType(d.virtType, hvType),
		HypervisorVersion: int(version),
		CPUInfo:           cpuInfo(caps, topology{Cells: int(nodes), Sockets: int(sockets), Cores: int(cores), Threads: int(threads)}),
		Arch:              d.arch,
	}
	if caps.Host.CPU != nil && caps.Host.CPU.Arch != "" {
		c.Arch = caps.Host.CPU.Arch
	}
	if d.cfg.VCPUs > 0 {
		c.VCPUs = d.cfg.VCPUs
	}
	if d.cfg.MemoryMB > 0 {
		c.MemoryMB = d.cfg.MemoryMB
	}
	if d.cfg.DiskGB > 0 {
		c.DiskGB = d.cfg.DiskGB
	}
	return c, ctx.Err()
}

// hypervisorType is what the host reports as its hypervisor: "KVM" when
// domains use KVM, else libvirt's name of the driver ("QEMU" for TCG,
// "TEST" for the test driver).
func hypervisorType(virtType, connType string) string {
	if virtType == "kvm" {
		return "KVM"
	}
	return strings.ToUpper(connType)
}

type topology struct {
	Cells   int `json:"cells"`
	Sockets int `json:"sockets"`
	Cores   int `json:"cores"`
	Threads int `json:"threads"`
}

// cpuInfo is the JSON text os-hypervisors shows as cpu_info: the host
// CPU's arch, model, vendor, topology and feature names (sorted).
func cpuInfo(caps libvirtxml.Caps, topo topology) string {
	info := struct {
		Arch     string   `json:"arch"`
		Model    string   `json:"model"`
		Vendor   string   `json:"vendor"`
		Topology topology `json:"topology"`
		Features []string `json:"features"`
	}{Topology: topo, Features: []string{}}
	if cpu := caps.Host.CPU; cpu != nil {
		info.Arch, info.Model, info.Vendor = cpu.Arch, cpu.Model, cpu.Vendor
		if t := cpu.Topology; t != nil {
			info.Topology.Sockets, info.Topology.Cores, info.Topology.Threads = t.Sockets, t.Cores, t.Threads
		}
		for _, f := range cpu.FeatureFlags {
			info.Features = append(info.Features, f.Name)
		}
		sort.Strings(info.Features)
	}
	b, _ := json.Marshal(info) // cannot fail: strings and ints
	return string(b)
}

// maxConsoleBytes bounds what ConsoleOutput reads: the tail of the log.
// Nova returns at most 100 KiB; a little more costs nothing.
const maxConsoleBytes = 1 << 20

// ConsoleOutput returns the last n lines of the server's serial console
// log (all, up to maxConsoleBytes, if n <= 0). A server whose guest has
// written nothing yet has an empty console.
func (d *Driver) ConsoleOutput(ctx context.Context, id string, n int) (string, error) {
	conn, err := d.client()
	if err != nil {
		return "", err
	}
	if _, _, err := d.lookup(conn, id); err != nil {
		return "", err
	}
	data, err := readTail(d.consolePath(id), maxConsoleBytes)
	if err != nil {
		return "", err
	}
	return tailLines(strings.ToValidUTF8(string(data), "\uFFFD"), n), ctx.Err()
}

// readTail reads at most max bytes from the end of a file; a missing file
// reads as empty.
func readTail(path string, max int64) ([]byte, error) {
	f, err := os.Open(path)
	if os.IsNotExist(err) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("libvirt driver: console log: %w", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("libvirt driver: console log: %w", err)
	}
	off := fi.Size() - max
	if off < 0 {
		off = 0
	}
	data, err := io.ReadAll(io.NewSectionReader(f, off, fi.Size()-off))
	if err != nil {
		return nil, fmt.Errorf("libvirt driver: console log: %w", err)
	}
	return data, nil
}

// tailLines returns the last n lines of s (all of s if n <= 0). A final
// newline ends the last line; it does not start another.
func tailLines(s string, n int) string {
	if n <= 0 {
		return s
	}
	end := len(s)
	if strings.HasSuffix(s, "\n") {
		end--
	}
	for i := end - 1; i >= 0; i-- {
		if s[i] == '\n' {
			n--
			if n == 0 {
				return s[i+1:]
			}
		}
	}
	return s
}
