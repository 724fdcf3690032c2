package chaos

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// workload drives concurrent server operations through haproxy and records
// each one (call and return times, outcome) in rec.
type workload struct {
	api   *api
	rec   *recorder
	tag   string // unique per scenario run: server names start with it
	quota int

	seq  atomic.Int64
	mu   sync.Mutex
	pool map[string]bool // servers whose create was acknowledged, minus those seen gone
	qown map[string]bool // the quota project's servers, as the quota worker knows them
}

func newWorkload(a *api, rec *recorder, tag string, quota int) *workload {
	return &workload{api: a, rec: rec, tag: tag, quota: quota, pool: map[string]bool{}, qown: map[string]bool{}}
}

func (w *workload) name(prefix string) string {
	return fmt.Sprintf("%s-%s-%d", w.tag, prefix, w.seq.Add(1))
}

func (w *workload) pick(rng *rand.Rand) string {
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.pool) == 0 {
		return ""
	}
	n := rng.IntN(len(w.pool))
	for id := range w.pool {
		if n == 0 {
			return id
		}
		n--
	}
	return ""
}

func (w *workload) poolSize() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.pool)
}

// record finishes o from ans and stores it.
func (w *workload) record(o *op, ans answer) {
	o.Return = w.rec.now()
	o.Status = ans.Status
	o.Outcome = classify(ans.Status)
	o.RetryAft = ans.RetryAfter
	if ans.Status == 0 {
		o.Err = shorten(fmt.Sprint(ans.Err))
	} else if o.Outcome != outOK {
		o.Err = shorten(string(ans.Body))
	}
	w.rec.add(o)
}

func shorten(s string) string {
	s = strings.TrimSpace(s)
	if len(s) > 160 {
		return s[:160] + "..."
	}
	return s
}

func (w *workload) create(ctx context.Context, client int, project string) *op {
	token := w.api.token
	if project == "quota" {
		token = w.api.qtoken
	}
	prefix := "c"
	if project == "quota" {
		prefix = "q"
	}
	o := &op{Client: client, Kind: opCreate, Project: project, Name: w.name(prefix)}
	o.Call = w.rec.now()
	ans := w.api.compute(ctx, http.MethodPost, "/servers", token, map[string]any{"server": map[string]any{
		"name": o.Name, "imageRef": w.api.image, "flavorRef": "1", "networks": "none"}})
	if ans.Status == http.StatusAccepted {
		var out struct{ Server struct{ ID string } }
		if err := json.Unmarshal(ans.Body, &out); err == nil && out.Server.ID != "" {
			o.ServerID = out.Server.ID
		}
	}
	w.record(o, ans)
	if o.Outcome == outOK && o.ServerID != "" {
		w.mu.Lock()
		if project == "quota" {
			w.qown[o.ServerID] = true
		} else {
			w.pool[o.ServerID] = true
		}
		w.mu.Unlock()
	}
	return o
}

func (w *workload) rename(ctx context.Context, client int, id, token string) *op {
	return w.renameOp(ctx, client, id, token, false)
}

func (w *workload) renameOp(ctx context.Context, client int, id, token string, probe bool) *op {
	o := &op{Client: client, Kind: opRename, ServerID: id, Name: w.name("r"), Probe: probe}
	o.Call = w.rec.now()
	w.record(o, w.api.compute(ctx, http.MethodPut, "/servers/"+id, token, map[string]any{"server": map[string]any{"name": o.Name}}))
	return o
}

func (w *workload) setMeta(ctx context.Context, client int, id, token string) *op {
	o := &op{Client: client, Kind: opSetMeta, ServerID: id, Value: w.name("m")}
	o.Call = w.rec.now()
	w.record(o, w.api.compute(ctx, http.MethodPut, "/servers/"+id+"/metadata/k", token, map[string]any{"meta": map[string]string{"k": o.Value}}))
	return o
}

func (w *workload) read(ctx context.Context, client int, id, token string) *op {
	o := &op{Client: client, Kind: opRead, ServerID: id}
	o.Call = w.rec.now()
	ans := w.api.compute(ctx, http.MethodGet, "/servers/"+id, token, nil)
	if ans.Status == http.StatusOK {
		var out struct{ Server serverView }
		if err := json.Unmarshal(ans.Body, &out); err != nil {
			ans.Status, ans.Err = 0, fmt.Errorf("unreadable server: %v", err)
		} else {
			o.Found, o.SeenName, o.SeenMeta, o.SeenDeleting = true, out.Server.Name, out.Server.Metadata["k"], out.Server.deleting()
		}
	}
	w.record(o, ans)
	if o.Outcome == outFail && o.Status == http.StatusNotFound {
		w.forget(id)
	}
	return o
}

