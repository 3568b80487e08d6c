package alertd

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"hash/fnv"
	"io"
	"net/http"
	"strconv"
	"time"

	"github.com/gridlake/gridlake/alerts"
)

// Payload is the Prometheus Alertmanager webhook payload (version 4), so
// Alertmanager-compatible receivers (Grafana OnCall, PagerDuty and Slack
// bridges) take it unchanged. gridlake sends one alert per payload with
// the alert's identity as groupKey: bridges that de-duplicate on groupKey
// (PagerDuty's dedup_key) see one incident per alert, firing then
// resolved.
type Payload struct {
	Version           string            `json:"version"`
	GroupKey          string            `json:"groupKey"`
	TruncatedAlerts   int               `json:"truncatedAlerts"`
	Status            string            `json:"status"`
	Receiver          string            `json:"receiver"`
	GroupLabels       map[string]string `json:"groupLabels"`
	CommonLabels      map[string]string `json:"commonLabels"`
	CommonAnnotations map[string]string `json:"commonAnnotations"`
	ExternalURL       string            `json:"externalURL"`
	Alerts            []PayloadAlert    `json:"alerts"`
}

// PayloadAlert is one alert of a payload.
type PayloadAlert struct {
	Status       string            `json:"status"`
	Labels       map[string]string `json:"labels"`
	Annotations  map[string]string `json:"annotations"`
	StartsAt     time.Time         `json:"startsAt"`
	EndsAt       time.Time         `json:"endsAt"` // zero (0001-01-01T00:00:00Z) while firing, as Alertmanager sends
	GeneratorURL string            `json:"generatorURL"`
	Fingerprint  string            `json:"fingerprint"`
}

// Fingerprint is the alert's identity hashed to 16 hex digits, the form
// Alertmanager's fingerprints take; the identity itself is the label
// alert_id and the payload's groupKey.
func Fingerprint(id string) string {
	h := fnv.New64a()
	h.Write([]byte(id))
	return fmt.Sprintf("%016x", h.Sum64())
}

// NewPayload is the payload of one transition for receiver.
func NewPayload(t alerts.Transition, receiver, externalURL string) Payload {
	id := t.ID()
	labels := map[string]string{"alertname": t.Rule, "rule": t.Rule, "subject": t.Subject, "kind": string(t.Kind),
		"severity": t.Severity, "alert_id": id}
	ann := map[string]string{"summary": t.Summary, "value": strconv.FormatFloat(t.Value, 'g', -1, 64) + unitSuffix(t.Unit)}
	a := PayloadAlert{Status: string(t.State), Labels: labels, Annotations: ann, StartsAt: time.UnixMilli(t.Start).UTC(),
		GeneratorURL: externalURL + "/#alerts", Fingerprint: Fingerprint(id)}
	if t.State == alerts.Resolved {
		a.EndsAt = time.UnixMilli(t.At).UTC()
	}
	return Payload{Version: "4", GroupKey: id, Status: string(t.State), Receiver: receiver,
		GroupLabels: map[string]string{"alertname": t.Rule}, CommonLabels: labels, CommonAnnotations: ann,
		ExternalURL: externalURL, Alerts: []PayloadAlert{a}}
}

func unitSuffix(u string) string {
	if u == "" {
		return ""
	}
	return " " + u
}

// permanent is a delivery the receiver refused for good (4xx but 408 and
// 429): retrying the same payload cannot succeed.
type permanent struct{ err error }

func (p permanent) Error() string { return p.err.Error() }
func (p permanent) Unwrap() error { return p.err }

// post sends one payload; a non-2xx answer is an error, permanent for a
// 4xx other than 408 and 429.
func post(ctx context.Context, c *http.Client, r Receiver, p Payload) error {
	body, err := json.Marshal(p)
	if err != nil {
		return permanent{fmt.Errorf("encode payload: %w", err)}
	}
	ctx, cancel := context.WithTimeout(ctx, r.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, r.URL, bytes.NewReader(body))
	if err != nil {
		return permanent{fmt.Errorf("webhook %s: %w", r.Name, err)}
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "gridlake-alerts")
	req.Header.Set("Idempotency-Key", p.GroupKey+"|"+p.Status)
	if r.token != "" {
		req.Header.Set("Authorization", "Bearer "+r.token)
	}
	resp, err := c.Do(req)
	if err != nil {
		return fmt.Errorf("webhook %s: %w", r.Name, err)
	}
	defer resp.Body.Close()
	msg, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	if resp.StatusCode/100 == 2 {
		return nil
	}
	err = fmt.Errorf("webhook %s answered %s: %s", r.Name, resp.Status, bytes.TrimSpace(msg))
	if resp.StatusCode/100 == 4 && resp.StatusCode != http.StatusRequestTimeout && resp.StatusCode != http.StatusTooManyRequests {
		return permanent{err}
	}
	return err
}
