package speed

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"

	"github.com/gridlake/gridlake/agg"
	"github.com/gridlake/gridlake/internal/httpx"
	"github.com/gridlake/gridlake/objstore"
)

// SourcePath is the prefix of the source interface: the speed side of the
// serving merge (serving.Source) for serving processes in other processes.
const SourcePath = "/speed/v1/source/"

// Source error codes, in the "code" of a 409 answer. Both mean: ask again
// (with the newest manifest version, or once the owners settled).
const (
	CodeCutUnavailable   = "cut_unavailable"
	CodeOwnershipChanged = "ownership_changed"
)

// SourceAnswer is the body of a source answer: what the process held while
// it answered, and the items of the operation.
type SourceAnswer[T any] struct {
	Ownership Ownership `json:"ownership"`
	// Found says whether the process knows the battery asked for by id.
	Found bool `json:"found"`
	Items []T  `json:"items"`
	// Cursor, on an answer of latest for every battery, is the since= of
	// the next: that answer then holds only the batteries that changed,
	// unless Full says it holds every battery (LatestCursor).
	Cursor string `json:"cursor,omitempty"`
	Full   bool   `json:"full,omitempty"`
}

// Item types of the operations.
type (
	WindowItem struct {
		ID    string           `json:"id"`
		Start int64            `json:"start_ms"`
		Stats agg.BatteryStats `json:"stats"`
	}
	StartItem struct {
		Start int64  `json:"start_ms"`
		ID    string `json:"id"`
	}
	LatestItem struct {
		ID      string      `json:"id"`
		Reading agg.Reading `json:"reading"`
	}
	RoomEventsItem struct {
		Room    string          `json:"room"`
		Events  []agg.RoomEvent `json:"events"`
		Untaken int64           `json:"untaken"`
	}
)

// sourceOp answers one operation: it calls emit per item, and emit fails
// once the answer holds more than the bound; ans takes what the answer
// says beside its items (the cursor of latest).
type sourceOp func(ctx context.Context, q url.Values, version int64, emit func(any), ans *SourceAnswer[any]) (found bool, err error)

