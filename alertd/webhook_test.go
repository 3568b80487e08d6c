package alertd

import (
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/gridlake/gridlake/alerts"
	"github.com/gridlake/gridlake/internal/testenv"
	"github.com/gridlake/gridlake/kafkaio"
	"github.com/gridlake/gridlake/metrics"
)

// receiver is a test webhook receiver: it records every payload, and
// answers 503 while down.
type receiver struct {
	mu    sync.Mutex
	got   []Payload
	down  bool
	fails int
}

func (rc *receiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	if r.Header.Get("Authorization") != "Bearer s3cret" {
		http.Error(w, "who are you", http.StatusUnauthorized)
		return
	}
	if rc.down {
		rc.fails++
		http.Error(w, "down for maintenance", http.StatusServiceUnavailable)
		return
	}
	b, _ := io.ReadAll(r.Body)
	var p Payload
	if err := json.Unmarshal(b, &p); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	rc.got = append(rc.got, p)
}

func (rc *receiver) setDown(d bool) {
	rc.mu.Lock()
	rc.down = d
	rc.mu.Unlock()
}

// arrived returns how often each (groupKey, status) arrived.
func (rc *receiver) arrived() map[string]int {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	n := map[string]int{}
	for _, p := range rc.got {
		n[p.GroupKey+"|"+p.Status]++
	}
	return n
}

func writeTransitions(t *testing.T, w kafkaio.Writer, ts ...alerts.Transition) {
	t.Helper()
	for _, tr := range ts {
		m, err := Encode(tr)
		if err != nil {
			t.Fatal(err)
		}
		if err := w.WriteMessages(context.Background(), m); err != nil {
			t.Fatal(err)
		}
	}
}

func tr(rule, subject string, start int64, st alerts.State) alerts.Transition {
	return alerts.Transition{Rule: rule, Kind: alerts.KindThreshold, Subject: subject, Start: start, State: st, At: start + 30_000,
		Severity: "critical", Value: 46.5, Unit: "°C", Summary: rule + " on " + subject}
}

