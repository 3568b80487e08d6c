package bench

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// A server that stalls once must make the requests queued behind the stall
// slow too: latency counts from each request's scheduled time, not from
// when a connection was free to send it.
func TestOpenLoop_StallCountsForRequestsQueuedBehindIt(t *testing.T) {
	var n atomic.Int64
	const stall = 300 * time.Millisecond
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if n.Add(1) == 5 {
			time.Sleep(stall)
		}
	}))
	defer srv.Close()
	// One connection at 200/s: the 60 requests scheduled during the stall
	// wait for it; the first of them waits almost all of it.
	res, err := Load(context.Background(), LoadOptions{Target: srv.URL, Rate: 200, Duration: 1500 * time.Millisecond, Conns: 1, Batteries: 10, Seed: 1})
	if err != nil {
		t.Fatal(err)
	}
	if res.Errors != 0 || res.Requests != 300 {
		t.Fatalf("requests %d errors %d (%s), want 300 and 0", res.Requests, res.Errors, res.FirstError)
	}
	// Counted from the send, only the stalled request is slow (under 1% of
	// the run); counted from the schedule, the 60 requests due during the
	// stall (20% of the run) waited up to 300 ms, so p99 is well above 150.
	if p := res.Endpoints["battery_last_hour_1m"].P99; p < 150 {
		t.Errorf("battery_last_hour_1m p99 %.1f ms: requests queued behind a %s stall must count it", p, stall)
	}
	if res.SendLagP99 < 150 {
		t.Errorf("send lag p99 %.1f ms: the queue behind the stall must show", res.SendLagP99)
	}
}

// The scheduler keeps its rate over several connections and sends the
// dashboard mix's endpoints in their shares.
func TestOpenLoop_RateAndMix(t *testing.T) {
	var n atomic.Int64
	var fleet atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n.Add(1)
		if strings.HasPrefix(r.URL.Path, "/v1/fleet/") {
			fleet.Add(1)
		}
		if r.Header.Get("Authorization") != "Bearer tok" {
			w.WriteHeader(http.StatusUnauthorized)
		}
	}))
	defer srv.Close()
	start := time.Now()
	res, err := Load(context.Background(), LoadOptions{Target: srv.URL, Token: "tok", Rate: 1000, Duration: time.Second, Conns: 4, Batteries: 10, Seed: 1})
	if err != nil {
		t.Fatal(err)
	}
	if el := time.Since(start); el < 900*time.Millisecond {
		t.Errorf("1000 requests at 1000/s took %s: not paced", el)
	}
	if n.Load() != 1000 || res.Errors != 0 {
		t.Fatalf("server saw %d requests, %d errors (%s); want 1000 and 0", n.Load(), res.Errors, res.FirstError)
	}
	total := 0
	for name, e := range res.Endpoints {
		total += e.Requests
		if e.Share >= 0.2 && (float64(e.Requests) < e.Share*1000*0.8 || float64(e.Requests) > e.Share*1000*1.2) {
			t.Errorf("%s: %d requests, want about %.0f", name, e.Requests, e.Share*1000)
		}
	}
	if total != 1000 || fleet.Load() == 0 {
		t.Errorf("endpoints hold %d requests (want 1000), fleet requests %d (want some)", total, fleet.Load())
	}
}

func TestLoadOptions_Bounds(t *testing.T) {
	ok := LoadOptions{Target: "http://x", Rate: 10, Duration: time.Second, Conns: 1, Batteries: 1}
	if err := ok.validate(); err != nil {
		t.Fatal(err)
	}
	for name, o := range map[string]LoadOptions{
		"rate":     {Target: "http://x", Rate: maxLoadRate + 1, Duration: time.Second, Conns: 1, Batteries: 1},
		"duration": {Target: "http://x", Rate: 10, Duration: time.Hour, Conns: 1, Batteries: 1},
		"conns":    {Target: "http://x", Rate: 10, Duration: time.Second, Conns: 0, Batteries: 1},
		"target":   {Target: "x", Rate: 10, Duration: time.Second, Conns: 1, Batteries: 1},
		// One good URL and one bad, or more targets than the bound.
		"target ":  {Target: "http://x,x", Rate: 10, Duration: time.Second, Conns: 1, Batteries: 1},
		"target  ": {Target: strings.Repeat("http://x,", maxLoadTargets) + "http://x", Rate: 10, Duration: time.Second, Conns: 1, Batteries: 1},
	} {
		name = strings.TrimSpace(name)
		if err := o.validate(); err == nil || !strings.Contains(err.Error(), name) {
			t.Errorf("%s: error %v, want one naming %s", name, err, name)
		}
	}
}

// Several targets take the requests in turn, as behind a round-robin
// balancer: each sees its share.
func TestLoad_SeveralTargetsTakeTurns(t *testing.T) {
	var n [2]atomic.Int64
	var urls []string
	for i := range n {
		srv := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { n[i].Add(1) }))
		defer srv.Close()
		urls = append(urls, srv.URL)
	}
	res, err := Load(context.Background(), LoadOptions{Target: strings.Join(urls, ","), Rate: 400, Duration: 500 * time.Millisecond, Conns: 4, Batteries: 10, Seed: 1})
	if err != nil {
		t.Fatal(err)
	}
	if res.Requests != 200 || res.Errors != 0 || n[0].Load() != 100 || n[1].Load() != 100 {
		t.Fatalf("%d requests (%d errors: %s), the targets saw %d and %d; want 100 each", res.Requests, res.Errors, res.FirstError, n[0].Load(), n[1].Load())
	}
}
