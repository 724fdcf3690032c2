package bench

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"time"
)

// Operation names: the HTTP calls, the waits (from the call's start to the
// poll that saw the state), and the whole iteration.
const (
	OpCreate    = "create"
	OpShow      = "show"
	OpList      = "list"
	OpDelete    = "delete"
	OpStop      = "stop"
	OpStart     = "start"
	OpReboot    = "reboot"
	OpPoll      = "poll" // GET /servers/{id} while waiting for a state
	OpActive    = "create->ACTIVE"
	OpGone      = "delete->gone"
	OpShutoff   = "stop->SHUTOFF"
	OpStarted   = "start->ACTIVE"
	OpRebooted  = "reboot->ACTIVE"
	OpIteration = "iteration"
)

// scenario is one kind of iteration.
type scenario struct {
	name  string
	about string
	// ops: the table's order.
	ops []string
	// creates: iterations create servers.
	creates bool
	// pool: the scenario needs --prepare servers (min: at least that many).
	pool    bool
	minPool func(c *Config) int
	iterate func(ctx context.Context, r *run, worker, i int) error
}

// Scenarios lists the scenarios: name and one-line description.
func Scenarios() [][2]string {
	out := make([][2]string, len(scenarios))
	for i, s := range scenarios {
		out[i] = [2]string{s.name, s.about}
	}
	return out
}

func findScenario(name string) *scenario {
	for i := range scenarios {
		if scenarios[i].name == name {
			return &scenarios[i]
		}
	}
	return nil
}

var scenarios = []scenario{
	{
		name:    "boot-and-delete",
		about:   "create a server, wait until ACTIVE, delete it, wait until it is gone (Rally NovaServers.boot_and_delete_server)",
		ops:     []string{OpCreate, OpActive, OpDelete, OpGone, OpPoll, OpIteration},
		creates: true,
		iterate: func(ctx context.Context, r *run, _, i int) error {
			start := time.Now()
			id, err := r.create(ctx, r.serverName(i))
			if err != nil {
				return err
			}
			if err := r.waitFor(ctx, id, "ACTIVE", OpActive, start); err != nil {
				return err
			}
			return r.deleteAndWait(ctx, id)
		},
	},
	{
		name:    "boot-and-list",
		about:   "create a server, wait until ACTIVE, list servers in detail (Rally NovaServers.boot_and_list_server); servers are deleted at the end",
		ops:     []string{OpCreate, OpActive, OpList, OpPoll, OpIteration},
		creates: true,
		iterate: func(ctx context.Context, r *run, _, i int) error {
			start := time.Now()
			id, err := r.create(ctx, r.serverName(i))
			if err != nil {
				return err
			}
			if err := r.waitFor(ctx, id, "ACTIVE", OpActive, start); err != nil {
				return err
			}
			return r.list(ctx)
		},
	},
	{
		name: "create-and-show",
		about: "create a server without waiting, then GET it at once and every --poll until ACTIVE " +
			"(every GET is a timed show); servers are deleted at the end",
		ops:     []string{OpCreate, OpShow, OpActive, OpIteration},
		creates: true,
		iterate: func(ctx context.Context, r *run, _, i int) error {
			start := time.Now()
			id, err := r.create(ctx, r.serverName(i))
			if err != nil {
				return err
			}
			return r.showUntilActive(ctx, id, start)
		},
	},
	{
		name:    "list-detail",
		about:   "GET /servers/detail?limit=N (N: --limit, else --prepare), over --prepare servers created first (Rally NovaServers.list_servers)",
		ops:     []string{OpList, OpIteration},
		minPool: func(*Config) int { return 0 },
		pool:    true,
		iterate: func(ctx context.Context, r *run, _, _ int) error { return r.list(ctx) },
	},
	{
		name:    "show",
		about:   "GET /servers/{id}, round robin over --prepare servers created first (default: one per client): read latency",
		ops:     []string{OpShow, OpIteration},
		pool:    true,
		minPool: func(*Config) int { return 1 },
		iterate: func(ctx context.Context, r *run, _, i int) error {
			id := r.pool[i%len(r.pool)]
			return r.timed(ctx, OpShow, func() error {
				_, err := r.c.GetServer(ctx, id)
				return err
			})
		},
	},
	{
		name: "actions",
		about: "stop (wait SHUTOFF), start (wait ACTIVE), reboot SOFT (wait ACTIVE) on a server created first; " +
			"each client has its own server",
		ops:     []string{OpStop, OpShutoff, OpStart, OpStarted, OpReboot, OpRebooted, OpPoll, OpIteration},
		pool:    true,
		minPool: func(c *Config) int { return c.Concurrency },
		iterate: func(ctx context.Context, r *run, worker, _ int) error {
			id := r.pool[worker]
			steps := []struct {
				op, wait, want string
				body           map[string]any
			}{
				{OpStop, OpShutoff, "SHUTOFF", map[string]any{"os-stop": nil}},
				{OpStart, OpStarted, "ACTIVE", map[string]any{"os-start": nil}},
				{OpReboot, OpRebooted, "ACTIVE", map[string]any{"reboot": map[string]any{"type": "SOFT"}}},
			}
			for _, s := range steps {
				start := time.Now()
				if err := r.timed(ctx, s.op, func() error { return r.c.Action(ctx, id, s.body) }); err != nil {
					return err
				}
				if err := r.waitFor(ctx, id, s.want, s.wait, start); err != nil {
					return err
				}
			}
			return nil
		},
	},
}

