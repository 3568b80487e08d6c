package config

import (
	"flag"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func load(t *testing.T, args []string, env map[string]string) (Config, error) {
	t.Helper()
	fs := flag.NewFlagSet("test", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	l := Register(fs)
	if err := fs.Parse(args); err != nil {
		return Config{}, err
	}
	return l.Load(func(k string) string { return env[k] })
}

func TestLoad_Precedence(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "gridlake.yaml")
	yaml := "kafka:\n  partitions: 6\n  brokers: [a:9092, b:9092]\nsite:\n  timezone: Europe/Berlin\nevents:\n  close_grace: 30m\n"
	if err := os.WriteFile(file, []byte(yaml), 0o644); err != nil {
		t.Fatal(err)
	}
	c, err := load(t, []string{"--config", file, "--kafka-partitions", "3", "--simulate-fast"},
		map[string]string{"GRIDLAKE_KAFKA_PARTITIONS": "4", "GRIDLAKE_S3_BUCKET": "lake"})
	if err != nil {
		t.Fatal(err)
	}
	if c.Kafka.Partitions != 3 {
		t.Errorf("flag should beat env and file: partitions = %d", c.Kafka.Partitions)
	}
	if c.S3.Bucket != "lake" {
		t.Errorf("env should beat default: bucket = %q", c.S3.Bucket)
	}
	if c.Site.Timezone != "Europe/Berlin" || c.Events.CloseGrace != 30*time.Minute {
		t.Errorf("file values lost: %+v %+v", c.Site, c.Events)
	}
	if len(c.Kafka.Brokers) != 2 || c.Kafka.Brokers[1] != "b:9092" {
		t.Errorf("brokers = %v", c.Kafka.Brokers)
	}
	if !c.Sim.Fast {
		t.Error("bool flag without value should set true")
	}
	if c.HTTP.Addr != Default().HTTP.Addr {
		t.Errorf("untouched setting should keep its default, got %q", c.HTTP.Addr)
	}
}

func TestLoad_PreciseErrors(t *testing.T) {
	_, err := load(t, []string{"--kafka-partitions", "0", "--site-timezone", "Mars/Olympus", "--simulate-loss", "0.9"}, nil)
	if err == nil {
		t.Fatal("want errors")
	}
	for _, want := range []string{"kafka.partitions: 0 must be between 1 and 1000", `site.timezone: "Mars/Olympus"`, "simulate.loss"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q should mention %q", err, want)
		}
	}
	_, err = load(t, nil, map[string]string{"GRIDLAKE_EVENTS_RETENTION": "forever"})
	if err == nil || !strings.Contains(err.Error(), "GRIDLAKE_EVENTS_RETENTION") {
		t.Fatalf("bad env value should name the variable, got %v", err)
	}
}

func TestLoad_UnknownYAMLKey(t *testing.T) {
	file := filepath.Join(t.TempDir(), "c.yaml")
	os.WriteFile(file, []byte("kafka:\n  partitons: 3\n"), 0o644)
	_, err := load(t, []string{"--config", file}, nil)
	if err == nil || !strings.Contains(err.Error(), "partitons") {
		t.Fatalf("misspelt key should be an error naming it, got %v", err)
	}
}

func TestKeys_Names(t *testing.T) {
	c := Default()
	found := false
	for _, s := range Keys(&c) {
		if s.Key == "s3.access_key" {
			found = s.Flag == "s3-access-key" && s.Env == "GRIDLAKE_S3_ACCESS_KEY" && s.Help != ""
		}
		if s.Help == "" {
			t.Errorf("%s has no help text", s.Key)
		}
	}
	if !found {
		t.Fatal("s3.access_key naming is wrong")
	}
}

