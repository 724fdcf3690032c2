package main

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"net"
	"net/http"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/keel-cloud/keel/internal/clusterauth"
	"github.com/keel-cloud/keel/internal/hostapi"
)

var testKey = []byte("0123456789abcdef0123456789abcdef")

func keyFlag() string { return base64.StdEncoding.EncodeToString(testKey) }

func TestParseFlags(t *testing.T) {
	t.Setenv("KEEL_CONTROLLERS", "http://a:8774, http://b:8774")
	t.Setenv("KEEL_CLUSTER_KEY", keyFlag())
	t.Setenv("KEEL_ZONE", "az9")
	o, err := parseFlags([]string{"--name", "h1", "--join", "10.0.0.1:7946,10.0.0.2:7946", "--join", "10.0.0.3:7946", "--vcpus", "6"})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(o.controllers, []string{"http://a:8774", "http://b:8774"}) || o.zone != "az9" || o.vcpus != 6 ||
		!slices.Equal(o.join, []string{"10.0.0.1:7946", "10.0.0.2:7946", "10.0.0.3:7946"}) || len(o.key) != 32 {
		t.Fatalf("options %+v", o)
	}
	if o.driver != "libvirt" || o.libvirtURI != "qemu:///system" || o.listen != "127.0.0.1:8776" || o.stateDir != "/var/lib/keel/agent" || o.shutdownTimeout != time.Minute ||
		o.fenceAfter != 30*time.Second || o.agentConfig("h1", nil, nil).FenceAfter != 30*time.Second {
		t.Fatalf("defaults %+v", o)
	}
	// A flag wins over the environment.
	o, err = parseFlags([]string{"--controllers", "http://c:8774", "--zone", "az1"})
	if err != nil || !slices.Equal(o.controllers, []string{"http://c:8774"}) || o.zone != "az1" {
		t.Fatalf("flags over env: %+v %v", o, err)
	}
}

func TestParseFlagsErrors(t *testing.T) {
	for _, v := range []string{"KEEL_CLUSTER_KEY", "KEEL_CONTROLLERS", "KEEL_DRIVER", "KEEL_FAKE_HOSTS"} {
		// The errors below must not depend on the caller's environment;
		// Setenv restores the variable after the test.
		t.Setenv(v, "")
		os.Unsetenv(v)
	}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--cluster-key", keyFlag()}, "--controllers is required"},
		{[]string{"--controllers", "http://a:1"}, "no cluster key"},
		{[]string{"--controllers", "http://a:1", "--cluster-key", "%%%"}, "not valid base64"},
		{[]string{"--controllers", "http://a:1", "--cluster-key", base64.StdEncoding.EncodeToString([]byte("short"))}, "5 bytes"},
		{[]string{"--controllers", "http://a:1", "--cluster-key", keyFlag(), "--driver", "xen"}, "--driver"},
		{[]string{"--controllers", "http://a:1", "--cluster-key", keyFlag(), "--fake-hosts", "3"}, "needs --driver fake"},
		{[]string{"--controllers", "http://a:1", "--cluster-key", keyFlag(), "stray"}, "unexpected argument"},
		{[]string{"--controllers", "http://a:1", "--cluster-key", keyFlag(), "--name", ""}, "--name"},
		{[]string{"--controllers", "http://a:1", "--cluster-key", keyFlag(), "--fence-after", "-1s"}, "--fence-after"},
		{[]string{"--controllers", "http://a:1", "--cluster-key", keyFlag(), "--fence-after", "30ms"}, "at least 1s"},
	} {
		if _, err := parseFlags(tc.args); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v: %v, want an error about %q", tc.args, err, tc.want)
		}
	}
}

// stubController accepts registrations and answers every query with no
// servers, which is enough to see simulated hosts come up.
type stubController struct {
	mu    sync.Mutex
	hosts map[string]hostapi.Registration
}

func (s *stubController) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if clusterauth.Verify(r, testKey) != nil {
		w.WriteHeader(http.StatusUnauthorized)
		return
	}
	host, rest, _ := strings.Cut(strings.TrimPrefix(r.URL.Path, "/internal/v1/hosts/"), "/")
	switch {
	case r.Method == http.MethodPost && rest == "":
		var reg hostapi.Registration
		_ = json.NewDecoder(r.Body).Decode(&reg)
		s.mu.Lock()
		s.hosts[host] = reg
		s.mu.Unlock()
		_ = json.NewEncoder(w).Encode(hostapi.HostStatus{Host: host, Registered: true})
	case r.Method == http.MethodGet && rest == "servers":
		if r.URL.Query().Get("index") != "0" {
			select {
			case <-r.Context().Done():
				return
			case <-time.After(200 * time.Millisecond):
			}
		}
		_ = json.NewEncoder(w).Encode(hostapi.Assignments{Index: 1, Host: hostapi.HostStatus{Host: host, Registered: true}})
	default:
		http.NotFound(w, r)
	}
}

func TestRunFakeHosts(t *testing.T) {
	stub := &stubController{hosts: map[string]hostapi.Registration{}}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: stub}
	go func() { _ = srv.Serve(ln) }()
	defer srv.Close()

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"--driver", "fake", "--fake-hosts", "5", "--name", "sim", "--controllers", "http://" + ln.Addr().String(),
			"--cluster-key", keyFlag(), "--listen", "127.0.0.1:0", "--advertise-addr", "127.0.0.1:9999", "--vcpus", "4", "--log-level", "error"})
	}()
	deadline := time.Now().Add(5 * time.Second)
	for {
		stub.mu.Lock()
		n := len(stub.hosts)
		stub.mu.Unlock()
		if n == 5 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of 5 simulated hosts registered", n)
		}
		time.Sleep(10 * time.Millisecond)
	}
	stub.mu.Lock()
	reg, ok := stub.hosts["sim-0005"]
	stub.mu.Unlock()
	if !ok || reg.VCPUs != 4 || reg.HypervisorType != "fake" || reg.AgentAddr != "127.0.0.1:9999" || reg.Gossip || reg.FenceAfterMS != 30000 {
		t.Fatalf("registration of sim-0005: %+v (found %v)", reg, ok)
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("run: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("run did not return after cancel")
	}
}

func TestRunSingleFakeHost(t *testing.T) {
	stub := &stubController{hosts: map[string]hostapi.Registration{}}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: stub}
	go func() { _ = srv.Serve(ln) }()
	defer srv.Close()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"--driver", "fake", "--name", "solo", "--controllers", "http://" + ln.Addr().String(),
			"--cluster-key", keyFlag(), "--listen", "127.0.0.1:0", "--gossip-addr", "127.0.0.1:0", "--state-dir", t.TempDir(), "--log-level", "error",
			"--fence-after", "0"})
	}()
	deadline := time.Now().Add(5 * time.Second)
	for {
		stub.mu.Lock()
		reg, ok := stub.hosts["solo"]
		stub.mu.Unlock()
		if ok {
			if !reg.Gossip || reg.FenceAfterMS != 0 {
				t.Fatalf("registration of a gossip member without fencing: gossip %v, fence_after_ms %d", reg.Gossip, reg.FenceAfterMS)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("host not registered")
		}
		time.Sleep(10 * time.Millisecond)
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("run: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("run did not return after cancel")
	}
}