// create is one timed POST /servers.
func (r *run) create(ctx context.Context, name string) (string, error) {
	var id string
	err := r.timed(ctx, OpCreate, func() error {
		var err error
		id, _, err = r.c.CreateServer(ctx, r.serverBody(name, 1))
		if err == nil && id == "" {
			err = errors.New("POST /servers answered without server.id")
		}
		return err
	})
	return id, err
}

// serverBody is the create request: flavor, image, network, and a batch
// size (min_count = max_count) when above one.
func (r *run) serverBody(name string, n int) map[string]any {
	b := map[string]any{"name": name, "flavorRef": r.flavor.ID, "imageRef": r.image.ID}
	switch {
	case r.cfg.NICNet != "":
		b["networks"] = []map[string]string{{"uuid": r.cfg.NICNet}}
	case r.cfg.Network != "":
		b["networks"] = r.cfg.Network
	}
	if n > 1 {
		b["min_count"], b["max_count"] = n, n
	}
	return b
}

// list is one timed GET /servers/detail[?limit=N].
func (r *run) list(ctx context.Context) error {
	q := url.Values{}
	if r.limit > 0 {
		q.Set("limit", strconv.Itoa(r.limit))
	}
	return r.timed(ctx, OpList, func() error {
		_, err := r.c.ListServers(ctx, true, q)
		return err
	})
}

// deleteAndWait is a timed DELETE and the wait until the server is gone.
func (r *run) deleteAndWait(ctx context.Context, id string) error {
	start := time.Now()
	if err := r.timed(ctx, OpDelete, func() error { return r.c.DeleteServer(ctx, id) }); err != nil {
		return err
	}
	return r.waitFor(ctx, id, "gone", OpGone, start)
}

// waitFor polls GET /servers/{id} (each GET timed as poll) every --poll
// until the server has status want and no task (want "gone": 404, or
// DELETED/SOFT_DELETED), then records op with the time since start. A
// server in ERROR, or no such state within --timeout, is op's error; a
// failed GET is poll's error.
func (r *run) waitFor(ctx context.Context, id, want, op string, start time.Time) error {
	deadline := time.Now().Add(r.cfg.Timeout)
	for {
		if err := sleepCtx(ctx, r.cfg.Poll); err != nil {
			return err
		}
		var srv *Server
		err := r.timed(ctx, OpPoll, func() error {
			var err error
			srv, err = r.c.GetServer(ctx, id)
			if want == "gone" && isStatus(err, http.StatusNotFound) {
				return nil
			}
			return err
		})
		if err != nil {
			return err
		}
		if done, err := r.reached(srv, id, want); done || err != nil {
			if err != nil {
				r.record(ctx, op, 0, err)
				return err
			}
			r.record(ctx, op, time.Since(start), nil)
			return nil
		}
		if time.Now().After(deadline) {
			err := &WaitError{ServerID: id, Want: want, Status: srv.Status, TaskState: srv.task(), Timeout: true, After: r.cfg.Timeout.String()}
			r.record(ctx, op, 0, err)
			return err
		}
	}
}

// reached tells whether srv (nil: 404) is in state want.
func (r *run) reached(srv *Server, id, want string) (bool, error) {
	if srv == nil {
		return want == "gone", nil
	}
	switch {
	case want == "gone" && (srv.Status == "DELETED" || srv.Status == "SOFT_DELETED"):
		return true, nil
	case srv.Status == "ERROR" && want != "gone":
		return false, &WaitError{ServerID: id, Want: want, Status: srv.Status, TaskState: srv.task(), Fault: srv.faultMessage()}
	}
	return srv.Status == want && srv.TaskState == nil, nil
}

// showUntilActive: GET /servers/{id} at once, then every --poll, each a
// timed show, until ACTIVE.
func (r *run) showUntilActive(ctx context.Context, id string, start time.Time) error {
	deadline := time.Now().Add(r.cfg.Timeout)
	for first := true; ; first = false {
		if !first {
			if err := sleepCtx(ctx, r.cfg.Poll); err != nil {
				return err
			}
		}
		var srv *Server
		if err := r.timed(ctx, OpShow, func() error {
			var err error
			srv, err = r.c.GetServer(ctx, id)
			return err
		}); err != nil {
			return err
		}
		done, err := r.reached(srv, id, "ACTIVE")
		if err == nil && !done && time.Now().After(deadline) {
			err = &WaitError{ServerID: id, Want: "ACTIVE", Status: srv.Status, TaskState: srv.task(), Timeout: true, After: r.cfg.Timeout.String()}
		}
		if err != nil {
			r.record(ctx, OpActive, 0, err)
			return err
		}
		if done {
			r.record(ctx, OpActive, time.Since(start), nil)
			return nil
		}
	}
}

func isStatus(err error, status int) bool {
	var he *HTTPError
	return errors.As(err, &he) && he.Status == status
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (r *run) serverName(i int) string { return fmt.Sprintf("%s%s-%d", r.cfg.NamePrefix, r.runID, i) }
