// Package agent is keel-agent: it registers a compute host with the
// controllers, joins their gossip pool, and converges the servers assigned
// to the host with what its driver (libvirt, or the fake) runs.
//
// The loop is level-triggered (DESIGN.md): a blocking query returns every
// assignment of the host with its task; the agent compares each with the
// domain the driver lists, carries out what is missing, and reports. Nothing
// the agent needs lives only in its memory, so an agent killed at any point
// converges again after a restart from the driver's List and the next answer.
package agent

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/keel-cloud/keel/agent/driver"
	"github.com/keel-cloud/keel/internal/hostapi"
)

// Agent runs one compute host. Create it with New and run it with Run.
type Agent struct {
	cfg    Config
	log    *slog.Logger
	client *client

	started chan struct{} // closed once the API listens and gossip runs
	addr    string        // the agent API address published to the controllers

	// kick wakes the loop out of a blocking query when an operation
	// finishes while work was left waiting for it (pending).
	kick    chan struct{}
	pending atomic.Bool
	// localChange: an operation changed the host without a report (an
	// orphan destroyed), so the controllers' index will not move; the
	// kick then asks again at once to see the host as it is now.
	localChange atomic.Bool
	// clock orders queries and finished reports (see reconcile.go).
	clock atomic.Uint64
	ops   sync.WaitGroup

	// mu guards what the operations share with the loop.
	mu       sync.Mutex
	inflight map[string]bool     // server id → its operation runs
	done     map[string]doneTask // server id → the last task reported
	lastObs  map[string]observation
	// completed: evacuation migrations this host reported complete (or
	// that the controllers refused for good), so each is sent once.
	completed map[string]bool

	// fence is the self-fencing lease (fence.go); fenced mirrors
	// fence.fenced for the operations, which must not wait for a sweep.
	fence  fence
	fenced atomic.Bool

	// Owned by the loop goroutine.
	seenGen      map[string]uint64 // the newest generation seen per server
	unknownTask  map[string]string // server id → unknown task already logged
	maxIndex     uint64            // the highest answer index acted on
	staleSince   time.Time         // since when answers are older than maxIndex
	forcedDown   bool
	listFailing  bool
	queryFailing bool
	lastReg      hostapi.Registration // the registration last accepted
	regCheckedAt time.Time
}

// New checks cfg and returns an agent ready to Run. It does no I/O.
func New(cfg Config) (*Agent, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	log := cfg.Logger.With("host", cfg.Name)
	return &Agent{
		cfg:         cfg,
		log:         log,
		client:      newClient(cfg, log),
		started:     make(chan struct{}),
		kick:        make(chan struct{}, 1),
		inflight:    map[string]bool{},
		done:        map[string]doneTask{},
		lastObs:     map[string]observation{},
		completed:   map[string]bool{},
		seenGen:     map[string]uint64{},
		unknownTask: map[string]string{},
	}, nil
}

// Run is New followed by Agent.Run.
func Run(ctx context.Context, cfg Config) error {
	a, err := New(cfg)
	if err != nil {
		return err
	}
	return a.Run(ctx)
}

// Started is closed once the agent's API listens and it has joined gossip
// (or begun trying to); Addr is valid from then on.
func (a *Agent) Started() <-chan struct{} { return a.started }

// Addr is the address of the agent's API as published to the controllers.
func (a *Agent) Addr() string { return a.addr }

// Run serves the agent's API, joins gossip, registers the host and
// reconciles until ctx is done. It then lets running operations finish for
// up to ShutdownGrace, leaves gossip and returns nil. Domains keep running:
// stopping the agent never stops a server. A Run may only be called once.
func (a *Agent) Run(ctx context.Context) error {
	a.addr = a.cfg.AdvertiseAddr
	if a.cfg.ListenAddr != "" {
		ln, err := net.Listen("tcp", a.cfg.ListenAddr)
		if err != nil {
			return fmt.Errorf("agent API: listen on %s: %w (is another process using --listen?)", a.cfg.ListenAddr, err)
		}
		if a.addr == "" {
			a.addr = a.advertise(ln.Addr().String())
		}
		srv := &http.Server{Handler: a.Handler(), ReadHeaderTimeout: 10 * time.Second}
		go func() {
			if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
				a.log.Error("agent API stopped", "error", err)
			}
		}()
		defer func() {
			sctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			defer cancel()
			_ = srv.Shutdown(sctx)
		}()
	}
	if a.cfg.GossipAddr != "" {
		g, err := startGossip(ctx, a.cfg, a.addr, a.log)
		if err != nil {
			return err
		}
		defer g.leave()
	}
	close(a.started)
	a.log.Info("keel-agent started", "agent_api", a.addr, "controllers", a.cfg.Controllers, "gossip", a.cfg.GossipAddr, "zone", a.cfg.Zone,
		"fence_after", a.cfg.FenceAfter)

	// The lease counts from the start: a host that cannot reach the
	// controllers after a restart fences itself one window later.
	var fenceDone chan struct{}
	if a.cfg.FenceAfter > 0 {
		a.fence.lastContact = time.Now()
		if _, ok := a.cfg.Driver.(driver.ForceOffer); !ok {
			a.log.Warn("this driver cannot power a domain off at once: self-fencing uses its graceful power-off, so stopping the servers may take up to its shutdown timeout beyond --fence-after")
		}
		fenceDone = make(chan struct{})
		go func() {
			defer close(fenceDone)
			a.fenceLoop(ctx)
		}()
	}

	// Operations outlive ctx by the grace period, so that a spawn or a
	// report under way when the agent is told to stop can land.
	opCtx, cancelOps := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelOps()
	a.loop(ctx, opCtx)

	if fenceDone != nil {
		<-fenceDone
	}
	grace := time.AfterFunc(a.cfg.ShutdownGrace, cancelOps)
	a.ops.Wait()
	grace.Stop()
	a.log.Info("reconcile loop stopped; servers keep running")
	return nil
}
