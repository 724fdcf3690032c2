package agent

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"
)

// hostUptime is the machine's uptime in the format of uptime(1), which
// os-hypervisors shows (Nova's libvirt driver runs `uptime`):
//
//	" 13:17:45 up 2 days,  3:04,  0 users,  load average: 0.10, 0.20, 0.30"
//
// Keel does not count logged-in users: it says 0.
func hostUptime(now time.Time) (string, error) {
	raw, err := os.ReadFile("/proc/uptime")
	if err != nil {
		return "", fmt.Errorf("read the host's uptime: %w", err)
	}
	f := strings.Fields(string(raw))
	if len(f) == 0 {
		return "", fmt.Errorf("read the host's uptime: /proc/uptime is empty")
	}
	secs, err := strconv.ParseFloat(f[0], 64)
	if err != nil {
		return "", fmt.Errorf("read the host's uptime: %q: %w", f[0], err)
	}
	load, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "", fmt.Errorf("read the host's load average: %w", err)
	}
	l := strings.Fields(string(load))
	if len(l) < 3 {
		return "", fmt.Errorf("read the host's load average: %q", load)
	}
	return formatUptime(now, time.Duration(secs*float64(time.Second)), l[0], l[1], l[2]), nil
}

func formatUptime(now time.Time, up time.Duration, l1, l5, l15 string) string {
	days := int(up.Hours()) / 24
	hm := fmt.Sprintf("%2d:%02d", int(up.Hours())%24, int(up.Minutes())%60)
	switch {
	case days == 1:
		hm = "1 day, " + hm
	case days > 1:
		hm = fmt.Sprintf("%d days, %s", days, hm)
	}
	return fmt.Sprintf(" %s up %s,  0 users,  load average: %s, %s, %s", now.Format("15:04:05"), hm, l1, l5, l15)
}