func TestLoad_SecretsNeverFlags(t *testing.T) {
	if _, err := load(t, []string{"--s3-secret-key", "from-the-command-line"}, nil); err == nil {
		t.Fatal("--s3-secret-key was accepted: ps would show the secret")
	}
	path := filepath.Join(t.TempDir(), "s3-secret")
	if err := os.WriteFile(path, []byte("secret-from-a-file\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := load(t, nil, map[string]string{"GRIDLAKE_S3_SECRET_KEY_FILE": path, "GRIDLAKE_AUTH_SESSION_SECRET": strings.Repeat("k", 32)})
	if err != nil {
		t.Fatal(err)
	}
	if c.S3.SecretKey != "secret-from-a-file" || c.Auth.SessionSecret != strings.Repeat("k", 32) {
		t.Fatalf("secrets %q %q", c.S3.SecretKey, c.Auth.SessionSecret)
	}
	if _, err := load(t, nil, map[string]string{"GRIDLAKE_S3_SECRET_KEY_FILE": path + ".missing"}); err == nil ||
		!strings.Contains(err.Error(), "GRIDLAKE_S3_SECRET_KEY_FILE") {
		t.Fatalf("a missing secret file must name its variable: %v", err)
	}
	// A plain (non-secret) setting has no _FILE form.
	if c, err := load(t, nil, map[string]string{"GRIDLAKE_HTTP_ADDR_FILE": path}); err != nil || c.HTTP.Addr != Default().HTTP.Addr {
		t.Fatalf("http.addr from a _FILE: %q %v", c.HTTP.Addr, err)
	}
}

// TestLoad_Tariff: the tariff has working defaults for the reference site,
// loads from flags, and a bad currency or price fails at start naming it.
func TestLoad_Tariff(t *testing.T) {
	c, err := load(t, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if tr := c.Site.Tariff; tr.Currency != "KRW" || tr.PricePerKWh <= 0 || tr.CO2GPerKWh <= 0 {
		t.Fatalf("default tariff %+v: want KRW with a price and a CO2 factor", tr)
	}
	c, err = load(t, []string{"--site-tariff-currency", "EUR", "--site-tariff-price-per-kwh", "0.31", "--site-tariff-co2-g-per-kwh", "380"}, nil)
	if err != nil || c.Site.Tariff != (Tariff{Currency: "EUR", PricePerKWh: 0.31, CO2GPerKWh: 380}) {
		t.Fatalf("tariff from flags: %+v %v", c.Site.Tariff, err)
	}
	_, err = load(t, []string{"--site-tariff-currency", "eu", "--site-tariff-price-per-kwh", "NaN", "--site-tariff-co2-g-per-kwh", "-1"}, nil)
	for _, want := range []string{"site.tariff.currency", "site.tariff.price_per_kwh", "site.tariff.co2_g_per_kwh"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("a bad tariff should name %s, got %v", want, err)
		}
	}
}

// TestLoad_DLQValueBound: the dead_letters value bound loads from a flag
// and a bound of nothing or past 1 MiB fails at start naming the setting.
func TestLoad_DLQValueBound(t *testing.T) {
	c, err := load(t, []string{"--batch-dlq-max-value-bytes", "512"}, nil)
	if err != nil || c.Batch.DLQMaxValueBytes != 512 {
		t.Fatalf("from a flag: %d %v", c.Batch.DLQMaxValueBytes, err)
	}
	if _, err := load(t, []string{"--batch-dlq-max-run-bytes", "0"}, nil); err == nil || !strings.Contains(err.Error(), "batch.dlq_max_run_bytes") {
		t.Errorf("a run bound of 0: %v, want an error naming batch.dlq_max_run_bytes", err)
	}
	for _, v := range []string{"0", "1048577"} {
		if _, err := load(t, []string{"--batch-dlq-max-value-bytes", v}, nil); err == nil || !strings.Contains(err.Error(), "batch.dlq_max_value_bytes") {
			t.Errorf("a bound of %s: %v, want an error naming batch.dlq_max_value_bytes", v, err)
		}
	}
}
