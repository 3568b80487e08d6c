package jobs

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"

	"github.com/gridlake/gridlake/auth"
	"github.com/gridlake/gridlake/internal/httpx"
)

// Register mounts the jobs API:
//
//	GET  /v1/jobs                every job: schedule, next slot, last run, failing
//	GET  /v1/jobs/{name}/runs    a job's run history, newest first (?limit=)
//	POST /v1/jobs/{name}/run     run a job now; body {"from","to"} for backfill
func (s *Scheduler) Register(mux *http.ServeMux) {
	mux.HandleFunc("GET /v1/jobs", func(w http.ResponseWriter, r *http.Request) {
		st, err := s.Status(r.Context())
		if err != nil {
			httpx.IndentedError(w, http.StatusBadGateway, err.Error())
			return
		}
		httpx.WriteIndentedJSON(w, http.StatusOK, map[string]any{"holder": s.o.Holder, "jobs": st})
	})
	mux.HandleFunc("GET /v1/jobs/{name}/runs", func(w http.ResponseWriter, r *http.Request) {
		limit := 50
		if v := r.URL.Query().Get("limit"); v != "" {
			n, err := strconv.Atoi(v)
			if err != nil || n < 1 || n > s.o.MaxPage {
				httpx.IndentedError(w, http.StatusBadRequest, fmt.Sprintf("limit: send a whole number from 1 to %d (http.max_page)", s.o.MaxPage))
				return
			}
			limit = n
		}
		runs, err := s.History(r.Context(), r.PathValue("name"), limit)
		if err != nil {
			httpx.IndentedError(w, s.status(r.PathValue("name")), err.Error())
			return
		}
		httpx.WriteIndentedJSON(w, http.StatusOK, map[string]any{"job": r.PathValue("name"), "runs": runs})
	})
	mux.HandleFunc("POST /v1/jobs/{name}/run", func(w http.ResponseWriter, r *http.Request) {
		var in struct{ From, To string }
		if r.ContentLength != 0 {
			if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 1<<16)).Decode(&in); err != nil {
				httpx.IndentedError(w, http.StatusBadRequest, `body must be JSON: {"from":"2026-11-01","to":"2026-11-07"}`)
				return
			}
		}
		name := r.PathValue("name")
		if name == JobBackfill && (in.From == "" || in.To == "") {
			httpx.IndentedError(w, http.StatusBadRequest, `backfill needs {"from":"YYYY-MM-DD","to":"YYYY-MM-DD"} (local days of site.timezone)`)
			return
		}
		// The run history keeps who asked (auth.Protect put them in the context).
		by := "anonymous"
		if p, ok := auth.FromContext(r.Context()); ok {
			by = p.String()
		}
		n, err := s.TriggerAsync(r.Context(), name, TriggerManual, Input{From: in.From, To: in.To, By: by})
		if err != nil {
			code := s.status(name)
			if IsInputError(err) {
				code = http.StatusBadRequest // refused before any slot was claimed
			}
			httpx.IndentedError(w, code, err.Error())
			return
		}
		httpx.WriteIndentedJSON(w, http.StatusAccepted, map[string]any{"job": name, "number": n, "runs": "/v1/jobs/" + name + "/runs"})
	})
}

func (s *Scheduler) status(name string) int {
	if s.byName[name] == nil {
		return http.StatusNotFound
	}
	return http.StatusBadGateway
}