func (w *workload) delete(ctx context.Context, client int, id, token string) *op {
	o := &op{Client: client, Kind: opDelete, ServerID: id}
	o.Call = w.rec.now()
	w.record(o, w.api.compute(ctx, http.MethodDelete, "/servers/"+id, token, nil))
	if o.Outcome == outOK || o.Status == http.StatusNotFound {
		w.forget(id)
	}
	return o
}

func (w *workload) forget(id string) {
	w.mu.Lock()
	delete(w.pool, id)
	delete(w.qown, id)
	w.mu.Unlock()
}

// run starts the workers; they stop when ctx ends. Workers 0-3 mix every
// operation on the shared pool of servers, 4-5 only read, 6 works in the
// quota project (creates up to and past its quota, deletes, lists).
func (w *workload) run(ctx context.Context) *sync.WaitGroup {
	var wg sync.WaitGroup
	// pause waits between two operations of a worker: 10-40 ms, or, after
	// an operation whose outcome is unknown (no answer, a 5xx), 250-500 ms
	// as a client honouring Retry-After would (and so that the unknown
	// operations, each of which the checker may place anywhere after its
	// call, stay few).
	pause := func(rng *rand.Rand, last *op) bool {
		d := time.Duration(10+rng.IntN(30)) * time.Millisecond
		if last != nil && last.Outcome == outUnknown {
			d = time.Duration(250+rng.IntN(250)) * time.Millisecond
		}
		select {
		case <-ctx.Done():
			return false
		case <-time.After(d):
			return true
		}
	}
	// Operations run on their own context: one in flight when the
	// workload stops still completes (or times out) and is recorded.
	bg := context.Background()
	for c := 0; c < 4; c++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(c), uint64(time.Now().UnixNano())))
			var last *op
			for pause(rng, last) {
				id := w.pick(rng)
				n := w.poolSize()
				switch r := rng.IntN(100); {
				case id == "" || r < 15 && n < 16:
					last = w.create(bg, c, "main")
				case r < 40:
					// Half the renames are read back at once (read your
					// writes: what a stale read breaks first).
					last = w.rename(bg, c, id, w.api.token)
					if last.Outcome == outOK && rng.IntN(2) == 0 {
						last = w.read(bg, c, id, w.api.token)
					}
				case r < 65:
					last = w.setMeta(bg, c, id, w.api.token)
				case r < 90 || n < 6:
					last = w.read(bg, c, id, w.api.token)
				default:
					last = w.delete(bg, c, id, w.api.token)
				}
			}
		}()
	}
	for c := 4; c < 6; c++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(c), uint64(time.Now().UnixNano())))
			var last *op
			for pause(rng, last) {
				if id := w.pick(rng); id != "" {
					last = w.read(bg, c, id, w.api.token)
				}
			}
		}()
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		const c = 6
		rng := rand.New(rand.NewPCG(uint64(c), uint64(time.Now().UnixNano())))
		var last *op
		for pause(rng, last) {
			w.mu.Lock()
			var own []string
			for id := range w.qown {
				own = append(own, id)
			}
			w.mu.Unlock()
			switch r := rng.IntN(100); {
			case r < 50 || len(own) == 0:
				last = w.create(bg, c, "quota")
			case r < 70:
				last = w.delete(bg, c, own[rng.IntN(len(own))], w.api.qtoken)
			default:
				last = nil
				w.sampleQuota(bg)
			}
		}
	}()
	return &wg
}

// sampleQuota lists the quota project's servers and records their count.
func (w *workload) sampleQuota(ctx context.Context) {
	at := w.rec.now()
	list, err := w.api.list(ctx, w.api.qtoken, "")
	if err != nil {
		return
	}
	w.rec.mu.Lock()
	w.rec.quotaSamples = append(w.rec.quotaSamples, quotaSample{At: at, Count: len(list)})
	w.rec.mu.Unlock()
}

// prober starts a rename of one server every interval, without waiting for
// the previous one (at most 100 in flight): the writes recovery times are
// measured with. It stops when ctx ends; wait on the WaitGroup for the
// renames in flight.
func (w *workload) prober(ctx context.Context, id string, interval time.Duration) *sync.WaitGroup {
	var wg sync.WaitGroup
	slots := make(chan struct{}, 100)
	wg.Add(1)
	go func() {
		defer wg.Done()
		tick := time.NewTicker(interval)
		defer tick.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
			select {
			case slots <- struct{}{}:
			default:
				continue
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				w.renameOp(context.Background(), 7, id, w.api.token, true)
				<-slots
			}()
		}
	}()
	return &wg
}
