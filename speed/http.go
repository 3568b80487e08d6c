package speed

import (
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/gridlake/gridlake/agg"
	"github.com/gridlake/gridlake/internal/httpx"
	"github.com/gridlake/gridlake/objstore"
	"github.com/gridlake/gridlake/schemas"
)

// Register mounts the speed layer's HTTP interface on mux, for serving
// layers that run in other processes. Times are RFC 3339 or Unix ms;
// version is the batch manifest whose cut the answer sits above (0: none).
// Bad parameters are a 400 before any work: ids outside DESIGN §3, times
// outside the years 1 to 9999, to not after from. A version no manifest has
// is a 404, a cut this process does not hold a 409.
//
//	GET /speed/v1/status
//	GET /speed/v1/batteries/{id}/windows?res=1m&from=..&to=..&version=N
//	GET /speed/v1/batteries/{id}/latest?version=N
//	GET /speed/v1/fleet?res=1m&from=..&to=..&version=N
//	GET /speed/v1/rooms
//	GET /speed/v1/rooms/{id}/days/{day}?as_of=..
//
// The merge's source interface for serving processes is RegisterSource
// (source_http.go).
func (l *Layer) Register(mux *http.ServeMux) {
	mux.HandleFunc("GET /speed/v1/status", func(w http.ResponseWriter, r *http.Request) {
		httpx.WriteJSON(w, http.StatusOK, l.Status())
	})
	mux.HandleFunc("GET /speed/v1/batteries/{id}/windows", func(w http.ResponseWriter, r *http.Request) {
		q, err := parseRange(r)
		if err == nil {
			err = checkID(r.PathValue("id"))
		}
		if err != nil {
			badRequest(w, err)
			return
		}
		wins, found, err := l.BatteryWindows(r.Context(), r.PathValue("id"), q.res, q.from, q.to, q.version)
		respond(w, map[string]any{"battery_id": r.PathValue("id"), "res": q.res.String(), "windows": wins}, found, err)
	})
	mux.HandleFunc("GET /speed/v1/batteries/{id}/latest", func(w http.ResponseWriter, r *http.Request) {
		version, err := httpx.NonNegativeParam(r.URL.Query(), "version", 0)
		if err == nil {
			err = checkID(r.PathValue("id"))
		}
		if err != nil {
			badRequest(w, err)
			return
		}
		rd, found, err := l.BatteryLatest(r.Context(), r.PathValue("id"), version)
		respond(w, map[string]any{"battery_id": r.PathValue("id"), "latest": rd}, found, err)
	})
	mux.HandleFunc("GET /speed/v1/fleet", func(w http.ResponseWriter, r *http.Request) {
		q, err := parseRange(r)
		if err != nil {
			badRequest(w, err)
			return
		}
		wins, err := l.Fleet(r.Context(), q.res, q.from, q.to, q.version)
		respond(w, map[string]any{"res": q.res.String(), "windows": wins}, true, err)
	})
	mux.HandleFunc("GET /speed/v1/rooms", func(w http.ResponseWriter, r *http.Request) {
		httpx.WriteJSON(w, http.StatusOK, map[string]any{"rooms": l.Rooms()})
	})
	mux.HandleFunc("GET /speed/v1/rooms/{id}/days/{day}", func(w http.ResponseWriter, r *http.Request) {
		if err := checkID(r.PathValue("id")); err != nil {
			badRequest(w, err)
			return
		}
		day, err := agg.ParseDay(r.PathValue("day"))
		if err != nil {
			badRequest(w, fmt.Errorf("day: send a date from 0001-01-01 to 9999-12-31 as YYYY-MM-DD"))
			return
		}
		asOf := time.Now().UnixMilli()
		if s := r.URL.Query().Get("as_of"); s != "" {
			if asOf, err = agg.ParseTime(s); err != nil {
				badRequest(w, fmt.Errorf("as_of: %w", err))
				return
			}
		}
		rep, st, found := l.RoomDay(r.PathValue("id"), day, asOf)
		respond(w, map[string]any{"room_id": r.PathValue("id"), "day": day.String(), "as_of_ms": asOf, "report": rep, "state": st}, found, nil)
	})
}

type rangeQuery struct {
	res               agg.Res
	from, to, version int64
}

func parseRange(r *http.Request) (rangeQuery, error) {
	var q rangeQuery
	qs := r.URL.Query()
	res, ok := agg.ParseRes(qs.Get("res"))
	if !ok {
		return q, errors.New("res: send 1m, 1h or 1d")
	}
	q.res = res
	var err error
	if q.from, err = agg.ParseTime(qs.Get("from")); err != nil {
		return q, fmt.Errorf("from: %w", err)
	}
	if q.to, err = agg.ParseTime(qs.Get("to")); err != nil {
		return q, fmt.Errorf("to: %w", err)
	}
	if q.to <= q.from {
		return q, errors.New("to must be after from")
	}
	q.version, err = httpx.NonNegativeParam(r.URL.Query(), "version", 0)
	return q, err
}

func checkID(id string) error {
	if !schemas.ValidIDString(id) {
		return fmt.Errorf("id: send 1 to %d letters, digits or -_.:/", schemas.MaxIDBytes)
	}
	return nil
}

func respond(w http.ResponseWriter, body any, found bool, err error) {
	switch {
	case errors.Is(err, ErrCutUnavailable):
		httpx.Error(w, http.StatusConflict, err.Error())
	case objstore.IsNotFound(err):
		// Only the manifest of the version asked for is read from the store.
		httpx.Error(w, http.StatusNotFound, fmt.Sprintf("no batch manifest has that version (%s); send the version of GET /speed/v1/status, or 0", err))
	case err != nil:
		httpx.Error(w, http.StatusInternalServerError, err.Error())
	case !found:
		httpx.Error(w, http.StatusNotFound, "not held by this speed process (another process of the group may own its partition)")
	default:
		httpx.WriteJSON(w, http.StatusOK, body)
	}
}

func badRequest(w http.ResponseWriter, err error) {
	httpx.Error(w, http.StatusBadRequest, err.Error())
}
