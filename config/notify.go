package config

import "time"

// Notify configures what the serving process does with alert transitions
// (DESIGN §11): the history it keeps, the pipeline rules it evaluates,
// silences and webhooks.
type Notify struct {
	HistoryLimit int `yaml:"history_limit" help:"alert transitions each serving process keeps in memory for GET /v1/alerts/history"`
	// ReceiversFile lists the webhooks; their bearer tokens come from
	// files it names, never from flags.
	ReceiversFile   string        `yaml:"receivers_file" help:"YAML file of webhook receivers (receivers: [{name, url, bearer_token_file, timeout}]) sent every alert transition in the Alertmanager format; empty: no webhooks"`
	ExternalURL     string        `yaml:"external_url" help:"the dashboard's URL as receivers reach it, sent as externalURL and generatorURL"`
	RetryBase       time.Duration `yaml:"retry_base" help:"first wait before a failed webhook is tried again; it doubles (with jitter) up to notify.retry_max"`
	RetryMax        time.Duration `yaml:"retry_max" help:"longest wait between two attempts at one webhook"`
	DeadLetterAfter time.Duration `yaml:"dead_letter_after" help:"a transition a receiver has not taken for this long is dropped to the log (outcome dead_letter), so a dead receiver holds nothing back forever"`
	QueueCapacity   int           `yaml:"queue_capacity" help:"alert transitions each receiver fetches ahead of delivery"`
	PipelineEvery   time.Duration `yaml:"pipeline_every" help:"how often the serving process evaluates the pipeline rules (speed lag, dead letters, jobs, the object store, ingest staleness)"`
	SilencePoll     time.Duration `yaml:"silence_poll" help:"how often each serving process re-reads the silences from the lake"`
	MaxSilences     int           `yaml:"max_silences" help:"silences a deployment may hold"`
	MaxSilence      time.Duration `yaml:"max_silence" help:"the longest one silence may last"`
}

func defaultNotify() Notify {
	return Notify{HistoryLimit: 10_000, RetryBase: time.Second, RetryMax: 5 * time.Minute, DeadLetterAfter: 6 * time.Hour,
		QueueCapacity: 100, PipelineEvery: 5 * time.Second, SilencePoll: 5 * time.Second, MaxSilences: 1000, MaxSilence: 30 * 24 * time.Hour}
}

func (n *Notify) validate(bad func(key, format string, args ...any)) {
	if n.HistoryLimit < 1 || n.HistoryLimit > 10_000_000 {
		bad("notify.history_limit", "%d must be 1 to 10000000", n.HistoryLimit)
	}
	if n.RetryBase < 10*time.Millisecond || n.RetryMax < n.RetryBase || n.RetryMax > time.Hour {
		bad("notify.retry_base/retry_max", "%s..%s: the base must be at least 10ms and the max from the base up to 1h", n.RetryBase, n.RetryMax)
	}
	if n.DeadLetterAfter < time.Second || n.DeadLetterAfter > 30*24*time.Hour {
		bad("notify.dead_letter_after", "%s must be 1s to 720h", n.DeadLetterAfter)
	}
	if n.QueueCapacity < 1 || n.QueueCapacity > 100_000 {
		bad("notify.queue_capacity", "%d must be 1 to 100000", n.QueueCapacity)
	}
	if n.PipelineEvery < 10*time.Millisecond || n.PipelineEvery > 10*time.Minute {
		bad("notify.pipeline_every", "%s must be 10ms to 10m", n.PipelineEvery)
	}
	if n.SilencePoll < 10*time.Millisecond || n.SilencePoll > 10*time.Minute {
		bad("notify.silence_poll", "%s must be 10ms to 10m", n.SilencePoll)
	}
	if n.MaxSilences < 1 || n.MaxSilences > 100_000 {
		bad("notify.max_silences", "%d must be 1 to 100000", n.MaxSilences)
	}
	if n.MaxSilence < time.Minute || n.MaxSilence > 366*24*time.Hour {
		bad("notify.max_silence", "%s must be 1m to 8784h", n.MaxSilence)
	}
}
