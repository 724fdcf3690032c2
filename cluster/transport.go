package cluster

import (
	"fmt"
	"net"
	"time"

	"github.com/hashicorp/raft"
)

// streamLayer is raft's TCP stream layer over a listener we own, so a test
// (or systemd socket activation) can hand in an already-bound socket.
type streamLayer struct {
	net.Listener
	advertise net.Addr
}

func (s *streamLayer) Dial(addr raft.ServerAddress, timeout time.Duration) (net.Conn, error) {
	return net.DialTimeout("tcp", string(addr), timeout)
}

func (s *streamLayer) Addr() net.Addr { return s.advertise }

func newStreamLayer(cfg *Config) (*streamLayer, error) {
	ln := cfg.RaftListener
	if ln == nil {
		var err error
		if ln, err = net.Listen("tcp", cfg.RaftAddr); err != nil {
			return nil, fmt.Errorf("raft transport: listen on %s: %w (is another process using --raft-addr?)", cfg.RaftAddr, err)
		}
	}
	addr, ok := ln.Addr().(*net.TCPAddr)
	if !ok || addr.IP.IsUnspecified() {
		ln.Close()
		return nil, fmt.Errorf("raft transport: %s is not an address other controllers can reach: give --raft-addr a specific IP", ln.Addr())
	}
	return &streamLayer{Listener: ln, advertise: addr}, nil
}
