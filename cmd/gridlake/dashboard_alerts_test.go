package main

import (
	"context"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gridlake/gridlake/kafkaio"
	"github.com/gridlake/gridlake/simulate"
)

// TestDashboard_BannerWhenTheFleetGoesSilent drives headless Chromium
// against `gridlake up` whose simulator stops after a few seconds: the
// red banner says the whole fleet is silent, the header says ingest is
// stale beside the speed lag, the live tiles are marked stale, /readyz is
// 503; when devices send again the banner and the marks clear.
// Screenshots land in artifacts/dashboard/.
func TestDashboard_BannerWhenTheFleetGoesSilent(t *testing.T) {
	users, _ := testUsersFile(t)
	u := startUp(t, "--auth-users-file", users, "--jobs-enabled=false", "--simulate-duration", "4s",
		"--alerts-rules-file", alertRulesFile(t, 3*time.Second), "--notify-pipeline-every", "200ms")
	base := "http://" + u.http
	shots := screenshotDir(t)
	b := browser(t)
	signIn(t, b, base, "vera", "vera-password", shots)
	chromium(t, b, base+"/#/", "", 1280, 900)

	if err := b.WaitFor(`document.querySelector("#alert-banner").dataset.state === "fleet_silent" && document.querySelector("#fleet-cards .stale-mark")`, 90*time.Second); err != nil {
		dom, _ := b.DOM()
		t.Fatalf("no fleet-silent banner after the simulator stopped: %v\n%s\n%s", err, dom, u.stderr.String())
	}
	if err := b.Screenshot(filepath.Join(shots, "fleet-silent.png")); err != nil {
		t.Fatal(err)
	}
	if !b.Contains("THE WHOLE FLEET IS SILENT") || !b.Contains(`data-stale="true"`) || !b.Contains("INGEST STALE") {
		dom, _ := b.DOM()
		t.Errorf("the silent fleet page lacks the banner text or the ingest mark:\n%s", dom)
	}
	var cls string
	if err := b.Eval(`document.querySelector("#alert-banner").className`, &cls); err != nil || !strings.Contains(cls, "loudest") {
		t.Errorf("the fleet-silent banner is not the loudest: %q %v", cls, err)
	}
	if resp, err := http.Get(base + "/readyz"); err != nil || resp.StatusCode != http.StatusServiceUnavailable {
		t.Errorf("/readyz while the fleet is silent: %v %v", resp, err)
	} else {
		resp.Body.Close()
	}
	dom := chromium(t, b, base+"/#/alerts", filepath.Join(shots, "alerts-fleet-silent.png"), 1280, 900)
	if !strings.Contains(dom, "fleet_silent") {
		t.Errorf("the Alerts page does not list fleet_silent:\n%s", dom)
	}

	// Devices send again: the banner and the marks clear.
	w := kafkaio.NewWriter([]string{u.kafka})
	defer w.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	sim := simulate.New(simulate.Options{Batteries: 50, Rooms: 5, Rate: 10, Seed: 3, Start: time.Now()})
	go sim.Run(ctx, w, simulate.RunOptions{Duration: 2 * time.Minute})
	chromium(t, b, base+"/#/", "", 1280, 900)
	if err := b.WaitFor(`document.querySelector("#alert-banner").dataset.state !== "fleet_silent" && !document.querySelector("#fleet-cards .stale-mark") && document.querySelector("#fresh-ingest") && document.querySelector("#fresh-ingest").dataset.stale === "false"`, 60*time.Second); err != nil {
		dom, _ := b.DOM()
		t.Fatalf("the banner did not clear when devices sent again: %v\n%s", err, dom)
	}
	if err := b.Screenshot(filepath.Join(shots, "fleet-resumed.png")); err != nil {
		t.Fatal(err)
	}
	chromium(t, b, base+"/#/alerts", filepath.Join(shots, "alerts-resolved.png"), 1280, 900)
	if !b.Contains("resolved") {
		t.Error("the Alerts page's history does not show fleet_silent resolved")
	}
}