// RegisterSource mounts the source interface on mux: GET SourcePath+op
// with version= (the manifest whose cut the answer sits above) and the
// operation's parameters; maxItems bounds the items of one answer (a
// larger answer is a 413 naming setting). Every answer carries the
// ownership it was computed under; one computed while the ownership
// changed is a 409 ownership_changed, one at a cut this process does not
// hold a 409 cut_unavailable.
//
//	windows    id (empty: every battery), res, from, to
//	fleet      res, from, to
//	batteries  res, starts (comma-separated window starts)
//	latest     id (empty: every battery, and since: the cursor of the
//	           last such answer, for the batteries changed since)
//	rooms
//	roomevents room (empty: every room), from, to
func (l *Layer) RegisterSource(mux *http.ServeMux, maxItems int, setting string) {
	ops := map[string]sourceOp{
		"windows": func(ctx context.Context, q url.Values, v int64, emit func(any), _ *SourceAnswer[any]) (bool, error) {
			rq, err := rangeOf(q)
			if err != nil {
				return false, err
			}
			id := q.Get("id")
			if id == "" {
				found := false
				return found, l.BatteryWindowsAll(ctx, rq.res, rq.from, rq.to, v, func(id string, start int64, s *agg.BatteryStats) {
					found = true
					emit(WindowItem{ID: id, Start: start, Stats: *s})
				})
			}
			wins, found, err := l.BatteryWindows(ctx, id, rq.res, rq.from, rq.to, v)
			for _, w := range wins {
				emit(WindowItem{ID: id, Start: w.Start, Stats: w.Stats})
			}
			return found, err
		},
		"fleet": func(ctx context.Context, q url.Values, v int64, emit func(any), _ *SourceAnswer[any]) (bool, error) {
			rq, err := rangeOf(q)
			if err != nil {
				return false, err
			}
			wins, err := l.Fleet(ctx, rq.res, rq.from, rq.to, v)
			for _, w := range wins {
				emit(w)
			}
			return true, err
		},
		"batteries": func(ctx context.Context, q url.Values, v int64, emit func(any), _ *SourceAnswer[any]) (bool, error) {
			res, ok := agg.ParseRes(q.Get("res"))
			if !ok {
				return false, badParam("res: send 1m, 1h or 1d")
			}
			starts, err := startsOf(q.Get("starts"), maxItems)
			if err != nil || len(starts) == 0 {
				return true, err
			}
			// From the fleet index, as an in-process serving layer asks:
			// no battery's windows are folded to list who has one.
			return true, l.FleetBatteries(ctx, res, starts, v, func(start int64, id string) {
				emit(StartItem{Start: start, ID: id})
			})
		},
		"latest": func(ctx context.Context, q url.Values, v int64, emit func(any), ans *SourceAnswer[any]) (bool, error) {
			id := q.Get("id")
			if id == "" {
				var since LatestCursor
				if s := q.Get("since"); s != "" {
					var ok bool
					if since, ok = ParseLatestCursor(s); !ok {
						return false, badParam("since: send the cursor of the last answer")
					}
				}
				found := false
				next, full, err := l.BatteryLatestSince(ctx, v, since, func(id string, r agg.Reading) { found = true; emit(LatestItem{ID: id, Reading: r}) })
				ans.Cursor, ans.Full = next.String(), full
				return found, err
			}
			r, found, err := l.BatteryLatest(ctx, id, v)
			if found {
				emit(LatestItem{ID: id, Reading: r})
			}
			return found, err
		},
		"rooms": func(_ context.Context, _ url.Values, _ int64, emit func(any), _ *SourceAnswer[any]) (bool, error) {
			for _, r := range l.Rooms() {
				emit(r)
			}
			return true, nil
		},
		"roomevents": func(ctx context.Context, q url.Values, v int64, emit func(any), _ *SourceAnswer[any]) (bool, error) {
			from, to, err := spanOf(q)
			if err != nil {
				return false, err
			}
			return true, l.RoomEvents(ctx, q.Get("room"), v, from, to, func(room string, evs []agg.RoomEvent, untaken int64) {
				emit(RoomEventsItem{Room: room, Events: evs, Untaken: untaken})
			})
		},
	}
	mux.HandleFunc("GET "+SourcePath+"{op}", func(w http.ResponseWriter, r *http.Request) {
		op := ops[r.PathValue("op")]
		if op == nil {
			httpx.Error(w, http.StatusNotFound, "no such source operation: windows, fleet, batteries, latest, rooms or roomevents")
			return
		}
		q := r.URL.Query()
		version, err := httpx.NonNegativeParam(q, "version", 0)
		for _, name := range []string{"id", "room"} {
			if s := q.Get(name); err == nil && s != "" {
				err = checkID(s)
			}
		}
		if err != nil {
			badRequest(w, err)
			return
		}
		before, parts := l.ownership()
		items := make([]any, 0, 64)
		over := false
		var ans SourceAnswer[any]
		found, err := op(r.Context(), q, version, func(it any) {
			if len(items) >= maxItems {
				over = true
				return
			}
			items = append(items, it)
		}, &ans)
		after, partsAfter := l.ownership()
		var bad badParam
		switch {
		case errors.As(err, &bad):
			badRequest(w, err)
		case errors.Is(err, ErrCutUnavailable):
			sourceConflict(w, CodeCutUnavailable, err.Error())
		case objstore.IsNotFound(err):
			httpx.Error(w, http.StatusNotFound, fmt.Sprintf("no batch manifest has that version (%s)", err))
		case err != nil:
			httpx.Error(w, http.StatusInternalServerError, err.Error())
		case !before.Same(after) || !slices.Equal(parts, partsAfter):
			sourceConflict(w, CodeOwnershipChanged, "the partitions this process holds changed while it answered; ask again")
		case over:
			httpx.Error(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("the answer holds more than %d items (%s); ask for a narrower range", maxItems, setting))
		default:
			ans.Ownership, ans.Found, ans.Items = after, found, items
			body, err := json.Marshal(ans)
			if err != nil {
				httpx.Error(w, http.StatusInternalServerError, fmt.Sprintf("encode the answer: %v", err))
				return
			}
			w.Header().Set("Content-Type", "application/json")
			_, _ = w.Write(body)
		}
	})
}

// badParam is a request parameter out of range: a 400.
type badParam string

func (b badParam) Error() string { return string(b) }

func sourceConflict(w http.ResponseWriter, code, msg string) {
	httpx.WriteJSON(w, http.StatusConflict, map[string]string{"code": code, "error": msg})
}

func rangeOf(q url.Values) (rangeQuery, error) {
	var rq rangeQuery
	res, ok := agg.ParseRes(q.Get("res"))
	if !ok {
		return rq, badParam("res: send 1m, 1h or 1d")
	}
	rq.res = res
	var err error
	if rq.from, rq.to, err = spanOf(q); err == nil && rq.to <= rq.from {
		err = badParam("to must be after from")
	}
	return rq, err
}

// spanOf reads from and to as Unix ms; any int64 pair (an empty span
// answers nothing, as the layer does).
func spanOf(q url.Values) (from, to int64, err error) {
	if from, err = strconv.ParseInt(q.Get("from"), 10, 64); err != nil {
		return 0, 0, badParam("from: send Unix ms")
	}
	if to, err = strconv.ParseInt(q.Get("to"), 10, 64); err != nil {
		return 0, 0, badParam("to: send Unix ms")
	}
	return from, to, nil
}

// startsOf reads a comma-separated list of at most limit window starts.
func startsOf(s string, limit int) ([]int64, error) {
	if s == "" {
		return nil, nil
	}
	if strings.Count(s, ",") >= limit {
		return nil, badParam(fmt.Sprintf("starts: send at most %d", limit))
	}
	parts := strings.Split(s, ",")
	out := make([]int64, 0, len(parts))
	for _, p := range parts {
		v, err := strconv.ParseInt(p, 10, 64)
		if err != nil {
			return nil, badParam("starts: send Unix ms, comma-separated")
		}
		out = append(out, v)
	}
	return out, nil
}