// TestWebhook_AtLeastOnceThroughOutagesAndRestarts: every transition on
// the topic reaches a real HTTP receiver at least once, in the
// Alertmanager format with its identity as groupKey and fingerprint;
// while the receiver answers 503 or is gone, deliveries are retried and
// arrive once it is back; a silenced alert is not sent; a copy written
// again is not sent twice; a restarted deliverer resumes where the last
// one stopped without losing a transition.
func TestWebhook_AtLeastOnceThroughOutagesAndRestarts(t *testing.T) {
	addr := testenv.Kafka(t, 2)
	store := testenv.Store(t)
	w := kafkaio.NewWriter([]string{addr})
	defer w.Close()

	rc := &receiver{}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewUnstartedServer(rc)
	srv.Listener = ln
	srv.Start()
	url := srv.URL
	t.Cleanup(func() { srv.Close() })

	sil := NewSilences(store, 10, nil)
	ctx := context.Background()
	s, err := ParseSilence([]byte(`{"matchers":[{"field":"subject","value":"B-9","prefix":true}],"duration":"1h","comment":"pack in the workshop"}`), time.Now(), 24*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := sil.Add(ctx, s); err != nil {
		t.Fatal(err)
	}
	reg := metrics.NewRegistry()
	recv := Receiver{Name: "oncall", URL: url + "/hook", Timeout: 2 * time.Second, token: "s3cret"}
	opts := DeliveryOptions{Brokers: []string{addr}, ExternalURL: "http://dash.example", RetryBase: 20 * time.Millisecond, RetryMax: 200 * time.Millisecond,
		DeadLetterAfter: time.Hour, Silences: sil, Metrics: reg}
	run := func() (stop func()) {
		dctx, cancel := context.WithCancel(ctx)
		done := make(chan error, 1)
		go func() { done <- NewDeliverer(recv, opts).Run(dctx) }()
		return func() {
			cancel()
			if err := <-done; err != nil {
				t.Error(err)
			}
		}
	}
	waitFor := func(what string, want map[string]int) {
		t.Helper()
		testenv.WaitUntil(t, 60*time.Second, what, func() bool {
			got := rc.arrived()
			for k := range want {
				if got[k] == 0 {
					return false
				}
			}
			return true
		}, nil)
	}
	const t0 = 1795434115105
	a := tr("battery_hot", "B-00042", t0, alerts.Firing)
	silenced := tr("battery_hot", "B-90001", t0, alerts.Firing)
	stop := run()
	writeTransitions(t, w, a, silenced, a) // a's copy: written again by a restarted evaluator
	waitFor("the first transition", map[string]int{a.ID() + "|firing": 1})

	// The receiver answers 503: the next transitions are retried.
	rc.setDown(true)
	c := tr("battery_soc_low", "B-00007", t0+1000, alerts.Firing)
	aRes := a
	aRes.State, aRes.At = alerts.Resolved, t0+90_000
	writeTransitions(t, w, c, aRes)
	testenv.WaitUntil(t, 30*time.Second, "failed attempts", func() bool {
		rc.mu.Lock()
		defer rc.mu.Unlock()
		return rc.fails >= 3
	}, nil)
	rc.setDown(false)
	waitFor("the transitions sent while the receiver was down", map[string]int{c.ID() + "|firing": 1, a.ID() + "|resolved": 1})

	// The receiver is gone (connections refused), and the deliverer
	// restarts meanwhile: nothing is lost.
	srv.Close()
	stop()
	d := tr("battery_hot", "B-00100", t0+5000, alerts.Firing)
	writeTransitions(t, w, d)
	stop = run()
	time.Sleep(300 * time.Millisecond) // a few refused attempts
	ln2, err := net.Listen("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	srv2 := httptest.NewUnstartedServer(rc)
	srv2.Listener = ln2
	srv2.Start()
	defer srv2.Close()
	waitFor("the transition written while the deliverer was stopped", map[string]int{d.ID() + "|firing": 1})
	stop()

	got := rc.arrived()
	if got[silenced.ID()+"|firing"] != 0 {
		t.Errorf("the silenced alert was delivered")
	}
	if got[a.ID()+"|firing"] != 1 {
		t.Errorf("the firing of %s arrived %d times; its copy on the topic must not be sent again", a.ID(), got[a.ID()+"|firing"])
	}
	// Every payload is in the Alertmanager format, its identity stable.
	byKey := map[string]alerts.Transition{}
	for _, x := range []alerts.Transition{a, aRes, c, d} {
		byKey[x.ID()] = x
	}
	rc.mu.Lock()
	defer rc.mu.Unlock()
	for _, p := range rc.got {
		x, ok := byKey[p.GroupKey]
		if !ok {
			t.Errorf("unexpected payload %+v", p)
			continue
		}
		al := p.Alerts[0]
		if p.Version != "4" || p.Receiver != "oncall" || len(p.Alerts) != 1 || al.Fingerprint != Fingerprint(x.ID()) || al.Labels["alert_id"] != x.ID() ||
			al.Labels["alertname"] != x.Rule || al.Status != p.Status || !al.StartsAt.Equal(time.UnixMilli(x.Start)) || p.ExternalURL != "http://dash.example" {
			t.Errorf("payload of %s: %+v", x.ID(), p)
		}
		if p.Status == "resolved" && !al.EndsAt.Equal(time.UnixMilli(aRes.At)) || p.Status == "firing" && !al.EndsAt.IsZero() {
			t.Errorf("endsAt of %s %s: %s", x.ID(), p.Status, al.EndsAt)
		}
	}
	n := func(outcome string) uint64 {
		return reg.Counter("gridlake_alert_webhook_deliveries_total", "", "receiver", "oncall", "outcome", outcome).Value()
	}
	if n(OutcomeSilenced) != 1 || n(OutcomeDuplicate) != 1 || n(OutcomeDelivered) < 4 {
		t.Errorf("outcomes: delivered %d silenced %d duplicate %d", n(OutcomeDelivered), n(OutcomeSilenced), n(OutcomeDuplicate))
	}
	if reg.Counter("gridlake_alert_webhook_failures_total", "", "receiver", "oncall").Value() < 3 {
		t.Error("failed attempts were not counted")
	}
}

// TestFeed_RebuildsTheBookFromTheTopic: a feed started after the
// transitions were written knows what fires, de-duplicated, and a firing
// copy read after the resolution does not bring the alert back.
func TestFeed_RebuildsTheBookFromTheTopic(t *testing.T) {
	addr := testenv.Kafka(t, 2)
	w := kafkaio.NewWriter([]string{addr})
	defer w.Close()
	const t0 = 1795434115105
	a, b := tr("battery_hot", "B-1", t0, alerts.Firing), tr("battery_hot", "B-2", t0, alerts.Firing)
	aRes := a
	aRes.State = alerts.Resolved
	// The same key lands on the same partition, so a's copy follows its
	// resolution in the log, as after an evaluator's restart.
	writeTransitions(t, w, a, b, b, aRes, a)
	for round := range 2 { // a second feed (a restart) rebuilds the same book
		book := NewBook(100, nil)
		f := &Feed{Brokers: []string{addr}, Book: book}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- f.Run(ctx) }()
		select {
		case <-f.Ready():
		case <-time.After(30 * time.Second):
			t.Fatal("the feed did not catch up")
		}
		cancel()
		if err := <-done; err != nil {
			t.Fatal(err)
		}
		firing := book.Firing(Filter{})
		if len(firing) != 1 || firing[0].ID() != b.ID() {
			t.Fatalf("round %d: firing %v, want only %s", round, firing, b.ID())
		}
		hist, next := book.History(Filter{}, 0, 10)
		if len(hist) != 3 || next != 0 {
			t.Fatalf("round %d: history %v (next %d), want 3 transitions", round, hist, next)
		}
	}
}
