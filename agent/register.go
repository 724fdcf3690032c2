package agent

import (
	"context"
	"fmt"
	"net"
	"net/url"
	"reflect"
	"strconv"
	"time"

	"github.com/keel-cloud/keel/internal/hostapi"
)

// registration builds what the host reports: the driver's capacity with the
// configured overrides.
func (a *Agent) registration(ctx context.Context) (hostapi.Registration, error) {
	c, err := a.cfg.Driver.Capacity(ctx)
	if err != nil {
		return hostapi.Registration{}, fmt.Errorf("read the host's capacity from the hypervisor: %w", err)
	}
	override := func(v *int, o int) {
		if o > 0 {
			*v = o
		}
	}
	override(&c.VCPUs, a.cfg.VCPUs)
	override(&c.MemoryMB, a.cfg.MemoryMB)
	override(&c.DiskGB, a.cfg.DiskGB)
	caps := map[string]string{
		"hypervisor_type":    c.HypervisorType,
		"hypervisor_version": strconv.Itoa(c.HypervisorVersion),
		"vm_mode":            "hvm",
	}
	if c.Arch != "" {
		caps["cpu_info:arch"] = c.Arch
	}
	return hostapi.Registration{
		Host:                a.cfg.Name,
		Zone:                a.cfg.Zone,
		AgentAddr:           a.addr,
		HostIP:              a.hostIP(),
		Version:             a.cfg.Version,
		HypervisorType:      c.HypervisorType,
		HypervisorVersion:   c.HypervisorVersion,
		CPUInfo:             c.CPUInfo,
		Capabilities:        caps,
		VCPUs:               c.VCPUs,
		MemoryMB:            c.MemoryMB,
		DiskGB:              c.DiskGB,
		CPUAllocationRatio:  a.cfg.CPUAllocationRatio,
		RAMAllocationRatio:  a.cfg.RAMAllocationRatio,
		DiskAllocationRatio: a.cfg.DiskAllocationRatio,
		Gossip:              a.cfg.GossipAddr != "",
		FenceAfterMS:        a.cfg.FenceAfter.Milliseconds(),
	}, nil
}

// hostIP is the configured host IP, the agent API's IP, or the local
// address this host uses to reach the first controller.
func (a *Agent) hostIP() string {
	if a.cfg.HostIP != "" {
		return a.cfg.HostIP
	}
	if h, _, err := net.SplitHostPort(a.addr); err == nil {
		if ip := net.ParseIP(h); ip != nil && !ip.IsUnspecified() {
			return ip.String()
		}
	}
	return a.routeIP()
}

// advertise turns the address the agent API bound into one the controllers
// can use: a wildcard address (--listen 0.0.0.0:8776) becomes the host IP.
func (a *Agent) advertise(bound string) string {
	h, port, err := net.SplitHostPort(bound)
	if err != nil {
		return bound
	}
	if ip := net.ParseIP(h); ip == nil || !ip.IsUnspecified() {
		return bound
	}
	ip := a.cfg.HostIP
	if ip == "" {
		ip = a.routeIP()
	}
	if ip == "" {
		a.log.Warn("cannot tell which address the controllers reach this host at; set --advertise-addr", "listen", bound)
		return bound
	}
	return net.JoinHostPort(ip, port)
}

// routeIP is the local address this host uses to reach the first
// controller. A UDP "connection" sends nothing: it only asks the kernel for
// the route, hence the source address.
func (a *Agent) routeIP() string {
	u, err := url.Parse(a.cfg.Controllers[0])
	if err != nil {
		return ""
	}
	port := u.Port()
	if port == "" {
		port = "80"
	}
	conn, err := net.Dial("udp", net.JoinHostPort(u.Hostname(), port))
	if err != nil {
		return ""
	}
	defer conn.Close()
	if ua, ok := conn.LocalAddr().(*net.UDPAddr); ok {
		return ua.IP.String()
	}
	return ""
}

// register sends the host's registration until the controllers accept it
// and returns their word on the host. It gives up only when ctx is done.
func (a *Agent) register(ctx context.Context) (hostapi.HostStatus, bool) {
	wait := a.cfg.MinBackoff
	logged := false
	for {
		reg, err := a.registration(ctx)
		if err == nil {
			var st hostapi.HostStatus
			st, err = a.client.register(ctx, reg)
			if err == nil {
				a.lastReg, a.regCheckedAt = reg, time.Now()
				a.log.Info("host registered", "vcpus", reg.VCPUs, "memory_mb", reg.MemoryMB, "disk_gb", reg.DiskGB,
					"hypervisor", reg.HypervisorType, "agent_api", reg.AgentAddr, "host_ip", reg.HostIP,
					"disabled", st.Disabled, "forced_down", st.ForcedDown)
				return st, true
			}
		}
		if ctx.Err() != nil {
			return hostapi.HostStatus{}, false
		}
		// Unreachable controllers are logged by the client; what is left
		// is a refusal (a bad registration) or a hypervisor that does not
		// answer, which an operator must fix.
		if !logged {
			a.log.Error("cannot register the host; retrying", "error", err)
			logged = true
		}
		t := time.NewTimer(jitter(wait))
		select {
		case <-ctx.Done():
			t.Stop()
			return hostapi.HostStatus{}, false
		case <-t.C:
		}
		wait = min(2*wait, a.cfg.MaxBackoff)
	}
}

// recheckRegistration registers again when what the host reports changed
// (memory added, hypervisor upgraded), looking at most every
// RegistrationCheck.
func (a *Agent) recheckRegistration(ctx context.Context) {
	if time.Since(a.regCheckedAt) < a.cfg.RegistrationCheck {
		return
	}
	a.regCheckedAt = time.Now()
	reg, err := a.registration(ctx)
	if err != nil || reflect.DeepEqual(reg, a.lastReg) {
		return
	}
	a.log.Info("what this host reports changed: registering again", "vcpus", reg.VCPUs, "memory_mb", reg.MemoryMB, "disk_gb", reg.DiskGB)
	if st, ok := a.register(ctx); ok {
		a.setForcedDown(st.ForcedDown)
	}
}
