package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"

	"github.com/gridlake/gridlake/config"
	"github.com/gridlake/gridlake/kafkaio"
	"github.com/gridlake/gridlake/lake"
	"github.com/gridlake/gridlake/objstore"
	"github.com/gridlake/gridlake/schemas"
	"github.com/gridlake/gridlake/serving"
	"github.com/gridlake/gridlake/speed"
)

// newFanout is the speed side of a serve process with serve.speed=remote:
// the speed processes announced in the lake, asked with serve.speed_token.
func newFanout(ctx context.Context, cfg *config.Config, brokers []string, store *objstore.Store, log *slog.Logger) (*serving.Fanout, error) {
	if cfg.Serve.SpeedToken == "" {
		return nil, fmt.Errorf("serve.speed=remote needs serve.speed_token (GRIDLAKE_SERVE_SPEED_TOKEN): an engineer's token the speed processes' users file knows")
	}
	parts := map[string]int{}
	for _, t := range []string{schemas.TopicBattery, schemas.TopicRoom} {
		n, err := kafkaio.Partitions(ctx, brokers, t)
		if err != nil {
			return nil, fmt.Errorf("serve.speed=remote maps ids to partitions: %w", err)
		}
		parts[t] = n
	}
	return serving.NewFanout(serving.FanoutOptions{Store: store, Group: lake.SpeedGroup, Partitions: parts, Token: cfg.Serve.SpeedToken,
		Client: &http.Client{Timeout: cfg.Serve.SpeedTimeout}, MaxAnswerBytes: int64(cfg.Serve.SpeedMaxAnswerBytes), Log: log.With("layer", "fanout")})
}

// announce adds the speed process's announcer to the lifecycle: it
// publishes what the process owns under a fresh member id (a restarted
// process is a new member) at speed.advertise_url, or at base.
func announce(lc *lifecycle, cfg *config.Config, layer *speed.Layer, store *objstore.Store, base string) {
	addr := cfg.Speed.AdvertiseURL
	if addr == "" {
		addr = advertised(base)
	}
	var b [8]byte
	_, _ = rand.Read(b[:])
	id := hex.EncodeToString(b[:])
	lc.add("speed announcer", func(ctx context.Context) error {
		return layer.Announce(ctx, store, id, addr, cfg.Speed.AnnounceEvery, cfg.Speed.MemberTTL)
	})
}

// advertised is base with an unspecified listen host (0.0.0.0, ::)
// replaced by this machine's hostname, which a container's peers resolve.
func advertised(base string) string {
	u, err := url.Parse(base)
	if err != nil {
		return base
	}
	host, port, err := net.SplitHostPort(u.Host)
	if err != nil {
		return base
	}
	if ip := net.ParseIP(host); ip != nil && ip.IsUnspecified() {
		if name, err := os.Hostname(); err == nil && name != "" {
			u.Host = net.JoinHostPort(name, port)
		}
	}
	return u.String()
}
