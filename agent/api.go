package agent

import (
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"strconv"
	"time"

	"github.com/keel-cloud/keel/agent/driver"
	"github.com/keel-cloud/keel/internal/clusterauth"
)

// Handler is the agent's own internal API, for the controllers:
//
//	GET /internal/v1/servers/{id}/console?length=N   text/plain: the last N lines (all if N <= 0 or absent)
//	GET /internal/v1/uptime                          text/plain: the machine's uptime, as uptime(1) prints it
//
// Every call must carry the cluster-key signature.
func (a *Agent) Handler() http.Handler {
	return ConsoleHandler(a.cfg.ClusterKey, a.log, a.cfg.Driver)
}

// ConsoleHandler serves the agent API for the servers of one or more
// drivers: a process that simulates many hosts serves them all on one
// address, asking each driver in turn.
func ConsoleHandler(key []byte, log *slog.Logger, drivers ...driver.Driver) http.Handler {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /internal/v1/servers/{id}/console", func(w http.ResponseWriter, r *http.Request) {
		id := r.PathValue("id")
		n := 0
		if s := r.URL.Query().Get("length"); s != "" {
			v, err := strconv.Atoi(s)
			if err != nil {
				writeError(w, http.StatusBadRequest, "invalid", "length must be an integer")
				return
			}
			n = v
		}
		for _, d := range drivers {
			out, err := d.ConsoleOutput(r.Context(), id, n)
			if errors.Is(err, driver.ErrNotFound) {
				continue
			}
			if err != nil {
				log.Error("cannot read console output", "server", id, "error", err)
				writeError(w, http.StatusInternalServerError, "internal", "read the console output of server "+id+": "+err.Error())
				return
			}
			w.Header().Set("Content-Type", "text/plain; charset=utf-8")
			_, _ = w.Write([]byte(out))
			return
		}
		writeError(w, http.StatusNotFound, "not_found", "server "+id+" has no domain on this host")
	})
	mux.HandleFunc("GET /internal/v1/uptime", func(w http.ResponseWriter, r *http.Request) {
		up, err := hostUptime(time.Now())
		if err != nil {
			writeError(w, http.StatusNotImplemented, "not_implemented", err.Error())
			return
		}
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		_, _ = w.Write([]byte(up))
	})
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusNotFound, "not_found", "keel-agent serves no "+r.Method+" "+r.URL.Path)
	})
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := clusterauth.Verify(r, key); err != nil {
			writeError(w, http.StatusUnauthorized, "unauthorized", err.Error())
			return
		}
		mux.ServeHTTP(w, r)
	})
}

// writeError answers in the internal API's error format.
func writeError(w http.ResponseWriter, status int, code, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]string{"code": code, "error": msg})
}
