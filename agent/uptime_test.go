package agent

import (
	"regexp"
	"testing"
	"time"
)

func TestUptimeFormat(t *testing.T) {
	now := time.Date(2026, 11, 27, 13, 17, 45, 0, time.UTC)
	cases := []struct {
		up   time.Duration
		want string
	}{
		{3*time.Hour + 4*time.Minute, " 13:17:45 up  3:04,  0 users,  load average: 0.10, 0.20, 0.30"},
		{26*time.Hour + 5*time.Minute, " 13:17:45 up 1 day,  2:05,  0 users,  load average: 0.10, 0.20, 0.30"},
		{50*time.Hour + 59*time.Minute, " 13:17:45 up 2 days,  2:59,  0 users,  load average: 0.10, 0.20, 0.30"},
	}
	for _, c := range cases {
		if got := formatUptime(now, c.up, "0.10", "0.20", "0.30"); got != c.want {
			t.Errorf("%s: %q, want %q", c.up, got, c.want)
		}
	}
	// The machine's own, in the form clients parse (python-openstackclient's
	// regular expression for hypervisor show).
	got, err := hostUptime(now)
	if err != nil {
		t.Fatal(err)
	}
	if !regexp.MustCompile(`(.*) up (.*),\s+(.*) users?,\s+load average: (.*)`).MatchString(got) {
		t.Fatalf("uptime %q is not in uptime(1)'s format", got)
	}
}
